//! What serving the data cost each server, as its user sees it: CPU for the catch-up, memory
//! once it has settled and after the dashboard queries, request latency under live traffic
//! beside the disk's own fsync latency, and bytes on disk after the system's own persist and
//! merge.
//!
//! Everything is read from outside the server, the same way for every system: CPU and memory
//! from `/proc/PID` (every thread of the process; `RssAnon` is the heap, without the file pages
//! the kernel can drop), disk from the blocks the files of the data directory take (as `du`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::ingest::process::Memory;
use crate::ingest::report::Percentiles;
use crate::ingest::sender::{self, Connection, Target};

/// The live phase: fixed-rate remote write after the catch-up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Live {
    /// Samples per second offered.
    pub samples_per_s: f64,
    pub seconds: f64,
    /// Samples in all the requests.
    pub samples: u64,
    pub requests_ok: u64,
    pub errors: u64,
    pub error_examples: Vec<String>,
    /// Each request's latency from the instant it was due.
    pub latency: Percentiles,
}

/// The disk's own latency for a small append made durable, measured beside the data.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Fsync {
    pub latency: Percentiles,
}

/// What one server cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Footprint {
    /// Server CPU during the catch-up, seconds.
    pub load_cpu_s: f64,
    /// Server CPU from the catch-up's end until it was idle (deferred work: merges,
    /// compaction), seconds.
    pub settle_cpu_s: f64,
    /// Once idle after the catch-up.
    pub settled: Memory,
    /// Bytes the data directory takes once idle after the catch-up.
    pub settled_disk_bytes: u64,
    pub live: Option<Live>,
    /// After every dashboard query ran.
    pub after_queries: Memory,
    /// How the data was persisted and merged before measuring it (the system's own way).
    pub persist: String,
    /// Bytes the persisted data takes.
    pub persisted_disk_bytes: u64,
    /// The disk's fdatasync latency, measured after the server stopped working.
    pub fsync: Option<Fsync>,
}

/// Sends `bodies` (one list per connection) at `samples_per_s`, `samples_per_request` each,
/// open loop: every request's latency counts from when it was due.
pub fn live(
    write_url: &str,
    bodies: &[Vec<Vec<u8>>],
    samples: u64,
    samples_per_request: usize,
    samples_per_s: f64,
) -> Live {
    let target = Target {
        url: write_url.to_owned(),
        request_timeout: Duration::from_secs(30),
    };
    let connections: Vec<Connection> = bodies.iter().map(|_| Connection::new(&target)).collect();
    let rate = samples_per_s / samples_per_request as f64;
    let requests: usize = bodies.iter().map(Vec::len).sum();
    let planned = Duration::from_secs_f64(requests as f64 / rate);
    // Room for a slow server to finish what was due; what is left after it counts as errors.
    let deadline = Instant::now() + planned + Duration::from_secs(30);
    let mut outcome = sender::open_loop(&target, &connections, bodies, rate, deadline);
    Live {
        samples_per_s,
        seconds: planned.as_secs_f64(),
        samples,
        requests_ok: outcome.ok,
        errors: outcome.errors,
        error_examples: outcome.error_examples,
        latency: Percentiles::of(&mut outcome.latencies),
    }
}

/// Appends 4 KiB and calls fdatasync, `n` times, in a scratch file in `dir` (removed after):
/// the floor under any write a server acknowledges only once it is durable.
pub fn fdatasync_probe(dir: &Path, n: usize) -> anyhow::Result<Fsync> {
    let path = dir.join(format!(".fsync-probe-{}", std::process::id()));
    let mut file: File = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let block = vec![0x5a_u8; 4096];
    let mut latencies = Vec::with_capacity(n);
    let result = (|| -> std::io::Result<()> {
        for _ in 0..n {
            let started = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            latencies.push(started.elapsed());
        }
        Ok(())
    })();
    drop(file);
    let _ = std::fs::remove_file(&path);
    result.with_context(|| format!("writing {}", path.display()))?;
    Ok(Fsync {
        latency: Percentiles::of(&mut latencies),
    })
}

/// Bytes the files under `path` take on disk (allocated blocks, as `du` counts them; a file
/// linked twice counts twice, as in a snapshot made of hard links it is the snapshot's size).
pub fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| disk_bytes(&e.path()))
                .sum::<u64>()
        })
        .unwrap_or(0)
}

/// Has `system` persist and merge its data the way its operators would before measuring
/// it, and returns how, and where the persisted data is.
///
/// Strata and Prometheus: a snapshot through the admin API (blocks of everything, the head
/// included). VictoriaMetrics: a flush of its in-memory parts, then a forced merge of every
/// partition (it merges in the background; the caller waits for the server to go idle).
pub fn persist(
    system: &str,
    url: &str,
    data_dir: &Path,
) -> anyhow::Result<(String, std::path::PathBuf)> {
    let agent: ureq::Agent = crate::http_client(Duration::from_secs(600)).build().into();
    match system {
        "victoriametrics" => {
            for step in ["force_flush", "force_merge"] {
                let mut r = agent
                    .get(format!("{url}/internal/{step}"))
                    .call()
                    .with_context(|| format!("{url}/internal/{step}"))?;
                let _ = r.body_mut().read_to_string();
            }
            Ok((
                "force_flush, force_merge, idle".into(),
                data_dir.to_path_buf(),
            ))
        }
        _ => {
            let mut r = agent
                .post(format!("{url}/api/v1/admin/tsdb/snapshot"))
                .send_empty()
                .with_context(|| format!("{url}/api/v1/admin/tsdb/snapshot"))?;
            let body: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)
                .context("the snapshot answer is not JSON")?;
            let name = body["data"]["name"]
                .as_str()
                .with_context(|| format!("no data.name in the snapshot answer {body}"))?;
            Ok((
                "snapshot (admin API)".into(),
                data_dir.join("snapshots").join(name),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_bytes_counts_every_file_below() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![1u8; 10_000]).unwrap();
        let one = disk_bytes(&dir.path().join("a"));
        assert!(one >= 10_000, "{one}");
        assert_eq!(disk_bytes(dir.path()), 2 * one);
        assert_eq!(disk_bytes(&dir.path().join("missing")), 0);
    }

    #[test]
    fn the_fsync_probe_times_each_durable_append_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let f = fdatasync_probe(dir.path(), 5).unwrap();
        assert_eq!(f.latency.count, 5);
        assert!(f.latency.max_ms >= f.latency.p50_ms && f.latency.p50_ms > 0.0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
