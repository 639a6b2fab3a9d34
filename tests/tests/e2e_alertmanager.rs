//! A real Alertmanager (0.25, Debian's `prometheus-alertmanager`) receiving Strata's alerts:
//! an alert that fires in Strata shows in Alertmanager's `/api/v2/alerts` with the same
//! labels (plus the external labels) and annotations; when it resolves in Strata it leaves
//! Alertmanager's list of active alerts; an alert that fires while Alertmanager is stopped
//! reaches it once it is back on the same address.
//!
//! Skipped when the program is missing, a failure under `STRATA_E2E=1`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use strata_testkit::time::now_ms;
use strata_tests::server::{
    Guard, Server, agent, free_port, require_program, series_of, try_get_json, wait_for, write_ok,
};
use strata_wire::remote_write::v1::TimeSeries;

fn errors(instance: &str, v: f64) -> TimeSeries {
    series_of(
        &[("__name__", "app_errors"), ("instance", instance)],
        &[(now_ms(), v)],
    )
}

fn start_alertmanager(program: &Path, dir: &Path, port: u16) -> Guard {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n",
    )
    .unwrap();
    Guard(
        Command::new(program)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    )
}

/// Alertmanager's active alerts named `name` (an empty list while it is not answering).
fn am_alerts(http: &ureq::Agent, am: &str, name: &str) -> Vec<Value> {
    match try_get_json(
        http,
        &format!("{am}/api/v2/alerts?filter=alertname%3D%22{name}%22"),
    ) {
        Ok((200, Value::Array(list))) => list,
        _ => Vec::new(),
    }
}

#[test]
fn alertmanager_receives_fires_and_resolves_and_catches_up_after_being_down() {
    let Some(program) = require_program("prometheus-alertmanager", "prometheus-alertmanager")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let am_port = free_port();
    let am_url = format!("http://127.0.0.1:{am_port}");
    let am = start_alertmanager(&program, dir.path(), am_port);
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/app.yml"),
        "groups:\n  - name: app\n    rules:\n      - alert: AppErrors\n        expr: app_errors > 1\n        labels: {severity: page}\n        annotations:\n          summary: '{{ $labels.instance }} has {{ $value }} errors'\n",
    )
    .unwrap();
    let config = dir.path().join("strata.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  evaluation_interval: 1s\n  external_labels: {{cluster: eu1}}\nrule_files: [rules/*.yml]\nalerting:\n  resend_delay: 2s\n  alertmanagers:\n    - static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]\n      timeout: 2s\n"
        ),
    )
    .unwrap();
    let strata = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    strata.wait_ready(Duration::from_secs(30));
    let http = agent();
    write_ok(&http, &strata.url, vec![errors("h1", 7.0)]);

    // Fires in Strata, shows in Alertmanager.
    let received = wait_for(Duration::from_secs(60), "the alert in Alertmanager", || {
        am_alerts(&http, &am_url, "AppErrors").into_iter().next()
    });
    assert_eq!(
        received["labels"],
        serde_json::json!({"alertname": "AppErrors", "instance": "h1", "severity": "page", "cluster": "eu1"})
    );
    assert_eq!(received["annotations"]["summary"], "h1 has 7 errors");
    assert_eq!(received["status"]["state"], "active");
    assert!(
        received["generatorURL"]
            .as_str()
            .is_some_and(|u| u.contains("/graph?g0.expr=app_errors")),
        "{received}"
    );

    // Resolved in Strata: gone from Alertmanager's active alerts.
    write_ok(&http, &strata.url, vec![errors("h1", 0.0)]);
    wait_for(
        Duration::from_secs(60),
        "the alert resolved in Alertmanager",
        || {
            am_alerts(&http, &am_url, "AppErrors")
                .is_empty()
                .then_some(())
        },
    );

    // Alertmanager down while another alert fires; back on the same address, it gets it.
    drop(am);
    write_ok(&http, &strata.url, vec![errors("h2", 9.0)]);
    wait_for(Duration::from_secs(30), "Strata tried and failed", || {
        let mut r = http.get(format!("{}/metrics", strata.url)).call().ok()?;
        let text = r.body_mut().read_to_string().ok()?;
        text.lines()
            .find(|l| l.starts_with("strata_notifications_errors_total{"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .filter(|n| *n >= 1.0)
    });
    let _am = start_alertmanager(&program, dir.path(), am_port);
    let back = wait_for(
        Duration::from_secs(90),
        "the alert after Alertmanager restarted",
        || {
            am_alerts(&http, &am_url, "AppErrors")
                .into_iter()
                .find(|a| a["labels"]["instance"] == "h2")
        },
    );
    assert_eq!(back["annotations"]["summary"], "h2 has 9 errors");
    strata.stop();
}
