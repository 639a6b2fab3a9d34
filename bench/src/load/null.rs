//! The null receiver: an HTTP server that reads each request to its end and answers at once —
//! 204 to a POST (what a remote-write receiver answers), 200 `ok` to anything else. Measuring
//! the generator against it measures the generator, not a target.
//!
//! It can also play a server with a known capacity: with `service` set, each request holds one
//! of `slots` for that long before it is answered, so it handles at most `slots / service`
//! requests a second and queues the rest — a deliberately limited target for stress tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// A deliberate limit on how fast the receiver answers.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    /// Requests served at once.
    pub slots: usize,
    /// How long each holds its slot.
    pub service: Duration,
}

/// What the receiver counted.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub body_bytes: AtomicU64,
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    counts: Arc<Counts>,
    limit: Option<(Arc<tokio::sync::Semaphore>, Duration)>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let post = request.method() == hyper::Method::POST;
    let mut body = request.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            n += data.len() as u64;
        }
    }
    if let Some((slots, service)) = limit {
        let _slot = slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tokio::time::sleep(service).await;
    }
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.body_bytes.fetch_add(n, Ordering::Relaxed);
    let response = if post {
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::new(Bytes::new()))
    } else {
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"ok\n")))
    };
    Ok(response.expect("a fixed response is valid"))
}

/// Serves connections from `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    counts: Arc<Counts>,
    capacity: Option<Capacity>,
) {
    let limit = capacity.map(|c| {
        (
            Arc::new(tokio::sync::Semaphore::new(c.slots.max(1))),
            c.service,
        )
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (counts, limit) = (counts.clone(), limit.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |r| answer(r, counts.clone(), limit.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A receiver on a loopback port of its own, on its own thread and runtime; stops when
/// dropped. For tests and the generator's ceiling benchmark.
#[derive(Debug)]
pub struct NullReceiver {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NullReceiver {
    /// Starts one on 127.0.0.1, on a free port, with `threads` runtime threads.
    pub fn start(threads: usize, capacity: Option<Capacity>) -> anyhow::Result<NullReceiver> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()?;
        let c = counts.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(std_listener).expect("a bound listener");
                tokio::select! {
                    _ = serve(listener, c, capacity) => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(NullReceiver {
            addr,
            counts,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for NullReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `strata-bench null`: serves on `listen` until killed.
pub fn serve_forever(listen: &str, capacity: Option<Capacity>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!(
            "strata-bench: null receiver on http://{}",
            listener.local_addr()?
        );
        serve(listener, Arc::new(Counts::default()), capacity).await;
        Ok(())
    })
}
