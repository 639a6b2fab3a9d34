//! One HTTP/1.1 keep-alive connection per worker, on hyper's low-level client.
//!
//! A worker owns its connection and has at most one request on it at a time, the way wrk and
//! a Prometheus remote-write shard use theirs: there is no pool to contend on, and a write
//! shard's requests can never overtake each other. The connection is opened by the first
//! request and again after any failure. Bodies are read to the end (so the connection can
//! carry the next request) and counted; only the first bytes of an unexpected answer are kept,
//! for its error message, unless the caller asks for the whole body.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Bytes of an unexpected answer kept for its error message.
const ERROR_BODY_BYTES_MAX: usize = 300;

/// Where requests go: the address to connect to and the `Host` header to send.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `host:port` as the user wrote it.
    pub authority: String,
    /// The path (and query) of the URL, `/` when it had none.
    pub path: String,
}

impl Endpoint {
    /// Reads `http://host:port/path`. Only plain HTTP: the targets are local, and TLS would
    /// measure the handshake rather than the service. A host that is not on this machine is
    /// refused unless `allow_remote` says the user means it.
    pub fn parse(url: &str, allow_remote: bool) -> anyhow::Result<Endpoint> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => bail!("{url}: https is not supported; point at a plain-HTTP port"),
            _ => bail!("{url}: write the URL with http://"),
        }
        let authority = uri
            .authority()
            .with_context(|| format!("{url}: no host"))?
            .to_string();
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(80);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("{url}: cannot resolve {host}"))?
            .collect();
        let addr = *addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .with_context(|| format!("{url}: {host} has no address"))?;
        if !allow_remote && !is_local(addr.ip()) {
            bail!(
                "{url}: {host} is not this machine ({}); pass --allow-remote if you mean to load it",
                addr.ip()
            );
        }
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        Ok(Endpoint {
            addr,
            authority,
            path,
        })
    }

    /// The path as a request target.
    pub fn uri(&self) -> hyper::Uri {
        self.path.parse().expect("the path came from a parsed URL")
    }

    /// The same server, another path.
    pub fn with_path(&self, path: &str) -> Endpoint {
        Endpoint {
            path: path.to_owned(),
            ..self.clone()
        }
    }
}

fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// An answer, read to its end.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// Bytes of the body received.
    pub body_bytes: u64,
    /// The body, whole when asked for, otherwise its first bytes when the status was not 2xx.
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendError {
    Timeout,
    Transport(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Timeout => f.write_str("no answer within the request timeout"),
            SendError::Transport(e) => f.write_str(e),
        }
    }
}

/// A worker's connection.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Connections opened, the first included.
    pub connects: u64,
}

impl Connection {
    /// A connection to `addr`, opened by the first request.
    pub fn new(addr: SocketAddr) -> Connection {
        Connection {
            addr,
            sender: None,
            connects: 0,
        }
    }

    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, SendError> {
        if let Some(sender) = &mut self.sender {
            if sender.ready().await.is_ok() {
                return Ok(self.sender.as_mut().expect("checked above"));
            }
            self.sender = None;
        }
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| SendError::Transport(format!("connect to {}: {e}", self.addr)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| SendError::Transport(format!("set TCP_NODELAY: {e}")))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Transport(format!("HTTP handshake: {e}")))?;
        // The connection's I/O runs as its own task and ends when the sender is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.connects += 1;
        Ok(self.sender.insert(sender))
    }

    /// Sends `request` and reads the whole answer, within `timeout`. `keep_body` keeps all of
    /// it (for answers the caller reads); otherwise only an error answer's first bytes.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
        keep_body: bool,
    ) -> Result<Answer, SendError> {
        match tokio::time::timeout(timeout, self.exchange(request, keep_body)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                // The request may still be on the wire: this connection cannot be reused.
                self.sender = None;
                Err(SendError::Timeout)
            }
        }
    }

    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        keep_body: bool,
    ) -> Result<Answer, SendError> {
        let sender = self.ready_sender().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| SendError::Transport(format!("request: {e}")))?;
        let status = response.status();
        let keep = keep_body || !status.is_success();
        let mut body = response.into_body();
        let mut body_bytes = 0u64;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| SendError::Transport(format!("reading the answer: {e}")))?;
            if let Some(data) = frame.data_ref() {
                body_bytes += data.len() as u64;
                if keep_body {
                    kept.extend_from_slice(data);
                } else if keep && kept.len() < ERROR_BODY_BYTES_MAX {
                    let room = ERROR_BODY_BYTES_MAX - kept.len();
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
        Ok(Answer {
            status,
            body_bytes,
            body: Bytes::from(kept),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_remote_hosts_refused_without_the_flag() {
        let e = Endpoint::parse("http://127.0.0.1:9090/api/v1/write", false).unwrap();
        assert_eq!(e.addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(e.authority, "127.0.0.1:9090");
        assert_eq!(e.path, "/api/v1/write");
        let e = Endpoint::parse("http://localhost:8080", false).unwrap();
        assert!(e.addr.ip().is_loopback());
        assert_eq!(e.path, "/");
        assert_eq!(
            Endpoint::parse("http://[::1]:80/x?y=1", false)
                .unwrap()
                .path,
            "/x?y=1"
        );
        for (bad, says) in [
            ("https://127.0.0.1:1/", "https is not supported"),
            ("127.0.0.1:9090", "http://"),
            ("http://10.1.2.3:80/", "--allow-remote"),
        ] {
            let e = Endpoint::parse(bad, false).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(Endpoint::parse("http://10.1.2.3:80/", true).is_ok());
    }
}
