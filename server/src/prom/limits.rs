//! Bounds on the Prometheus protocols' work: what one remote-write request may hold, how many
//! are handled at once, and what a PromQL query may take. The configuration sets them
//! (`remote_write:` and `query:`); [`super::state::PromState::apply`] replaces them on reload.

use std::time::Duration;

/// Bounds on what one remote-write request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimits {
    /// The most bytes a request body may take (compressed).
    pub body_bytes_max: usize,
    /// The most bytes the body may decompress to.
    pub decoded_bytes_max: usize,
    /// The most series one request may carry.
    pub series_per_request_max: usize,
    /// The most labels one series may have.
    pub labels_per_series_max: usize,
    /// The longest label name, in bytes.
    pub label_name_bytes_max: usize,
    /// The longest label value, in bytes.
    pub label_value_bytes_max: usize,
    /// Samples older than this (behind the wall clock, in milliseconds) are refused: retention
    /// would delete them at once. 0 accepts any age.
    pub sample_age_max_ms: i64,
}

impl Default for WriteLimits {
    fn default() -> WriteLimits {
        WriteLimits {
            body_bytes_max: 32 << 20,
            decoded_bytes_max: 128 << 20,
            series_per_request_max: 1_000_000,
            labels_per_series_max: 64,
            label_name_bytes_max: 1024,
            label_value_bytes_max: 16 * 1024,
            sample_age_max_ms: 0,
        }
    }
}

/// Back-pressure on remote write: at most `in_flight_max` requests are read, decoded and
/// stored at once; more wait for a turn for at most `queue_wait`, then get 503 so the sender
/// backs off and retries. Memory for requests is bounded by the first times the size caps.
/// Fixed at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backpressure {
    pub in_flight_max: usize,
    pub queue_wait: Duration,
}

impl Default for Backpressure {
    fn default() -> Backpressure {
        Backpressure {
            in_flight_max: 64,
            queue_wait: Duration::from_secs(10),
        }
    }
}

/// Limits of PromQL queries (`query:` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryLimits {
    /// The longest a query may run, waiting for a turn included.
    pub timeout: Duration,
    /// Queries evaluated at once (fixed at start).
    pub max_concurrency: usize,
    /// Samples a query may hold in memory.
    pub max_samples: usize,
    pub lookback_delta_ms: i64,
    /// The longest query text, in bytes.
    pub max_query_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        QueryLimits {
            timeout: Duration::from_secs(120),
            max_concurrency: 20,
            max_samples: 50_000_000,
            lookback_delta_ms: 5 * 60 * 1000,
            max_query_bytes: 256 << 10,
        }
    }
}
