//! Strata's storage engine (placeholder while the workspace is laid out).
