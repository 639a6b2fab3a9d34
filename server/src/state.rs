//! The state every handler shares, built from one part per protocol family (today
//! [`PromState`], the [`RuleManager`], [`LokiState`] and [`OtlpState`]) and the parts they have in common: the engine once it has opened, the
//! server's own metrics, the reloader and the admin switch.
//!
//! Settings reach the running server through [`AppState::apply`], at start and on every
//! reload; each part applies what concerns it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use strata_engine::Db;
use strata_engine::logs::LogStore;

use crate::alerting::manager::RuleManager;
use crate::config::Settings;
use crate::loki::state::LokiState;
use crate::metrics::Metrics;
use crate::otlp::state::OtlpState;
use crate::prom::state::PromState;
use crate::rate::RateLimiter;

/// What readiness and every data endpoint answer while the engine opens (its WAL replays).
pub const NOT_READY: &str = "Strata is not ready: the write-ahead log is being replayed";

/// Re-reads the configuration and applies it; `Err` says why nothing changed.
pub type Reloader = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What every handler shares.
pub struct AppState {
    /// Set once the engine has opened (its WAL replayed); until then the server is not ready.
    pub db: OnceLock<Arc<Db>>,
    /// The log store, set (before `db`) once it has opened; Loki push and OTLP logs write to
    /// it, LogQL reads it.
    pub logs: OnceLock<Arc<LogStore>>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// What `POST /-/reload` runs (set by the binary when it has a configuration to re-read).
    pub reloader: OnceLock<Reloader>,
    /// Whether admin endpoints (`/api/v1/admin/*`) may be used (changed on reload).
    admin_api: AtomicBool,
    /// The Prometheus protocols: remote write and the HTTP API.
    pub prom: PromState,
    /// Rules and alerts.
    pub alerting: Arc<RuleManager>,
    /// The Loki protocols: log push and LogQL.
    pub loki: LokiState,
    /// OTLP over HTTP.
    pub otlp: OtlpState,
    /// The log bytes a second Loki push and OTLP logs take together.
    pub log_rate: RateLimiter,
    /// Turns for log pushes (Loki, OTLP logs and Elasticsearch's bulk together): at most
    /// [`LOG_WRITES_IN_FLIGHT`] are decoded and stored at once, so the decoded batches held
    /// in memory stay bounded when the store falls behind; the others wait, their bodies
    /// unread, and after [`LOG_WRITE_WAIT`] give up with a 503 the sender retries.
    pub log_writes: tokio::sync::Semaphore,
}

/// Log pushes decoded and stored at once (a batch of 10,000 lines takes ~10 MiB decoded;
/// two cores keep four busy, and their commits still share the log's syncs).
pub const LOG_WRITES_IN_FLIGHT: usize = 4;
/// How long a log push waits for a turn before its 503.
pub const LOG_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The message of a log push that found no turn.
pub const LOG_WRITES_BUSY: &str = "too many log pushes in flight; retry later";

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("ready", &self.db.get().is_some())
            .field("admin_api", &self.admin_api)
            .field("prom", &self.prom)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state whose engine is still opening, with the admin API off.
    pub fn new(prom: PromState) -> Arc<AppState> {
        Arc::new(AppState {
            db: OnceLock::new(),
            logs: OnceLock::new(),
            metrics: Metrics::default(),
            reloader: OnceLock::new(),
            admin_api: AtomicBool::new(false),
            prom,
            alerting: Arc::new(RuleManager::default()),
            loki: LokiState::default(),
            otlp: OtlpState::default(),
            log_rate: RateLimiter::new(
                crate::config::DEFAULT_LOG_RATE,
                crate::config::DEFAULT_LOG_BURST,
            ),
            log_writes: tokio::sync::Semaphore::new(LOG_WRITES_IN_FLIGHT),
        })
    }

    /// A turn for a log push (see [`AppState::log_writes`]); `None` after waiting
    /// [`LOG_WRITE_WAIT`] for one.
    pub async fn log_write_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(LOG_WRITE_WAIT, self.log_writes.acquire())
            .await
            .ok()?
            .ok()
    }

    /// Applies what of `settings` can change while running: the admin switch, each protocol's
    /// limits, and the engine's retention and series limit once it is open.
    pub fn apply(&self, settings: &Settings) {
        self.set_admin_api(settings.enable_admin_api);
        self.prom.apply(settings);
        self.log_rate.set(
            settings.log_ingestion_rate_bytes,
            settings.log_ingestion_burst_bytes,
        );
        if let Some(db) = self.db.get() {
            db.set_limits(
                settings.retention_ms,
                settings.retention_bytes,
                settings.max_series,
            );
        }
    }

    /// The engine, once it has opened.
    pub fn db(&self) -> Option<Arc<Db>> {
        self.db.get().cloned()
    }

    /// The log store, once it has opened.
    pub fn logs(&self) -> Option<Arc<LogStore>> {
        self.logs.get().cloned()
    }

    /// Whether admin endpoints may be used.
    pub fn admin_api(&self) -> bool {
        self.admin_api.load(Ordering::Relaxed)
    }

    /// Turns the admin endpoints on or off.
    pub fn set_admin_api(&self, enabled: bool) {
        self.admin_api.store(enabled, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_log_push_beyond_the_turns_in_flight_waits_then_gives_up() {
        let state = AppState::new(PromState::default());
        let held: Vec<_> = take_every_turn(&state).await;
        assert_eq!(held.len(), LOG_WRITES_IN_FLIGHT);
        // The clock is paused: the wait for a turn runs out without real time passing.
        assert!(state.log_write_turn().await.is_none(), "no turn is free");
        drop(held);
        assert!(
            state.log_write_turn().await.is_some(),
            "a turn given back is taken"
        );
    }

    async fn take_every_turn(state: &AppState) -> Vec<tokio::sync::SemaphorePermit<'_>> {
        let mut held = Vec::new();
        for _ in 0..LOG_WRITES_IN_FLIGHT {
            held.push(state.log_write_turn().await.expect("a free turn"));
        }
        held
    }
}
