//! A real Loki client against the real server: PyPI's `loki-logger-handler` (a Python logging
//! handler that pushes gzipped JSON to `/loki/api/v1/push`, as many services ship their logs)
//! sends records to `strata serve`; they must come back through LogQL exactly, its JSON lines
//! read by `| json`.
//!
//! The Python comes from `$STRATA_PYTHON` or `.ci/venv/bin/python` (`.ci/run` creates it from
//! `.ci/requirements-python.txt`). Without it the test is skipped, and fails instead under
//! `STRATA_E2E=1`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use strata_tests::server::{Server, agent, get_json, urlencode, venv_python};

/// The messages: plain, quoted, tabbed, multi-line and non-ASCII.
const MESSAGES: [&str; 4] = [
    "order 1001 paid",
    "card \"4242\" declined\tcode=51",
    "stack trace follows\n  at pay()",
    "Überweisung fehlgeschlagen: 残高不足",
];

/// Logs the messages (the odd ones as errors) and exits: the handler sends what it holds when
/// the interpreter exits, before the process ends.
const SCRIPT: &str = r#"
import json, logging, sys
from loki_logger_handler.loki_logger_handler import LokiLoggerHandler

url, messages = sys.argv[1], json.loads(sys.argv[2])
handler = LokiLoggerHandler(url=url, labels={"app": "e2e-loki", "env": "test"}, timeout=1, compressed=True, enable_self_errors=True)
log = logging.getLogger("e2e.loki")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(handler)
for i, m in enumerate(messages):
    (log.error if i % 2 else log.info)(m)
"#;

#[test]
fn a_python_loki_handler_s_records_come_back_through_logql() {
    let Some(python) = venv_python("loki_logger_handler") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let strata = Server::start(dir.path(), &[]);
    strata.wait_ready(Duration::from_secs(30));
    let out = Command::new(&python)
        .args([
            "-c",
            SCRIPT,
            &format!("{}/loki/api/v1/push", strata.url),
            &serde_json::to_string(&MESSAGES).unwrap(),
        ])
        .output()
        .expect("run the Python Loki client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the client failed: {stderr}");
    assert!(
        !stderr.contains("Error"),
        "the handler reported an error: {stderr}"
    );

    let http = agent();
    let (status, answer) = get_json(
        &http,
        &format!(
            "{}/loki/api/v1/query_range?direction=forward&since=1h&query={}",
            strata.url,
            urlencode(r#"{app="e2e-loki"} | json | __error__="" | keep level, message"#)
        ),
    );
    assert_eq!(status, 200, "{answer}");
    // Entries in time order per stream; streams sorted by labels: errors, then infos.
    let mut got: Vec<(String, String)> = Vec::new();
    for stream in answer["data"]["result"].as_array().expect("streams") {
        let level = stream["stream"]["level"].as_str().unwrap_or_default();
        let message: &Value = &stream["stream"]["message"];
        assert_eq!(stream["values"].as_array().unwrap().len(), 1, "{stream}");
        got.push((
            level.to_owned(),
            message.as_str().unwrap_or_default().to_owned(),
        ));
    }
    got.sort_by(|a, b| a.1.cmp(&b.1));
    let mut want: Vec<(String, String)> = MESSAGES
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                if i % 2 == 1 { "ERROR" } else { "INFO" }.to_owned(),
                (*m).to_owned(),
            )
        })
        .collect();
    want.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(got, want, "{answer}");

    // A metric query over them.
    let (_, answer) = get_json(
        &http,
        &format!(
            "{}/loki/api/v1/query?query={}",
            strata.url,
            urlencode(
                r#"sum by (level) (count_over_time({app="e2e-loki", env="test"} | json [1h]))"#
            )
        ),
    );
    let counts: Vec<(String, String)> = answer["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|s| {
            (
                s["metric"]["level"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("ERROR".to_owned(), "2".to_owned()),
            ("INFO".to_owned(), "2".to_owned())
        ]
    );
    strata.stop();
}
