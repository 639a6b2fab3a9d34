//! The Loki family's part of the server's state: the log store once it has opened, and the
//! push API's caps.

use std::sync::{Arc, OnceLock};

use strata_engine::logs::LogStore;

/// What the Loki handlers share.
#[derive(Debug)]
pub struct LokiState {
    /// Set once the log store has opened (its WAL replayed).
    pub store: OnceLock<Arc<LogStore>>,
    /// The largest push body read, in bytes, as sent (compressed).
    pub push_body_bytes_max: usize,
    /// The largest push body once decompressed.
    pub push_decoded_bytes_max: usize,
}

impl Default for LokiState {
    fn default() -> LokiState {
        LokiState {
            store: OnceLock::new(),
            push_body_bytes_max: 16 << 20,
            push_decoded_bytes_max: 64 << 20,
        }
    }
}

impl LokiState {
    /// The log store, once it has opened.
    pub fn store(&self) -> Option<Arc<LogStore>> {
        self.store.get().cloned()
    }
}
