//! Kill -9 of the real `strata` server under remote-write load: every sample the server
//! answered 204 for is present after restart, bit for bit.
//!
//! Each cycle starts `strata serve` on the same data directory, waits until it is ready, and
//! runs two writer threads that send remote-write requests (50 series × 1 sample each, a fresh
//! timestamp per request) as fast as the server acknowledges them. After a seeded random number
//! of 204s the server is killed with SIGKILL while both writers are still sending; their next
//! requests fail and they stop. The database is then opened in this process and every sample
//! of every request acknowledged so far (in this cycle and all earlier ones) must be there with
//! its exact bits; nothing else may be stored under the test's metric except samples of
//! requests that were in flight at the kill, with the values that were sent.
//!
//! `STRATA_SERVER_KILL9_CYCLES` sets the number of cycles (default 20).

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use strata_engine::fs::sim::SplitMix64;
use strata_engine::labels::matcher::Matcher;
use strata_engine::{Db, Options};
use strata_testkit::time::now_ms;
use strata_tests::server::{self, WriterReport, kill_cycle, send_until_killed};
use strata_wire::remote_write::v1::{Label, Sample, TimeSeries, WriteRequest};

const METRIC: &str = "server_kill9_value";
const WRITERS: u64 = 2;
const SERIES_PER_REQUEST: u64 = 50;
/// A writer sends at most this many requests per cycle (the kill comes long before).
const REQUESTS_PER_CYCLE_MAX: u64 = 50_000;
/// Prometheus's stale marker: a NaN with a payload that must survive bit for bit.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The value of series `s` in request `k` of writer `w`: distinct per sample, with the stale
/// marker and a negative zero among them so the comparison is bit-exact, not `==`.
fn value(w: u64, k: u64, s: u64) -> f64 {
    match (k + s) % 25 {
        0 => f64::from_bits(STALE_NAN),
        1 => -0.0,
        _ => (w * 1_000_000_000 + k * 100 + s) as f64 + 0.5,
    }
}

/// The timestamps of all requests: request `k` of any writer is at `base_t + k` ms. The writers'
/// series differ (label `writer`), so their timestamps may coincide.
fn timestamp(base_t: i64, k: u64) -> i64 {
    base_t + k as i64
}

fn request(base_t: i64, w: u64, k: u64) -> WriteRequest {
    let timeseries = (0..SERIES_PER_REQUEST)
        .map(|s| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: METRIC.into(),
                },
                Label {
                    name: "series".into(),
                    value: s.to_string(),
                },
                Label {
                    name: "writer".into(),
                    value: w.to_string(),
                },
            ],
            samples: vec![Sample {
                value: value(w, k, s),
                timestamp: timestamp(base_t, k),
            }],
            ..TimeSeries::default()
        })
        .collect();
    WriteRequest {
        timeseries,
        ..WriteRequest::default()
    }
}

/// Sends requests `first..` until the server is gone, reporting every 204 on `acks`.
fn write_until_killed(
    url: &str,
    base_t: i64,
    w: u64,
    first: u64,
    acks: &mpsc::Sender<()>,
) -> WriterReport {
    let agent = server::agent();
    send_until_killed(first, REQUESTS_PER_CYCLE_MAX, acks, |k| {
        server::remote_write(&agent, url, &request(base_t, w, k))
    })
}

/// Options for the verifying open: no background work and no checkpoint on close, so the
/// next cycle's server recovers from exactly what the killed one left.
fn verify_options() -> Options {
    Options {
        background_maintenance: false,
        checkpoint_on_close: false,
        ..Options::default()
    }
}

/// Checks every acknowledged request of every writer (`acked[w]`) against the database and
/// that every stored sample is one that was sent. Returns (samples checked, samples stored
/// beyond the acknowledged ones).
fn verify(dir: &Path, base_t: i64, acked: &[Vec<u64>], sent_end: &[u64], cycle: u64) -> (u64, u64) {
    let db = Db::open(dir, verify_options())
        .unwrap_or_else(|e| panic!("cycle {cycle}: reopen after kill -9: {e}"));
    let report = db.open_report().clone();
    assert!(
        !report.wal.has_damage() && report.orphaned_samples == 0,
        "cycle {cycle}: a kill -9 must never look like corruption: {report:?}"
    );
    let q = db.querier(i64::MIN, i64::MAX);
    let selected = q
        .select(&[Matcher::equal("__name__", METRIC)])
        .expect("select the test's series");
    // (writer, series) → timestamp → value bits.
    let mut stored: HashMap<(u64, u64), HashMap<i64, u64>> = HashMap::new();
    for series in &selected {
        let labels = series.labels();
        let field = |name: &str| -> u64 {
            labels
                .get(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("cycle {cycle}: unexpected series {labels}"))
        };
        let samples = series.samples().map(|x| (x.t, x.v.to_bits())).collect();
        stored.insert((field("writer"), field("series")), samples);
    }
    let mut checked = 0u64;
    for (w, acked) in acked.iter().enumerate() {
        let w = w as u64;
        for &k in acked {
            let t = timestamp(base_t, k);
            for s in 0..SERIES_PER_REQUEST {
                let got = stored
                    .get(&(w, s))
                    .and_then(|m| m.get(&t))
                    .unwrap_or_else(|| {
                        panic!(
                            "cycle {cycle}: writer {w} request {k} was acknowledged with 204 \
                             but series {s} has no sample at {t}"
                        )
                    });
                assert_eq!(
                    *got,
                    value(w, k, s).to_bits(),
                    "cycle {cycle}: writer {w} request {k} series {s}: value bits"
                );
                checked += 1;
            }
        }
    }
    // Whatever else is stored came from a request that was in flight at a kill: it must be
    // exactly what was sent.
    let mut total = 0u64;
    for (&(w, s), samples) in &stored {
        assert!(
            w < WRITERS && s < SERIES_PER_REQUEST,
            "cycle {cycle}: series writer={w} series={s} was never written"
        );
        for (&t, &bits) in samples {
            let k = u64::try_from(t - base_t)
                .ok()
                .filter(|&k| k < sent_end[w as usize])
                .unwrap_or_else(|| {
                    panic!("cycle {cycle}: writer {w} series {s} has a sample at {t} never sent")
                });
            assert_eq!(
                bits,
                value(w, k, s).to_bits(),
                "cycle {cycle}: writer {w} series {s} at {t} holds a value never sent"
            );
            total += 1;
        }
    }
    db.close()
        .unwrap_or_else(|e| panic!("cycle {cycle}: close: {e}"));
    (checked, total - checked)
}

/// Kills the server with SIGKILL at a seeded random point under load from two writers, cycle
/// after cycle on the same directory, and checks after each kill that every sample of every
/// request answered 204 (in any cycle so far) is stored bit-exactly and that nothing was stored
/// that was not sent.
#[test]
fn acknowledged_remote_writes_survive_kill_9_of_the_server() {
    let cycles: u64 = std::env::var("STRATA_SERVER_KILL9_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = 0x5eed_5e09;
    println!("server kill -9 test: {cycles} cycles, seed {seed:#x}");
    let started = Instant::now();
    let mut rng = SplitMix64::new(seed);
    let dir = tempfile::tempdir().unwrap();
    // Five minutes back: the timestamps stay within the engine's future tolerance however many
    // requests are sent, and a series' samples only ever move forward.
    let base_t = now_ms() - 5 * 60 * 1000;
    let mut next = vec![0u64; WRITERS as usize];
    let mut acked: Vec<Vec<u64>> = vec![Vec::new(); WRITERS as usize];
    let (mut checked_total, mut in_flight) = (0u64, 0u64);
    for cycle in 0..cycles {
        let target = 20 + rng.below(980);
        kill_cycle(
            dir.path(),
            cycle,
            target,
            &mut next,
            &mut acked,
            move |url, w, first, tx| write_until_killed(&url, base_t, w, first, &tx),
        );
        let (checked, beyond) = verify(dir.path(), base_t, &acked, &next, cycle);
        checked_total += checked;
        in_flight = beyond;
    }
    let acked_requests: usize = acked.iter().map(Vec::len).sum();
    println!(
        "server kill -9 test: {cycles} kills in {:.1} s, {acked_requests} acknowledged requests \
         ({} samples) all present, {checked_total} sample checks over all cycles, {in_flight} \
         samples stored from requests in flight at a kill (sent, not acknowledged)",
        started.elapsed().as_secs_f64(),
        acked_requests as u64 * SERIES_PER_REQUEST,
    );
}
