//! A process for kill -9 tests: writes batches to a Strata database as fast as it can and
//! prints `ack N` after batch N's commit returned, so the test knows what was acknowledged.
//!
//! Usage: `strata-crash-writer DIR FIRST_BATCH`. It never stops by itself; the test kills it.
//! Batch N holds one sample for each of [`SERIES`] series at `BASE_T + N * 1000`, with the
//! value [`strata_tests::crash_value`]`(N, series)`.

use std::io::Write;

use strata_tests::{BASE_T, SERIES, crash_labels, crash_value, crash_writer_options};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(first)) = (args.next(), args.next()) else {
        eprintln!("usage: strata-crash-writer DIR FIRST_BATCH");
        std::process::exit(2);
    };
    let first: u64 = first.parse().expect("FIRST_BATCH is a number");
    let db = strata_engine::Db::open(&dir, crash_writer_options()).expect("open database");
    let labels: Vec<_> = (0..SERIES).map(crash_labels).collect();
    let stdout = std::io::stdout();
    for batch in first.. {
        let mut app = db.appender();
        let t = BASE_T + batch as i64 * 1000;
        for (s, l) in labels.iter().enumerate() {
            app.append(l, t, crash_value(batch, s)).expect("append");
        }
        app.commit().expect("commit");
        let mut out = stdout.lock();
        writeln!(out, "ack {batch}").expect("stdout");
        out.flush().expect("stdout");
    }
}
