//! Sending a phase's requests: one thread and one keep-alive connection per shard.
//!
//! Each shard has its own blocking HTTP agent (`ureq`), so it holds exactly one connection and
//! a shard's requests never overtake each other, as in a Prometheus remote-write shard. Threads
//! rather than an async runtime because the fixed-load phase has to send at precise instants:
//! a thread sleeps with the kernel's high-resolution timer (tens of microseconds late), where a
//! tokio timer rounds up to whole milliseconds, which would be most of a fast server's latency.
//!
//! [`closed_loop`] sends each shard's requests back to back. [`open_loop`] sends request `j` of
//! shard `s` at `start + (s + j × shards) / rate` and measures its latency from that instant,
//! so time a request spends waiting for the one before it counts.
//!
//! Every request is bounded by a timeout and every phase by a deadline; a response other than
//! 2xx, a transport error, and a request not sent by the deadline are errors.

use std::time::{Duration, Instant};

/// Errors kept verbatim per phase; the rest are only counted.
const ERROR_EXAMPLES_MAX: usize = 5;
/// Bytes of an error response's body kept in its message.
const ERROR_BODY_BYTES_MAX: u64 = 512;

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// The remote-write URL, `http://127.0.0.1:PORT/api/v1/write`.
    pub url: String,
    /// Longest a request may take before it counts as an error.
    pub request_timeout: Duration,
}

/// A shard's connection.
#[derive(Debug, Clone)]
pub struct Connection {
    agent: ureq::Agent,
}

impl Connection {
    /// A connection (opened by the first request and then kept alive).
    pub fn new(target: &Target) -> Connection {
        let config = crate::http_client(target.request_timeout)
            .max_idle_connections_per_host(1)
            .user_agent("strata-bench")
            .no_delay(true)
            .build();
        Connection {
            agent: config.into(),
        }
    }

    /// Sends one remote-write body and waits for the answer: `Ok` for 2xx.
    pub fn write(&self, url: &str, body: &[u8]) -> Result<(), String> {
        let mut response = self
            .agent
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(body)
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        // Read the body to its end, so the connection can carry the next request.
        let text = response
            .body_mut()
            .with_config()
            .limit(ERROR_BODY_BYTES_MAX)
            .read_to_vec();
        if status.is_success() {
            return text
                .map(|_| ())
                .map_err(|e| format!("reading a {status} response: {e}"));
        }
        let text = match text {
            Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
            Err(e) => format!("(body unreadable: {e})"),
        };
        Err(format!("{status}: {text}"))
    }

    /// Sends a GET and reports whether it answered 200 (for readiness checks).
    pub fn get_ok(&self, url: &str) -> bool {
        match self.agent.get(url).call() {
            Ok(mut response) => {
                let _ = response.body_mut().read_to_vec();
                response.status() == 200
            }
            Err(_) => false,
        }
    }
}

/// What one shard saw.
#[derive(Debug, Default)]
struct ShardOutcome {
    ok: u64,
    errors: u64,
    error_examples: Vec<String>,
    /// Latency of each request, in order.
    latencies: Vec<Duration>,
    /// For the open loop: how late the sender woke for each request it slept for (the
    /// generator's own error).
    timer_lags: Vec<Duration>,
    /// For the open loop: requests that were due while the one before them on their
    /// connection had not returned yet.
    queued: u64,
}

impl ShardOutcome {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_examples.len() < ERROR_EXAMPLES_MAX {
            self.error_examples.push(message);
        }
    }
}

/// What a phase saw, every shard together.
#[derive(Debug, Default)]
pub struct PhaseOutcome {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered otherwise, failed, or not sent by the deadline.
    pub errors: u64,
    /// The first few errors.
    pub error_examples: Vec<String>,
    /// From the first request's start (or due time) to the last answer.
    pub wall: Duration,
    /// Every request's latency (unsorted).
    pub latencies: Vec<Duration>,
    /// For the open loop: how late the sender woke, for requests it slept for.
    pub timer_lags: Vec<Duration>,
    /// For the open loop: requests due while their connection was still busy.
    pub queued: u64,
}

impl PhaseOutcome {
    fn merge(shards: Vec<ShardOutcome>, wall: Duration) -> PhaseOutcome {
        let mut out = PhaseOutcome {
            wall,
            ..PhaseOutcome::default()
        };
        for s in shards {
            out.ok += s.ok;
            out.errors += s.errors;
            for e in s.error_examples {
                if out.error_examples.len() < ERROR_EXAMPLES_MAX {
                    out.error_examples.push(e);
                }
            }
            out.latencies.extend(s.latencies);
            out.timer_lags.extend(s.timer_lags);
            out.queued += s.queued;
        }
        out
    }
}

/// Runs `shard(s, connection, bodies)` for every shard on a thread of its own and collects
/// what each did.
fn run_shards(
    connections: &[Connection],
    bodies: &[Vec<Vec<u8>>],
    shard: impl Fn(usize, &Connection, &[Vec<u8>]) -> ShardOutcome + Sync,
) -> Vec<ShardOutcome> {
    assert_eq!(connections.len(), bodies.len());
    let shard = &shard;
    std::thread::scope(|scope| {
        let handles: Vec<_> = connections
            .iter()
            .zip(bodies)
            .enumerate()
            .map(|(s, (conn, bodies))| scope.spawn(move || shard(s, conn, bodies)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sender thread panicked"))
            .collect()
    })
}

/// Sends `body` and records its outcome, its latency counted from `since`.
fn send(target: &Target, conn: &Connection, body: &[u8], since: Instant, out: &mut ShardOutcome) {
    let result = conn.write(&target.url, body);
    out.latencies.push(since.elapsed());
    match result {
        Ok(()) => out.ok += 1,
        Err(e) => out.error(e),
    }
}

/// Counts the `left` requests not sent by the phase deadline as errors.
fn unsent(left: usize, out: &mut ShardOutcome) {
    out.error(format!("{left} requests not sent by the phase deadline"));
    out.errors += left as u64 - 1;
}

/// Sends every shard's requests back to back, shards in parallel; gives up on what is left at
/// `deadline`.
pub fn closed_loop(
    target: &Target,
    connections: &[Connection],
    bodies: &[Vec<Vec<u8>>],
    deadline: Instant,
) -> PhaseOutcome {
    let start = Instant::now();
    let shards = run_shards(connections, bodies, |_, conn, bodies| {
        let mut out = ShardOutcome::default();
        for (j, body) in bodies.iter().enumerate() {
            if Instant::now() >= deadline {
                unsent(bodies.len() - j, &mut out);
                break;
            }
            send(target, conn, body, Instant::now(), &mut out);
        }
        out
    });
    PhaseOutcome::merge(shards, start.elapsed())
}

/// Sends `rate` requests per second in all, shard `s`'s request `j` due at
/// `start + (s + j × shards) / rate`, and measures each latency from its due time. Requests
/// still unsent at `deadline` are errors.
pub fn open_loop(
    target: &Target,
    connections: &[Connection],
    bodies: &[Vec<Vec<u8>>],
    rate_per_s: f64,
    deadline: Instant,
) -> PhaseOutcome {
    assert!(rate_per_s > 0.0);
    let shard_count = bodies.len();
    // Every thread is started before the first request is due.
    let start = Instant::now() + Duration::from_millis(100);
    let shards = run_shards(connections, bodies, |s, conn, bodies| {
        let mut out = ShardOutcome::default();
        for (j, body) in bodies.iter().enumerate() {
            let slot = (s + j * shard_count) as f64 / rate_per_s;
            let due = start + Duration::from_secs_f64(slot);
            if due >= deadline || Instant::now() >= deadline {
                unsent(bodies.len() - j, &mut out);
                break;
            }
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
                out.timer_lags.push(due.elapsed());
            } else {
                out.queued += 1;
            }
            send(target, conn, body, due, &mut out);
        }
        out
    });
    PhaseOutcome::merge(shards, start.elapsed())
}
