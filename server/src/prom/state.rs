//! The Prometheus protocols' part of the shared state: remote-write limits and turns, the
//! metadata and exemplar stores remote write feeds, and PromQL's limits and turns.

use std::sync::RwLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::prom::exemplars::ExemplarStore;
use crate::prom::limits::{Backpressure, QueryLimits, WriteLimits};
use crate::prom::metadata::{MetadataLimits, MetadataStore};
use crate::prom::remote_write::known::KnownSeries;

/// What the Prometheus handlers share.
#[derive(Debug)]
pub struct PromState {
    /// Remote-write request limits (replaced on reload).
    write_limits: RwLock<WriteLimits>,
    /// Metric metadata senders reported.
    pub metadata: MetadataStore,
    /// Recent exemplars.
    pub exemplars: ExemplarStore,
    /// The series remote write stored, by their label fields as sent.
    pub known: KnownSeries,
    /// Turns for remote-write requests.
    pub writes: Semaphore,
    /// How long a remote-write request waits for a turn.
    pub write_queue_wait: Duration,
    /// PromQL query limits (replaced on reload, but for the concurrency).
    query_limits: RwLock<QueryLimits>,
    /// Turns for queries.
    pub queries: Semaphore,
}

impl Default for PromState {
    /// Default limits and stores (100,000 exemplars).
    fn default() -> PromState {
        PromState::new(
            WriteLimits::default(),
            MetadataStore::new(MetadataLimits::default()),
            ExemplarStore::new(100_000),
            Backpressure::default(),
            QueryLimits::default(),
        )
    }
}

impl PromState {
    /// A state with the given limits, stores and back-pressure.
    pub fn new(
        write_limits: WriteLimits,
        metadata: MetadataStore,
        exemplars: ExemplarStore,
        backpressure: Backpressure,
        query_limits: QueryLimits,
    ) -> PromState {
        PromState {
            write_limits: RwLock::new(write_limits),
            metadata,
            exemplars,
            known: KnownSeries::default(),
            writes: Semaphore::new(backpressure.in_flight_max),
            write_queue_wait: backpressure.queue_wait,
            queries: Semaphore::new(query_limits.max_concurrency),
            query_limits: RwLock::new(query_limits),
        }
    }

    /// The state `settings` describe at start, with the metadata kept from the last run.
    pub fn from_settings(settings: &Settings, metadata: MetadataStore) -> PromState {
        PromState::new(
            settings.write_limits,
            metadata,
            ExemplarStore::new(settings.max_exemplars),
            Backpressure {
                in_flight_max: settings.max_inflight_writes,
                ..Backpressure::default()
            },
            settings.query,
        )
    }

    /// Applies what of `settings` can change while running: the write and query limits (the
    /// turns and the exemplar capacity wait for a restart).
    pub fn apply(&self, settings: &Settings) {
        *self.write_limits.write().unwrap_or_else(|p| p.into_inner()) = settings.write_limits;
        *self.query_limits.write().unwrap_or_else(|p| p.into_inner()) = settings.query;
    }

    /// The current query limits.
    pub fn query_limits(&self) -> QueryLimits {
        *self.query_limits.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The current remote-write limits.
    pub fn write_limits(&self) -> WriteLimits {
        *self.write_limits.read().unwrap_or_else(|p| p.into_inner())
    }
}
