//! When a lane's requests are due: its schedule, or after the stress profile's switch, the
//! recovery's constant rate.

use std::sync::Mutex;

use crate::load::schedule::Schedule;

/// When requests are due: the lane's schedule, unless the stress profile has switched to its
/// recovery, which is a constant rate from a given request on.
pub(super) struct Pacer {
    pub schedule: Schedule,
    pub offset_s: f64,
    // Invariant: once set, every request numbered `from` or higher is timed by it.
    pub rebase: Mutex<Option<Rebase>>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Rebase {
    pub from: u64,
    pub at_s: f64,
    pub target: f64,
    pub until_s: f64,
}

impl Pacer {
    pub(super) fn due(&self, i: u64) -> Option<f64> {
        if let Some(r) = *self.rebase.lock().expect("pacer lock")
            && i >= r.from
        {
            let t = r.at_s + (i - r.from) as f64 / r.target.max(1e-9);
            return (t < r.until_s).then_some(t);
        }
        self.schedule.due(i).map(|t| t + self.offset_s)
    }

    pub(super) fn target_at(&self, t: f64) -> Option<f64> {
        if let Some(r) = *self.rebase.lock().expect("pacer lock")
            && t >= r.at_s
        {
            return (t < r.until_s).then_some(r.target);
        }
        let local = t - self.offset_s;
        if local < 0.0 {
            return Some(0.0);
        }
        (local < self.schedule.duration().as_secs_f64()).then(|| self.schedule.target_at(local))
    }

    pub(super) fn end_s(&self) -> f64 {
        match *self.rebase.lock().expect("pacer lock") {
            Some(r) => r.until_s,
            None => self.offset_s + self.schedule.duration().as_secs_f64(),
        }
    }
}
