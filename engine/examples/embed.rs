//! Embedding Strata's engine: open a database, write a few samples, read them back.
//!
//! Run with `cargo run -p strata-engine --example embed [DIR]`. Without a directory it uses a
//! fresh one under the system's temporary directory. Running it twice on the same directory
//! shows the write-ahead log being replayed: the second run finds the first run's samples.

use strata_engine::labels::Labels;
use strata_engine::labels::matcher::Matcher;
use strata_engine::{Db, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("strata-embed-{}", std::process::id()))
        });
    let db = Db::open(&dir, Options::default())?;
    let report = db.open_report();
    println!(
        "opened {} ({} series, {} samples replayed)",
        dir.display(),
        report.series,
        report.samples
    );

    // One batch: three scrapes of two series, committed (and fsynced) together.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let up = Labels::new([("__name__", "up"), ("job", "node"), ("instance", "a:9100")])?;
    let load = Labels::new([
        ("__name__", "node_load1"),
        ("job", "node"),
        ("instance", "a:9100"),
    ])?;
    let mut app = db.appender();
    for i in 0..3 {
        let t = now - (2 - i) * 15_000;
        app.append(&up, t, 1.0)?;
        app.append(&load, t, 0.25 * i as f64)?;
    }
    let stats = app.commit()?;
    println!("committed {} samples", stats.samples);

    // Read back everything the job wrote in the last hour.
    let querier = db.querier(now - 3_600_000, now);
    for series in querier.select(&[Matcher::equal("job", "node")])? {
        let samples: Vec<String> = series
            .samples()
            .map(|s| format!("{}@{}", s.v, s.t))
            .collect();
        println!("{} => {}", series.labels(), samples.join(" "));
    }
    db.close()?;
    Ok(())
}
