//! Strata's wire formats: the messages senders push to it, how they are decoded within
//! bounds, and one encoder for writing them (the load generator and the tests use it, so a
//! message is coded once for the server, once for its clients, and the two are tested
//! against each other and against prost).
//!
//! - [`remote_write`]: Prometheus remote write 1.0 (`v1`) and 2.0 (`v2`) messages declared
//!   with prost, the copy-free 1.0 decoder the server ingests with (`decode`), and the
//!   streaming 1.0 encoder (`encode`).
//! - [`snappy`]: snappy block framing, decompression bounded by the declared length.
//! - [`protobuf`]: the protobuf primitives the hand-written encoders share.
//! - [`loki`]: Loki's push request (`logproto.PushRequest`) and its stream-label text.
//! - [`otlp`]: OTLP's messages (logs so far, and the common values and attributes) and
//!   OTLP/JSON read into them.
//!
//! Later protocols go beside these, one module each. This crate has no tokio, no HTTP
//! and no engine: it turns bytes into messages and messages into bytes, nothing else.

pub mod loki;
pub mod otlp;
pub mod protobuf;
pub mod remote_write;
pub mod snappy;
