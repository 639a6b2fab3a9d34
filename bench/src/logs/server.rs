//! Starting and stopping the Strata server a log benchmark measures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::ingest::process::Process;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub binary: PathBuf,
    /// `taskset -c CPUS` in front of it, when set.
    pub cpus: Option<String>,
}

/// A running server, stopped when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base: String,
    pub process: Process,
}

impl Server {
    /// Starts the server on a free loopback port with its data in `data`, logging to
    /// `data.log`, and waits until it answers `/-/ready` (at most `ready_within`).
    pub fn start(
        config: &ServerConfig,
        data: &Path,
        ready_within: Duration,
    ) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log_path = data.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = match &config.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(&config.binary);
                c
            }
            None => Command::new(&config.binary),
        };
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", config.binary.display()))?;
        let server = Server {
            process: Process::new(child.id()),
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let agent: ureq::Agent = crate::http_client(Duration::from_secs(2)).build().into();
        let deadline = Instant::now() + ready_within;
        loop {
            if let Ok(r) = agent.get(&format!("{}/-/ready", server.base)).call()
                && r.status().is_success()
            {
                return Ok(server);
            }
            if !server.process.is_alive() {
                bail!("the server exited at start; see {}", log_path.display());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server was not ready within {ready_within:?}; see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server with SIGTERM (SIGKILL after a minute) and waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!("the server did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.terminate();
        }
    }
}

/// Bytes of the files below `dir`, by the name of the directory right below it (`blocks`,
/// `wal`, ...; files directly in `dir` count as `.`).
pub fn bytes_by_part(dir: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    fn walk(dir: &Path, total: &mut u64) -> anyhow::Result<()> {
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let meta = e.metadata()?;
            if meta.is_dir() {
                walk(&e.path(), total)?;
            } else {
                *total += meta.len();
            }
        }
        Ok(())
    }
    let mut parts = Vec::new();
    let mut top = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        if e.metadata()?.is_dir() {
            let mut total = 0;
            walk(&e.path(), &mut total)?;
            parts.push((e.file_name().to_string_lossy().into_owned(), total));
        } else {
            top += e.metadata()?.len();
        }
    }
    parts.push((".".into(), top));
    parts.sort();
    Ok(parts)
}
