//! Watching the target's memory during a run: its resident set from `/proc/PID/status`
//! (`VmRSS`), read once a second, when the user names the process. Reading the file costs a few
//! microseconds and needs no cooperation from the target, so it works for any process on this
//! machine (Strata, Prometheus, VictoriaMetrics, a plain HTTP service).

use crate::ingest::process::Process;

/// Where the target's memory comes from.
#[derive(Debug, Clone, Default)]
pub struct TargetWatch {
    pid: Option<u32>,
    /// Set once the process could not be read, so the message is printed once.
    lost: bool,
}

impl TargetWatch {
    /// Watch process `pid`, or nothing.
    pub fn new(pid: Option<u32>) -> TargetWatch {
        TargetWatch { pid, lost: false }
    }

    /// Whether a process is watched.
    pub fn is_on(&self) -> bool {
        self.pid.is_some()
    }

    /// The target's resident set now, in bytes.
    pub fn sample(&mut self) -> Option<u64> {
        let pid = self.pid?;
        let rss = Process::new(pid).memory().ok().map(|m| m.rss_bytes);
        if rss.is_none() && !self.lost {
            self.lost = true;
            eprintln!("strata-bench: cannot read the memory of process {pid} (it may have exited)");
        }
        if rss.is_some() {
            self.lost = false;
        }
        rss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_set_is_read_from_proc() {
        // This very process has a resident set.
        let mut me = TargetWatch::new(Some(std::process::id()));
        assert!(me.sample().unwrap() > 0);
        assert_eq!(TargetWatch::new(None).sample(), None);
        // A process that is not there reads as nothing (once reported).
        assert_eq!(TargetWatch::new(Some(u32::MAX)).sample(), None);
    }
}
