//! The OTLP family's part of the server's state: its caps.

/// What the OTLP handlers share.
#[derive(Debug)]
pub struct OtlpState {
    /// The largest body read, in bytes, as sent.
    pub body_bytes_max: usize,
    /// The largest body once decompressed (the specification recommends 64 MiB).
    pub decoded_bytes_max: usize,
}

impl Default for OtlpState {
    fn default() -> OtlpState {
        OtlpState {
            body_bytes_max: 16 << 20,
            decoded_bytes_max: 64 << 20,
        }
    }
}
