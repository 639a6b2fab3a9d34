//! What Strata's tests and benchmarks share, so no test or bench includes another's files and
//! none copies them: the deterministic node_exporter-like [`dataset`] the benchmarks store and
//! send, the [`dashboard`] queries they time, the plain-Gorilla size model they compare with
//! ([`gorilla`]), readings of the process and number formatting for their tables ([`host`]),
//! and the plumbing of tests that start real processes ([`net`], [`child`], [`time`]) or
//! stand in for a notification receiver ([`receiver`]).
//!
//! It depends on no Strata crate, so anything in the workspace may use it (as a
//! dev-dependency below the test layer): it deals in plain labels, timestamps and numbers.

pub mod child;
pub mod dashboard;
pub mod dataset;
pub mod gorilla;
pub mod host;
pub mod logdata;
pub mod net;
pub mod receiver;
pub mod time;
