//! Tests of the block index: round trips, matcher semantics against the head's index,
//! corruption detection.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use strata_core::labels::matcher::MatchKind;
use strata_core::postings::Postings;
use strata_core::sample::SeriesRef;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).unwrap()
}

fn chunk(min_t: i64, max_t: i64, r: u64) -> IndexChunk {
    IndexChunk {
        min_t,
        max_t,
        chunk: ChunkRef(r),
    }
}

fn build(series: &[(Labels, Vec<IndexChunk>)]) -> Vec<u8> {
    let mut w = IndexWriter::new();
    for (i, (l, c)) in series.iter().enumerate() {
        assert_eq!(w.add_series(l, c), i as u32);
    }
    w.finish()
}

fn open(bytes: &[u8]) -> Result<IndexReader, StorageError> {
    IndexReader::open(
        PathBuf::from("/b/index"),
        Mapped::from_memory(Arc::from(bytes)),
    )
}

/// The head's example series (postings.rs), in label order, so ids are 0..5.
fn small() -> Vec<(Labels, Vec<IndexChunk>)> {
    let mut series: Vec<Labels> = [
        &[("__name__", "up"), ("job", "node"), ("instance", "a")][..],
        &[("__name__", "up"), ("job", "node"), ("instance", "b")],
        &[("__name__", "up"), ("job", "api")],
        &[
            ("__name__", "requests_total"),
            ("job", "api"),
            ("code", "200"),
        ],
        &[
            ("__name__", "requests_total"),
            ("job", "api"),
            ("code", "500"),
        ],
    ]
    .iter()
    .map(|p| labels(p))
    .collect();
    series.sort();
    series
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let i = i as i64;
            (
                l,
                vec![
                    chunk(i, i + 10, 24),
                    chunk(i + 11, i + 500, (4 << 32) | 100),
                ],
            )
        })
        .collect()
}

/// `n` series with varied labels: some lack `instance`, some have `code` or `path`.
fn many(n: usize) -> Vec<(Labels, Vec<IndexChunk>)> {
    let metrics = ["up", "requests_total", "latency_seconds", "errors"];
    let mut series: Vec<Labels> = (0..n)
        .map(|i| {
            let mut pairs = vec![
                ("__name__".to_string(), metrics[i % 4].to_string()),
                ("job".to_string(), ["api", "node", "db"][i % 3].to_string()),
                ("instance".to_string(), format!("host-{}", i % 17)),
                ("seq".to_string(), format!("{i}")),
            ];
            if i % 5 == 0 {
                pairs.retain(|(n, _)| n != "instance");
            }
            if i % 2 == 1 {
                pairs.push(("code".to_string(), ["200", "404", "500"][i % 3].to_string()));
            }
            if i % 7 < 3 {
                pairs.push(("path".to_string(), format!("/api/v{}/x{}", i % 3, i % 4)));
            }
            Labels::new(pairs).unwrap()
        })
        .collect();
    series.sort();
    series
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let base = -5_000 + i as i64 * 1_000;
            let chunks = (0..i % 4)
                .map(|k| {
                    let k = k as i64;
                    chunk(
                        base + k * 100,
                        base + k * 100 + 50,
                        ((k as u64) << 32) | (24 + i as u64),
                    )
                })
                .collect();
            (l, chunks)
        })
        .collect()
}

fn matchers(ms: &[(MatchKind, &str, &str)]) -> Vec<Matcher> {
    ms.iter()
        .map(|(k, n, v)| Matcher::new(*k, n, v).unwrap())
        .collect()
}

fn check(ms: &[(MatchKind, &str, &str)], expected: &[u32]) {
    let r = open(&build(&small())).unwrap();
    assert_eq!(r.select(&matchers(ms)).unwrap(), expected, "{ms:?}");
}

#[test]
fn selects_like_prometheus() {
    use MatchKind::*;
    // Ids in label order (labels compare pairwise, so `instance` sorts before `job`):
    // 0 requests_total/200, 1 requests_total/500, 2 up/a/node, 3 up/b/node, 4 up/api.
    check(&[], &[0, 1, 2, 3, 4]);
    check(&[(Equal, "__name__", "up")], &[2, 3, 4]);
    check(
        &[(Equal, "__name__", "up"), (Equal, "job", "node")],
        &[2, 3],
    );
    check(
        &[(Equal, "__name__", "up"), (NotEqual, "job", "node")],
        &[4],
    );
    // A missing label is "": instance="" selects the series without instance.
    check(&[(Equal, "__name__", "up"), (Equal, "instance", "")], &[4]);
    check(
        &[(Equal, "__name__", "up"), (NotEqual, "instance", "")],
        &[2, 3],
    );
    check(&[(Regex, "instance", "a|b")], &[2, 3]);
    check(&[(Regex, "instance", "a|")], &[0, 1, 2, 4]);
    check(&[(Regex, "__name__", "req.*")], &[0, 1]);
    check(&[(Regex, "code", "[45].."), (Equal, "job", "api")], &[1]);
    check(&[(NotRegex, "code", "2..")], &[1, 2, 3, 4]);
    check(
        &[(Regex, "instance", "b|c"), (Regex, "__name__", "u.*")],
        &[3],
    );
    check(&[(Regex, "job", ".*")], &[0, 1, 2, 3, 4]);
    check(&[(Regex, "job", ".+")], &[0, 1, 2, 3, 4]);
    check(&[(Equal, "job", "nope")], &[]);
    check(&[(NotEqual, "job", "nope")], &[0, 1, 2, 3, 4]);
    check(&[(Equal, "nolabel", "x")], &[]);
    check(&[(Equal, "nolabel", "")], &[0, 1, 2, 3, 4]);
    check(&[(NotRegex, "nolabel", ".+")], &[0, 1, 2, 3, 4]);
}

#[test]
fn round_trips_series_names_and_values() {
    let series = many(300);
    let r = open(&build(&series)).unwrap();
    assert_eq!(r.num_series(), 300);
    for (id, want) in series.iter().enumerate() {
        assert_eq!(&r.series(id as u32).unwrap(), want);
    }
    let mut head = Postings::default();
    for (id, (l, _)) in series.iter().enumerate() {
        head.add(SeriesRef(id as u64), l.as_slice());
    }
    assert_eq!(r.label_names().unwrap(), head.label_names());
    for name in head
        .label_names()
        .iter()
        .map(String::as_str)
        .chain(["nope", ""])
    {
        assert_eq!(
            r.label_values(name).unwrap(),
            head.label_values(name),
            "{name}"
        );
    }
    let extreme = vec![(
        labels(&[("a", "b")]),
        vec![
            chunk(i64::MIN, i64::MIN, 0),
            chunk(i64::MIN + 1, i64::MAX, u64::MAX),
        ],
    )];
    assert_eq!(
        open(&build(&extreme)).unwrap().series(0).unwrap(),
        extreme[0]
    );
    let empty = open(&build(&[])).unwrap();
    assert_eq!(empty.num_series(), 0);
    assert_eq!(empty.select(&[]).unwrap(), Vec::<u32>::new());
    assert_eq!(empty.label_names().unwrap(), Vec::<String>::new());
}

/// Single matchers covering every kind, empty values, missing labels, alternations, sets
/// and prefixes; the test also runs every pair of them.
const CASES: &[(MatchKind, &str, &str)] = &[
    (MatchKind::Equal, "__name__", "up"),
    (MatchKind::Equal, "job", "api"),
    (MatchKind::Equal, "instance", ""),
    (MatchKind::Equal, "code", "404"),
    (MatchKind::Equal, "missing", ""),
    (MatchKind::Equal, "missing", "x"),
    (MatchKind::NotEqual, "job", "node"),
    (MatchKind::NotEqual, "instance", ""),
    (MatchKind::NotEqual, "code", "200"),
    (MatchKind::NotEqual, "missing", "x"),
    (MatchKind::Regex, "__name__", "up|errors"),
    (MatchKind::Regex, "__name__", "req.*"),
    (MatchKind::Regex, "__name__", ".*_.*"),
    (MatchKind::Regex, "instance", "host-1.*"),
    (MatchKind::Regex, "instance", "host-1[0-3]|"),
    (MatchKind::Regex, "instance", "host-(2|3)"),
    (MatchKind::Regex, "path", "/api/v1/.+"),
    (MatchKind::Regex, "path", "/api/.*x3"),
    (MatchKind::Regex, "path", ".*"),
    (MatchKind::Regex, "path", ".+"),
    (MatchKind::Regex, "code", "[45].."),
    (MatchKind::Regex, "code", "(?i)NOPE|2.*"),
    (MatchKind::Regex, "seq", "1..?"),
    (MatchKind::Regex, "missing", ".*"),
    (MatchKind::Regex, "missing", "a|"),
    (MatchKind::NotRegex, "job", "api|db"),
    (MatchKind::NotRegex, "instance", "host-.*"),
    (MatchKind::NotRegex, "path", ""),
    (MatchKind::NotRegex, "code", "5.*|"),
    (MatchKind::NotRegex, "missing", ".+"),
    (MatchKind::NotRegex, "seq", "[0-9]*7"),
];

#[test]
fn select_agrees_with_the_head() {
    let series = many(300);
    let r = open(&build(&series)).unwrap();
    let mut head = Postings::default();
    for (id, (l, _)) in series.iter().enumerate() {
        head.add(SeriesRef(id as u64), l.as_slice());
    }
    let compare = |ms: &[(MatchKind, &str, &str)]| {
        let ms = matchers(ms);
        let want: Vec<u32> = head.select(&ms).into_iter().map(|r| r as u32).collect();
        assert_eq!(r.select(&ms).unwrap(), want, "{ms:?}");
    };
    compare(&[]);
    for a in CASES {
        compare(&[*a]);
        for b in CASES {
            compare(&[*a, *b]);
        }
    }
}

#[test]
fn every_bit_flip_is_caught_at_open() {
    let bytes = build(&small());
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        match open(&b) {
            Err(StorageError::Corruption { path, .. }) => {
                assert_eq!(path, PathBuf::from("/b/index"))
            }
            other => panic!("bit {bit}: damage went undetected: {other:?}"),
        }
    }
}

#[test]
fn every_truncation_is_caught_at_open() {
    let bytes = build(&small());
    for len in 0..bytes.len() {
        assert!(
            matches!(open(&bytes[..len]), Err(StorageError::Corruption { .. })),
            "{len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(open(&longer).is_err());
}

/// Sections that pass their CRCs but break the framing are corruption, at a known offset.
#[test]
fn damaged_sections_with_valid_checksums_are_errors() {
    let good = build(&small());
    let r = open(&good).unwrap();
    let sections: Vec<Vec<u8>> = (0..SECTIONS).map(|s| r.section(s).to_vec()).collect();
    let reframe = |s: usize, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut parts = sections.clone();
        edit(&mut parts[s]);
        frame_sections([&parts[0], &parts[1], &parts[2], &parts[3]])
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("symbol count too big", reframe(SYMBOLS, &|b| b[0] = 0xff)),
        (
            "symbols unsorted",
            reframe(SYMBOLS, &|b| {
                let at = u32_at(b, 4).unwrap() as usize;
                b[at] = b'z';
            }),
        ),
        ("series count too big", reframe(SERIES, &|b| b[3] = 1)),
        (
            "label index name out of range",
            reframe(LABEL_INDEX, &|b| b[4] = 0xff),
        ),
        (
            "label index truncated",
            reframe(LABEL_INDEX, &|b| b.truncate(b.len() - 1)),
        ),
        (
            "postings truncated",
            reframe(POSTINGS, &|b| b.truncate(b.len() - 1)),
        ),
    ];
    for (what, bytes) in cases {
        let outcome = open(&bytes).and_then(|r| {
            r.select(&[Matcher::equal("job", "api")])?;
            r.select(&[Matcher::not_equal("job", "node")])?;
            for id in 0..r.num_series() {
                r.series(id)?;
            }
            r.label_names()
        });
        assert!(
            matches!(outcome, Err(StorageError::Corruption { .. })),
            "{what}: {outcome:?}"
        );
    }
    // A postings list naming a series beyond the index.
    let bytes = reframe(POSTINGS, &|b| {
        b.clear();
        b.extend_from_slice(&[[1u8, 9]; 64].concat());
    });
    let r = open(&bytes).unwrap();
    assert!(matches!(
        r.select(&[Matcher::equal("job", "api")]),
        Err(StorageError::Corruption { .. })
    ));
}

/// Opens `bytes` and, if that works, reads everything: it must not panic.
fn read_everything(bytes: &[u8]) {
    let Ok(r) = open(bytes) else { return };
    let _ = r.label_names();
    let _ = r.label_values("job");
    for ms in [
        vec![],
        vec![Matcher::equal("job", "api")],
        vec![Matcher::new(MatchKind::Regex, "a", "b.*").unwrap()],
        vec![Matcher::new(MatchKind::NotRegex, "job", "x|").unwrap()],
    ] {
        if let Ok(ids) = r.select(&ms) {
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            assert!(ids.iter().all(|&id| id < r.num_series()));
        }
    }
    for id in 0..r.num_series().min(64) {
        let _ = r.series(id);
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_everything(&bytes);
        let mut with_header = encode_file_header(INDEX_MAGIC, FileHeader { seq: 0, prev_synced_len: 0 }).to_vec();
        with_header.extend_from_slice(&bytes);
        read_everything(&with_header);
    }

    #[test]
    fn arbitrary_sections_with_valid_checksums_never_panic(
        sections in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..96), 4),
        small_counts in any::<bool>(),
    ) {
        let mut sections = sections;
        if small_counts {
            // Plausible counts get the reader past the framing more often.
            for s in &mut sections {
                if s.len() >= 4 {
                    s[1..4].fill(0);
                    s[0] %= 4;
                }
            }
        }
        read_everything(&frame_sections([&sections[0], &sections[1], &sections[2], &sections[3]]));
    }

    #[test]
    fn damaged_real_sections_never_panic(at in any::<usize>(), byte in any::<u8>(), s in 0..SECTIONS) {
        let good = build(&small());
        let r = open(&good).unwrap();
        let mut parts: Vec<Vec<u8>> = (0..SECTIONS).map(|s| r.section(s).to_vec()).collect();
        if !parts[s].is_empty() {
            let n = parts[s].len();
            parts[s][at % n] = byte;
        }
        read_everything(&frame_sections([&parts[0], &parts[1], &parts[2], &parts[3]]));
    }

    #[test]
    fn round_trips(raw in proptest::collection::btree_map(
        proptest::collection::vec(("[a-c]{1,2}", "[x-z]{0,2}"), 0..4),
        proptest::collection::vec((0i64..1000, 0i64..1000, any::<u64>()), 0..4),
        0..20,
    )) {
        let mut series: BTreeMap<Labels, Vec<IndexChunk>> = BTreeMap::new();
        for (pairs, chunks) in raw {
            let mut names = std::collections::BTreeSet::new();
            let pairs: Vec<_> = pairs.into_iter().filter(|(n, _)| names.insert(n.clone())).collect();
            let l = Labels::new(pairs).unwrap();
            let mut t = -500;
            let chunks = chunks.into_iter().map(|(gap, span, r)| {
                let min_t = t + gap + 1;
                t = min_t + span;
                chunk(min_t, t, r)
            }).collect();
            series.insert(l, chunks);
        }
        let series: Vec<_> = series.into_iter().collect();
        let r = open(&build(&series)).unwrap();
        for (id, want) in series.iter().enumerate() {
            prop_assert_eq!(&r.series(id as u32).unwrap(), want);
        }
        prop_assert_eq!(r.select(&[]).unwrap(), (0..series.len() as u32).collect::<Vec<_>>());
    }
}
