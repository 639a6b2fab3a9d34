//! Stopping a running query from outside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::PromqlError;

/// A handle to stop a running query: the caller keeps a clone and calls
/// [`Stop::timeout`] or [`Stop::cancel`]; evaluation checks it between steps of work and ends
/// with [`PromqlError::Timeout`] or [`PromqlError::Canceled`]. (The engine reads no clock, so
/// deadlines are the caller's.)
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicU8>);

const RUNNING: u8 = 0;
const TIMED_OUT: u8 = 1;
const CANCELED: u8 = 2;

impl Stop {
    /// A handle that has not stopped anything yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Ends the query as timed out.
    pub fn timeout(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, TIMED_OUT, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Ends the query as canceled.
    pub fn cancel(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, CANCELED, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub(crate) fn check(&self) -> Result<(), PromqlError> {
        match self.0.load(Ordering::Relaxed) {
            RUNNING => Ok(()),
            TIMED_OUT => Err(PromqlError::Timeout),
            _ => Err(PromqlError::Canceled),
        }
    }
}
