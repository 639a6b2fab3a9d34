//! Prometheus remote write: the 1.0 messages (`prometheus.WriteRequest`, [`v1`]) and the 2.0
//! ones (`io.prometheus.write.v2.Request`, [`v2`]), declared with prost by hand (no `protoc`);
//! field numbers are the wire contract of `prometheus/prompb`.
//!
//! Requests arrive snappy-compressed (block format, [`crate::snappy`]). The server decodes
//! 1.0 with [`decode`], which borrows label strings from the body instead of allocating them,
//! and 2.0 with prost. Clients write 1.0 with [`encode`], one series at a time.

pub mod decode;
pub mod encode;
pub mod v1;
pub mod v2;
