//! The `strata` binary (placeholder while the workspace is laid out).
fn main() {}
