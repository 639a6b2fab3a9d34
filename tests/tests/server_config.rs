//! The real binary's configuration: a YAML file under the flags, reloaded by `POST /-/reload`
//! and by SIGHUP; a broken file changes nothing; `/metrics` reports what happened.

use std::process::Command;
use std::time::{Duration, Instant};

use strata_testkit::time::now_ms;
use strata_tests::server::{Reply, Server, agent, remote_write};
use strata_wire::remote_write::v1::{Label, Sample, TimeSeries, WriteRequest};

/// One series with `labels` labels besides its name, and one sample.
fn request(labels: usize, t: i64) -> WriteRequest {
    let mut ls = vec![Label {
        name: "__name__".into(),
        value: "config_test".into(),
    }];
    ls.extend((0..labels).map(|i| Label {
        name: format!("l{i}"),
        value: "v".into(),
    }));
    WriteRequest {
        timeseries: vec![TimeSeries {
            labels: ls,
            samples: vec![Sample {
                value: 1.0,
                timestamp: t,
            }],
            exemplars: vec![],
            histograms: vec![],
        }],
        metadata: vec![],
    }
}

fn post(http: &ureq::Agent, url: &str) -> Reply {
    let mut r = http.post(url).send_empty().expect("POST");
    Reply {
        status: r.status().as_u16(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// Limits and the admin API follow the file on reload (endpoint and SIGHUP); a file with a
/// mistake is refused with its line, and the running settings stay.
#[test]
fn reload_applies_the_file_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.yml");
    std::fs::write(
        &config,
        "remote_write:\n  max_labels_per_series: 6\nstorage:\n  retention_time: 30d\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    server.wait_ready(Duration::from_secs(30));
    let http = agent();
    let t = now_ms();
    // The name and 5 labels: 6, within the file's limit.
    assert_eq!(remote_write(&http, &server.url, &request(5, t)).status, 204);

    // Lowered by the endpoint: the same series is now refused, with the limit in the message.
    std::fs::write(
        &config,
        "remote_write:\n  max_labels_per_series: 3\nenable_admin_api: true\n",
    )
    .unwrap();
    let reply = post(&http, &format!("{}/-/reload", server.url));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let refused = remote_write(&http, &server.url, &request(5, t + 1000));
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("more than the 3 allowed"),
        "{}",
        refused.body
    );
    // The admin API was switched on by the same reload.
    let deleted = post(
        &http,
        &format!(
            "{}/api/v1/admin/tsdb/delete_series?match[]=config_test",
            server.url
        ),
    );
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    // A mistake: 500 naming the line, and the running limit stays 3.
    std::fs::write(&config, "remote_write:\n  max_labels: 10\n").unwrap();
    let reply = post(&http, &format!("{}/-/reload", server.url));
    assert_eq!(reply.status, 500);
    assert!(reply.body.contains("line 2"), "{}", reply.body);
    assert_eq!(
        remote_write(&http, &server.url, &request(5, t + 2000)).status,
        400
    );

    // Raised by SIGHUP: accepted again once the signal is handled.
    std::fs::write(&config, "remote_write:\n  max_labels_per_series: 10\n").unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut t_next = t + 3000;
    loop {
        let reply = remote_write(&http, &server.url, &request(5, t_next));
        if reply.status == 204 {
            break;
        }
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload within 30 s"
        );
        t_next += 1;
        std::thread::sleep(Duration::from_millis(20));
    }

    // /metrics counted the refusals and the stored samples.
    let mut r = http
        .get(format!("{}/metrics", server.url))
        .call()
        .expect("GET /metrics");
    let text = r.body_mut().read_to_string().unwrap();
    let value = |line_prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .unwrap_or_else(|| panic!("no {line_prefix} in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(value("strata_remote_write_samples_rejected_total{reason=\"bad_data\"}") >= 2.0);
    assert_eq!(value("strata_remote_write_samples_ingested_total"), 2.0);
    assert!(value("strata_http_requests_total{handler=\"/api/v1/write\",code=\"204\"}") >= 2.0);
    // The binary's allocator reports its heap: what the program holds fits in the pages in
    // use, which fit in what is resident. jemalloc's "resident" is a maximum (pages it mapped
    // and never touched count), so it is not compared with the kernel's RSS, which it exceeded
    // on some machines.
    let allocated = value("strata_allocator_allocated_bytes");
    let active = value("strata_allocator_active_bytes");
    let resident = value("strata_allocator_resident_bytes");
    assert!(allocated > 0.0, "allocated {allocated}");
    assert!(
        allocated <= active && active <= resident,
        "{allocated} {active} {resident}"
    );
    assert!(value("process_resident_memory_bytes") > 0.0, "{text}");
    server.stop();
}

/// Flags win over the file; a file with a mistake stops the start with a message.
#[test]
fn flags_override_the_file_and_a_broken_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.yml");
    std::fs::write(&config, "storage:\n  fsync: sometimes\n").unwrap();
    let out = Command::new(strata_tests::server::strata_binary())
        .args(["--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fsync"), "{stderr}");

    // The same file with the flag fixing it: starts.
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap(), "--fsync", "always"],
    );
    server.wait_ready(Duration::from_secs(30));
    server.stop();
}
