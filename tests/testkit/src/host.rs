//! What Strata's benchmarks read from the machine they run on: the process's CPU time and
//! resident memory (from `/proc`, so Linux only), the wall clock, and number formatting for
//! their tables.
//!
//! CPU time comes from `/proc/self/stat` rather than a system call because the engine's crates
//! forbid unsafe code and take no `libc` dependency; the kernel reports it for the whole
//! process (every thread, including threads that have exited) in clock ticks of 10 ms, which
//! is precise enough for measurements that last seconds.

use std::time::Duration;

/// Clock ticks per second in `/proc` times (`USER_HZ`): part of the kernel's userspace ABI,
/// 100 on every architecture Strata builds for.
const USER_HZ: f64 = 100.0;

/// CPU time used so far by the whole process, user plus system, in seconds.
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("reading /proc/self/stat");
    // Field 2, the command name, is in parentheses and may contain spaces; the fields after
    // the last `)` are separated by single spaces, starting with field 3 (state). utime and
    // stime are fields 14 and 15.
    let after_name = stat.rfind(')').expect("/proc/self/stat has a command name") + 1;
    let fields: Vec<&str> = stat[after_name..].split_whitespace().collect();
    let ticks = |field: usize| -> u64 {
        fields[field - 3]
            .parse()
            .expect("/proc/self/stat times are integers")
    };
    (ticks(14) + ticks(15)) as f64 / USER_HZ
}

/// The process's resident set size (`VmRSS`), in bytes. Page cache (such as the WAL's
/// recently written pages) is not part of it.
pub fn resident_bytes() -> u64 {
    status_bytes("VmRSS")
}

/// The process's peak resident set size (`VmHWM`), in bytes.
pub fn peak_resident_bytes() -> u64 {
    status_bytes("VmHWM")
}

/// A size field of `/proc/self/status` (given in kB there), in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let line = status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .unwrap_or_else(|| panic!("/proc/self/status has {field}"));
    let kib: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{field} is an integer number of kB"));
    kib * 1024
}

/// The wall clock in milliseconds since the Unix epoch, minus `back`.
///
/// The engine rejects samples more than `future_tolerance_ms` ahead of its clock, so benches
/// shift the dataset's fixed timeline to end in the past: `back` must exceed the span of the
/// scrapes they append.
pub fn now_ms_minus(back: Duration) -> i64 {
    crate::time::now_ms() - back.as_millis() as i64
}

/// `n` with thousands separators: `12,345,678`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate rounded to a whole number, with thousands separators.
pub fn rate(per_second: f64) -> String {
    thousands(per_second.round() as u64)
}

/// Reads a positive integer from the environment variable `name`, or `default` when unset.
pub fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .replace(['_', ','], "")
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("{name}={s:?}: expected a positive integer")),
        Err(_) => default,
    }
}
