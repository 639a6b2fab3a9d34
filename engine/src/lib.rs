//! Strata's storage engine.
pub mod clock;
pub mod error;
pub mod fs;
pub mod labels;
pub mod sample;
pub mod wal;
