//! The `strata` server binary: `strata serve` (the default) opens the storage engine in the
//! data directory and serves the HTTP APIs on the listen address until SIGINT or SIGTERM, when
//! it stops accepting requests, finishes the ones in flight, and closes the engine cleanly (a
//! checkpoint, so the next start replays almost nothing).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strata_engine::{Db, Options};
use strata_server::http::{AppState, router};
use strata_server::remote_write::Limits;

/// Strata: a time-series database for metrics that Prometheus remote-writes to and Grafana
/// queries as a Prometheus data source.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the database and serve the HTTP APIs (what `strata` does with no subcommand).
    Serve(ServeArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// Address to listen on. Prometheus remote-writes to http://ADDR/api/v1/write; Grafana
    /// uses http://ADDR as a Prometheus data source URL. Port 0 picks a free port (logged as
    /// `listening addr=...`).
    #[arg(long, default_value = "127.0.0.1:9201", env = "STRATA_LISTEN")]
    listen: SocketAddr,
    /// Directory holding the data (created if missing; one Strata process per directory).
    #[arg(long, default_value = "strata-data", env = "STRATA_DATA_DIR")]
    data_dir: PathBuf,
    /// Log level: error, warn, info, debug or trace (or a tracing filter such as
    /// `info,strata_engine=debug`).
    #[arg(long, default_value = "info", env = "STRATA_LOG")]
    log_level: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log_level)
                .with_context(|| format!("--log-level {:?} is not a level", args.log_level))?,
        )
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let state = AppState::new(Limits::default());
    // Listen first, so health checks answer (and readiness says "not yet") while the WAL
    // replays.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    tracing::info!(%addr, "listening");
    let server = tokio::spawn(
        axum::serve(listener, router(Arc::clone(&state)))
            .with_graceful_shutdown(shutdown_signal())
            .into_future(),
    );

    let dir = args.data_dir.clone();
    let db = tokio::task::spawn_blocking(move || Db::open(&dir, Options::default()))
        .await?
        .with_context(|| format!("opening the database in {}", args.data_dir.display()))?;
    let report = db.open_report();
    tracing::info!(
        dir = %args.data_dir.display(),
        series = report.series,
        samples = report.samples,
        blocks = report.blocks.loaded,
        wal_segments = report.wal.segments,
        torn_tails = report.wal.torn_tails.len(),
        quarantined = report.wal.quarantined.len(),
        "ready; stop with Ctrl-C or SIGTERM"
    );
    let db = Arc::new(db);
    state
        .db
        .set(Arc::clone(&db))
        .expect("the database is opened once");

    server.await?.context("serving HTTP")?;
    tracing::info!("shutting down: closing the database");
    drop(state);
    let db = Arc::try_unwrap(db)
        .map_err(|_| anyhow::anyhow!("a request still holds the database after shutdown"))?;
    tokio::task::spawn_blocking(move || db.close())
        .await?
        .context("closing the database")?;
    tracing::info!("stopped");
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
