//! What the workers measured: latencies in HDR histograms, outcomes counted by kind, and the
//! per-second timeline the progress line, the analyses and the reports are drawn from.
//!
//! Latencies are recorded in microseconds into [`hdrhistogram`] histograms with three
//! significant digits (every percentile within 0.1% of the true value) from 1 µs to one hour;
//! a longer latency is clamped to an hour. Workers record into a shared [`Window`] behind a
//! mutex, held for a few tens of nanoseconds per request. Once a second the runner swaps the
//! window for an empty one and keeps the old one as a [`Second`] of the timeline, and merges
//! its histogram into the run's total.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency a histogram holds, in microseconds (one hour).
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// A fresh latency histogram.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("the bounds are valid")
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The expected status.
    Ok,
    /// Any other HTTP status.
    Status(u16),
    /// The request did not complete within its timeout.
    Timeout,
    /// Connecting, sending or reading failed.
    Transport,
}

impl Outcome {
    /// The outcome's name in reports: `ok`, `429`, `timeout`, `transport`.
    pub fn label(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Status(code) => code.to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Transport => "transport".into(),
        }
    }
}

/// One finished request.
#[derive(Debug, Clone)]
pub struct Record {
    /// From when the request was due to when its answer was read (open model), or from when
    /// it was sent (closed model).
    pub latency: Duration,
    pub outcome: Outcome,
    /// Samples in the request (remote write), 0 otherwise.
    pub samples: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// How late the request was sent after it was due (open model).
    pub late: Duration,
}

/// Requests sent more than this late are counted as late: the generator could not keep the
/// schedule, because every worker was busy.
pub const LATE_THRESHOLD: Duration = Duration::from_millis(10);

/// Everything recorded since the window was last taken.
pub struct Window {
    pub latency_us: Histogram<u64>,
    pub outcomes: BTreeMap<Outcome, u64>,
    pub samples_ok: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub late: u64,
    /// One error message per outcome kind, as an example.
    pub examples: BTreeMap<Outcome, String>,
}

/// The histogram's buckets would fill a screen; its summary is what a reader wants.
impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window")
            .field("requests", &self.latency_us.len())
            .field("p50_us", &self.latency_us.value_at_quantile(0.5))
            .field("p99_us", &self.latency_us.value_at_quantile(0.99))
            .field("max_us", &self.latency_us.max())
            .field("outcomes", &self.outcomes)
            .field("samples_ok", &self.samples_ok)
            .field("bytes_sent", &self.bytes_sent)
            .field("bytes_received", &self.bytes_received)
            .field("late", &self.late)
            .field("examples", &self.examples)
            .finish()
    }
}

impl Default for Window {
    fn default() -> Self {
        Window {
            latency_us: histogram(),
            outcomes: BTreeMap::new(),
            samples_ok: 0,
            bytes_sent: 0,
            bytes_received: 0,
            late: 0,
            examples: BTreeMap::new(),
        }
    }
}

impl Window {
    fn add(&mut self, r: &Record) {
        let us = (r.latency.as_micros() as u64).clamp(1, LATENCY_MAX_US);
        self.latency_us.record(us).expect("clamped into range");
        *self.outcomes.entry(r.outcome.clone()).or_default() += 1;
        if r.outcome == Outcome::Ok {
            self.samples_ok += r.samples;
        }
        self.bytes_sent += r.bytes_sent;
        self.bytes_received += r.bytes_received;
        if r.late > LATE_THRESHOLD {
            self.late += 1;
        }
    }

    /// Requests that ended, in any way.
    pub fn requests(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// Requests that did not end with the expected status.
    pub fn errors(&self) -> u64 {
        self.requests() - self.outcomes.get(&Outcome::Ok).copied().unwrap_or(0)
    }

    /// Adds another window's counts into this one.
    pub fn merge(&mut self, other: &Window) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share their bounds");
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.examples {
            self.examples.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self.samples_ok += other.samples_ok;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.late += other.late;
    }

    /// The latency at `q` (0 to 1), in milliseconds; 0 with no requests.
    pub fn latency_ms(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() {
            return 0.0;
        }
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    /// The share of requests that failed, 0 with no requests.
    pub fn error_ratio(&self) -> f64 {
        match self.requests() {
            0 => 0.0,
            n => self.errors() as f64 / n as f64,
        }
    }
}

/// The shared window workers record into.
#[derive(Debug, Default)]
pub struct Recorder {
    window: Mutex<Window>,
}

impl Recorder {
    /// Records one request; `error` is an example message for a failed one.
    pub fn record(&self, r: &Record, error: Option<&str>) {
        let mut w = self
            .window
            .lock()
            .expect("a worker panicked while recording");
        w.add(r);
        if let Some(message) = error
            && !w.examples.contains_key(&r.outcome)
        {
            w.examples.insert(r.outcome.clone(), message.to_owned());
        }
    }

    /// Takes everything recorded so far, leaving an empty window.
    pub fn take(&self) -> Window {
        std::mem::take(
            &mut *self
                .window
                .lock()
                .expect("a worker panicked while recording"),
        )
    }
}

/// One second of the timeline, for one scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Second {
    /// Seconds since the run started, at the end of this second.
    pub t: f64,
    /// The schedule's target at that time (rate or workers).
    pub target: f64,
    pub requests: u64,
    pub errors: u64,
    pub samples: u64,
    pub late: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Resident memory of the target, when it is tracked.
    pub target_rss_bytes: Option<u64>,
    /// Resident memory of the generator itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator_rss_bytes: Option<u64>,
}

impl Second {
    /// The timeline entry for a window that covered `seconds` of wall time.
    pub fn of(w: &Window, t: f64, target: f64, rss: Option<u64>) -> Second {
        Second {
            t,
            target,
            requests: w.requests(),
            errors: w.errors(),
            samples: w.samples_ok,
            late: w.late,
            p50_ms: w.latency_ms(0.5),
            p90_ms: w.latency_ms(0.9),
            p99_ms: w.latency_ms(0.99),
            max_ms: if w.latency_us.is_empty() {
                0.0
            } else {
                w.latency_us.max() as f64 / 1000.0
            },
            target_rss_bytes: rss,
            generator_rss_bytes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ms: u64, outcome: Outcome) -> Record {
        Record {
            latency: Duration::from_millis(ms),
            outcome,
            samples: 10,
            bytes_sent: 100,
            bytes_received: 5,
            late: Duration::ZERO,
        }
    }

    #[test]
    fn percentiles_come_from_every_recorded_latency() {
        let r = Recorder::default();
        // 1..=1000 ms, once each: p50 = 500, p90 = 900, p99 = 990, p99.9 = 999.
        for ms in 1..=1000 {
            r.record(&record(ms, Outcome::Ok), None);
        }
        let w = r.take();
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0), (0.999, 999.0)] {
            let got = w.latency_ms(q);
            assert!(
                (got - want).abs() <= want * 0.001 + 0.001,
                "p{q}: {got} ms, expected {want} within 0.1%"
            );
        }
        assert_eq!(w.requests(), 1000);
        assert_eq!(w.samples_ok, 10_000);
        assert_eq!(w.bytes_sent, 100_000);
        // Taking leaves an empty window.
        assert_eq!(r.take().requests(), 0);
    }

    #[test]
    fn errors_are_counted_by_kind_with_one_example_each() {
        let r = Recorder::default();
        r.record(&record(1, Outcome::Ok), None);
        r.record(&record(1, Outcome::Status(503)), Some("503: overloaded"));
        r.record(&record(1, Outcome::Status(503)), Some("503: again"));
        r.record(&record(1, Outcome::Timeout), Some("timed out"));
        let w = r.take();
        assert_eq!(w.requests(), 4);
        assert_eq!(w.errors(), 3);
        assert_eq!(w.error_ratio(), 0.75);
        assert_eq!(w.outcomes[&Outcome::Status(503)], 2);
        assert_eq!(w.examples[&Outcome::Status(503)], "503: overloaded");
        // Samples of failed requests were not accepted.
        assert_eq!(w.samples_ok, 10);
    }

    #[test]
    fn merged_windows_give_the_percentiles_of_all_their_requests() {
        let (a, b) = (Recorder::default(), Recorder::default());
        for ms in 1..=500 {
            a.record(&record(ms, Outcome::Ok), None);
        }
        for ms in 501..=1000 {
            b.record(&record(ms, Outcome::Ok), None);
        }
        let mut total = a.take();
        total.merge(&b.take());
        assert_eq!(total.requests(), 1000);
        assert!((total.latency_ms(0.9) - 900.0).abs() < 1.0);
    }

    #[test]
    fn late_sends_and_out_of_range_latencies_are_handled() {
        let r = Recorder::default();
        let mut late = record(1, Outcome::Ok);
        late.late = Duration::from_millis(11);
        r.record(&late, None);
        let mut huge = record(0, Outcome::Ok);
        huge.latency = Duration::from_secs(7200);
        r.record(&huge, None);
        let w = r.take();
        assert_eq!(w.late, 1);
        // Clamped to an hour rather than lost.
        assert!((w.latency_ms(1.0) - 3_600_000.0).abs() < 3_600.0);
        let s = Second::of(&w, 1.0, 5.0, Some(7));
        assert_eq!((s.requests, s.late, s.target_rss_bytes), (2, 1, Some(7)));
    }
}
