//! Kill -9 under write load: every acknowledged sample is present after restart.
//!
//! Each cycle starts the real writer process (`strata-crash-writer`) on the same directory,
//! waits until it has acknowledged a random number of batches, kills it with SIGKILL while it
//! keeps writing, then opens the database in this process and checks that every sample of every
//! acknowledged batch is there with its exact value. `STRATA_KILL9_CYCLES` sets the number of
//! cycles (default 100).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use strata_engine::Db;
use strata_engine::fs::sim::SplitMix64;
use strata_engine::labels::matcher::Matcher;
use strata_tests::{BASE_T, SERIES, crash_labels, crash_value, verify_options};

#[test]
fn acknowledged_samples_survive_kill_9() {
    let cycles: u64 = std::env::var("STRATA_KILL9_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed = 0x5eed_0009;
    println!("kill -9 test: {cycles} cycles, seed {seed:#x}");
    let mut rng = SplitMix64::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut next_batch = 0u64;
    let mut acked_total = 0u64;
    for cycle in 0..cycles {
        let target = 5 + rng.below(120);
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata-crash-writer"))
            .arg(dir.path())
            .arg(next_batch.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the writer");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut last_acked = None;
        let mut acks = 0;
        while acks < target {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("cycle {cycle}: the writer exited before {target} acks"))
                .unwrap();
            let batch: u64 = line.strip_prefix("ack ").unwrap().parse().unwrap();
            last_acked = Some(batch);
            acks += 1;
        }
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        // Acks printed after the last one we read were also acknowledged.
        for line in lines.map_while(Result::ok) {
            if let Some(b) = line.strip_prefix("ack ") {
                last_acked = Some(b.parse().unwrap());
            }
        }
        let last = last_acked.expect("at least one ack");
        acked_total += last + 1 - next_batch;
        verify(dir.path(), last, cycle);
        next_batch = last + 1;
    }
    println!("kill -9 test: {cycles} kills, {acked_total} acknowledged batches, none lost");
}

fn verify(dir: &std::path::Path, last_acked: u64, cycle: u64) {
    let db = Db::open(dir, verify_options()).expect("reopen after kill -9");
    let report = db.open_report().clone();
    assert!(
        !report.wal.has_damage(),
        "cycle {cycle}: a kill -9 must never look like corruption: {report:?}"
    );
    let q = db.querier(BASE_T, BASE_T + (last_acked as i64 + 1_000) * 1000);
    let name = Matcher::equal("__name__", "crash_test_value");
    let series = q.select(&[name]).unwrap();
    assert_eq!(series.len(), SERIES, "cycle {cycle}: series count");
    for s in 0..SERIES {
        let labels = crash_labels(s);
        let found = series
            .iter()
            .find(|x| *x.labels() == labels)
            .unwrap_or_else(|| panic!("cycle {cycle}: series {s} missing"));
        let samples: Vec<_> = found.samples().collect();
        for batch in 0..=last_acked {
            let t = BASE_T + batch as i64 * 1000;
            let got = samples.iter().find(|x| x.t == t).unwrap_or_else(|| {
                panic!("cycle {cycle}: acknowledged batch {batch} of series {s} lost")
            });
            assert_eq!(
                got.v.to_bits(),
                crash_value(batch, s).to_bits(),
                "cycle {cycle}: batch {batch} series {s} value"
            );
        }
    }
    db.close().unwrap();
}
