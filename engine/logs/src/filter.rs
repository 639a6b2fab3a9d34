//! The token filter of a sealed page: a Bloom filter of the 4-byte grams its lines contain,
//! so that a line filter (`|= "timeout"`) or a needle search skips a page, and a block all of
//! whose pages it skips, without decompressing anything.
//!
//! Grams rather than words because a line filter is a substring match: a line that contains
//! `imeou` contains each of its four-byte windows (`imeo`, `meou`), whatever the words around
//! it, so a page missing any of them cannot hold a match. Four bytes rather than three because
//! logs are full of random identifiers (trace ids, request ids): a page with a few hundred hex
//! ids holds nearly every one of the 4,096 hex trigrams, so a trigram filter answers "maybe"
//! for any id, where 4-grams (65,536 hex ones) still tell ids apart. Letters are folded to
//! ASCII lower case on both sides, so one filter serves `|=` and case-insensitive `|~
//! "(?i)…"` needles alike: a line containing `ERROR` contains `error` folded.
//!
//! ```text
//! filter   m bits, m a multiple of 64, bit i at byte i / 8, bit i % 8 (least first)
//! gram     g = b0 | b1 << 8 | b2 << 16 | b3 << 24 of four consecutive line bytes, ASCII A–Z
//!          folded
//! probe    h = mix(g) (splitmix64's finaliser); h1 = h >> 32; bit h1 mod m (one probe)
//! size     m = 64·w, w of the form {1, 3, 5, 15}·2^i, the smallest such with about 2 bits
//!          per distinct gram (the writer estimates the distinct count; readers only need
//!          m); a page with no gram has no filter
//! ```
//!
//! The filter is small for a Bloom filter (2 bits and one probe a gram: about 2 false
//! positives in 5 for one gram) because a needle asks for all of its grams: a page without a
//! 12-byte needle answers "maybe" only if all 9 of its grams do (under 1 in 4,000), a 32-digit
//! trace id (29 grams) practically never. Short needles pay: `|= "timeout"` (4 grams) reads
//! about 1 page in 40 that lacks it. Building it is one hash and one bit per byte of the
//! page, the cheapest part of a seal after compression.
//!
//! A filter can answer "maybe" for a page without a match (a false positive costs one page
//! read); it never answers "no" for a page with one. The tests check both.

/// Bytes of a gram.
pub const GRAM: usize = 4;
/// Bits per distinct gram.
const BITS_PER_GRAM: usize = 2;
/// Probes per gram.
const PROBES: u32 = 1;
/// The smallest filter, in bits.
const MIN_BITS: usize = 64;

fn fold(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

fn gram(w: &[u8]) -> u32 {
    u32::from(fold(w[0]))
        | u32::from(fold(w[1])) << 8
        | u32::from(fold(w[2])) << 16
        | u32::from(fold(w[3])) << 24
}

fn mix(g: u32) -> u64 {
    let mut h = u64::from(g).wrapping_add(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// The bit of gram `g` in a filter of `m` bits.
fn probe(g: u32, m: usize) -> usize {
    (mix(g) >> 32) as usize % m
}

/// `x mod d` for a 32-bit `x` by two multiplications (Lemire's "fastmod"), `d` fixed per page:
/// a division per byte of a page cost more than the rest of the filter.
#[derive(Debug, Clone, Copy, Default)]
struct FastMod {
    d: u64,
    magic: u64,
}

impl FastMod {
    fn new(d: u32) -> FastMod {
        let d = u64::from(d.max(1));
        FastMod {
            d,
            magic: (u64::MAX / d).wrapping_add(1),
        }
    }

    fn of(&self, x: u32) -> usize {
        let low = self.magic.wrapping_mul(u64::from(x));
        ((u128::from(low) * u128::from(self.d)) >> 64) as usize
    }
}

/// The sizes, in 64-bit words, a filter may have: `{1, 3, 5, 15}·2^i`. A filter built at
/// `15·2^j` words folds to any of them up to that (each divides it), so the size lands
/// within a quarter above the one wanted (powers of two alone: within double).
fn word_counts(up_to: usize) -> impl Iterator<Item = usize> {
    (0..usize::BITS)
        .map_while(move |i| (1usize << i <= up_to).then_some(1usize << i))
        .flat_map(|p| [p, 3 * p, 5 * p, 15 * p])
        .filter(move |&w| w <= up_to)
}

/// Builds a page's filter in one pass over its lines: every gram is set in a filter large
/// enough for the page's bytes (no gram list, no sort), then the number of distinct grams is
/// estimated from how full that filter is and it is folded down to about [`BITS_PER_GRAM`]
/// bits per distinct gram. Folding a filter of `k·m` bits to `m` (OR-ing its `k` pieces of
/// `m` bits) gives exactly the filter built at `m` bits, since a probe is `h mod m`.
#[derive(Debug, Default)]
pub struct FilterBuilder {
    words: Vec<u64>,
    /// Bits of the filter being built (64 times `15·2^j`); 0 before [`FilterBuilder::begin`].
    bits: usize,
    modulo: FastMod,
    /// Whether a line had a gram.
    any: bool,
}

impl FilterBuilder {
    /// Starts a page whose lines (and metadata values) hold at most `bytes` bytes.
    pub fn begin(&mut self, bytes: usize) {
        let wanted = (bytes.max(1) * BITS_PER_GRAM).div_ceil(64);
        let mut words = 15;
        while words < wanted {
            words *= 2;
        }
        self.bits = words * 64;
        self.modulo = FastMod::new(u32::try_from(self.bits).unwrap_or(u32::MAX));
        self.words.clear();
        self.words.resize(words, 0);
        self.any = false;
    }

    /// Adds the grams of one line.
    pub fn add_line(&mut self, line: &[u8]) {
        assert!(self.bits > 0, "FilterBuilder::begin comes first");
        if line.len() < GRAM {
            return;
        }
        // The gram ending at each byte, rolled one byte at a time (each byte folded once):
        // the same value as `gram` of the window. A fifth of the ingest's CPU went here.
        let mut g = line[..GRAM - 1]
            .iter()
            .fold(0u32, |g, &b| (g >> 8) | u32::from(fold(b)) << 24);
        for &b in &line[GRAM - 1..] {
            g = (g >> 8) | u32::from(fold(b)) << 24;
            let bit = self.modulo.of((mix(g) >> 32) as u32);
            self.words[bit >> 6] |= 1 << (bit & 63);
        }
        self.any = true;
    }

    /// The filter's bytes (empty when no line had four bytes), leaving the builder empty.
    pub fn finish(&mut self) -> Vec<u8> {
        if !self.any {
            self.bits = 0;
            return Vec::new();
        }
        // n distinct grams set each of PROBES bits: a bit stays 0 with probability
        // e^(-PROBES·n/m), so n ≈ -m·ln(zeros/m)/PROBES. The filter is at least 4 bits per
        // possible gram, so it is never fuller than 40% and the estimate is close.
        let ones: u32 = self.words.iter().map(|w| w.count_ones()).sum();
        let m = self.bits as f64;
        let zeros = (m - f64::from(ones)).max(1.0);
        let distinct = -m * (zeros / m).ln() / f64::from(PROBES);
        let total = self.words.len();
        let target = ((distinct * BITS_PER_GRAM as f64).ceil() as usize)
            .max(MIN_BITS)
            .div_ceil(64);
        let len = word_counts(total)
            .filter(|&w| w >= target && total.is_multiple_of(w))
            .min()
            .unwrap_or(total);
        let (low, high) = self.words.split_at_mut(len);
        for piece in high.chunks_exact(len) {
            for (l, h) in low.iter_mut().zip(piece) {
                *l |= *h;
            }
        }
        let out = low.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.bits = 0;
        out
    }
}

/// Whether `bytes` can be a filter as [`FilterBuilder::finish`] writes one.
pub fn is_valid_filter(bytes: &[u8]) -> bool {
    bytes.is_empty() || (bytes.len() * 8 >= MIN_BITS && bytes.len().is_multiple_of(8))
}

/// What a page's lines (or its entries' structured metadata values) must contain for an
/// entry to hold a needle: its grams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    grams: Vec<u32>,
    /// A needle from a structured metadata label (`| trace_id="…"`) does not apply to the
    /// streams that have a label of that name: theirs is the label's value, not the entry's.
    unless_stream_label: Option<String>,
}

impl Needle {
    /// The needle of a structured metadata value an entry must have (`| name="value"` before
    /// any parser): a page's filter holds its metadata values' grams too. `None` when the
    /// value is shorter than a gram.
    pub fn metadata(name: &str, value: &str) -> Option<Needle> {
        Needle::exact(value).map(|n| Needle {
            unless_stream_label: Some(name.to_owned()),
            ..n
        })
    }

    /// Whether the needle decides pages of the stream `labels`.
    pub fn applies_to(&self, labels: &strata_core::labels::Labels) -> bool {
        self.unless_stream_label
            .as_ref()
            .is_none_or(|name| labels.get(name).is_none())
    }

    /// The needle of a case-sensitive substring (`|= "…"`); `None` when it is shorter than a
    /// gram, which no filter can decide.
    pub fn exact(needle: &str) -> Option<Needle> {
        Needle::from_grams(needle.as_bytes().windows(GRAM).map(gram).collect())
    }

    /// The needle of a case-insensitive substring (`(?i)…`). Unicode case folding matches
    /// more than ASCII folding does (`k` also matches the Kelvin sign U+212A, `s` the long s
    /// U+017F, and non-ASCII letters their other cases), so only grams of ASCII bytes
    /// other than those two letters count; `None` when none is left.
    pub fn case_insensitive(needle: &str) -> Option<Needle> {
        let plain = |b: &u8| b.is_ascii() && !matches!(b, b'k' | b'K' | b's' | b'S');
        Needle::from_grams(
            needle
                .as_bytes()
                .windows(GRAM)
                .filter(|w| w.iter().all(plain))
                .map(gram)
                .collect(),
        )
    }

    fn from_grams(mut grams: Vec<u32>) -> Option<Needle> {
        grams.sort_unstable();
        grams.dedup();
        (!grams.is_empty()).then_some(Needle {
            grams,
            unless_stream_label: None,
        })
    }
}

/// Whether a page with `filter` may hold a line containing `needle`: `false` only when some
/// gram of the needle is certainly absent.
pub fn may_contain(filter: &[u8], needle: &Needle) -> bool {
    if filter.is_empty() {
        // No line of the page has a gram, and the needle has one.
        return false;
    }
    let m = filter.len() * 8;
    needle.grams.iter().all(|&g| {
        let bit = probe(g, m);
        filter
            .get(bit / 8)
            .is_some_and(|b| b & (1 << (bit % 8)) != 0)
    })
}

#[cfg(test)]
mod tests {

    /// The lines holding a match, found line by line: what a page search must agree with.
    fn one_by_one(m: &LineMatch, lines: &[&str]) -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| m.is_match(lines[i].as_bytes()))
            .collect()
    }

    fn page_search(m: &LineMatch, lines: &[&str]) -> Vec<usize> {
        let text: String = lines.concat();
        let ends: Vec<usize> = lines
            .iter()
            .scan(0, |end, l| {
                *end += l.len();
                Some(*end)
            })
            .collect();
        let mut out = Vec::new();
        m.lines_matching(text.as_bytes(), &ends, &mut out);
        out
    }

    #[test]
    fn fastmod_is_the_remainder() {
        let mut rng = strata_core::fs::sim::SplitMix64::new(3);
        for d in [1u32, 3, 64, 960, 1_920, 61_440, 15 << 20, u32::MAX] {
            let f = FastMod::new(d);
            for x in [0, 1, d.wrapping_sub(1), d, u32::MAX]
                .into_iter()
                .chain((0..1000).map(|_| rng.next_u64() as u32))
            {
                assert_eq!(f.of(x), (x % d) as usize, "{x} mod {d}");
            }
        }
    }

    /// A filter folded to any size it may take is bit for bit the filter built at that size:
    /// what lets a reader probe `h mod m` knowing only `m`.
    #[test]
    fn a_folded_filter_is_the_filter_built_at_its_size() {
        let mut rng = strata_core::fs::sim::SplitMix64::new(4);
        for distinct in [1usize, 10, 300, 5_000, 40_000] {
            let grams: Vec<u32> = (0..distinct).map(|_| rng.next_u64() as u32).collect();
            let mut b = FilterBuilder::default();
            b.begin(60_000);
            for &g in &grams {
                b.add_line(&g.to_le_bytes());
            }
            let filter = b.finish();
            let m = filter.len() * 8;
            assert!(is_valid_filter(&filter));
            // Built at 1,920 words; folded to the smallest size with 2 bits a gram, which is
            // within a quarter above that (or the size it was built at).
            let built = b.words.len() * 64;
            assert!(m >= 2 * distinct || m == built, "{distinct}: {m} bits");
            assert!(
                m <= (2 * distinct * 5 / 4).max(64) + 64 || m == built,
                "{distinct}: {m} bits, more than a quarter above 2 a gram"
            );
            let mut direct = vec![0u8; m / 8];
            for &g in &grams {
                // A line of four bytes is one gram, its letters folded.
                let bit = probe(gram(&g.to_le_bytes()), m);
                direct[bit / 8] |= 1 << (bit % 8);
            }
            assert_eq!(filter, direct, "{distinct} grams");
        }
    }

    #[test]
    fn the_rolled_grams_are_the_grams_of_each_window() {
        let lines: [&[u8]; 5] = [
            b"",
            b"abc",
            b"abcd",
            b"GET /Api/V1 took=12ms",
            "é ✓ Ünï".as_bytes(),
        ];
        for line in lines {
            let mut rolled = FilterBuilder::default();
            rolled.begin(64);
            rolled.add_line(line);
            let mut windows = FilterBuilder::default();
            windows.begin(64);
            let m = windows.bits;
            for w in line.windows(GRAM) {
                let bit = probe(gram(w), m);
                windows.words[bit / 64] |= 1 << (bit % 64);
            }
            windows.any = line.len() >= GRAM;
            assert_eq!(rolled.finish(), windows.finish(), "{line:?}");
        }
    }

    #[test]
    fn a_page_search_finds_exactly_the_lines_holding_a_match() {
        let lines = [
            "took=12", // with the next line, "took=1239ms" would match across the two
            "39ms ok",
            "x then later z", // `x.*y|z`: the search's first match runs into the next line
            "y",
            "",
            "took=7.19ms",
            "TOOK=1.9MS",
            "none here",
            "é took=0.09ms é",
        ];
        for pattern in [
            "took=[0-9]+\\.[0-9]+9ms",
            "[0-9]+9ms",
            "x.*y|z",
            "(?i)took=1",
            "ok|none",
            "é",
            "y",
        ] {
            let m = LineMatch::regex(pattern).unwrap();
            assert_eq!(page_search(&m, &lines), one_by_one(&m, &lines), "{pattern}");
        }
        let m = LineMatch::literal("ms").unwrap();
        assert_eq!(page_search(&m, &lines), one_by_one(&m, &lines));
        assert_eq!(page_search(&m, &[]), Vec::<usize>::new());
    }

    #[test]
    fn patterns_a_page_search_cannot_decide_are_refused() {
        for pattern in ["^took", "ms$", "\\bid\\b", "(?m)^a", "a*", "", "(", "x?"] {
            assert!(LineMatch::regex(pattern).is_none(), "{pattern}");
        }
        assert!(LineMatch::literal("").is_none());
        assert!(LineMatch::literal("a.b^").is_some(), "a literal is escaped");
    }
    use super::*;

    fn filter_of(lines: &[&str]) -> Vec<u8> {
        let mut b = FilterBuilder::default();
        b.begin(lines.iter().map(|l| l.len()).sum());
        for l in lines {
            b.add_line(l.as_bytes());
        }
        b.finish()
    }

    /// A fixed pseudo-random sequence, so a failure repeats.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_line(rng: &mut Rng) -> String {
        const WORDS: [&str; 16] = [
            "GET",
            "/api/v1/query",
            "status=500",
            "timeout",
            "user_id=",
            "ERROR",
            "info",
            "connection",
            "refused",
            "latency_ms=",
            "trace_id",
            "Ünïcödé",
            "ok",
            "retry",
            "k8s",
            "Kelvin",
        ];
        let n = 1 + rng.below(12);
        (0..n)
            .map(|_| {
                let w = WORDS[rng.below(WORDS.len())];
                format!("{w}{}", rng.below(1000))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_page_holding_a_needle_is_never_skipped() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..200 {
            let lines: Vec<String> = (0..1 + rng.below(50))
                .map(|_| random_line(&mut rng))
                .collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let filter = filter_of(&refs);
            assert!(is_valid_filter(&filter));
            for _ in 0..50 {
                let line = lines[rng.below(lines.len())].as_bytes();
                let start = rng.below(line.len());
                let end = (start + 3 + rng.below(20)).min(line.len());
                let Ok(sub) = std::str::from_utf8(&line[start..end]) else {
                    continue;
                };
                if let Some(n) = Needle::exact(sub) {
                    assert!(may_contain(&filter, &n), "{sub:?} skipped in {lines:?}");
                }
                let upper = sub.to_uppercase();
                if let Some(n) = Needle::case_insensitive(&upper) {
                    assert!(may_contain(&filter, &n), "(?i){upper:?} skipped");
                }
            }
        }
    }

    #[test]
    fn case_insensitive_needles_leave_out_what_unicode_folds_beyond_ascii() {
        // `(?i)kelvin` matches the Kelvin sign; the filter folds ASCII only, so the needle
        // must not ask for the grams holding `k`.
        let filter = filter_of(&["temperature 300 \u{212A}elvin reached"]);
        let n = Needle::case_insensitive("KELVIN").expect("elvi and lvin remain");
        assert!(may_contain(&filter, &n));
        assert!(Needle::case_insensitive("kSk").is_none());
        assert!(Needle::case_insensitive("ÉÉ").is_none());
        // A case-sensitive needle is exact bytes: the Kelvin sign is not `K`, so it asks for
        // the gram `kelv` too.
        assert_ne!(Needle::exact("Kelvin"), Some(n));
    }

    #[test]
    fn needles_shorter_than_a_gram_cannot_be_decided() {
        assert_eq!(Needle::exact("abc"), None);
        assert_eq!(Needle::exact(""), None);
        assert!(Needle::exact("abcd").is_some());
    }

    #[test]
    fn random_ids_are_told_apart() {
        // A page of a thousand lines with a trace id each holds nearly every hex trigram;
        // 4-grams still tell an id that is not there from one that is.
        let mut rng = Rng(0x9e37_79b9);
        let hex = |rng: &mut Rng| format!("{:016x}{:016x}", rng.next(), rng.next());
        let lines: Vec<String> = (0..1_000)
            .map(|i| format!("GET /api/v1/orders/{i} 200 trace_id={}", hex(&mut rng)))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let filter = filter_of(&refs);
        for l in &lines[..50] {
            let id = l.rsplit('=').next().unwrap();
            assert!(may_contain(&filter, &Needle::exact(id).unwrap()));
        }
        let maybe = (0..10_000)
            .filter(|_| may_contain(&filter, &Needle::exact(&hex(&mut rng)).unwrap()))
            .count();
        assert!(maybe <= 2, "{maybe} of 10,000 absent ids not ruled out");
    }

    #[test]
    fn absent_needles_are_skipped_nearly_always() {
        let mut rng = Rng(7);
        let lines: Vec<String> = (0..2_000).map(|_| random_line(&mut rng)).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let filter = filter_of(&refs);
        let mut maybe = 0;
        let mut absent = 0;
        for i in 0..10_000u32 {
            // Needles of letters the lines do not hold together: `qzx…`-like words.
            let needle: String = (0..10)
                .map(|j| char::from(b'a' + ((i.wrapping_mul(7919) >> (j * 3)) % 26) as u8))
                .collect();
            if refs
                .iter()
                .any(|l| l.to_ascii_lowercase().contains(&needle))
            {
                continue;
            }
            absent += 1;
            maybe += u32::from(may_contain(&filter, &Needle::exact(&needle).unwrap()));
        }
        assert!(absent > 5_000, "{absent}");
        let rate = f64::from(maybe) / f64::from(absent);
        assert!(rate < 0.02, "false positives {rate}");
    }

    #[test]
    fn a_page_without_grams_has_no_filter_and_holds_no_needle() {
        let filter = filter_of(&["", "abc", "x"]);
        assert!(filter.is_empty());
        assert!(!may_contain(&filter, &Needle::exact("abcd").unwrap()));
    }
}

/// A pattern every line a query keeps holds a match of (the regex of a leading `|~`, the
/// string of a leading `|=`): a page's lines, which lie back to back in the decompressed
/// page, are searched for it in one pass, and only the lines holding a match are read out.
/// Lines without one are never copied, checked or handed to the query's pipeline.
#[derive(Debug, Clone)]
pub struct LineMatch {
    regex: regex::bytes::Regex,
}

impl LineMatch {
    /// For a regex: `None` when the whole-page search could not be exact: the pattern uses
    /// anchors or word boundaries (`^`, `$`, `\b`: lines back to back have no line starts to
    /// find), matches the empty string (every line holds a match), or does not compile.
    pub fn regex(pattern: &str) -> Option<LineMatch> {
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(pattern)
            .ok()?;
        if !hir.properties().look_set().is_empty() {
            return None;
        }
        let regex = regex::bytes::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .ok()?;
        if regex.is_match(b"") {
            return None;
        }
        Some(LineMatch { regex })
    }

    /// For a string the lines must contain (`None` for the empty string).
    pub fn literal(text: &str) -> Option<LineMatch> {
        if text.is_empty() {
            return None;
        }
        LineMatch::regex(&regex::escape(text))
    }

    /// Whether `line` holds a match.
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.regex.is_match(line)
    }

    /// The indexes of the lines holding a match, in order, of `text` holding the lines back
    /// to back, line `i` ending at `ends[i]`. A match the search finds across two lines is
    /// not one: the line it starts in is tried alone, and the search goes on from the next.
    pub fn lines_matching(&self, text: &[u8], ends: &[usize], out: &mut Vec<usize>) {
        out.clear();
        let mut pos = 0;
        let mut line = 0;
        while pos < text.len() {
            let Some(m) = self.regex.find_at(text, pos) else {
                return;
            };
            // The line the match starts in (matches are never empty: see `regex`).
            while line < ends.len() && ends[line] <= m.start() {
                line += 1;
            }
            let Some(&end) = ends.get(line) else { return };
            let start = if line == 0 { 0 } else { ends[line - 1] };
            if m.end() <= end || self.regex.is_match(&text[start..end]) {
                out.push(line);
            }
            pos = end;
            line += 1;
        }
    }
}
