//! Strata's load generator and benchmark suites, as a library its binaries share.
//!
//! [`ingest`] drives remote-write ingestion against any server that speaks Prometheus remote
//! write 1.0 (Strata, Prometheus, VictoriaMetrics) and measures it from outside, through the
//! network and `/proc`; `src/bin/ingest-compare.rs` is its command line and
//! `scripts/ingest-compare.sh` runs it against the three systems side by side. [`query`]
//! loads hours of the same data into such a server and times typical dashboard queries
//! against its Prometheus query API (`src/bin/query-compare.rs`, `scripts/query-compare.sh`).
//! [`rules`] measures what evaluating 1,000 recording rules over the same data costs a server
//! (`src/bin/rules-compare.rs`, `scripts/rules-compare.sh`). [`logs`] measures the log store:
//! size against `zstd`, ingest per CPU-second, searches against `rg`, memory under live load.

pub mod ingest;
pub mod load;
pub mod logs;
pub mod query;
pub mod rules;

use std::time::Duration;

/// The configuration of a keep-alive HTTP client whose every phase (connect, sending the
/// request, awaiting the answer, reading its body) is bounded by `timeout`.
///
/// Phase timeouts, not `timeout_global`: with an overall timeout ureq resolves the host of
/// every request on a new thread (so that the lookup can be abandoned), and that spawn costs
/// more than a small query takes to answer, so it would be timed as the server's latency.
pub fn http_client(timeout: Duration) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_send_body(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
}

/// The results written by the `run` command of a compare binary, read back for a report.
pub fn read_results<T: serde::de::DeserializeOwned>(
    paths: &[std::path::PathBuf],
) -> anyhow::Result<Vec<T>> {
    use anyhow::Context;
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        })
        .collect()
}

/// Prints a loopback port that is free now (the scripts start a server on it).
pub fn print_free_port() -> anyhow::Result<()> {
    use anyhow::Context;
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port on 127.0.0.1")?;
    println!("{}", listener.local_addr()?.port());
    Ok(())
}

/// `s` encoded for a URL's query string.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
