//! A generic HTTP scenario: the same request (method, URL, headers, body) every time, and the
//! status that counts as success; for load-testing any service, not only metrics systems.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};

use super::{Generator, Request, Scenario};
use crate::load::client::Endpoint;

/// The request and what a good answer looks like.
#[derive(Debug, Clone)]
pub struct HttpScenario {
    pub endpoint: Endpoint,
    pub method: Method,
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
    pub body: Bytes,
    /// The status that counts as success; any 2xx when `None`.
    pub expect: Option<StatusCode>,
}

/// Reads `Name: value` header arguments.
pub fn parse_headers(args: &[String]) -> anyhow::Result<Arc<[(HeaderName, HeaderValue)]>> {
    args.iter()
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("header {h:?}: write it as 'Name: value'"))?;
            let name = name.trim();
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| anyhow::anyhow!("header {h:?}: {name:?} is not a header name"))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| anyhow::anyhow!("header {h:?}: the value is not valid in a header"))?;
            Ok((name, value))
        })
        .collect()
}

impl Scenario for HttpScenario {
    fn name(&self) -> &str {
        "http"
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn expected(&self, status: StatusCode) -> bool {
        match self.expect {
            Some(want) => status == want,
            None => status.is_success(),
        }
    }

    fn generator(&self, _worker: usize, _workers: usize) -> Box<dyn Generator> {
        Box::new(Same(Request {
            method: self.method.clone(),
            uri: self.endpoint.uri(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            samples: 0,
        }))
    }
}

struct Same(Request);

impl Generator for Same {
    fn next(&mut self, _index: u64, _due_ms: i64) -> Option<Request> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_before_the_run() {
        let ok = parse_headers(&["Authorization: Bearer x".into(), "X-A:b".into()]).unwrap();
        assert_eq!(ok[0].0, "authorization");
        assert_eq!(ok[0].1, "Bearer x");
        assert_eq!((ok[1].0.as_str(), ok[1].1.to_str().unwrap()), ("x-a", "b"));
        for bad in ["no colon", "bad name: x", "X: a\nb"] {
            assert!(
                parse_headers(&[bad.into()]).is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
