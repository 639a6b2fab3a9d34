//! The `strata` server binary: `strata serve` (the default) opens the storage engine in the
//! data directory and serves the HTTP APIs on the listen address until SIGINT or SIGTERM, when
//! it stops accepting requests, finishes the ones in flight, and closes the engine cleanly (a
//! checkpoint, so the next start replays almost nothing). SIGHUP or `POST /-/reload` re-reads
//! the configuration file.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand};
use strata_engine::logs::{LogOptions, LogStore};
use strata_engine::{Db, Options};
use strata_server::alerting::manager::{RuleSettings, load_files, load_files_as};
use strata_server::alerting::rulefile::Language;
use strata_server::config::{FileConfig, FlagOverrides, Settings};
use strata_server::http::router;
use strata_server::metrics::{AllocatorStats, report_allocator};
use strata_server::prom::metadata::{MetadataLimits, MetadataStore};
use strata_server::prom::state::PromState;
use strata_server::state::AppState;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// jemalloc, not the system allocator: after a catch-up burst the head's many small, long-lived
/// allocations left glibc's heap fragmented at a quarter more resident memory (docs/perf.md),
/// and jemalloc's background thread returns freed pages to the kernel once a burst is over.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (the environment variable `_RJEM_MALLOC_CONF`
/// overrides them). Freed pages go back to the kernel within about a second instead of
/// jemalloc's default ten: after a dashboard's queries that was ~70 MB of resident memory
/// the process no longer used, for no measurable cost in ingest CPU (docs/perf.md, issue 23).
/// A C string: jemalloc reads the pointer this symbol holds.
// SAFETY: no other object in the program defines `_rjem_malloc_conf` (jemalloc declares it
// weak for programs to set), and the value is a NUL-terminated string that lives forever.
#[allow(unsafe_code)] // reason: exporting a symbol is the only way to configure jemalloc before its first allocation
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: &[u8; 37] = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// jemalloc's own figures, refreshed (its statistics are a snapshot per epoch).
fn jemalloc_stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}

/// Strata: a time-series database for metrics. Prometheus (or vmagent, or any remote-write
/// sender) writes to it; Grafana reads it as a Prometheus data source.
///
/// Start it with no arguments to store data in ./strata-data and listen on 127.0.0.1:9201.
/// Then point Prometheus at it:
///
///   remote_write:
///     - url: http://127.0.0.1:9201/api/v1/write
///
/// Settings come from defaults, then the --config file, then these flags (flags win).
#[derive(Debug, Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
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
    /// Work with Prometheus rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Check rule files, as `promtool check rules` does: exit status 1 when one does not
    /// check (each problem with its file, line and reason).
    Check {
        /// Rule files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run rule unit tests in promtool's format, as `promtool test rules` does: exit status 1
    /// when a test fails.
    Test {
        /// Unit-test files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// YAML configuration file (see docs/configuration.md). SIGHUP or POST /-/reload re-reads
    /// it; limits, retention, the admin API and the log level change at once, the rest at the
    /// next start.
    #[arg(long, value_name = "FILE", env = "STRATA_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9201]. Prometheus remote-writes to
    /// http://ADDR/api/v1/write; Grafana uses http://ADDR as a Prometheus data source URL.
    /// Port 0 picks a free port (logged as `listening addr=...`).
    #[arg(long, value_name = "ADDR", env = "STRATA_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory holding the data [default: strata-data] (created if missing; one Strata
    /// process per directory).
    #[arg(long, value_name = "DIR", env = "STRATA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace, or a filter such as
    /// `info,strata_tsdb=debug` [default: info].
    #[arg(long, value_name = "LEVEL", env = "STRATA_LOG")]
    log_level: Option<String>,
    /// How long to keep data, e.g. 15d, 90d, 1y; 0 keeps everything [default: 15d].
    #[arg(long, value_name = "DURATION")]
    retention_time: Option<String>,
    /// Most bytes the blocks may take, e.g. 50GB; the oldest blocks go first; 0 = no limit
    /// [default: 0].
    #[arg(long, value_name = "SIZE")]
    retention_size: Option<String>,
    /// When to fsync the write-ahead log: `always` (before acknowledging a write: nothing
    /// acknowledged is lost in a power cut) or an interval such as 1s (faster; a power cut
    /// may lose that much) [default: always].
    #[arg(long, value_name = "always|INTERVAL")]
    fsync: Option<String>,
    /// Most active series; new series beyond it get HTTP 429 [default: 10000000].
    #[arg(long, value_name = "N")]
    max_series: Option<u64>,
    /// Serve /api/v1/admin/tsdb/delete_series and /snapshot (off by default).
    #[arg(long)]
    enable_admin_api: bool,
}

impl ServeArgs {
    fn overrides(&self) -> FlagOverrides {
        FlagOverrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            log_level: self.log_level.clone(),
            enable_admin_api: self.enable_admin_api,
            retention_time: self.retention_time.clone(),
            retention_size: self.retention_size.clone(),
            fsync: self.fsync.clone(),
            max_series: self.max_series,
        }
    }

    /// Reads the file (if any) and merges it with the flags.
    fn settings(&self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => Settings::read_file(path)?,
            None => FileConfig::default(),
        };
        Settings::resolve(&file, &self.overrides())
    }
}

fn main() -> anyhow::Result<()> {
    report_allocator(jemalloc_stats);
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Rules(RulesCommand::Check { files })) => {
            let report = strata_server::alerting::check::check_files(&files);
            print!("{}", report.stdout);
            eprint!("{}", report.stderr);
            std::process::exit(if report.ok { 0 } else { 1 });
        }
        Some(Command::Rules(RulesCommand::Test { files })) => {
            let report = strata_server::alerting::unittest::run_files(&files);
            print!("{}", report.stdout);
            eprint!("{}", report.stderr);
            std::process::exit(if report.ok { 0 } else { 1 });
        }
        None => cli.serve,
    };
    let settings = args.settings().map_err(anyhow::Error::msg)?;
    let filter = EnvFilter::try_new(&settings.log_level)
        .with_context(|| format!("log level {:?} is not a level", settings.log_level))?;
    let (filter, log_handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .init();
    let set_log_level = move |level: &str| -> Result<(), String> {
        let filter = EnvFilter::try_new(level).map_err(|e| format!("log level {level:?}: {e}"))?;
        log_handle.reload(filter).map_err(|e| e.to_string())
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(args, settings, Box::new(set_log_level)))
}

type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

const METADATA_FILE: &str = "metadata.json";

async fn serve(
    args: ServeArgs,
    settings: Settings,
    set_log_level: SetLogLevel,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let metadata_path = settings.data_dir.join(METADATA_FILE);
    let metadata = MetadataStore::load(&metadata_path, MetadataLimits::default())
        .unwrap_or_else(|e| {
            tracing::warn!(path = %metadata_path.display(), error = %e, "metric metadata not loaded; senders resend it");
            MetadataStore::new(MetadataLimits::default())
        });
    // Rule files that do not check stop the start, as a configuration error does.
    let rule_files =
        load_all_rules(&settings).map_err(|e| anyhow::anyhow!("loading rule files: {e}"))?;
    let state = AppState::new(PromState::from_settings(&settings, metadata));
    state.apply(&settings);
    state.alerting.open_state(&settings.data_dir);

    // Listen first, so health checks answer (and readiness says "not yet") while the WAL
    // replays.
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    tracing::info!(%addr, "listening");
    let server = tokio::spawn(
        axum::serve(listener, router(Arc::clone(&state)))
            .with_graceful_shutdown(shutdown_signal())
            .into_future(),
    );

    let dir = settings.data_dir.clone();
    let options = Options {
        fsync: settings.fsync,
        retention_ms: settings.retention_ms,
        retention_bytes: settings.retention_bytes,
        head_series_max: settings.max_series,
        out_of_order_window_ms: settings.out_of_order_window_ms,
        decoded_cache_bytes: settings.decoded_cache_bytes,
        ..Options::default()
    };
    let db = tokio::task::spawn_blocking(move || Db::open(&dir, options))
        .await?
        .with_context(|| format!("opening the database in {}", settings.data_dir.display()))?;
    let report = db.open_report();
    tracing::info!(
        dir = %settings.data_dir.display(),
        series = report.series,
        samples = report.samples,
        blocks = report.blocks.loaded,
        wal_segments = report.wal.segments,
        torn_tails = report.wal.torn_tails.len(),
        quarantined = report.wal.quarantined.len(),
        "database open"
    );
    let db = Arc::new(db);
    // The log store, beside the metrics in `logs/`: its seals and retention run on the
    // database's maintenance thread. Both are open before the server says it is ready.
    let logs_dir = settings.data_dir.join("logs");
    let log_options = LogOptions {
        fsync: settings.fsync,
        retention_ns: (settings.retention_ms > 0)
            .then(|| settings.retention_ms.saturating_mul(1_000_000)),
        ..LogOptions::default()
    };
    let (logs, log_report) = {
        let dir = logs_dir.clone();
        tokio::task::spawn_blocking(move || LogStore::open(&dir, log_options))
            .await?
            .with_context(|| format!("opening the log store in {}", logs_dir.display()))?
    };
    tracing::info!(
        dir = %logs_dir.display(),
        streams = log_report.streams,
        entries = log_report.entries,
        blocks = log_report.blocks,
        "log store open; ready, stop with Ctrl-C or SIGTERM"
    );
    let logs = Arc::new(logs);
    db.add_maintained(Arc::clone(&logs) as Arc<dyn strata_engine::maintenance::Maintained>);
    let _ = state.alerting.logs.set(Arc::clone(&logs));
    state
        .logs
        .set(Arc::clone(&logs))
        .expect("the log store is opened once");
    state
        .db
        .set(Arc::clone(&db))
        .expect("the database is opened once");
    state.alerting.install(
        rule_files,
        RuleSettings::from_settings(&settings),
        Arc::clone(&db),
    );

    // Reload: the binary re-reads the file and applies what can change while running.
    let current = Arc::new(Mutex::new(settings.clone()));
    let reloader = {
        let state = Arc::downgrade(&state);
        let current = Arc::clone(&current);
        move || -> Result<(), String> {
            let new = args.settings().inspect_err(|e| {
                tracing::error!(error = %e, "reload failed; the running configuration is unchanged");
            })?;
            let state = state.upgrade().ok_or("shutting down")?;
            // Every rule file must check before anything changes.
            let rule_files = load_all_rules(&new).inspect_err(|e| {
                tracing::error!(error = %e, "reload failed: a rule file does not check; the running rules are unchanged");
            })?;
            set_log_level(&new.log_level)?;
            state.apply(&new);
            if let Some(db) = state.db() {
                state
                    .alerting
                    .install(rule_files, RuleSettings::from_settings(&new), db);
            }
            let mut current = current.lock().unwrap_or_else(|p| p.into_inner());
            let waiting = current.restart_needed(&new);
            if !waiting.is_empty() {
                tracing::warn!(settings = ?waiting, "changed settings take effect at the next start");
            }
            tracing::info!(settings = ?new, "configuration reloaded");
            *current = new;
            Ok(())
        }
    };
    let reloader: Arc<dyn Fn() -> Result<(), String> + Send + Sync> = Arc::new(reloader);
    let on_request = Arc::clone(&reloader);
    let _ = state.reloader.set(Box::new(move || on_request()));
    #[cfg(unix)]
    {
        let on_hangup = Arc::clone(&reloader);
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                let reload = Arc::clone(&on_hangup);
                // Errors are logged by the reloader.
                let _ = tokio::task::spawn_blocking(move || reload()).await;
            }
        });
    }

    server.await?.context("serving HTTP")?;
    tracing::info!("shutting down: stopping the rules, then closing the database");
    state.alerting.shutdown().await;
    if let Err(e) = state.prom.metadata.save(&metadata_path) {
        tracing::warn!(path = %metadata_path.display(), error = %e, "metric metadata not saved");
    }
    drop(state);
    drop(reloader);
    let db = Arc::try_unwrap(db)
        .map_err(|_| anyhow::anyhow!("a request still holds the database after shutdown"))?;
    tokio::task::spawn_blocking(move || db.close())
        .await?
        .context("closing the database")?;
    // The maintenance thread that sealed the log store has stopped with the database.
    logs.close().context("closing the log store")?;
    tracing::info!("stopped");
    Ok(())
}

/// The rule files and the log rule files, read and checked.
fn load_all_rules(
    settings: &Settings,
) -> Result<Vec<strata_server::alerting::rulefile::RuleFile>, String> {
    let mut files = load_files(&settings.rule_files)?;
    files.extend(load_files_as(&settings.log_rule_files, Language::LogQL)?);
    Ok(files)
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
