//! A named background thread that is joined once, whoever asks first (the senders of
//! notifications each run on one).

use std::sync::Mutex;
use std::thread::JoinHandle;

/// A thread, joined by [`Worker::join`].
#[derive(Debug, Default)]
pub struct Worker(Mutex<Option<JoinHandle<()>>>);

impl Worker {
    /// Starts `work` on a thread named `name`; a thread that cannot start is logged, and the
    /// worker then does nothing.
    pub fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Worker {
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(work)
            .map_err(
                |e| tracing::error!(thread = name, error = %e, "a background thread did not start"),
            )
            .ok();
        Worker(Mutex::new(handle))
    }

    /// Waits for the thread to end (the caller has told it to); later calls return at once.
    pub fn join(&self) {
        let handle = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}
