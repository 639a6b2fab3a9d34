//! Reading a run's timeline: whether a second met the objective, where a stress run broke and
//! how long recovery took, what a burst or a fault did, and whether memory or latency drifted.
//!
//! **Objective**: a second (or a stress step) meets it when its p99 latency is at most
//! `p99_ms` and its share of failed requests at most `error_ratio`. **Recovered** means three
//! seconds in a row met it; the recovery time runs from the event (the load dropping, the
//! burst ending, the fault command starting) to the first of those three seconds.

use std::time::Duration;

use super::schedule::{Profile, Schedule};
use super::stats::{Second, Window};

/// Consecutive good seconds that count as recovered.
const RECOVERED_SECONDS: usize = 3;

/// The latency objective and error budget.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Objective {
    pub p99_ms: f64,
    pub error_ratio: f64,
}

impl Objective {
    /// Whether `s` met the objective (a second with no requests does not).
    pub fn met(&self, s: &Second) -> bool {
        s.requests > 0
            && s.p99_ms <= self.p99_ms
            && s.errors as f64 <= self.error_ratio * s.requests as f64
    }

    fn met_window(&self, w: &Window) -> bool {
        w.requests() > 0 && w.latency_ms(0.99) <= self.p99_ms && w.error_ratio() <= self.error_ratio
    }
}

/// Seconds from `from_s` until the first of three good seconds in a row, if there are.
pub fn recovery_after(timeline: &[Second], from_s: f64, objective: &Objective) -> Option<f64> {
    let mut run = 0;
    for (i, s) in timeline.iter().enumerate() {
        // A second is the interval (t - 1, t]: it belongs to the event's aftermath once it
        // ends after the event (the second the event happened in counts).
        if s.t <= from_s + 1e-9 {
            continue;
        }
        if objective.met(s) {
            run += 1;
            if run == RECOVERED_SECONDS {
                let first = &timeline[i + 1 - RECOVERED_SECONDS];
                return Some((first.t - 1.0 - from_s).max(0.0));
            }
        } else {
            run = 0;
        }
    }
    None
}

/// One stress step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// The step's arrival rate.
    pub rate: f64,
    /// Successful requests per second achieved.
    pub achieved_rps: f64,
    pub p99_ms: f64,
    pub error_ratio: f64,
    pub met: bool,
}

/// Where the load switches to when a stress step breaks.
#[derive(Debug, Clone, Copy)]
pub struct Switch {
    pub rate: f64,
    pub recovery: Duration,
}

/// The stress profile's state: steps evaluated as they end, the break, the recovery.
#[derive(Debug, serde::Serialize)]
pub struct StressState {
    pub base_rate: f64,
    pub step_s: f64,
    pub steps: Vec<Step>,
    /// The rate of the first step that broke the objective.
    pub breaking_rate: Option<f64>,
    /// The rate of the last step that met it.
    pub last_good_rate: Option<f64>,
    /// When the load dropped back to the base rate, seconds from the start.
    pub dropped_at_s: Option<f64>,
    /// Seconds from the drop to recovery; `None` if it did not recover in the time given.
    pub recovery_s: Option<f64>,
    #[serde(skip)]
    objective: Objective,
    #[serde(skip)]
    window: Window,
    #[serde(skip)]
    recovery: Duration,
}

impl StressState {
    /// The state for a stress schedule (as [`Profile::Stress`] builds it).
    pub fn new(schedule: &Schedule, objective: Objective, recovery: Duration) -> StressState {
        let step_s = schedule
            .stages
            .iter()
            .map(|s| s.duration.as_secs_f64())
            .find(|d| *d > 0.0)
            .unwrap_or(1.0);
        StressState {
            base_rate: schedule.start,
            step_s,
            steps: Vec::new(),
            breaking_rate: None,
            last_good_rate: None,
            dropped_at_s: None,
            recovery_s: None,
            objective,
            window: Window::default(),
            recovery,
        }
    }

    /// Takes the second that ended at `t`; returns the switch to the recovery when a step
    /// has just broken the objective.
    pub fn observe(&mut self, w: &Window, t: f64) -> Option<Switch> {
        if self.dropped_at_s.is_some() {
            return None;
        }
        self.window.merge(w);
        // Steps end on whole multiples of the step length.
        let ended = (t / self.step_s + 1e-9).floor() as usize;
        if ended > self.steps.len() {
            return self.end_step();
        }
        None
    }

    fn end_step(&mut self) -> Option<Switch> {
        let window = std::mem::take(&mut self.window);
        let rate = self.base_rate * (self.steps.len() + 1) as f64;
        let ok = window.requests() - window.errors();
        let met = self.objective.met_window(&window);
        self.steps.push(Step {
            rate,
            achieved_rps: ok as f64 / self.step_s,
            p99_ms: window.latency_ms(0.99),
            error_ratio: window.error_ratio(),
            met,
        });
        if met {
            self.last_good_rate = Some(rate);
            return None;
        }
        self.breaking_rate = Some(rate);
        self.dropped_at_s = Some(self.steps.len() as f64 * self.step_s);
        Some(Switch {
            rate: self.base_rate,
            recovery: self.recovery,
        })
    }

    /// After the run: the recovery time, read off the timeline.
    pub fn finish(&mut self, timeline: &[Second]) {
        if let Some(at) = self.dropped_at_s {
            self.recovery_s = recovery_after(timeline, at, &self.objective);
        }
    }
}

/// What a burst did (the peak profile).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeakReport {
    pub burst_start_s: f64,
    pub burst_end_s: f64,
    pub burst_rate: f64,
    /// The worst second's p99 during the burst and the 30 s after it.
    pub worst_p99_ms: f64,
    /// Failed requests from the burst's start to the end of the run.
    pub errors: u64,
    /// Seconds from the burst's end to recovery.
    pub recovery_s: Option<f64>,
}

/// Reads the burst out of a peak schedule and the timeline.
pub fn peak_report(
    schedule: &Schedule,
    timeline: &[Second],
    objective: &Objective,
) -> Option<PeakReport> {
    // The burst is the positive-length stage with the highest target.
    let mut begin = 0.0;
    let mut best: Option<(f64, f64, f64)> = None;
    for stage in &schedule.stages {
        let d = stage.duration.as_secs_f64();
        if d > 0.0 && best.is_none_or(|(_, _, rate)| stage.target > rate) {
            best = Some((begin, begin + d, stage.target));
        }
        begin += d;
    }
    let (start, end, rate) = best?;
    let aftermath: Vec<&Second> = timeline.iter().filter(|s| s.t > start).collect();
    Some(PeakReport {
        burst_start_s: start,
        burst_end_s: end,
        burst_rate: rate,
        worst_p99_ms: aftermath
            .iter()
            .filter(|s| s.t <= end + 30.0)
            .map(|s| s.p99_ms)
            .fold(0.0, f64::max),
        errors: aftermath.iter().map(|s| s.errors).sum(),
        recovery_s: recovery_after(timeline, end, objective),
    })
}

/// What a fault did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultReport {
    pub at_s: f64,
    /// The first and last second with failed requests (or missed objective) after the fault.
    pub error_window_s: Option<(f64, f64)>,
    pub errors: u64,
    /// Seconds from the fault to recovery; `Some(0)` if the objective never broke.
    pub recovery_s: Option<f64>,
}

/// Reads a fault's effect off the timeline.
pub fn fault_report(at_s: f64, timeline: &[Second], objective: &Objective) -> FaultReport {
    let after: Vec<&Second> = timeline.iter().filter(|s| s.t > at_s + 1e-9).collect();
    let bad: Vec<&&Second> = after.iter().filter(|s| !objective.met(s)).collect();
    let recovery_s = recovery_after(timeline, at_s, objective);
    // The error window ends where the recovery's good run starts.
    let until = recovery_s.map_or(f64::INFINITY, |r| at_s + r);
    let in_window: Vec<&&&Second> = bad.iter().filter(|s| s.t - 1.0 < until).collect();
    FaultReport {
        at_s,
        error_window_s: match (in_window.first(), in_window.last()) {
            (Some(a), Some(b)) => Some(((a.t - 1.0).max(at_s), b.t)),
            _ => None,
        },
        errors: after.iter().map(|s| s.errors).sum(),
        recovery_s,
    }
}

/// Drift over a long run: the target's memory and the p99 at the start and at the end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drift {
    pub rss_start_bytes: Option<u64>,
    pub rss_end_bytes: Option<u64>,
    /// `end / start - 1` of the memory.
    pub rss_growth: Option<f64>,
    pub p99_start_ms: f64,
    pub p99_end_ms: f64,
    /// Memory grew by more than the threshold, or the p99 by more than half.
    pub flagged: bool,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Compares the first and last tenths of the steady part of the run (after the ramp).
pub fn drift(timeline: &[Second], skip_s: f64, growth_max: f64) -> Drift {
    let steady: Vec<&Second> = timeline
        .iter()
        .filter(|s| s.t > skip_s && s.requests > 0)
        .collect();
    let tenth = (steady.len() / 10).max(1);
    let head = &steady[..tenth.min(steady.len())];
    let tail = &steady[steady.len().saturating_sub(tenth)..];
    let rss = |part: &[&Second]| {
        median(
            part.iter()
                .filter_map(|s| s.target_rss_bytes)
                .map(|b| b as f64)
                .collect(),
        )
    };
    let p99 = |part: &[&Second]| median(part.iter().map(|s| s.p99_ms).collect()).unwrap_or(0.0);
    let (rss_start, rss_end) = (rss(head), rss(tail));
    let rss_growth = match (rss_start, rss_end) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a - 1.0),
        _ => None,
    };
    let (p99_start, p99_end) = (p99(head), p99(tail));
    Drift {
        rss_start_bytes: rss_start.map(|b| b as u64),
        rss_end_bytes: rss_end.map(|b| b as u64),
        rss_growth,
        p99_start_ms: p99_start,
        p99_end_ms: p99_end,
        flagged: rss_growth.is_some_and(|g| g > growth_max)
            || (p99_start > 0.0 && p99_end > 1.5 * p99_start && steady.len() >= 20),
    }
}

/// Whether a profile is analysed for drift.
pub fn tracks_drift(profile: Option<Profile>) -> bool {
    profile == Some(Profile::Endurance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::{Outcome, Record, Recorder};

    fn second(t: f64, requests: u64, errors: u64, p99_ms: f64) -> Second {
        Second {
            t,
            target: 0.0,
            requests,
            errors,
            samples: 0,
            late: 0,
            p50_ms: p99_ms / 2.0,
            p90_ms: p99_ms,
            p99_ms,
            max_ms: p99_ms,
            target_rss_bytes: None,
            generator_rss_bytes: None,
        }
    }

    const OBJ: Objective = Objective {
        p99_ms: 100.0,
        error_ratio: 0.01,
    };

    #[test]
    fn recovery_is_the_start_of_three_good_seconds_after_the_event() {
        // Bad from 10 to 14 s, good after; a single good second at 12 does not count.
        let tl: Vec<Second> = (1..=20)
            .map(|t| {
                let t = t as f64;
                let bad = (11.0..=14.0).contains(&t) && t != 12.0;
                second(t, 100, if bad { 50 } else { 0 }, 5.0)
            })
            .collect();
        assert_eq!(recovery_after(&tl, 10.0, &OBJ), Some(4.0));
        // Good from the start: recovered at once.
        assert_eq!(recovery_after(&tl, 15.0, &OBJ), Some(0.0));
        // Never three good seconds: no recovery.
        let never: Vec<Second> = (1..=10).map(|t| second(t as f64, 10, 5, 1.0)).collect();
        assert_eq!(recovery_after(&never, 0.0, &OBJ), None);
        let r = fault_report(10.0, &tl, &OBJ);
        assert_eq!(r.error_window_s, Some((10.0, 14.0)));
        assert_eq!(r.errors, 150);
        assert_eq!(r.recovery_s, Some(4.0));
    }

    fn window(ms: u64, n: u64, errors: u64) -> Window {
        let r = Recorder::default();
        for i in 0..n {
            let outcome = if i < errors {
                Outcome::Status(503)
            } else {
                Outcome::Ok
            };
            r.record(
                &Record {
                    latency: Duration::from_millis(ms),
                    outcome,
                    samples: 0,
                    bytes_sent: 0,
                    bytes_received: 0,
                    late: Duration::ZERO,
                },
                None,
            );
        }
        r.take()
    }

    #[test]
    fn a_stress_run_breaks_at_the_first_step_that_misses_the_objective() {
        let shape = crate::load::schedule::ShapeOptions {
            step: Duration::from_secs(2),
            steps_max: 10,
            recovery: Duration::from_secs(5),
            peak_factor: 1.0,
            peak_length: Duration::ZERO,
        };
        let sched = Profile::Stress.schedule(100.0, Duration::ZERO, &shape);
        let mut s = StressState::new(&sched, OBJ, shape.recovery);
        // Steps 1 and 2 (4 s) are fast; step 3 is slow.
        for t in 1..=4 {
            assert!(s.observe(&window(5, 100, 0), t as f64).is_none());
        }
        assert!(s.observe(&window(500, 100, 0), 5.0).is_none());
        let switch = s.observe(&window(500, 100, 0), 6.0).expect("step 3 broke");
        assert_eq!(switch.rate, 100.0);
        assert_eq!(s.last_good_rate, Some(200.0));
        assert_eq!(s.breaking_rate, Some(300.0));
        assert_eq!(s.dropped_at_s, Some(6.0));
        assert_eq!(s.steps.len(), 3);
        assert!((s.steps[0].achieved_rps - 100.0).abs() < 1e-9);
        // Nothing more is evaluated after the drop.
        assert!(s.observe(&window(500, 100, 100), 8.0).is_none());
        let tl: Vec<Second> = (7..=12)
            .map(|t| second(t as f64, 100, 0, if t < 9 { 400.0 } else { 3.0 }))
            .collect();
        s.finish(&tl);
        assert_eq!(s.recovery_s, Some(2.0));
    }

    #[test]
    fn a_burst_is_found_in_the_peak_schedule() {
        let shape = crate::load::schedule::ShapeOptions {
            step: Duration::from_secs(1),
            steps_max: 1,
            recovery: Duration::from_secs(20),
            peak_factor: 10.0,
            peak_length: Duration::from_secs(5),
        };
        let sched = Profile::Peak.schedule(10.0, Duration::from_secs(45), &shape);
        let tl: Vec<Second> = (1..=45)
            .map(|t| {
                second(
                    t as f64,
                    10,
                    0,
                    if (11..=22).contains(&t) { 900.0 } else { 2.0 },
                )
            })
            .collect();
        let r = peak_report(&sched, &tl, &OBJ).unwrap();
        assert_eq!(
            (r.burst_start_s, r.burst_end_s, r.burst_rate),
            (10.0, 15.0, 100.0)
        );
        assert_eq!(r.worst_p99_ms, 900.0);
        assert_eq!(r.recovery_s, Some(7.0));
    }

    #[test]
    fn growing_memory_is_flagged_and_flat_memory_is_not() {
        let tl = |growth: f64| -> Vec<Second> {
            (1..=100)
                .map(|t| {
                    let mut s = second(t as f64, 10, 0, 2.0);
                    s.target_rss_bytes = Some((1e8 * (1.0 + growth * t as f64 / 100.0)) as u64);
                    s
                })
                .collect()
        };
        let flat = drift(&tl(0.01), 0.0, 0.1);
        assert!(!flat.flagged, "{flat:?}");
        let leak = drift(&tl(0.5), 0.0, 0.1);
        assert!(leak.flagged, "{leak:?}");
        assert!(leak.rss_growth.unwrap() > 0.3);
    }
}
