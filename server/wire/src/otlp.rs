//! OTLP's messages (OpenTelemetry protocol 1.x), declared with prost by hand from the
//! specification's `.proto` files (field numbers are theirs): [`common`] (values, attributes,
//! resource, scope, and `google.rpc.Status` for error answers) and [`logs`] (the logs export
//! request and response). [`json`] reads OTLP/JSON into the same messages: lowerCamelCase keys,
//! 64-bit integers as strings or numbers, trace and span ids in hex, enums as integers, unknown
//! fields ignored.

pub mod common;
pub mod json;
pub mod logs;
