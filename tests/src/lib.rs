//! Support for Strata's end-to-end tests: the shared shape of the data that the crash-test
//! writer process produces and that the tests verify after killing it.

pub mod server;

use std::sync::Arc;

use strata_engine::labels::Labels;
use strata_engine::{FsyncMode, Options};

/// Series written by each batch.
pub const SERIES: usize = 100;
/// Timestamp of batch 0 (2023-11-14T22:13:20Z); batch N is N seconds later.
pub const BASE_T: i64 = 1_700_000_000_000;

/// Labels of crash-test series `s`.
pub fn crash_labels(s: usize) -> Labels {
    Labels::new([
        ("__name__", "crash_test_value"),
        ("series", s.to_string().as_str()),
        ("job", "kill9"),
    ])
    .expect("valid labels")
}

/// The value of series `s` in batch `batch`: distinct per sample, with a NaN payload and a
/// negative zero among them so the bit-exact promise is checked too.
pub fn crash_value(batch: u64, s: usize) -> f64 {
    match (batch + s as u64) % 50 {
        0 => f64::from_bits(0x7ff0_0000_0000_0002),
        1 => -0.0,
        _ => batch as f64 * 1000.0 + s as f64 + 0.25,
    }
}

/// The options the writer runs with: `fsync = always`, small segments and frequent background
/// checkpoints so kills land during rotations and checkpoints too.
pub fn crash_writer_options() -> Options {
    Options {
        fsync: FsyncMode::Always,
        wal_segment_bytes_max: 256 << 10,
        checkpoint_wal_bytes: 1 << 20,
        // Data is at fixed past timestamps; allow it however long ago BASE_T is.
        out_of_order_window_ms: 0,
        ..Options::default()
    }
}

/// Options for the verifying open: no background work, no checkpoint on close, so each cycle
/// recovers from exactly what the killed process left.
pub fn verify_options() -> Options {
    Options {
        background_maintenance: false,
        checkpoint_on_close: false,
        ..crash_writer_options()
    }
}

/// A shared handle to a database, for tests that pass it between threads.
pub type SharedDb = Arc<strata_engine::Db>;
