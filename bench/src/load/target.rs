//! Watching the target's memory during a run: its resident set from `/proc/PID/status`
//! (`VmRSS`), read once a second, when the user names the process. Reading the file costs a few
//! microseconds and needs no cooperation from the target, so it works for any process on this
//! machine (Strata, Prometheus, VictoriaMetrics, a plain HTTP service).

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
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| rss_bytes(&s));
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

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
pub fn rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_proc_status() {
        let text = "Name:\tstrata\nVmPeak:\t  9000 kB\nVmRSS:\t   1234 kB\nThreads:\t4\n";
        assert_eq!(rss_bytes(text), Some(1234 * 1024));
        assert_eq!(rss_bytes("Name: x\n"), None);
        // This very process has a resident set.
        let mut me = TargetWatch::new(Some(std::process::id()));
        assert!(me.sample().unwrap() > 0);
        assert_eq!(TargetWatch::new(None).sample(), None);
    }
}
