//! Load shapes: stages, the named profiles built from them, and when each request is due.
//!
//! A [`Schedule`] is a list of [`Stage`]s, each a duration and a target, the way k6 writes
//! them: the target moves linearly from the previous stage's target (or the start value) to
//! this stage's over its duration, so `30s:1000,2m:1000` ramps up for 30 s and then holds for
//! two minutes, and a zero-length stage jumps. In the open model the target is an arrival rate
//! (requests per second); in the closed model it is a number of concurrent workers.
//!
//! Open-model timing: request `i` (from 0) is due at the instant `t` where the arrivals
//! integral `∫₀ᵗ rate` reaches `i`. Within a linear ramp from `r0` to `r1` over `D` that
//! integral is `r0·τ + (r1 − r0)·τ²/(2D)`, so the instant is the root of a quadratic, taken in
//! the form `τ = 2m / (r0 + √(r0² + 2m(r1 − r0)/D))` that stays exact when the ramp is flat or
//! starts at zero. Due times never depend on when earlier requests returned: that is what
//! keeps a slow target from slowing the sender and hiding its own latency (coordinated
//! omission).

use std::fmt;
use std::time::Duration;

/// One stage: over `duration`, move the target linearly to `target`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stage {
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub target: f64,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A whole load shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Schedule {
    /// The target at time 0, before the first stage moves it.
    pub start: f64,
    pub stages: Vec<Stage>,
}

/// Why a stage list could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageError(String);

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StageError {}

/// Parses `30s:1000,2m:5000,...`: durations as Prometheus writes them, targets as numbers.
pub fn parse_stages(text: &str) -> Result<Vec<Stage>, StageError> {
    let mut stages = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (duration, target) = part.split_once(':').ok_or_else(|| {
            StageError(format!(
                "stage {part:?}: write DURATION:TARGET, for example 30s:1000"
            ))
        })?;
        let duration = parse_duration(duration)
            .map_err(|e| StageError(format!("stage {part:?}: duration: {e}")))?;
        let target: f64 = target.trim().parse().map_err(|_| {
            StageError(format!("stage {part:?}: target {target:?} is not a number"))
        })?;
        if !target.is_finite() || target < 0.0 {
            return Err(StageError(format!(
                "stage {part:?}: the target must be a finite number ≥ 0"
            )));
        }
        stages.push(Stage { duration, target });
    }
    if stages.is_empty() {
        return Err(StageError("no stages given".into()));
    }
    Ok(stages)
}

/// Parses a duration as Prometheus writes them (`500ms`, `30s`, `1h30m`), or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    promql_parser::util::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration (write e.g. 15d, 2h, 30s): {e}"))
}

impl Schedule {
    /// A schedule that holds `target` for `duration`.
    pub fn constant(target: f64, duration: Duration) -> Schedule {
        Schedule {
            start: target,
            stages: vec![Stage { duration, target }],
        }
    }

    /// The schedule's length.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The largest target anywhere in the schedule.
    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start, f64::max)
    }

    /// The target at `t` seconds from the start (the last target after the end).
    pub fn target_at(&self, t: f64) -> f64 {
        let mut from = self.start;
        let mut begin = 0.0;
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            if t < begin + d {
                return from + (stage.target - from) * (t - begin) / d;
            }
            begin += d;
            from = stage.target;
        }
        from
    }

    /// Arrivals due in `[0, t)` when the target is a rate per second.
    pub fn arrivals_until(&self, t: f64) -> f64 {
        let mut from = self.start;
        let mut begin = 0.0;
        let mut total = 0.0;
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            let tau = (t - begin).clamp(0.0, d);
            if d > 0.0 {
                total += from * tau + (stage.target - from) * tau * tau / (2.0 * d);
            }
            if t < begin + d {
                return total;
            }
            begin += d;
            from = stage.target;
        }
        total
    }

    /// When request `i` (from 0) is due, in seconds from the start; `None` when the schedule
    /// ends first.
    pub fn due(&self, i: u64) -> Option<f64> {
        let n = i as f64;
        let mut from = self.start;
        let mut begin = 0.0;
        let mut before = 0.0;
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            if d > 0.0 {
                let r0 = from;
                let r1 = stage.target;
                let within = (r0 + r1) * d / 2.0;
                if n < before + within {
                    let m = n - before;
                    let disc = (r0 * r0 + 2.0 * m * (r1 - r0) / d).max(0.0);
                    let denom = r0 + disc.sqrt();
                    let tau = if denom > 0.0 { 2.0 * m / denom } else { 0.0 };
                    return Some(begin + tau.min(d));
                }
                before += within;
            }
            begin += d;
            from = stage.target;
        }
        None
    }
}

/// The named load profiles. Each is a [`Schedule`] built from the base rate (or concurrency)
/// and the run's length; `stress` and `peak` also have their own analysis (see
/// [`super::analysis`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The expected rate: a short ramp (a tenth of the run, at most 30 s), then steady.
    Load,
    /// The expected rate for hours; the target's memory and latency are tracked for drift.
    Endurance,
    /// Steps of the base rate (1×, 2×, 3×, …) until the latency objective or the error budget
    /// breaks, then back to the base rate to time the recovery.
    Stress,
    /// The base rate, a sudden burst of many times it, then the base rate again.
    Peak,
}

/// The knobs of the stress and peak shapes.
#[derive(Debug, Clone, Copy)]
pub struct ShapeOptions {
    /// Length of each stress step.
    pub step: Duration,
    /// Stress steps at most (the last one is at `steps_max × base`).
    pub steps_max: u32,
    /// Time at the base rate after the break (stress) or the burst (peak).
    pub recovery: Duration,
    /// The burst's rate as a multiple of the base rate.
    pub peak_factor: f64,
    /// The burst's length.
    pub peak_length: Duration,
}

impl Profile {
    /// The schedule of this profile at `base` over `duration`.
    pub fn schedule(self, base: f64, duration: Duration, shape: &ShapeOptions) -> Schedule {
        match self {
            Profile::Load | Profile::Endurance => {
                let ramp = (duration / 10).min(Duration::from_secs(30));
                Schedule {
                    start: 0.0,
                    stages: vec![
                        Stage {
                            duration: ramp,
                            target: base,
                        },
                        Stage {
                            duration: duration.saturating_sub(ramp),
                            target: base,
                        },
                    ],
                }
            }
            Profile::Stress => {
                // Every step jumps (a zero-length stage) and then holds. The runner ends the
                // steps early when one breaks the objective and switches to the recovery.
                let mut stages = Vec::new();
                for k in 1..=shape.steps_max.max(1) {
                    let target = base * f64::from(k);
                    stages.push(Stage {
                        duration: Duration::ZERO,
                        target,
                    });
                    stages.push(Stage {
                        duration: shape.step,
                        target,
                    });
                }
                Schedule {
                    start: base,
                    stages,
                }
            }
            Profile::Peak => {
                let before = duration.saturating_sub(shape.peak_length + shape.recovery) / 2;
                let burst = base * shape.peak_factor;
                let after = duration.saturating_sub(before + shape.peak_length);
                Schedule {
                    start: base,
                    stages: vec![
                        Stage {
                            duration: before,
                            target: base,
                        },
                        Stage {
                            duration: Duration::ZERO,
                            target: burst,
                        },
                        Stage {
                            duration: shape.peak_length,
                            target: burst,
                        },
                        Stage {
                            duration: Duration::ZERO,
                            target: base,
                        },
                        Stage {
                            duration: after,
                            target: base,
                        },
                    ],
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64, target: f64) -> Stage {
        Stage {
            duration: Duration::from_secs(secs),
            target,
        }
    }

    #[test]
    fn stages_parse_like_k6_and_mistakes_say_what_is_wrong() {
        assert_eq!(
            parse_stages("30s:1000, 2m:5000,1h30m:0").unwrap(),
            vec![s(30, 1000.0), s(120, 5000.0), s(5400, 0.0)]
        );
        assert_eq!(parse_stages("0:10").unwrap(), vec![s(0, 10.0)]);
        for (bad, says) in [
            ("", "no stages"),
            ("30s", "DURATION:TARGET"),
            ("30x:5", "duration"),
            ("30s:many", "not a number"),
            ("30s:-1", "≥ 0"),
            ("30s:inf", "≥ 0"),
        ] {
            let e = parse_stages(bad).unwrap_err().to_string();
            assert!(
                e.contains(says),
                "{bad:?} gave {e:?}, expected it to say {says:?}"
            );
        }
    }

    #[test]
    fn a_constant_rate_spaces_requests_evenly_from_time_zero() {
        let sched = Schedule::constant(100.0, Duration::from_secs(10));
        assert_eq!(sched.due(0), Some(0.0));
        assert!((sched.due(1).unwrap() - 0.01).abs() < 1e-12);
        assert!((sched.due(999).unwrap() - 9.99).abs() < 1e-9);
        // Exactly 1,000 requests fit in 10 s at 100/s.
        assert_eq!(sched.due(1000), None);
        assert!((sched.arrivals_until(2.5) - 250.0).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_from_zero_sends_fewer_requests_early_and_due_inverts_arrivals() {
        // 0 → 100/s over 10 s: 500 arrivals, the i-th at sqrt(i / 5) seconds.
        let sched = Schedule {
            start: 0.0,
            stages: vec![s(10, 100.0), s(10, 100.0)],
        };
        assert!((sched.arrivals_until(10.0) - 500.0).abs() < 1e-9);
        for i in [1_u64, 5, 20, 125, 499] {
            let t = sched.due(i).unwrap();
            assert!(
                (t - (i as f64 / 5.0).sqrt()).abs() < 1e-9,
                "request {i} at {t}"
            );
            assert!((sched.arrivals_until(t) - i as f64).abs() < 1e-6);
        }
        // Into the flat stage: 500 before it, then 100/s.
        assert!((sched.due(750).unwrap() - 12.5).abs() < 1e-9);
        assert_eq!(sched.due(1500), None);
    }

    #[test]
    fn a_ramp_down_and_a_jump_are_timed_exactly() {
        let sched = Schedule {
            start: 200.0,
            stages: vec![s(10, 0.0), s(0, 50.0), s(2, 50.0)],
        };
        // Down from 200/s to 0 over 10 s: 1,000 arrivals.
        assert!((sched.arrivals_until(10.0) - 1000.0).abs() < 1e-9);
        for i in [0_u64, 100, 500, 990] {
            let t = sched.due(i).unwrap();
            assert!(
                (sched.arrivals_until(t) - i as f64).abs() < 1e-6,
                "request {i}"
            );
        }
        // After the jump, 50/s for 2 s.
        assert!((sched.due(1000).unwrap() - 10.0).abs() < 1e-9);
        assert!((sched.due(1050).unwrap() - 11.0).abs() < 1e-9);
        assert_eq!(sched.due(1100), None);
        assert_eq!(sched.target_at(10.5), 50.0);
        assert_eq!(sched.target_at(5.0), 100.0);
        assert_eq!(sched.peak(), 200.0);
    }

    #[test]
    fn due_times_never_go_backwards() {
        let sched = Schedule {
            start: 3.0,
            stages: vec![s(7, 900.0), s(0, 10.0), s(5, 10.0), s(3, 400.0), s(4, 1.0)],
        };
        let mut last = -1.0;
        let mut i = 0;
        while let Some(t) = sched.due(i) {
            assert!(t >= last, "request {i} at {t} before {last}");
            last = t;
            i += 1;
        }
        let total = sched.arrivals_until(sched.duration().as_secs_f64());
        assert_eq!(i, total.ceil() as u64);
    }

    #[test]
    fn profiles_have_the_documented_shapes() {
        let shape = ShapeOptions {
            step: Duration::from_secs(20),
            steps_max: 5,
            recovery: Duration::from_secs(30),
            peak_factor: 10.0,
            peak_length: Duration::from_secs(10),
        };
        let load = Profile::Load.schedule(1000.0, Duration::from_secs(600), &shape);
        assert_eq!(load.duration(), Duration::from_secs(600));
        assert_eq!(load.target_at(15.0), 500.0);
        assert_eq!(load.target_at(300.0), 1000.0);

        let stress = Profile::Stress.schedule(100.0, Duration::from_secs(600), &shape);
        assert_eq!(stress.duration(), Duration::from_secs(100));
        assert_eq!(stress.target_at(5.0), 100.0);
        assert_eq!(stress.target_at(45.0), 300.0);
        assert_eq!(stress.peak(), 500.0);

        let peak = Profile::Peak.schedule(100.0, Duration::from_secs(120), &shape);
        assert_eq!(peak.duration(), Duration::from_secs(120));
        // 40 s at the base, 10 s at ten times it, 70 s at the base.
        assert_eq!(peak.target_at(39.0), 100.0);
        assert_eq!(peak.target_at(41.0), 1000.0);
        assert_eq!(peak.target_at(51.0), 100.0);
        assert!((peak.arrivals_until(120.0) - (110.0 * 100.0 + 10.0 * 1000.0)).abs() < 1e-6);
    }
}
