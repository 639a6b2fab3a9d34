//! A child process that is killed and reaped when its guard goes out of scope, so a failing
//! test leaves no server behind.

use std::process::Child;

/// Kills (SIGKILL) and waits for the child on drop.
#[derive(Debug)]
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
