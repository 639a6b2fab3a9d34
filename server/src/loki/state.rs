//! The Loki family's part of the server's state: the push API's caps. (The log store it
//! writes to is shared with OTLP: `AppState::logs`.)

/// What the Loki handlers share.
#[derive(Debug)]
pub struct LokiState {
    /// The largest push body read, in bytes, as sent (compressed).
    pub push_body_bytes_max: usize,
    /// The largest push body once decompressed.
    pub push_decoded_bytes_max: usize,
}

impl Default for LokiState {
    fn default() -> LokiState {
        LokiState {
            push_body_bytes_max: 16 << 20,
            push_decoded_bytes_max: 64 << 20,
        }
    }
}
