//! What a run sends: a [`Scenario`] names its endpoint and hands each worker a [`Generator`]
//! that builds that worker's requests one at a time, as they fall due.
//!
//! Requests are generated as they are sent, never all up front, so an endurance run of hours
//! needs no more memory than a run of seconds. Generators are deterministic: the same seed,
//! worker count and schedule give the same bodies (only real-time timestamps differ).

pub mod http;
pub mod query;
pub mod write;

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};

use super::client::Endpoint;

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Path and query (origin form: `/api/v1/write`).
    pub uri: hyper::Uri,
    /// Shared by every request of a worker: cloning a request copies no header.
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
    pub body: Bytes,
    /// Samples the request carries (remote write), 0 for others.
    pub samples: u64,
}

/// A kind of traffic.
pub trait Scenario: Send + Sync + std::fmt::Debug {
    /// A short name for reports: `write`, `query`, `http`.
    fn name(&self) -> &str;
    /// Where the requests go.
    fn endpoint(&self) -> &Endpoint;
    /// Whether an answer with `status` counts as a success.
    fn expected(&self, status: StatusCode) -> bool {
        status.is_success()
    }
    /// The request generator of worker `worker` of `workers`.
    fn generator(&self, worker: usize, workers: usize) -> Box<dyn Generator>;
}

/// One worker's requests.
pub trait Generator: Send {
    /// Request `index` of the run (counted over all workers), due at `due_ms` (Unix ms);
    /// `None` once this worker has nothing more to send (a backfill that is complete).
    fn next(&mut self, index: u64, due_ms: i64) -> Option<Request>;
    /// How the request last returned by [`Generator::next`] ended: `true` when the target
    /// acknowledged it.
    fn finished(&mut self, _acknowledged: bool) {}
    /// What this worker had acknowledged, for checking afterwards that it was all stored.
    fn ledger(&mut self) -> Option<write::Ledger> {
        None
    }
}
