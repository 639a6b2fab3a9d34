//! PromQL instant and range queries against the Prometheus query API (Strata, Prometheus,
//! VictoriaMetrics and anything else that speaks `/api/v1/query` and `/api/v1/query_range`).
//!
//! The queries come from a file or from a built-in mix: the dashboard queries of the engine's
//! benchmark (`strata_testkit::dashboard`), or, for `mixed` runs, a few
//! heavy ones (regex selectors over every series, long ranges). Request `i` of the run sends
//! query `i mod n`, ending at the moment it is due, so the mix is the same whatever the number
//! of workers. A query file has one query a line; a line may start with `range=DURATION` and
//! `step=DURATION` to make it a range query; `#` starts a comment line.

use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};

use super::{Generator, Request, Scenario};
use crate::load::client::Endpoint;
use crate::load::schedule::parse_duration;

/// One query of the mix.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub expr: String,
    /// 0 for an instant query.
    pub range_s: f64,
    pub step_s: f64,
}

/// The dashboard queries the query benchmark times.
pub fn dashboard() -> Vec<Query> {
    crate::query::QUERIES
        .iter()
        .map(|q| Query {
            expr: q.expr.to_owned(),
            range_s: q.range_s as f64,
            step_s: q.step_s as f64,
        })
        .collect()
}

/// Queries that are expensive on any system: regex selectors over every series of the
/// node_exporter-like data, and long ranges. `mixed` runs send them next to the writes.
pub fn heavy() -> Vec<Query> {
    let q = |expr: &str, range_s: f64, step_s: f64| Query {
        expr: expr.to_owned(),
        range_s,
        step_s,
    };
    vec![
        q(r#"count({__name__=~"node_.+"})"#, 0.0, 0.0),
        q(
            r#"sum by (instance) (rate({__name__=~"node_.+_total"}[5m]))"#,
            3600.0,
            15.0,
        ),
        q(
            r#"topk(10, last_over_time({__name__=~"node_.+", instance=~".+"}[10m]))"#,
            0.0,
            0.0,
        ),
        q(
            r#"max by (instance) (quantile_over_time(0.99, {__name__=~"node_(memory|filesystem)_.+"}[1h]))"#,
            0.0,
            0.0,
        ),
    ]
}

/// Reads a query file (see the module's comment).
pub fn parse_file(text: &str) -> anyhow::Result<Vec<Query>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line.trim();
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        let (mut range_s, mut step_s) = (0.0, 0.0);
        loop {
            let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let value = |prefix: &str| word.strip_prefix(prefix).map(parse_duration);
            if let Some(d) = value("range=") {
                range_s = d
                    .map_err(|e| anyhow::anyhow!("line {}: range: {e}", n + 1))?
                    .as_secs_f64();
            } else if let Some(d) = value("step=") {
                step_s = d
                    .map_err(|e| anyhow::anyhow!("line {}: step: {e}", n + 1))?
                    .as_secs_f64();
            } else {
                break;
            }
            rest = after.trim_start();
        }
        if rest.is_empty() {
            anyhow::bail!("line {}: no query after the options", n + 1);
        }
        if range_s > 0.0 && step_s <= 0.0 {
            step_s = (range_s / 250.0).max(1.0).round();
        }
        out.push(Query {
            expr: rest.to_owned(),
            range_s,
            step_s,
        });
    }
    if out.is_empty() {
        anyhow::bail!("the file holds no query");
    }
    Ok(out)
}

/// The query scenario.
#[derive(Debug, Clone)]
pub struct QueryScenario {
    /// The server's base (its path is ignored: the API paths are fixed).
    pub endpoint: Endpoint,
    pub queries: Arc<[Query]>,
    pub name: &'static str,
}

impl Scenario for QueryScenario {
    fn name(&self) -> &str {
        self.name
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn expected(&self, status: StatusCode) -> bool {
        status == StatusCode::OK
    }

    fn generator(&self, _worker: usize, _workers: usize) -> Box<dyn Generator> {
        Box::new(QueryGenerator {
            queries: self.queries.clone(),
            headers: Arc::from(vec![(
                hyper::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            )]),
        })
    }
}

struct QueryGenerator {
    queries: Arc<[Query]>,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

/// The API path of `q` ending at `end_ms`.
pub fn path(q: &Query, end_ms: i64) -> String {
    let expr: String = form_urlencoded::byte_serialize(q.expr.as_bytes()).collect();
    let end = end_ms as f64 / 1000.0;
    if q.range_s > 0.0 {
        format!(
            "/api/v1/query_range?query={expr}&start={:.3}&end={end:.3}&step={}",
            end - q.range_s,
            q.step_s
        )
    } else {
        format!("/api/v1/query?query={expr}&time={end:.3}")
    }
}

impl Generator for QueryGenerator {
    fn next(&mut self, index: u64, due_ms: i64) -> Option<Request> {
        let q = &self.queries[(index % self.queries.len() as u64) as usize];
        Some(Request {
            method: Method::GET,
            uri: path(q, due_ms)
                .parse()
                .expect("an encoded query is a valid path"),
            headers: self.headers.clone(),
            body: bytes::Bytes::new(),
            samples: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_files_give_instant_and_range_queries() {
        let text = "# dashboard\n\
                    up\n\
                    range=24h step=60s sum by (instance) (rate(x[5m]))\n\
                    \n\
                    range=1h   max(y)\n";
        let got = parse_file(text).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].expr.as_str(), got[0].range_s), ("up", 0.0));
        assert_eq!(got[1].expr, "sum by (instance) (rate(x[5m]))");
        assert_eq!((got[1].range_s, got[1].step_s), (86_400.0, 60.0));
        // A range without a step gets about 250 points.
        assert_eq!((got[2].range_s, got[2].step_s), (3600.0, 14.0));
        assert!(parse_file("# nothing\n").is_err());
        assert!(
            parse_file("range=1x up")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
        assert!(parse_file("range=1h").is_err());
    }

    #[test]
    fn paths_are_url_encoded_and_end_when_the_request_is_due() {
        let range = Query {
            expr: r#"rate(x{a=~"b.+"}[5m])"#.into(),
            range_s: 3600.0,
            step_s: 60.0,
        };
        assert_eq!(
            path(&range, 1_700_000_000_500),
            "/api/v1/query_range?query=rate%28x%7Ba%3D%7E%22b.%2B%22%7D%5B5m%5D%29\
             &start=1699996400.500&end=1700000000.500&step=60"
        );
        let instant = Query {
            expr: "1+1".into(),
            range_s: 0.0,
            step_s: 0.0,
        };
        assert_eq!(path(&instant, 1000), "/api/v1/query?query=1%2B1&time=1.000");
        // The mix is sent in order, whatever the worker.
        let s = QueryScenario {
            endpoint: Endpoint::parse("http://127.0.0.1:1", false).unwrap(),
            queries: Arc::from(vec![instant.clone(), range]),
            name: "query",
        };
        let mut g = s.generator(3, 4);
        assert!(
            g.next(0, 1000)
                .unwrap()
                .uri
                .to_string()
                .contains("query?query=1%2B1")
        );
        assert!(
            g.next(1, 1000)
                .unwrap()
                .uri
                .to_string()
                .contains("query_range")
        );
        assert!(
            g.next(2, 1000)
                .unwrap()
                .uri
                .to_string()
                .contains("query?query=1%2B1")
        );
    }

    #[test]
    fn the_built_in_mixes_are_not_empty() {
        assert!(dashboard().len() >= 20);
        assert!(heavy().iter().all(|q| q.expr.contains("=~")));
    }
}
