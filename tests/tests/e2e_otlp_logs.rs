//! A real OTLP client against the real server: the OpenTelemetry Python SDK's OTLP/HTTP log
//! exporter (PyPI's `opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http`, gzip on)
//! sends Python `logging` records to `strata serve`; they must come back through
//! `/loki/api/v1/query_range` line for line, under the labels and metadata Loki's mapping
//! gives them.
//!
//! The Python comes from `$STRATA_PYTHON` or `.ci/venv/bin/python` (`.ci/run` creates that
//! venv from `.ci/requirements-python.txt`). Without it the test is skipped, and fails instead
//! under `STRATA_E2E=1`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use strata_tests::server::{Server, agent, get_json, urlencode, venv_python};

/// The lines the client logs: plain, quoted, tabbed, multi-line and non-ASCII.
const LINES: [&str; 5] = [
    "payment accepted order=1001",
    "card \"4242\" declined\tcode=51",
    "stack trace follows\n  at pay()\n  at main()",
    "Überweisung fehlgeschlagen: 残高不足",
    "retry 3 of 3",
];

const SCRIPT: &str = r#"
import json, logging, sys
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

endpoint, lines = sys.argv[1], json.loads(sys.argv[2])
provider = LoggerProvider(resource=Resource.create({"service.name": "e2e-otlp", "k8s.pod.name": "pod-7", "host.name": "box"}))
provider.add_log_record_processor(SimpleLogRecordProcessor(
    OTLPLogExporter(endpoint=endpoint, compression=Compression.Gzip, timeout=10)))
log = logging.getLogger("e2e.payments")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
for i, line in enumerate(lines):
    log.warning(line, extra={"attempt": i})
provider.force_flush()
provider.shutdown()
"#;

#[test]
fn the_python_sdk_s_log_records_come_back_line_for_line() {
    let Some(python) =
        venv_python("opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.http")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let strata = Server::start(dir.path(), &[]);
    strata.wait_ready(Duration::from_secs(30));
    let lines = serde_json::to_string(&LINES).unwrap();
    let out = Command::new(&python)
        .args(["-c", SCRIPT, &format!("{}/v1/logs", strata.url), &lines])
        .output()
        .expect("run the Python OTLP client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the client failed: {stderr}");
    assert!(
        !stderr.contains("Failed to export"),
        "the exporter reported a failure: {stderr}"
    );

    // Every record was acknowledged before the script ended: no waiting needed.
    let http = agent();
    let (status, answer) = get_json(
        &http,
        &format!(
            "{}/loki/api/v1/query_range?direction=forward&limit=100&since=1h&query={}",
            strata.url,
            urlencode(r#"{service_name="e2e-otlp"}"#)
        ),
    );
    assert_eq!(status, 200, "{answer}");
    let result = answer["data"]["result"].as_array().expect("streams");
    assert_eq!(result.len(), 1, "{answer}");
    // The SDK adds `service.instance.id` (a UUID per process), a label in Loki's mapping too.
    let labels = result[0]["stream"].as_object().expect("labels");
    let names: Vec<&str> = labels.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["k8s_pod_name", "service_instance_id", "service_name"],
        "{labels:?}"
    );
    assert_eq!(labels["k8s_pod_name"], "pod-7");
    assert_eq!(labels["service_name"], "e2e-otlp");
    let got: Vec<&str> = result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_str().unwrap())
        .collect();
    assert_eq!(got, LINES, "the lines, exactly, in order");

    // The record's attributes, scope and severity are structured metadata LogQL can filter on.
    let (_, answer) = get_json(
        &http,
        &format!(
            "{}/loki/api/v1/query_range?since=1h&query={}",
            strata.url,
            urlencode(
                r#"{service_name="e2e-otlp"} | attempt >= 3 | severity_number = 13 | scope_name="e2e.payments""#
            )
        ),
    );
    let values: Vec<&Value> = answer["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .flat_map(|s| s["values"].as_array().unwrap())
                .collect()
        })
        .unwrap_or_default();
    let lines: Vec<&str> = values.iter().map(|v| v[1].as_str().unwrap()).collect();
    assert_eq!(
        lines,
        ["retry 3 of 3", "Überweisung fehlgeschlagen: 残高不足"],
        "{answer}"
    );
    strata.stop();
}
