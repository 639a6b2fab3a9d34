//! Running the real `strata` binary in tests: start it on a free loopback port, talk to it
//! over HTTP, stop it with SIGTERM or SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strata_wire::remote_write::encode::{Fields, RequestEncoder};
use strata_wire::remote_write::v1::{Label, Sample, TimeSeries, WriteRequest};

/// The `strata` binary cargo built beside this test binary (`target/<profile>/strata`).
pub fn strata_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/strata
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let bin = dir.join(format!("strata{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build the server first (`cargo build -p strata-server` with the same \
         profile; `cargo test --workspace` does it)",
        bin.display()
    );
    bin
}

/// A running `strata` process.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The address it listens on.
    pub addr: String,
    /// Its stderr (the log), line by line, after the "listening" line.
    log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `strata serve --listen 127.0.0.1:0 --data-dir DIR` plus `extra` arguments and
    /// waits (at most 30 s) until it listens. It may still be replaying its WAL: see
    /// [`Server::wait_ready`].
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(strata_binary())
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("STRATA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strata");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                        .filter(|_| line.contains("listening"))
                    {
                        break addr.to_owned();
                    }
                    if line.contains("ERROR") {
                        panic!("strata failed to start: {line}");
                    }
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!(
                        "strata did not report its listen address within 30 s (exit: {status:?})"
                    );
                }
            }
        };
        Server {
            child,
            url: format!("http://{addr}"),
            addr,
            log: rx,
        }
    }

    /// Waits until `/-/ready` answers 200 (WAL replayed), at most `limit`.
    pub fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let agent = agent();
        loop {
            if let Ok(r) = agent.get(format!("{}/-/ready", self.url)).call()
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "strata at {} was not ready within {limit:?}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log lines written since the last call (non-blocking).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies wherever it is.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL strata");
        self.child.wait().expect("reap strata");
    }

    /// SIGTERM, then waits (at most 60 s) for a clean exit; panics if it exits with an error.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for strata") {
                let rest: Vec<String> = self.log.try_iter().collect();
                assert!(
                    status.success(),
                    "strata exited with {status} after SIGTERM; last log lines:\n{}",
                    rest.join("\n")
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("strata did not exit within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that panicked leaves no process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A blocking HTTP client that returns every status as a response (never as an error) and
/// gives up on a request after 30 s.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// What a server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Sends `request` as remote write 1.0 (protobuf, snappy block) to `url`/api/v1/write, every
/// sample value on the wire (see [`encode_exact`]).
pub fn remote_write(agent: &ureq::Agent, url: &str, request: &WriteRequest) -> Reply {
    assert!(
        request.metadata.is_empty(),
        "metadata is not encoded here; send it with post_raw"
    );
    let body = strata_wire::snappy::compress(&encode_exact(&request.timeseries));
    post_raw(
        agent,
        &format!("{url}/api/v1/write"),
        "application/x-protobuf",
        Some("snappy"),
        body,
    )
}

/// The remote-write 1.0 protobuf of `series`, with every sample value on the wire.
///
/// prost, like the gogo-protobuf code Prometheus sends with, leaves out a proto3 `double` that
/// compares equal to 0.0, and -0.0 does: a negative zero would arrive as +0.0 before the server
/// ever saw it. Writing every field (`strata_wire`'s encoder with [`Fields::Every`]) checks the
/// server's side of the bit-exact promise. Native histograms are written as empty messages
/// (enough for the server to count them); exemplars are not written.
pub fn encode_exact(series: &[TimeSeries]) -> Vec<u8> {
    let mut request = RequestEncoder::new(Fields::Every);
    for ts in series {
        request.time_series(ts);
    }
    request.raw().to_vec()
}

/// POSTs `body` with the given content type (and encoding), returning status and body text.
pub fn post_raw(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    content_encoding: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut req = agent
        .post(url)
        .header("Content-Type", content_type)
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    if let Some(enc) = content_encoding {
        req = req.header("Content-Encoding", enc);
    }
    match req.send(&body[..]) {
        Ok(mut r) => Reply {
            status: r.status().as_u16(),
            body: r.body_mut().read_to_string().unwrap_or_default(),
        },
        Err(e) => Reply {
            status: 0,
            body: format!("transport error: {e}"),
        },
    }
}

/// GETs `url` and parses the body as JSON; panics on a transport error or a non-JSON body.
pub fn get_json(agent: &ureq::Agent, url: &str) -> (u16, serde_json::Value) {
    try_get_json(agent, url).unwrap_or_else(|e| panic!("{e}"))
}

/// GETs `url` and parses the body as JSON; a transport error or a non-JSON body is `Err`.
pub fn try_get_json(agent: &ureq::Agent, url: &str) -> Result<(u16, serde_json::Value), String> {
    let mut r = agent
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
    let json = serde_json::from_str(&text)
        .map_err(|e| format!("GET {url}: the body is not JSON ({e}): {text}"))?;
    Ok((status, json))
}

/// Whether end-to-end tests must run (`STRATA_E2E=1`, as CI sets it) rather than skip when a
/// real component is missing.
pub fn e2e_required() -> bool {
    std::env::var("STRATA_E2E").is_ok_and(|v| v == "1")
}

/// Finds an external program on PATH. When it is missing the test fails (under
/// `STRATA_E2E=1`) or says it is skipped and returns `None`.
pub fn require_program(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if e2e_required() => panic!(
            "`{name}` is not installed (Debian package `{package}`); STRATA_E2E=1 requires it. \
             Install it with `apt-get install {package}` (.ci/run does)."
        ),
        None => {
            println!(
                "SKIPPED: `{name}` is not installed (Debian package `{package}`); set STRATA_E2E=1 \
                 to make this a failure"
            );
            None
        }
    }
}

/// The Python of `.ci/venv` (or `$STRATA_PYTHON`) when it can import `modules` (comma
/// separated, as in an `import` statement). When it cannot, the test fails (under
/// `STRATA_E2E=1`) or says it is skipped and gets `None`.
pub fn venv_python(modules: &str) -> Option<PathBuf> {
    let path = std::env::var_os("STRATA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python")
        });
    let works = path.is_file()
        && Command::new(&path)
            .args(["-c", &format!("import {modules}")])
            .status()
            .is_ok_and(|s| s.success());
    if works {
        return Some(path);
    }
    let how = "python3 -m venv .ci/venv && .ci/venv/bin/pip install -r \
               .ci/requirements-python.txt (.ci/run does), or set STRATA_PYTHON";
    if e2e_required() {
        panic!(
            "no Python that imports {modules} at {}; STRATA_E2E=1 requires it: {how}",
            path.display()
        );
    }
    println!(
        "SKIPPED: no Python that imports {modules} at {}: {how}",
        path.display()
    );
    None
}

pub use strata_testkit::child::Guard;
pub use strata_testkit::net::free_port;

/// `s` encoded for a URL's query string.
pub use strata_bench::urlencode;

/// A series of `labels` (name first or anywhere) with `points` as `(timestamp, value)`.
pub fn series_of(labels: &[(&str, &str)], points: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
        samples: points
            .iter()
            .map(|&(t, v)| Sample {
                value: v,
                timestamp: t,
            })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

/// Remote-writes `timeseries` to the server at `url` and asserts it stored them (204).
pub fn write_ok(agent: &ureq::Agent, url: &str, timeseries: Vec<TimeSeries>) {
    let reply = remote_write(
        agent,
        url,
        &WriteRequest {
            timeseries,
            metadata: vec![],
        },
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
}

/// Polls `probe` until it returns `Some`, at most `limit` (then fails naming `what`).
pub fn wait_for<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Prometheus (the binary `program`) listening on a free loopback port with its data in
/// `dir`, configured by `config` (YAML text) and receiving remote write; answers once its API
/// does (at most 60 s). Returns its guard (killed on drop) and its base URL.
pub fn start_prometheus(program: &Path, dir: &Path, config: &str) -> (Guard, String) {
    let port = free_port();
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write prometheus.yml");
    let guard = Guard(
        Command::new(program)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = agent();
    wait_for(Duration::from_secs(60), "Prometheus answering", || {
        try_get_json(&http, &format!("{url}/api/v1/status/buildinfo")).ok()
    });
    (guard, url)
}

/// What one writer thread did in one kill cycle.
#[derive(Debug, Default)]
pub struct WriterReport {
    /// Requests answered 204.
    pub acked: Vec<u64>,
    /// The highest request number sent (answered or not).
    pub last_sent: Option<u64>,
    /// The first answer that was neither 204 nor a transport error (the kill), if any.
    pub unexpected: Option<(u64, Reply)>,
}

/// Sends requests `first..first + max` with `send` until one fails at the transport level
/// (the server is gone), reporting every 204 on `acks` as it comes.
pub fn send_until_killed(
    first: u64,
    max: u64,
    acks: &mpsc::Sender<()>,
    mut send: impl FnMut(u64) -> Reply,
) -> WriterReport {
    let mut report = WriterReport::default();
    for k in first..first + max {
        report.last_sent = Some(k);
        let reply = send(k);
        match reply.status {
            204 => {
                report.acked.push(k);
                // The main thread stops listening once it has killed the server.
                let _ = acks.send(());
            }
            0 => break,
            _ => {
                report.unexpected = Some((k, reply));
                break;
            }
        }
    }
    report
}

/// One cycle of a kill -9 test: starts the server on `dir`, runs one `writer` thread per
/// entry of `next` (given the server's URL, its number, its first request number and the
/// acknowledgement channel), kills the server with SIGKILL once `target` requests were
/// acknowledged (or after 30 s), and adds what each writer had acknowledged to `acked` and
/// its next request number to `next`. Panics on an answer that was neither 204 nor the kill.
pub fn kill_cycle<W>(
    dir: &Path,
    cycle: u64,
    target: u64,
    next: &mut [u64],
    acked: &mut [Vec<u64>],
    writer: W,
) where
    W: Fn(String, u64, u64, mpsc::Sender<()>) -> WriterReport + Send + Sync + Clone + 'static,
{
    let server = Server::start(dir, &[]);
    server.wait_ready(Duration::from_secs(60));
    let (tx, rx) = mpsc::channel();
    let writers: Vec<_> = (0..next.len())
        .map(|w| {
            let (url, tx, first, writer) =
                (server.url.clone(), tx.clone(), next[w], writer.clone());
            std::thread::spawn(move || writer(url, w as u64, first, tx))
        })
        .collect();
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut acks = 0;
    while acks < target {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(()) => acks += 1,
            // Every writer stopped (an unexpected answer, checked below) or it took too long.
            Err(_) => break,
        }
    }
    server.kill9();
    let reports: Vec<WriterReport> = writers
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .collect();
    for (w, r) in reports.iter().enumerate() {
        assert!(
            r.unexpected.is_none(),
            "cycle {cycle}: writer {w} got an unexpected answer: {:?}",
            r.unexpected
        );
    }
    assert!(
        acks >= target,
        "cycle {cycle}: only {acks} of {target} acknowledgements within 30 s"
    );
    for (w, r) in reports.into_iter().enumerate() {
        acked[w].extend(r.acked);
        if let Some(last) = r.last_sent {
            next[w] = last + 1;
        }
    }
}
