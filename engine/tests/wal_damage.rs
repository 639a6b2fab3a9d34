//! Damage to the WAL on disk, through the real open path.
//!
//! * A cut at every byte offset of the last segment recovers exactly the samples of the whole
//!   records before the cut, as a torn tail (never as corruption).
//! * Every single-bit flip in representative records (a series record, a samples record in the
//!   middle of a segment, the last record of the last segment, a checkpoint's chunks record, a
//!   file header) is detected: open reports it, and what comes back is the original data minus
//!   at most the damaged record's — never a wrong value.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_engine::clock::ManualClock;
use strata_engine::codec::FILE_HEADER_BYTES;
use strata_engine::fs::Fs;
use strata_engine::fs::sim::SimFs;
use strata_engine::labels::Labels;
use strata_engine::labels::matcher::{MatchKind, Matcher};
use strata_engine::record;
use strata_engine::wal::frame::{RecordType, decode_frame};
use strata_engine::{Db, Options};

const T0: i64 = 1_700_000_000_000;

fn options(fs: &SimFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        clock: Arc::new(ManualClock::new(T0 + 86_400_000)),
        background_maintenance: false,
        checkpoint_on_close: false,
        wal_segment_bytes_max: 4096,
        ..Options::default()
    }
}

fn labels(s: usize) -> Labels {
    Labels::new([("__name__", "m"), ("s", s.to_string().as_str())]).unwrap()
}

/// Every stored sample as (series labels, t, value bits).
type Contents = BTreeSet<(String, i64, u64)>;

fn contents(db: &Db) -> Contents {
    let q = db.querier(i64::MIN, i64::MAX);
    let mut out = BTreeSet::new();
    for s in q
        .select(&[Matcher::new(MatchKind::Regex, "__name__", ".+").unwrap()])
        .unwrap()
    {
        for x in s.samples() {
            out.insert((s.labels().to_string(), x.t, x.v.to_bits()));
        }
    }
    out
}

/// Commits `batches` batches of 3 series × 2 samples; returns the disk with the database
/// closed, and what it holds.
fn build(batches: usize, checkpoint_after: Option<usize>) -> (SimFs, Contents) {
    let fs = SimFs::new(7);
    let db = Db::open("/db", options(&fs)).unwrap();
    for b in 0..batches {
        let mut app = db.appender();
        for s in 0..3 {
            for k in 0..2 {
                let t = T0 + (b * 2 + k) as i64 * 15_000;
                let v = f64::from_bits(0x4000_0000_0000_0000 ^ (b * 31 + s * 7 + k) as u64);
                app.append(&labels(s), t, v).unwrap();
            }
        }
        app.commit().unwrap();
        if checkpoint_after == Some(b) {
            db.checkpoint().unwrap();
        }
    }
    let all = contents(&db);
    db.close().unwrap();
    (fs, all)
}

/// A fresh disk holding exactly `files` (path, bytes), all durable.
fn disk_with(files: &[(PathBuf, Vec<u8>)]) -> SimFs {
    let fs = SimFs::new(1);
    for (path, bytes) in files {
        let dir = path.parent().unwrap();
        fs.create_dir_all(dir).unwrap();
        let mut f = fs.create(path).unwrap();
        f.append(bytes).unwrap();
        f.sync().unwrap();
        fs.sync_dir(dir).unwrap();
    }
    fs
}

fn wal_files(fs: &SimFs) -> Vec<(PathBuf, Vec<u8>)> {
    fs.files()
        .into_iter()
        .filter(|p| p.starts_with("/db/wal"))
        .map(|p| {
            let bytes = fs.read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// The frames of a WAL file: (start, end, type).
fn frames(bytes: &[u8]) -> Vec<(usize, usize, RecordType)> {
    let mut out = Vec::new();
    let mut pos = FILE_HEADER_BYTES;
    while pos < bytes.len() {
        let (ty, _, len) = decode_frame(&bytes[pos..]).unwrap();
        out.push((pos, pos + len, ty));
        pos += len;
    }
    out
}

fn segments(files: &[(PathBuf, Vec<u8>)]) -> Vec<usize> {
    (0..files.len())
        .filter(|&i| {
            let name = files[i].0.file_name().unwrap().to_str().unwrap();
            name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit())
        })
        .collect()
}

#[test]
fn a_cut_at_every_offset_of_the_last_segment_keeps_exactly_the_whole_records() {
    let (fs, _) = build(100, None);
    let files = wal_files(&fs);
    let segs = segments(&files);
    assert!(segs.len() >= 2, "the workload should span several segments");
    let last = *segs.last().unwrap();
    let full = files[last].1.clone();
    let boundaries: Vec<usize> = frames(&full).iter().map(|f| f.1).collect();
    let mut expected_at = Vec::new();
    // What the database holds with the last segment cut just after each whole record.
    for &end in std::iter::once(&FILE_HEADER_BYTES).chain(&boundaries) {
        let mut cut_files = files.clone();
        cut_files[last].1.truncate(end);
        let db = Db::open("/db", options(&disk_with(&cut_files))).unwrap();
        expected_at.push((end, contents(&db)));
    }
    for cut in 0..=full.len() {
        let mut cut_files = files.clone();
        cut_files[last].1.truncate(cut);
        let db = Db::open("/db", options(&disk_with(&cut_files))).unwrap();
        let report = db.open_report().clone();
        assert!(!report.wal.has_damage(), "cut at {cut}: {report:?}");
        let whole = expected_at
            .iter()
            .rev()
            .find(|(end, _)| *end <= cut)
            // A cut inside the header leaves a segment with no record at all.
            .unwrap_or(&expected_at[0])
            .1
            .clone();
        assert_eq!(contents(&db), whole, "cut at {cut}");
        let on_boundary = cut == 0 || cut == FILE_HEADER_BYTES || boundaries.contains(&cut);
        assert_eq!(
            report.wal.torn_tails.is_empty(),
            on_boundary,
            "cut at {cut}: a torn tail is reported exactly when the cut splits a record"
        );
    }
}

/// Flips every bit of `files[file][range]` in turn and checks that each flip is detected and
/// costs at most the samples of the damaged record.
fn flip_every_bit(
    files: &[(PathBuf, Vec<u8>)],
    all: &Contents,
    file: usize,
    range: std::ops::Range<usize>,
    what: &str,
) {
    let mut lost_most = 0;
    for byte in range.clone() {
        for bit in 0..8 {
            let mut damaged = files.to_vec();
            damaged[file].1[byte] ^= 1 << bit;
            let db = Db::open("/db", options(&disk_with(&damaged)))
                .unwrap_or_else(|e| panic!("{what}: flip at {byte}.{bit} made open fail: {e}"));
            let report = db.open_report().clone();
            assert!(
                report.wal.has_damage() || !report.wal.torn_tails.is_empty(),
                "{what}: flip at byte {byte} bit {bit} went unnoticed"
            );
            let got = contents(&db);
            let wrong: Vec<_> = got.difference(all).collect();
            assert!(
                wrong.is_empty(),
                "{what}: flip at {byte}.{bit} returned wrong data: {wrong:?}"
            );
            lost_most = lost_most.max(all.len() - got.len());
        }
    }
    println!(
        "{what}: {} bit flips, all detected, at most {lost_most} samples lost per flip",
        range.len() * 8
    );
}

#[test]
fn every_bit_flip_in_a_wal_record_is_detected() {
    let (fs, all) = build(40, None);
    let files = wal_files(&fs);
    let segs = segments(&files);
    let first = segs[0];
    let last = *segs.last().unwrap();
    let first_frames = frames(&files[first].1);
    let last_frames = frames(&files[last].1);

    // The series record that opens the log: losing it orphans that series' samples (counted
    // and reported), never misattributes them.
    let (s, e, ty) = first_frames[0];
    assert_eq!(ty, record::SERIES);
    flip_every_bit(&files, &all, first, s..e, "series record");
    // A samples record in the middle of a segment that is not the last.
    let (s, e, ty) = first_frames[first_frames.len() / 2];
    assert_eq!(ty, record::SAMPLES);
    flip_every_bit(&files, &all, first, s..e, "samples record mid-log");
    // The last record of the last segment.
    let (s, e, _) = *last_frames.last().unwrap();
    flip_every_bit(&files, &all, last, s..e, "last record");
    // The header of a segment.
    flip_every_bit(&files, &all, first, 0..FILE_HEADER_BYTES, "segment header");
}

#[test]
fn every_bit_flip_in_a_checkpoint_record_is_detected() {
    let (fs, all) = build(30, Some(25));
    let files = wal_files(&fs);
    let ck = files
        .iter()
        .position(|(p, _)| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("checkpoint.")
        })
        .expect("a checkpoint exists");
    let ck_frames = frames(&files[ck].1);
    let (s, e, ty) = *ck_frames
        .iter()
        .find(|f| f.2 == record::CHUNKS)
        .expect("a chunks record");
    assert_eq!(ty, record::CHUNKS);
    flip_every_bit(&files, &all, ck, s..e, "checkpoint chunks record");
    let (s, e, _) = *ck_frames.last().unwrap();
    flip_every_bit(&files, &all, ck, s..e, "checkpoint end record");
}

#[test]
fn quarantine_keeps_the_original_and_a_second_open_finds_nothing_more() {
    let (fs, all) = build(40, None);
    let mut files = wal_files(&fs);
    let segs = segments(&files);
    let first = segs[0];
    let mid = frames(&files[first].1)[3];
    files[first].1[mid.0 + 12] ^= 0x10;
    let original = files[first].1.clone();
    let disk = disk_with(&files);
    let db = Db::open("/db", options(&disk)).unwrap();
    let report = db.open_report().clone();
    assert_eq!(report.wal.quarantined.len(), 1, "{report:?}");
    let q = &report.wal.quarantined[0];
    assert_eq!(q.damage[0].offset, mid.0 as u64);
    assert_eq!(
        disk.read(&q.moved_to).unwrap(),
        original,
        "the quarantined file is the untouched original"
    );
    let recovered = contents(&db);
    assert_eq!(
        all.len() - recovered.len(),
        6,
        "exactly one record's samples are missing"
    );
    drop(db);
    let db = Db::open(Path::new("/db"), options(&disk)).unwrap();
    assert!(!db.open_report().wal.has_damage(), "{:?}", db.open_report());
    assert_eq!(contents(&db), recovered);
}
