//! The `strata` server binary.
//!
//! For now it opens the storage engine in the data directory (replaying its write-ahead log),
//! reports what recovery found, and runs until SIGINT or SIGTERM, when it closes the engine
//! cleanly (a checkpoint, so the next start replays almost nothing). The HTTP APIs (remote
//! write, the Prometheus query and metadata APIs) are added on top of this entry point.

use std::path::PathBuf;

use anyhow::Context;
use strata_engine::{Db, Options};

/// Where data goes when `--data-dir` is not given.
const DEFAULT_DATA_DIR: &str = "data";

fn data_dir_from_args() -> anyhow::Result<PathBuf> {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from(DEFAULT_DATA_DIR);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => {
                dir = args.next().context("--data-dir needs a directory")?.into();
            }
            "-h" | "--help" => {
                println!("usage: strata [--data-dir DIR]   (default: ./{DEFAULT_DATA_DIR})");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}; see strata --help"),
        }
    }
    Ok(dir)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let dir = data_dir_from_args()?;
    let db = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || Db::open(&dir, Options::default())
    })
    .await?
    .with_context(|| format!("opening the database in {}", dir.display()))?;
    let report = db.open_report();
    tracing::info!(
        dir = %dir.display(),
        series = report.series,
        samples = report.samples,
        wal_segments = report.wal.segments,
        torn_tails = report.wal.torn_tails.len(),
        quarantined = report.wal.quarantined.len(),
        "strata is running; stop it with Ctrl-C or SIGTERM"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    tokio::task::spawn_blocking(move || db.close())
        .await?
        .context("closing the database")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
