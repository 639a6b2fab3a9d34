//! End-to-end test support (placeholder while the workspace is laid out).
