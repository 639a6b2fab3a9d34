//! Kill -9 of the real `strata` server under Loki push load: every log entry the server
//! answered 204 for is present once after restart, line and metadata exact.
//!
//! Each cycle starts `strata serve` on the same data directory, waits until it is ready, and
//! runs two writer threads that push JSON requests (20 entries of one stream each, fresh
//! timestamps per request) as fast as the server acknowledges them. After a seeded random
//! number of 204s the server is killed with SIGKILL while both writers are still pushing. The
//! log store is then opened in this process: every entry of every acknowledged push (in this
//! cycle and all earlier ones) must be there exactly once, and nothing else may be stored but
//! entries of pushes that were in flight at a kill, as they were sent.
//!
//! `STRATA_SERVER_LOGS_KILL9_CYCLES` sets the number of cycles (default 20).

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use strata_engine::fs::sim::SplitMix64;
use strata_engine::labels::matcher::Matcher;
use strata_engine::logs::{Direction, LogOptions, LogStore};
use strata_testkit::time::now_ms;
use strata_tests::server::{self, WriterReport, kill_cycle, send_until_killed};

const WRITERS: u64 = 2;
const ENTRIES_PER_PUSH: u64 = 20;
/// A writer sends at most this many pushes per cycle (the kill comes long before).
const PUSHES_PER_CYCLE_MAX: u64 = 50_000;

/// The timestamp of entry `i` of push `k`: pushes never share a timestamp.
fn timestamp(base_ns: i64, k: u64, i: u64) -> i64 {
    base_ns + (k * ENTRIES_PER_PUSH + i) as i64
}

/// The line of entry `i` of push `k` of writer `w`: names its origin, with characters JSON
/// must escape.
fn line(w: u64, k: u64, i: u64) -> String {
    format!("writer={w} push={k} entry={i} msg=\"quoted\\path\" tab=\t end")
}

fn push_body(base_ns: i64, w: u64, k: u64) -> Vec<u8> {
    let values: Vec<serde_json::Value> = (0..ENTRIES_PER_PUSH)
        .map(|i| {
            serde_json::json!([
                timestamp(base_ns, k, i).to_string(),
                line(w, k, i),
                {"push": k.to_string()}
            ])
        })
        .collect();
    serde_json::json!({"streams": [{
        "stream": {"test": "logs_kill9", "writer": w.to_string()},
        "values": values,
    }]})
    .to_string()
    .into_bytes()
}

/// What the store holds at one time of one writer: the line and the metadata.
type Stored = (String, Vec<(String, String)>);

/// Pushes `first..` until the server is gone, reporting every 204 on `acks`.
fn push_until_killed(
    url: &str,
    base_ns: i64,
    w: u64,
    first: u64,
    acks: &mpsc::Sender<()>,
) -> WriterReport {
    let agent = server::agent();
    send_until_killed(first, PUSHES_PER_CYCLE_MAX, acks, |k| {
        server::post_raw(
            &agent,
            &format!("{url}/loki/api/v1/push"),
            "application/json",
            None,
            push_body(base_ns, w, k),
        )
    })
}

/// Checks every acknowledged push against the store and that every stored entry was sent.
/// Returns (entries checked, entries stored beyond the acknowledged ones).
fn verify(
    dir: &Path,
    base_ns: i64,
    acked: &[Vec<u64>],
    sent_end: &[u64],
    cycle: u64,
) -> (u64, u64) {
    let (store, report) = LogStore::open(&dir.join("logs"), LogOptions::default())
        .unwrap_or_else(|e| panic!("cycle {cycle}: reopen the log store after kill -9: {e}"));
    assert!(
        !report.wal.has_damage() && report.orphaned_entries == 0 && report.damaged_blocks == 0,
        "cycle {cycle}: a kill -9 must never look like corruption: {report:?}"
    );
    let streams = store
        .select(
            &[Matcher::equal("test", "logs_kill9")],
            i64::MIN,
            i64::MAX,
            Direction::Forward,
            usize::MAX,
        )
        .unwrap_or_else(|e| panic!("cycle {cycle}: select: {e}"));
    // writer → timestamp → (line, metadata), each entry once.
    let mut stored: HashMap<u64, HashMap<i64, Stored>> = HashMap::new();
    let mut total = 0u64;
    for s in streams {
        let w: u64 = s
            .labels
            .get("writer")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("cycle {cycle}: unexpected stream {}", s.labels));
        assert!(
            w < WRITERS,
            "cycle {cycle}: stream {} never written",
            s.labels
        );
        let by_ts = stored.entry(w).or_default();
        for e in s.entries {
            total += 1;
            let previous = by_ts.insert(e.ts_ns, (e.line, e.metadata));
            assert!(
                previous.is_none(),
                "cycle {cycle}: writer {w}: two entries at {} ns (an entry stored twice)",
                e.ts_ns
            );
        }
    }
    let mut checked = 0u64;
    for (w, acked) in acked.iter().enumerate() {
        let w = w as u64;
        for &k in acked {
            for i in 0..ENTRIES_PER_PUSH {
                let t = timestamp(base_ns, k, i);
                let (got_line, metadata) =
                    stored.get(&w).and_then(|m| m.get(&t)).unwrap_or_else(|| {
                        panic!(
                            "cycle {cycle}: writer {w} push {k} was acknowledged with 204 but \
                         entry {i} is missing"
                        )
                    });
                assert_eq!(
                    *got_line,
                    line(w, k, i),
                    "cycle {cycle}: writer {w} push {k} entry {i}"
                );
                assert_eq!(
                    *metadata,
                    vec![("push".to_owned(), k.to_string())],
                    "cycle {cycle}: writer {w} push {k} entry {i}: metadata"
                );
                checked += 1;
            }
        }
    }
    for (&w, entries) in &stored {
        for (&t, (got_line, _)) in entries {
            let n = u64::try_from(t - base_ns)
                .unwrap_or_else(|_| panic!("cycle {cycle}: writer {w}: entry at {t} never sent"));
            let (k, i) = (n / ENTRIES_PER_PUSH, n % ENTRIES_PER_PUSH);
            assert!(
                k < sent_end[w as usize],
                "cycle {cycle}: writer {w}: entry at {t} (push {k}) never sent"
            );
            assert_eq!(
                *got_line,
                line(w, k, i),
                "cycle {cycle}: writer {w} at {t}: a line never sent"
            );
        }
    }
    store
        .close()
        .unwrap_or_else(|e| panic!("cycle {cycle}: close: {e}"));
    (checked, total - checked)
}

/// Kills the server with SIGKILL at a seeded random point under push load from two writers,
/// cycle after cycle on the same directory, and checks after each kill that every entry of
/// every push answered 204 is stored once, exactly, and that nothing was stored that was not
/// sent.
#[test]
fn acknowledged_log_pushes_survive_kill_9_of_the_server() {
    let cycles: u64 = std::env::var("STRATA_SERVER_LOGS_KILL9_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = 0x5eed_1095;
    println!("server logs kill -9 test: {cycles} cycles, seed {seed:#x}");
    let started = Instant::now();
    let mut rng = SplitMix64::new(seed);
    let dir = tempfile::tempdir().unwrap();
    // Five minutes back: within the store's future tolerance however many pushes are sent.
    let base_ns = (now_ms() - 5 * 60 * 1000) * 1_000_000;
    let mut next = vec![0u64; WRITERS as usize];
    let mut acked: Vec<Vec<u64>> = vec![Vec::new(); WRITERS as usize];
    let (mut checked_total, mut in_flight) = (0u64, 0u64);
    for cycle in 0..cycles {
        let target = 20 + rng.below(480);
        kill_cycle(
            dir.path(),
            cycle,
            target,
            &mut next,
            &mut acked,
            move |url, w, first, tx| push_until_killed(&url, base_ns, w, first, &tx),
        );
        let (checked, beyond) = verify(dir.path(), base_ns, &acked, &next, cycle);
        checked_total += checked;
        in_flight = beyond;
    }
    let acked_pushes: usize = acked.iter().map(Vec::len).sum();
    println!(
        "server logs kill -9 test: {cycles} kills in {:.1} s, {acked_pushes} acknowledged pushes \
         ({} entries) all present once, {checked_total} entry checks over all cycles, \
         {in_flight} entries stored from pushes in flight at a kill (sent, not acknowledged)",
        started.elapsed().as_secs_f64(),
        acked_pushes as u64 * ENTRIES_PER_PUSH,
    );
}
