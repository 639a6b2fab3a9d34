//! Sending alerts to Alertmanager (`POST /api/v2/alerts`), as Prometheus's notifier does:
//! a bounded queue (the oldest alerts dropped, and counted, when it is full), batches of up to
//! 256 alerts, every configured Alertmanager sent each batch. A batch no Alertmanager took is
//! kept at the head of the queue and tried again with a growing pause (0.5 s doubling to
//! 30 s), so an Alertmanager that was down gets the alerts once it is back.
//!
//! The sender is a thread of its own: a send blocks on the network, never an evaluation.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::rule::Notification;
use super::time::rfc3339;
use super::worker::Worker;
use crate::prom::json::LabelsJson;

/// Alerts one POST carries at most.
pub const BATCH_MAX: usize = 256;
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One Alertmanager: where its alerts API is, and how long a send may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://host:port/<path_prefix>/api/v2/alerts`.
    pub url: String,
    pub timeout: Duration,
}

/// Counters per target, for `/metrics`.
#[derive(Debug, Default)]
pub struct TargetCounters {
    pub sent: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Notification>,
    targets: Vec<(Target, Arc<TargetCounters>)>,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    capacity: usize,
    dropped: AtomicU64,
}

/// The queue and its sending thread.
pub struct AlertmanagerSender {
    shared: Arc<Shared>,
    thread: Worker,
}

impl std::fmt::Debug for AlertmanagerSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertmanagerSender")
            .field("queued", &self.queue_length())
            .finish_non_exhaustive()
    }
}

/// What `/metrics` shows of the sender.
#[derive(Debug, Clone, Default)]
pub struct SenderFigures {
    /// Per Alertmanager: its URL, alerts sent, failed sends.
    pub targets: Vec<(String, u64, u64)>,
    pub dropped: u64,
    pub queue_length: usize,
    pub queue_capacity: usize,
}

impl AlertmanagerSender {
    /// A sender holding at most `capacity` alerts while they wait.
    pub fn new(capacity: usize) -> AlertmanagerSender {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        });
        let worker = Arc::clone(&shared);
        let thread = Worker::spawn("alertmanager", move || run(&worker));
        AlertmanagerSender { shared, thread }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the Alertmanagers (on start and reload); the counters of unchanged ones carry on.
    pub fn set_targets(&self, targets: Vec<Target>) {
        let mut q = self.lock();
        let old = std::mem::take(&mut q.targets);
        q.targets = targets
            .into_iter()
            .map(|t| {
                let counters = old
                    .iter()
                    .find(|(o, _)| o.url == t.url)
                    .map_or_else(Default::default, |(_, c)| Arc::clone(c));
                (t, counters)
            })
            .collect();
        if q.targets.is_empty() {
            q.items.clear();
        }
    }

    /// Queues `alerts` (nothing when no Alertmanager is configured).
    pub fn send(&self, alerts: Vec<Notification>) {
        if alerts.is_empty() {
            return;
        }
        let mut q = self.lock();
        if q.targets.is_empty() {
            return;
        }
        q.items.extend(alerts);
        let over = q.items.len().saturating_sub(self.shared.capacity);
        if over > 0 {
            q.items.drain(..over);
            self.shared
                .dropped
                .fetch_add(over as u64, Ordering::Relaxed);
        }
        drop(q);
        self.shared.wake.notify_one();
    }

    pub fn queue_length(&self) -> usize {
        self.lock().items.len()
    }

    pub fn figures(&self) -> SenderFigures {
        let q = self.lock();
        SenderFigures {
            targets: q
                .targets
                .iter()
                .map(|(t, c)| {
                    (
                        t.url.clone(),
                        c.sent.load(Ordering::Relaxed),
                        c.errors.load(Ordering::Relaxed),
                    )
                })
                .collect(),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            queue_length: q.items.len(),
            queue_capacity: self.shared.capacity,
        }
    }

    /// Stops the thread (what is still queued is not sent).
    pub fn shutdown(&self) {
        self.lock().stop = true;
        self.shared.wake.notify_all();
        self.thread.join();
    }
}

/// Prometheus's default queue capacity (`--alertmanager.notification-queue-capacity`).
pub const QUEUE_CAPACITY: usize = 10_000;

impl Default for AlertmanagerSender {
    fn default() -> AlertmanagerSender {
        AlertmanagerSender::new(QUEUE_CAPACITY)
    }
}

impl Drop for AlertmanagerSender {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: LabelsJson<'a>,
    annotations: std::collections::BTreeMap<&'a str, &'a str>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
}

/// The body of one POST.
pub fn body(alerts: &[Notification]) -> Vec<u8> {
    let list: Vec<PostableAlert<'_>> = alerts
        .iter()
        .map(|a| PostableAlert {
            labels: LabelsJson(&a.labels),
            annotations: a
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            starts_at: rfc3339(Some(a.starts_at)),
            ends_at: rfc3339(Some(a.ends_at)),
            generator_url: &a.generator_url,
        })
        .collect();
    serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec())
}

fn post(target: &Target, body: &[u8]) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(target.timeout))
        .build()
        .into();
    let response = agent
        .post(&target.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("Strata/", env!("CARGO_PKG_VERSION")))
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let mut response = response;
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Err(format!("HTTP {status}: {}", text.trim()))
    }
}

fn run(shared: &Shared) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let (batch, targets) = {
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            while q.items.is_empty() && !q.stop {
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            if q.stop {
                return;
            }
            let n = q.items.len().min(BATCH_MAX);
            let batch: Vec<Notification> = q.items.drain(..n).collect();
            (batch, q.targets.clone())
        };
        let payload = body(&batch);
        let mut delivered = false;
        for (target, counters) in &targets {
            match post(target, &payload) {
                Ok(()) => {
                    delivered = true;
                    counters
                        .sent
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %target.url, error = %e, alerts = batch.len(), "sending alerts to Alertmanager failed");
                }
            }
        }
        if delivered || targets.is_empty() {
            backoff = BACKOFF_FIRST;
            continue;
        }
        // Nobody took it: back to the head of the queue, then wait before trying again.
        let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        for a in batch.into_iter().rev() {
            q.items.push_front(a);
        }
        let over = q.items.len().saturating_sub(shared.capacity);
        if over > 0 {
            q.items.drain(..over);
            shared.dropped.fetch_add(over as u64, Ordering::Relaxed);
        }
        let (q, _) = shared
            .wake
            .wait_timeout_while(q, backoff, |q| !q.stop)
            .unwrap_or_else(|p| p.into_inner());
        if q.stop {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use strata_engine::labels::Labels;

    fn receiver(statuses: Vec<u16>) -> (String, mpsc::Receiver<(String, String)>) {
        let (base, raw) =
            strata_testkit::receiver::receiver(statuses.into_iter().map(|s| (s, None)).collect());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            while let Ok(r) = raw.recv() {
                let body = r.text();
                if tx.send((r.path, body)).is_err() {
                    return;
                }
            }
        });
        (format!("{base}/prefix/api/v2/alerts"), rx)
    }

    fn alert(name: &str, resolved: bool) -> Notification {
        Notification {
            labels: Labels::new([("alertname", name), ("severity", "page")]).unwrap(),
            annotations: vec![("summary".into(), "it broke".into())],
            starts_at: 1_000,
            ends_at: 61_500,
            resolved,
            generator_url: "http://strata.test/graph?g0.expr=up&g0.tab=1".into(),
        }
    }

    #[test]
    fn alerts_are_posted_in_alertmanagers_shape() {
        let (url, rx) = receiver(vec![]);
        let sender = AlertmanagerSender::new(100);
        sender.set_targets(vec![Target {
            url,
            timeout: Duration::from_secs(5),
        }]);
        sender.send(vec![alert("A", false)]);
        let (path, body) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(path, "/prefix/api/v2/alerts");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{
                "labels": {"alertname": "A", "severity": "page"},
                "annotations": {"summary": "it broke"},
                "startsAt": "1970-01-01T00:00:01Z",
                "endsAt": "1970-01-01T00:01:01.5Z",
                "generatorURL": "http://strata.test/graph?g0.expr=up&g0.tab=1"
            }])
        );
        // The counter moves once the sender has read the answer.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sender.figures().targets[0].1 != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the send was not counted"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_batch_no_alertmanager_took_is_sent_again() {
        let (url, rx) = receiver(vec![503, 500]);
        let sender = AlertmanagerSender::new(100);
        sender.set_targets(vec![Target {
            url,
            timeout: Duration::from_secs(5),
        }]);
        sender.send(vec![alert("A", false), alert("B", true)]);
        let bodies: Vec<String> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap().1)
            .collect();
        assert!(
            bodies.iter().all(|b| b == &bodies[0]),
            "the same batch each time"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sender.figures().targets[0].1 != 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the send was not counted"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sender.figures().targets[0].2, 2, "two failed sends counted");
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let sender = AlertmanagerSender::new(2);
        // An address nothing listens on: the batch waits in the queue.
        sender.set_targets(vec![Target {
            url: "http://127.0.0.1:9/api/v2/alerts".into(),
            timeout: Duration::from_millis(200),
        }]);
        sender.shutdown();
        sender.send((0..5).map(|i| alert(&format!("A{i}"), false)).collect());
        let figures = sender.figures();
        assert_eq!(figures.queue_length, 2);
        assert_eq!(figures.dropped, 3);
        let q = sender.lock();
        assert_eq!(q.items[0].labels.get("alertname"), Some("A3"));
    }
}
