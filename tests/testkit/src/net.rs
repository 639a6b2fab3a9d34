//! Free ports on the loopback interface, for servers a test or benchmark starts. Tests talk to
//! 127.0.0.1 only.

use std::net::{SocketAddr, TcpListener};

/// A port on 127.0.0.1 that was free a moment ago: the listener that found it is closed
/// before the port is returned, so another process may take it first (rare; the caller's
/// bind fails then and says so).
pub fn free_port() -> u16 {
    free_addr().port()
}

/// [`free_port`] as a socket address on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port on 127.0.0.1")
}
