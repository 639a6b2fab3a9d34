//! The bottom layer of Strata's storage engine: what every store (metrics today; logs and
//! spans next) shares, and nothing that belongs to one of them.
//!
//! - [`labels`]: label sets in their canonical form, the string interner, label matchers with
//!   Prometheus's semantics;
//! - [`postings`]: the inverted label index (label pair → sorted references) and matcher
//!   evaluation over it;
//! - [`fs`]: the file-system layer every byte goes through (real, or the simulated,
//!   fault-injecting disk of feature `sim`), including read-only maps of sealed files;
//! - [`clock`]: the injected clock (the engine never reads the wall clock directly);
//! - [`codec`]: varints, a panic-free decoding cursor, and the header of numbered files;
//! - [`error`]: the storage error (I/O or corruption) the stores wrap in their own errors;
//! - [`sample`]: `SeriesRef` and the millisecond float `Sample`.
//!
//! This crate depends on no other Strata crate. The write-ahead log (`strata-wal`) builds on
//! it; the stores (`strata-tsdb`) build on both.

pub mod clock;
pub mod codec;
pub mod error;
pub mod fs;
pub mod labels;
pub mod maintenance;
pub mod postings;
pub mod sample;
