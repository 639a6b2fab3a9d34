//! What `/proc` says about a process: CPU time and memory, read the same way for every server.
//!
//! CPU time is `utime + stime` from `/proc/PID/stat` (fields 14 and 15): every thread of the
//! process, living or exited, in clock ticks. The kernel reports them in `USER_HZ`, which its
//! ABI fixes at 100 per second on every architecture Linux runs this on, whatever `CONFIG_HZ`
//! is. Memory is `VmRSS` (resident now) and `VmHWM` (the peak resident set) from
//! `/proc/PID/status`, in KiB.

use std::fs;
use std::time::Duration;

use anyhow::{Context, bail};

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`).
const USER_HZ: u64 = 100;

/// A process, by id.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pid: u32,
}

/// Memory figures of a process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss_bytes: u64,
    /// Peak resident set so far (`VmHWM`).
    pub hwm_bytes: u64,
    /// The anonymous part of the resident set (`RssAnon`): the heap and stacks, without the
    /// file pages (binary, mapped files) the kernel can drop and read again.
    #[serde(default)]
    pub rss_anon_bytes: u64,
}

impl Process {
    /// The process `pid`.
    pub fn new(pid: u32) -> Process {
        Process { pid }
    }

    /// This process.
    pub fn current() -> Process {
        Process {
            pid: std::process::id(),
        }
    }

    /// Whether the process still exists (and is not a zombie).
    pub fn is_alive(&self) -> bool {
        self.read_stat().is_ok_and(|stat| !stat.starts_with("Z"))
    }

    /// Everything after the command name in `/proc/PID/stat` (the name may contain spaces and
    /// parentheses, so it is skipped up to its last `)`).
    fn read_stat(&self) -> anyhow::Result<String> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let Some(close) = stat.rfind(')') else {
            bail!("{path} has no command name: {stat:?}");
        };
        Ok(stat[close + 1..].trim_start().to_owned())
    }

    /// CPU time used so far, user and system, by every thread.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        let rest = self.read_stat()?;
        // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        let tick = |i: usize| -> anyhow::Result<u64> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .with_context(|| format!("/proc/{}/stat has no field {}", self.pid, i + 3))
        };
        let ticks = tick(11)? + tick(12)?;
        Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
    }

    /// Resident and peak resident memory.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.pid);
        let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .with_context(|| format!("{path} has no {name}"))?;
            let kib: u64 = line
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("{path}: {name}{line} is not a size in kB"))?;
            Ok(kib * 1024)
        };
        Ok(Memory {
            rss_bytes: field("VmRSS:")?,
            hwm_bytes: field("VmHWM:")?,
            rss_anon_bytes: field("RssAnon:")?,
        })
    }
}

/// CPU time every process of the machine has used since boot, all CPUs together: user,
/// nice, system, irq, softirq and steal from the first line of `/proc/stat` (guest time is
/// already inside user).
pub fn machine_busy_cpu() -> anyhow::Result<Duration> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("/proc/stat has no cpu line")?;
    let ticks: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|f| f.parse().context("/proc/stat: a cpu field is not a number"))
        .collect::<anyhow::Result<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| ticks.get(i).copied().unwrap_or(0))
        .sum();
    Ok(Duration::from_millis(busy * 1000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = Process::current();
        assert!(me.is_alive());
        let before = me.cpu().unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(me.cpu().unwrap() >= before);
        assert!(machine_busy_cpu().unwrap() >= me.cpu().unwrap());
        let m = me.memory().unwrap();
        assert!(m.rss_bytes > 0 && m.hwm_bytes >= m.rss_bytes);
        assert!(m.rss_anon_bytes > 0 && m.rss_anon_bytes <= m.rss_bytes);
    }
}
