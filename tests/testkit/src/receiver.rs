//! A loopback HTTP receiver standing in for Alertmanager, Slack or a webhook in tests: it
//! answers each request with a programmed status and hands over what it received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Instant;

/// A request the receiver got.
#[derive(Debug)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub body: Vec<u8>,
}

impl Received {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Listens on loopback and answers each request with the next `(status, retry_after)` of
/// `answers` (then 200 `ok`), handing over what it received. Returns `http://ADDR`.
pub fn receiver(answers: Vec<(u16, Option<&'static str>)>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { return };
            let Ok(clone) = stream.try_clone() else {
                return;
            };
            let mut reader = BufReader::new(clone);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                return;
            }
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let (status, retry) = answers.next().unwrap_or((200, None));
            let extra = retry.map_or(String::new(), |r| format!("retry-after: {r}\r\n"));
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status} X\r\n{extra}content-length: 2\r\nconnection: close\r\n\r\nok"
                )
                .as_bytes(),
            );
            let got = Received {
                at: Instant::now(),
                path,
                body,
            };
            if tx.send(got).is_err() {
                return;
            }
        }
    });
    (format!("http://{addr}"), rx)
}
