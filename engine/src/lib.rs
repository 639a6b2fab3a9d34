//! Strata's storage engine.
pub mod clock;
pub mod fs;
