//! Rules in the real binary: rule files from the configuration evaluated on their schedule,
//! alerts and recorded series visible through the HTTP API, a reload with a broken rule file
//! refused with its line while the running rules go on, and alert states that survive a
//! `kill -9` (a firing alert stays firing, whatever its `for`; a pending one keeps the time it
//! had been pending) with no recorded sample lost.
//!
//! Waiting is polling with a deadline: evaluations happen on the server's clock.

use std::path::Path;
use std::time::Duration;

use strata_testkit::time::now_ms;
use strata_tests::server::{Server, agent, get_json, series_of, wait_for, write_ok};
use strata_wire::remote_write::v1::TimeSeries;

fn series(name: &str, instance: &str, v: f64, t: i64) -> TimeSeries {
    series_of(
        &[("__name__", name), ("instance", instance), ("job", "app")],
        &[(t, v)],
    )
}

fn alerts(http: &ureq::Agent, url: &str) -> Vec<serde_json::Value> {
    let (status, body) = get_json(http, &format!("{url}/api/v1/alerts"));
    assert_eq!(status, 200, "{body}");
    body["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn alert<'a>(list: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    list.iter().find(|a| a["labels"]["alertname"] == name)
}

fn query(http: &ureq::Agent, url: &str, q: &str) -> Vec<serde_json::Value> {
    let (status, body) = get_json(
        http,
        &format!(
            "{url}/api/v1/query?query={}",
            form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        ),
    );
    assert_eq!(status, 200, "{body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn config(dir: &Path, rules: &str) -> String {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/app.yml"), rules).unwrap();
    let config = dir.join("strata.yml");
    std::fs::write(
        &config,
        "global:\n  evaluation_interval: 1s\n  external_labels: {cluster: eu1}\nrule_files:\n  - rules/*.yml\n",
    )
    .unwrap();
    config.to_str().unwrap().to_owned()
}

/// Starts the binary on `dir/data` with `config`, ready.
fn start(dir: &Path, config: &str) -> (Server, std::path::PathBuf) {
    let data = dir.join("data");
    let server = Server::start(&data, &["--config", config]);
    server.wait_ready(Duration::from_secs(30));
    (server, data)
}

const RULES: &str = "groups:
  - name: app
    rules:
      - record: job:app_errors:sum
        expr: sum by (job) (app_errors)
      - alert: AppErrors
        expr: app_errors > 1
        for: 2s
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.instance }} has {{ $value }} errors in {{ $externalLabels.cluster }}'
";

#[test]
fn rules_raise_alerts_record_series_and_survive_a_refused_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), RULES);
    let server = Server::start(&dir.path().join("data"), &["--config", &config]);
    server.wait_ready(Duration::from_secs(30));
    let http = agent();
    let url = &server.url;
    write_ok(
        &http,
        url,
        vec![
            series("app_errors", "h1", 5.0, now_ms()),
            series("app_errors", "h2", 0.0, now_ms()),
        ],
    );
    // Pending first (for: 2s), then firing.
    let pending = wait_for(Duration::from_secs(20), "the alert pending", || {
        alert(&alerts(&http, url), "AppErrors")
            .filter(|a| a["state"] == "pending")
            .cloned()
    });
    let firing = wait_for(Duration::from_secs(20), "the alert firing", || {
        alert(&alerts(&http, url), "AppErrors")
            .filter(|a| a["state"] == "firing")
            .cloned()
    });
    assert_eq!(pending["activeAt"], firing["activeAt"]);
    assert_eq!(
        firing["labels"],
        serde_json::json!({"alertname": "AppErrors", "instance": "h1", "job": "app", "severity": "page"})
    );
    assert_eq!(
        firing["annotations"]["summary"], "h1 has 5 errors in eu1",
        "{firing}"
    );
    assert_eq!(firing["value"], "5e+00");
    assert_eq!(alerts(&http, url).len(), 1, "h2 (0 errors) raises nothing");
    let firing_series = query(&http, url, "ALERTS{alertstate=\"firing\"}");
    assert_eq!(firing_series.len(), 1, "{firing_series:?}");
    assert_eq!(firing_series[0]["metric"]["instance"], "h1");
    let for_state = query(&http, url, "ALERTS_FOR_STATE");
    assert_eq!(for_state.len(), 1, "{for_state:?}");
    let recorded = query(&http, url, "job:app_errors:sum");
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["value"][1], "5");

    let (status, rules) = get_json(&http, &format!("{url}/api/v1/rules"));
    assert_eq!(status, 200);
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "app");
    assert_eq!(group["interval"].as_f64(), Some(1.0));
    assert_eq!(group["rules"][0]["type"], "recording");
    assert_eq!(group["rules"][1]["type"], "alerting");
    assert_eq!(group["rules"][1]["state"], "firing");
    assert_eq!(group["rules"][1]["duration"].as_f64(), Some(2.0));
    assert_eq!(group["rules"][1]["health"], "ok");
    let (_, only_records) = get_json(&http, &format!("{url}/api/v1/rules?type=record"));
    assert_eq!(
        only_records["data"]["groups"][0]["rules"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let rules_named = |query: &str| -> Vec<String> {
        let (status, body) = get_json(&http, &format!("{url}/api/v1/rules?{query}"));
        assert_eq!(status, 200, "{body}");
        body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(rules_named("type=alert"), ["AppErrors"]);
    assert_eq!(
        rules_named("rule_name[]=job:app_errors:sum"),
        ["job:app_errors:sum"]
    );
    assert!(rules_named("rule_group[]=nothing").is_empty());
    assert_eq!(rules_named("rule_group[]=app").len(), 2);
    let file = group["file"].as_str().unwrap().to_owned();
    assert_eq!(
        rules_named(&format!(
            "file[]={}",
            strata_tests::server::urlencode(&file)
        ))
        .len(),
        2
    );
    assert!(rules_named("file[]=other.yml").is_empty());
    let (_, lean) = get_json(&http, &format!("{url}/api/v1/rules?exclude_alerts=true"));
    assert!(
        lean["data"]["groups"][0]["rules"][1]
            .get("alerts")
            .is_none(),
        "{lean}"
    );
    let (status, _) = get_json(&http, &format!("{url}/api/v1/rules?type=bogus"));
    assert_eq!(status, 400);

    // A broken rule file: the reload is refused with its file and line, the rules go on.
    std::fs::write(
        dir.path().join("rules/broken.yml"),
        "groups:\n  - name: broken\n    rules:\n      - alert: X\n        expr: up\n        for: soon\n",
    )
    .unwrap();
    let mut reply = http
        .post(format!("{url}/-/reload"))
        .send_empty()
        .expect("POST /-/reload");
    let body = reply.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(reply.status().as_u16(), 500, "{body}");
    assert!(body.contains("broken.yml:6:"), "{body}");
    assert!(body.contains("not a valid duration"), "{body}");
    let before = group["rules"][0]["lastEvaluation"].clone();
    wait_for(
        Duration::from_secs(10),
        "an evaluation after the refused reload",
        || {
            let (_, rules) = get_json(&http, &format!("{url}/api/v1/rules"));
            let groups = rules["data"]["groups"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(groups.len(), 1, "the broken file was not loaded");
            (groups[0]["rules"][0]["lastEvaluation"] != before).then_some(())
        },
    );

    // A good reload that adds a group keeps the firing alert where it was.
    std::fs::write(
        dir.path().join("rules/broken.yml"),
        "groups:\n  - name: more\n    rules:\n      - record: app_errors:max\n        expr: max(app_errors)\n",
    )
    .unwrap();
    let reply = http
        .post(format!("{url}/-/reload"))
        .send_empty()
        .expect("POST /-/reload");
    assert_eq!(reply.status().as_u16(), 200);
    let (_, rules) = get_json(&http, &format!("{url}/api/v1/rules"));
    assert_eq!(rules["data"]["groups"].as_array().map(Vec::len), Some(2));
    let kept = alert(&alerts(&http, url), "AppErrors").cloned().unwrap();
    assert_eq!(kept["state"], "firing");
    assert_eq!(kept["activeAt"], firing["activeAt"]);

    let metrics = http
        .get(format!("{url}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("strata_rule_group_iterations_total{rule_group="),
        "{metrics}"
    );
    server.stop();
}

#[test]
fn alert_states_and_recorded_samples_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "groups:
  - name: app
    rules:
      - record: app_errors:copy
        expr: app_errors
      - alert: Fast
        expr: app_errors > 1
        for: 1s
      - alert: Slow
        expr: app_errors > 1
        for: 1h
";
    let config = config(dir.path(), rules);
    let (server, data) = start(dir.path(), &config);
    let http = agent();
    write_ok(
        &http,
        &server.url,
        vec![series("app_errors", "h1", 3.0, now_ms())],
    );
    let (fast, slow) = wait_for(Duration::from_secs(20), "Fast firing, Slow pending", || {
        let list = alerts(&http, &server.url);
        let fast = alert(&list, "Fast").filter(|a| a["state"] == "firing")?;
        let slow = alert(&list, "Slow").filter(|a| a["state"] == "pending")?;
        Some((fast.clone(), slow.clone()))
    });
    let recorded_before = wait_for(Duration::from_secs(10), "two recorded samples", || {
        let r = query(&http, &server.url, "count_over_time(app_errors:copy[1h])");
        let n: f64 = r.first()?["value"][1].as_str()?.parse().ok()?;
        (n >= 2.0).then_some(n)
    });
    server.kill9();

    let server = Server::start(&data, &["--config", &config]);
    server.wait_ready(Duration::from_secs(30));
    let url = &server.url;
    // At once, before any evaluation: the states are back.
    let list = alerts(&http, url);
    let fast_after = alert(&list, "Fast").expect("Fast restored");
    assert_eq!(
        fast_after["state"], "firing",
        "a firing alert is not put back to pending: {fast_after}"
    );
    assert_eq!(fast_after["activeAt"], fast["activeAt"]);
    let slow_after = alert(&list, "Slow").expect("Slow restored");
    assert_eq!(slow_after["state"], "pending");
    // Its pending time is kept; the time Strata was down does not count.
    let t = |a: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(a["activeAt"].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert!(t(slow_after) >= t(&slow), "{slow_after} vs {slow}");
    // A few evaluations later Fast is still firing, never pending.
    let evaluated = |http: &ureq::Agent| -> bool {
        let (_, rules) = get_json(http, &format!("{url}/api/v1/rules"));
        rules["data"]["groups"][0]["lastEvaluation"] != "0001-01-01T00:00:00Z"
    };
    wait_for(
        Duration::from_secs(10),
        "an evaluation after the restart",
        || {
            let list = alerts(&http, url);
            let fast = alert(&list, "Fast")?;
            assert_eq!(fast["state"], "firing", "{fast}");
            (evaluated(&http) && query(&http, url, "ALERTS{alertname=\"Fast\"}").len() == 1)
                .then_some(())
        },
    );
    let recorded_after: f64 = query(&http, url, "count_over_time(app_errors:copy[1h])")[0]["value"]
        [1]
    .as_str()
    .unwrap()
    .parse()
    .unwrap();
    assert!(
        recorded_after >= recorded_before,
        "recorded samples were lost: {recorded_after} < {recorded_before}"
    );
    server.stop();
}

/// Slack notifications through the real binary: the firing message, none again after a
/// `kill -9` and restart (the notification log is durable; `repeat_interval` is an hour), a
/// silence made through the API keeps a new alert quiet, and the resolution goes out.
#[test]
fn slack_messages_are_neither_repeated_after_kill_9_nor_sent_for_silenced_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, messages) = strata_testkit::receiver::receiver(vec![]);
    let rules = "groups:
  - name: app
    rules:
      - alert: Fast
        expr: app_errors > 1
        for: 1s
        annotations:
          summary: '{{ $labels.instance }} has {{ $value }} errors'
";
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/app.yml"), rules).unwrap();
    let config = dir.path().join("strata.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules/*.yml]\nalerting:\n  resend_delay: 1s\n\
             notifiers:\n  receivers:\n    - name: ops\n      slack: {{webhook_url: '{hook}/services/T0/B0/X0', channel: '#ops', username: strata}}\n\
             \x20 route: {{receiver: ops, group_by: [alertname, instance], group_wait: 0s, group_interval: 300ms, repeat_interval: 1h}}\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let (server, data) = start(dir.path(), &config);
    let http = agent();
    write_ok(
        &http,
        &server.url,
        vec![series("app_errors", "h1", 4.0, now_ms())],
    );
    let first = messages
        .recv_timeout(Duration::from_secs(30))
        .expect("the firing message");
    assert_eq!(first.path, "/services/T0/B0/X0");
    let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["channel"], "#ops");
    assert_eq!(body["username"], "strata");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING:1] Fast h1"),
        "{body}"
    );
    assert_eq!(body["attachments"][0]["color"], "danger");
    assert_eq!(
        body["attachments"][0]["text"], "*Fast*: h1 has 4 errors",
        "{body}"
    );
    // Recorded in the notification log once counted (delivery is at least once: a kill
    // between the receiver's answer and the record would send it again).
    wait_for(Duration::from_secs(10), "the message counted", || {
        let mut r = http.get(format!("{}/metrics", server.url)).call().ok()?;
        let text = r.body_mut().read_to_string().ok()?;
        text.contains("strata_notifier_messages_sent_total{receiver=\"ops\"} 1")
            .then_some(())
    });
    server.kill9();

    let server = Server::start(&data, &["--config", &config]);
    server.wait_ready(Duration::from_secs(30));
    let url = &server.url;
    // Several resends and group intervals pass: no second message within the repeat interval.
    assert!(
        messages.recv_timeout(Duration::from_secs(4)).is_err(),
        "a duplicate message after the restart"
    );
    assert_eq!(
        alert(&alerts(&http, url), "Fast").map(|a| a["state"].clone()),
        Some("firing".into())
    );

    // A silence for h2, made through Alertmanager's API shape, keeps h2's alert quiet.
    let silence = serde_json::json!({
        "matchers": [{"name": "instance", "value": "h2", "isRegex": false, "isEqual": true}],
        "startsAt": chrono::Utc::now().to_rfc3339(),
        "endsAt": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "test",
        "comment": "maintenance of h2",
    });
    let mut reply = http
        .post(format!("{url}/api/v2/silences"))
        .header("Content-Type", "application/json")
        .send(silence.to_string())
        .expect("POST /api/v2/silences");
    let text = reply.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(reply.status().as_u16(), 200, "{text}");
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, listed) = get_json(&http, &format!("{url}/api/v2/silences"));
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"]["state"], "active");
    write_ok(&http, url, vec![series("app_errors", "h2", 9.0, now_ms())]);
    wait_for(Duration::from_secs(20), "h2 firing", || {
        alerts(&http, url)
            .iter()
            .any(|a| a["labels"]["instance"] == "h2" && a["state"] == "firing")
            .then_some(())
    });
    // h1 resolves: its resolution is the next message (h2's silenced one never comes).
    write_ok(&http, url, vec![series("app_errors", "h1", 0.0, now_ms())]);
    let resolved = messages
        .recv_timeout(Duration::from_secs(30))
        .expect("the resolved message");
    let body: serde_json::Value = serde_json::from_slice(&resolved.body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED] Fast h1"),
        "{body}"
    );
    assert_eq!(body["attachments"][0]["color"], "good");
    assert!(
        messages.recv_timeout(Duration::from_secs(2)).is_err(),
        "a message for the silenced alert"
    );
    server.stop();
}

/// Log rules (`log_rule_files`, Loki's ruler format) on the real server: pushed log lines
/// become a recorded metric PromQL reads, and an alert.
#[test]
fn log_rules_turn_pushed_lines_into_series_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("log-rules")).unwrap();
    std::fs::write(
        dir.path().join("log-rules/app.yml"),
        "groups:\n  - name: logs\n    rules:\n      - record: app:log_errors:count5m\n        expr: sum by (app) (count_over_time({app=\"pay\"} |= \"error\" [5m]))\n      - alert: PayErrors\n        expr: sum by (app) (count_over_time({app=\"pay\"} |= \"error\" [5m])) > 2\n",
    )
    .unwrap();
    let config = dir.path().join("strata.yml");
    std::fs::write(
        &config,
        "global:\n  evaluation_interval: 1s\nlog_rule_files:\n  - log-rules/*.yml\n",
    )
    .unwrap();
    let (server, _) = start(dir.path(), config.to_str().unwrap());
    let http = agent();
    let url = &server.url;
    let t = now_ms() * 1_000_000;
    let values: Vec<serde_json::Value> = (0..4)
        .map(|i| serde_json::json!([(t - 1_000_000 * i).to_string(), format!("error {i}")]))
        .collect();
    let reply = strata_tests::server::post_raw(
        &http,
        &format!("{url}/loki/api/v1/push"),
        "application/json",
        None,
        serde_json::json!({"streams": [{"stream": {"app": "pay"}, "values": values}]})
            .to_string()
            .into_bytes(),
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    let recorded = wait_for(Duration::from_secs(20), "the recorded log metric", || {
        let rows = query(&http, url, "app:log_errors:count5m");
        (!rows.is_empty()).then_some(rows)
    });
    assert_eq!(recorded[0]["metric"]["app"], "pay");
    assert_eq!(recorded[0]["value"][1], "4");
    let firing = wait_for(Duration::from_secs(20), "PayErrors firing", || {
        alert(&alerts(&http, url), "PayErrors")
            .filter(|a| a["state"] == "firing")
            .cloned()
    });
    assert_eq!(firing["labels"]["app"], "pay");
    server.stop();
}
