//! The log benchmark (`strata-bench logs`): how Strata stores and searches logs it did not
//! shape, measured from outside through Loki's push and query APIs and `/proc`.
//!
//! [`run::run`] generates a dataset of application logs (`strata_testkit::logdata`: access,
//! JSON, logfmt and Java logs with trace ids, structured metadata and planted needles), writes
//! it as raw files, compresses those with `zstd -3` and `-19` for the size comparison, pushes
//! the same lines to a Strata server it starts (Loki push, protobuf + snappy, fsync on) while
//! reading the server's CPU time, measures the log store on disk, times the [`queries`] mix
//! warm and with a cold page cache beside `rg` over the raw files, and then runs a live load
//! (a fixed rate of lines into many streams, memory read once a second) and a streams-limit
//! load on fresh servers. [`report::text`] prints each figure beside its target.

pub mod push;
pub mod queries;
pub mod report;
pub mod run;
pub mod server;
