//! The two smallest domain types: a series' stable reference and one sample.

use std::fmt;

/// A stable, process-unique reference to a series in the head. References are assigned in
/// increasing order, written to the write-ahead log with the series' labels, and restored with
/// the same values when the log is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesRef(pub u64);

impl fmt::Display for SeriesRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "series#{}", self.0)
    }
}

/// One sample: a timestamp in milliseconds since the Unix epoch and a float value. Values are
/// stored bit-exactly, NaN payloads (such as the stale marker) included.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    pub fn new(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }
}

/// Samples compare by timestamp and by the value's bits, so two NaNs with the same payload are
/// equal and `0.0` differs from `-0.0`: the engine promises to return exactly what was written.
impl PartialEq for Sample {
    fn eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

impl Eq for Sample {}

/// The bit pattern Prometheus uses to mark a series as stale: a NaN that no arithmetic
/// produces. Strata stores it like any other value, bit for bit.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the stale marker.
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_compare_by_bits() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        assert_eq!(Sample::new(1, stale), Sample::new(1, stale));
        assert_ne!(Sample::new(1, stale), Sample::new(1, f64::NAN));
        assert_ne!(Sample::new(1, 0.0), Sample::new(1, -0.0));
        assert!(is_stale_marker(stale));
        assert!(!is_stale_marker(f64::NAN));
    }
}
