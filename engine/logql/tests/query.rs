//! Log queries against a log store with sealed blocks and a head: what passes each filter,
//! the limit counted after filtering, and the pages a needle lets the store skip; parsers,
//! label filters and the other stages; metric queries at instants and over ranges.

mod common;

use std::collections::BTreeMap;
use strata_core::labels::Labels;

use strata_logql::{EvalError, Expr, MetricLimits, MetricSeries, eval_metric, parse, select_logs};
use strata_logs::{Direction, Entry, LogStore};

use common::NOW_MS;
const NOW_NS: i64 = NOW_MS * 1_000_000;
const T0: i64 = NOW_NS - 3_600_000_000_000;

fn store() -> LogStore {
    common::empty_store()
}

/// `api`: 20,000 health checks a millisecond apart, one of them an upstream timeout; `db`:
/// 100 slow-query lines. Sealed, then 10 more `api` lines in the head.
fn filled() -> LogStore {
    let store = store();
    let mut app = store.appender();
    let api = Labels::new([("app", "api"), ("env", "prod")]).unwrap();
    let db = Labels::new([("app", "db"), ("env", "prod")]).unwrap();
    for i in 0..20_000i64 {
        let line = if i == 12_345 {
            "level=error msg=\"upstream Timeout\" path=/checkout status=504".to_string()
        } else {
            format!(
                "level=info msg=\"health check\" path=/healthz status=200 took={}us",
                i % 911
            )
        };
        app.append(&api, Entry::new(T0 + i * 1_000_000, line))
            .unwrap();
    }
    for i in 0..100i64 {
        app.append(
            &db,
            Entry::new(
                T0 + i * 7_000_000,
                format!("slow query {i} took {}ms", 100 + i),
            ),
        )
        .unwrap();
    }
    app.commit().unwrap();
    store.seal().unwrap().unwrap();
    let mut app = store.appender();
    for i in 0..10i64 {
        app.append(
            &api,
            Entry::new(
                NOW_NS - 1_000 + i,
                format!("level=error msg=\"timeout\" n={i}"),
            ),
        )
        .unwrap();
    }
    app.commit().unwrap();
    store
}

fn lines(store: &LogStore, query: &str, direction: Direction, limit: usize) -> Vec<String> {
    let Expr::Log(q) = parse(query).unwrap() else {
        panic!("{query}: not a log query")
    };
    select_logs(store, &q, i64::MIN, i64::MAX, direction, limit)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.entries.into_iter().map(|e| e.line))
        .collect()
}

#[test]
fn line_filters_keep_what_loki_keeps_across_blocks_and_head() {
    let store = filled();
    assert_eq!(
        lines(
            &store,
            r#"{app="api"} |= "Timeout""#,
            Direction::Backward,
            100
        ),
        ["level=error msg=\"upstream Timeout\" path=/checkout status=504"]
    );
    let errors = lines(
        &store,
        r#"{env="prod"} |~ "(?i)timeout""#,
        Direction::Backward,
        100,
    );
    assert_eq!(errors.len(), 11, "the sealed one and the head's ten");
    assert_eq!(errors[0], "level=error msg=\"timeout\" n=9", "newest first");
    // The limit counts lines that passed, not lines read.
    assert_eq!(
        lines(&store, r#"{app="api"} |= "error""#, Direction::Forward, 2),
        [
            "level=error msg=\"upstream Timeout\" path=/checkout status=504",
            "level=error msg=\"timeout\" n=0"
        ]
    );
    let slow = lines(
        &store,
        r#"{app=~"d.*"} |~ "took 1[0-9]{2}ms" != "query 5" !~ `query [0-4]\d`"#,
        Direction::Forward,
        1_000,
    );
    // Not "query 5" nor "query 50"-"query 59"; not "query 10"-"query 49".
    assert_eq!(slow.len(), 100 - 11 - 40, "{slow:?}");
    assert_eq!(
        lines(
            &store,
            r#"{app="api"} |= "no such thing""#,
            Direction::Backward,
            10
        ),
        Vec::<String>::new()
    );
}

#[test]
fn a_needle_reads_only_the_pages_that_may_hold_it() {
    let store = filled();
    let pages = |store: &LogStore| {
        let s = store.page_stats();
        (s.read, s.skipped)
    };
    let (read0, skipped0) = pages(&store);
    let bytes0 = store.page_stats().bytes_read;
    let got = lines(
        &store,
        r#"{app="api"} |= "upstream Timeout""#,
        Direction::Backward,
        100,
    );
    assert_eq!(got.len(), 1);
    let (read1, skipped1) = pages(&store);
    assert_eq!(read1 - read0, 1, "only the page holding the line");
    let bytes1 = store.page_stats().bytes_read;
    assert!(
        bytes1 > bytes0,
        "the page read is counted in decompressed bytes"
    );
    assert!(
        skipped1 - skipped0 >= 2,
        "the others skipped: {}",
        skipped1 - skipped0
    );
    // Without a needle (a regex that is no literal, a negative filter) every page is read.
    lines(
        &store,
        r#"{app="api"} |~ "upstream.Timeout""#,
        Direction::Backward,
        100,
    );
    let (read2, skipped2) = pages(&store);
    assert_eq!(read2 - read1, skipped1 - skipped0 + 1);
    assert_eq!(skipped2, skipped1);
}

/// `(labels, lines)` of each stream a log query returns, oldest first.
fn streams(store: &LogStore, query: &str) -> Vec<(BTreeMap<String, String>, Vec<String>)> {
    let Expr::Log(q) = parse(query).unwrap_or_else(|e| panic!("{query}: {e}")) else {
        panic!("{query}: not a log query")
    };
    select_logs(store, &q, i64::MIN, i64::MAX, Direction::Forward, 5_000)
        .unwrap()
        .into_iter()
        .map(|s| (s.labels, s.entries.into_iter().map(|e| e.line).collect()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn metric(
    store: &LogStore,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<MetricSeries>, EvalError> {
    let Expr::Metric(q) = parse(query).unwrap_or_else(|e| panic!("{query}: {e}")) else {
        panic!("{query}: not a metric query")
    };
    eval_metric(store, &q, start, end, step, &MetricLimits::default())
}

#[test]
fn logfmt_and_label_filters_add_and_test_labels() {
    let store = filled();
    let got = streams(&store, r#"{app="api"} | logfmt | status >= 500"#);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].0,
        map(&[
            ("app", "api"),
            ("env", "prod"),
            ("level", "error"),
            ("msg", "upstream Timeout"),
            ("path", "/checkout"),
            ("status", "504"),
        ])
    );
    // Durations compare as durations; entries without the label are dropped.
    let slow: usize = streams(&store, r#"{app="api"} | logfmt | took > 900us"#)
        .iter()
        .map(|(_, l)| l.len())
        .sum();
    let expected = (0..20_000i64)
        .filter(|&i| i != 12_345 && i % 911 > 900)
        .count();
    assert_eq!(slow, expected);
    // `or`, `and`, parentheses and string matchers.
    let n: usize = streams(
        &store,
        r#"{app="api"} | logfmt | (level="error" and path=~"/check.*") or msg="timeout""#,
    )
    .iter()
    .map(|(_, l)| l.len())
    .sum();
    assert_eq!(n, 11);
    // `keep` and `drop` shape the labels the streams are grouped by.
    let got = streams(&store, r#"{app="api"} |= "error" | logfmt | keep level"#);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, map(&[("level", "error")]));
    assert_eq!(got[0].1.len(), 11);
    let got = streams(
        &store,
        r#"{app="api"} |= "timeout" | logfmt | drop n, env, app"#,
    );
    assert_eq!(
        got,
        vec![(
            map(&[("level", "error"), ("msg", "timeout")]),
            got[0].1.clone()
        )]
    );
}

#[test]
fn failed_parses_are_marked_and_can_be_filtered_out() {
    let store = filled();
    let got = streams(&store, r#"{app="db"} | json"#);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0.get("__error__").map(String::as_str),
        Some("JSONParserErr")
    );
    assert!(got[0].0.contains_key("__error_details__"));
    assert_eq!(got[0].1.len(), 100);
    assert!(streams(&store, r#"{app="db"} | json | __error__="""#).is_empty());
    // A comparison with a label that is not a number marks the entry and keeps it.
    let got = streams(&store, r#"{app="api"} |= "Timeout" | logfmt | msg > 5"#);
    assert_eq!(
        got[0].0.get("__error__").map(String::as_str),
        Some("LabelFilterErr")
    );
}

fn json_store() -> LogStore {
    let store = store();
    let mut app = store.appender();
    let labels = Labels::new([("app", "j")]).unwrap();
    let lines = [
        r#"{"level":"warn","req":{"method":"GET","path":"/a"},"latency":"15ms","size":"2KB","tags":["x","y"],"app":"inner"}"#,
        r#"{"level":"info","req":{"method":"POST","path":"/b"},"latency":"5ms","size":"200B","tags":["z"]}"#,
        "\u{1b}[31mGET /colour\u{1b}[0m done",
        r#"{"_entry":"the original line","pod":"p-1"}"#,
    ];
    for (i, line) in lines.iter().enumerate() {
        app.append(&labels, Entry::new(T0 + i as i64, *line))
            .unwrap();
    }
    app.commit().unwrap();
    store
}

#[test]
fn json_regexp_unpack_and_decolorize_read_lines_as_loki_does() {
    let store = json_store();
    let got = streams(
        &store,
        r#"{app="j"} | json | req_method="GET" | latency > 10ms | size > 1KB"#,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    let labels = &got[0].0;
    assert_eq!(labels.get("req_path").map(String::as_str), Some("/a"));
    assert_eq!(
        labels.get("app_extracted").map(String::as_str),
        Some("inner"),
        "a clash is renamed"
    );
    assert!(!labels.contains_key("tags"), "arrays are skipped");
    let got = streams(
        &store,
        r#"{app="j"} | json m="req.method", first="tags[0]", level | m="POST""#,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0,
        map(&[
            ("app", "j"),
            ("first", "z"),
            ("level", "info"),
            ("m", "POST")
        ])
    );
    let got = streams(
        &store,
        r#"{app="j"} |= "colour" | decolorize | regexp "(?P<verb>[A-Z]+) (?P<path>\\S+)""#,
    );
    assert_eq!(got[0].1, ["GET /colour done"]);
    assert_eq!(got[0].0.get("verb").map(String::as_str), Some("GET"));
    assert_eq!(got[0].0.get("path").map(String::as_str), Some("/colour"));
    let got = streams(&store, r#"{app="j"} |= "_entry" | unpack"#);
    assert_eq!(got[0].1, ["the original line"]);
    assert_eq!(got[0].0.get("pod").map(String::as_str), Some("p-1"));
}

#[test]
fn metric_queries_count_and_aggregate_windows() {
    let store = filled();
    let got = metric(
        &store,
        r#"sum by (level) (count_over_time({app="api"} | logfmt [2h]))"#,
        NOW_NS,
        NOW_NS,
        0,
    )
    .unwrap();
    assert_eq!(
        got,
        vec![
            MetricSeries {
                labels: map(&[("level", "error")]),
                points: vec![(NOW_NS, 11.0)]
            },
            MetricSeries {
                labels: map(&[("level", "info")]),
                points: vec![(NOW_NS, 19_999.0)]
            },
        ]
    );
    // Windows are (t - range, t]; steps without entries have no point.
    let second = 1_000_000_000;
    let got = metric(
        &store,
        r#"count_over_time({app="db"}[1s])"#,
        T0,
        T0 + 3 * second,
        second,
    )
    .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].points, vec![(T0, 1.0), (T0 + second, 99.0)]);
    let got = metric(
        &store,
        r#"rate({app="db"}[10s] offset 1s)"#,
        T0 + second,
        T0 + second,
        0,
    )
    .unwrap();
    assert_eq!(got[0].points, vec![(T0 + second, 0.1)]);
    let bytes: usize = (0..100)
        .map(|i| format!("slow query {i} took {}ms", 100 + i).len())
        .sum();
    let got = metric(
        &store,
        r#"bytes_over_time({app="db"}[2h])"#,
        NOW_NS,
        NOW_NS,
        0,
    )
    .unwrap();
    assert_eq!(got[0].points, vec![(NOW_NS, bytes as f64)]);
    let got = metric(
        &store,
        r#"topk(1, count_over_time({env="prod"}[2h]))"#,
        NOW_NS,
        NOW_NS,
        0,
    )
    .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, map(&[("app", "api"), ("env", "prod")]));
    let got = metric(
        &store,
        r#"absent_over_time({app="nope"}[1m])"#,
        NOW_NS,
        NOW_NS,
        0,
    )
    .unwrap();
    assert_eq!(
        got,
        vec![MetricSeries {
            labels: map(&[("app", "nope")]),
            points: vec![(NOW_NS, 1.0)]
        }]
    );
    let got = metric(
        &store,
        r#"max without (env) (count_over_time({env="prod"} |= "took" [2h]))"#,
        NOW_NS,
        NOW_NS,
        0,
    )
    .unwrap();
    assert_eq!(got.len(), 2, "grouped by app: {got:?}");
}

#[test]
fn metric_queries_refuse_pipeline_errors_and_oversized_answers() {
    let store = filled();
    let e = metric(
        &store,
        r#"count_over_time({app="db"} | json [1h])"#,
        NOW_NS,
        NOW_NS,
        0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("JSONParserErr"), "{e}");
    assert!(
        metric(
            &store,
            r#"count_over_time({app="db"} | json | __error__="" [1h])"#,
            NOW_NS,
            NOW_NS,
            0
        )
        .unwrap()
        .is_empty()
    );
    let e = metric(&store, r#"count_over_time({app="api"}[1s])"#, 0, NOW_NS, 1).unwrap_err();
    assert!(e.to_string().contains("maximum resolution"), "{e}");
    let Expr::Metric(q) = parse(r#"count_over_time({app="api"} | logfmt [2h])"#).unwrap() else {
        unreachable!()
    };
    let tight = MetricLimits {
        entries_max: 100,
        ..MetricLimits::default()
    };
    let e = eval_metric(&store, &q, NOW_NS, NOW_NS, 0, &tight).unwrap_err();
    assert!(e.to_string().contains("more than 100 entries"), "{e}");
}

#[test]
fn numbers_vectors_and_binary_operators_combine_metric_queries() {
    let store = filled();
    // What Grafana's Loki data source sends to check the connection.
    let got = metric(&store, "vector(1)+vector(1)", NOW_NS, NOW_NS, 0).unwrap();
    assert_eq!(
        got,
        vec![MetricSeries {
            labels: BTreeMap::new(),
            points: vec![(NOW_NS, 2.0)]
        }]
    );
    let got = metric(&store, "2 * 3 ^ 2 - 1", NOW_NS, NOW_NS, 0).unwrap();
    assert_eq!(
        got[0].points,
        vec![(NOW_NS, 17.0)],
        "precedence: ^ before *, * before -"
    );
    let got = metric(&store, "2 ^ 3 ^ 2", NOW_NS, NOW_NS, 0).unwrap();
    assert_eq!(got[0].points, vec![(NOW_NS, 512.0)], "^ binds to the right");
    // The share of error lines, series meeting series of the same labels.
    let q = r#"sum by (app) (count_over_time({app="api"} |= "error" [2h])) / sum by (app) (count_over_time({app="api"}[2h])) * 100"#;
    let got = metric(&store, q, NOW_NS, NOW_NS, 0).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, map(&[("app", "api")]));
    assert!((got[0].points[0].1 - 11.0 / 20_010.0 * 100.0).abs() < 1e-9);
    // A comparison filters; with `bool` it answers 1 or 0.
    let counts = r#"count_over_time({env="prod"}[2h])"#;
    let got = metric(&store, &format!("{counts} > 1000"), NOW_NS, NOW_NS, 0).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].points, vec![(NOW_NS, 20_010.0)]);
    let got = metric(&store, &format!("{counts} > bool 1000"), NOW_NS, NOW_NS, 0).unwrap();
    let values: Vec<f64> = got.iter().map(|s| s.points[0].1).collect();
    assert_eq!(values, [1.0, 0.0], "api, then db");
}

/// `svc`: six entries a second apart from T0 with `n`, a latency and a size; `ctr`: a counter
/// that resets once.
fn samples_store() -> LogStore {
    let store = store();
    let mut app = store.appender();
    let svc = Labels::new([("app", "svc"), ("pod", "p1")]).unwrap();
    for (k, n) in [1, 5, 2, 8, 3, 4].into_iter().enumerate() {
        let line = format!("n={n} latency={}ms size={}KB", n * 10, n);
        app.append(&svc, Entry::new(T0 + k as i64 * 1_000_000_000, line))
            .unwrap();
    }
    let ctr = Labels::new([("app", "ctr")]).unwrap();
    for (k, c) in [10, 20, 5, 15].into_iter().enumerate() {
        app.append(
            &ctr,
            Entry::new(T0 + k as i64 * 1_000_000_000, format!("total={c}")),
        )
        .unwrap();
    }
    app.commit().unwrap();
    store
}

#[test]
fn unwrapped_samples_aggregate_over_their_windows() {
    let store = samples_store();
    let at = T0 + 5_000_000_000;
    let one = |q: &str| -> f64 {
        let got = metric(&store, q, at, at, 0).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(got.len(), 1, "{q}: {got:?}");
        got[0].points[0].1
    };
    // Each line's other parsed labels would make it a series of its own: grouped by app.
    let n = r#"{app="svc"} | logfmt | unwrap n"#;
    assert_eq!(one(&format!("sum_over_time({n} [10s]) by (app)")), 23.0);
    assert!((one(&format!("avg_over_time({n} [10s]) by (app)")) - 23.0 / 6.0).abs() < 1e-12);
    assert_eq!(one(&format!("max_over_time({n} [10s]) by (app)")), 8.0);
    assert_eq!(one(&format!("min_over_time({n} [10s]) by (app)")), 1.0);
    assert_eq!(one(&format!("first_over_time({n} [10s]) by (app)")), 1.0);
    assert_eq!(one(&format!("last_over_time({n} [10s]) by (app)")), 4.0);
    assert_eq!(
        one(&format!("quantile_over_time(0.5, {n} [10s]) by (app)")),
        3.5
    );
    let mean = 23.0 / 6.0;
    let var = [1.0, 5.0, 2.0, 8.0, 3.0, 4.0f64]
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum::<f64>()
        / 6.0;
    assert!((one(&format!("stdvar_over_time({n} [10s]) by (app)")) - var).abs() < 1e-12);
    assert!((one(&format!("stddev_over_time({n} [10s]) by (app)")) - var.sqrt()).abs() < 1e-12);
    assert!((one(&format!("rate({n} [10s]) by (app)")) - 2.3).abs() < 1e-12);
    // A window of two seconds holds the last two.
    assert_eq!(one(&format!("sum_over_time({n} [2s]) by (app)")), 7.0);
    // Durations in seconds, sizes in bytes.
    assert!(
        (one(r#"sum_over_time({app="svc"} | logfmt | unwrap duration(latency) [10s]) by (app)"#)
            - 0.23)
            .abs()
            < 1e-12
    );
    assert_eq!(
        one(r#"max_over_time({app="svc"} | logfmt | unwrap bytes(size) [10s]) by (app)"#),
        8_000.0
    );
    // A counter's increase per second, a drop read as a reset.
    assert_eq!(
        one(r#"rate_counter({app="ctr"} | logfmt | unwrap total [10s]) by (app)"#),
        (10.0 + 5.0 + 10.0) / 10.0
    );
}

#[test]
fn unwrap_drops_its_label_groups_by_request_and_marks_what_it_cannot_read() {
    let store = samples_store();
    let at = T0 + 5_000_000_000;
    // The unwrapped label leaves the series; the other parsed labels stay.
    let got = metric(
        &store,
        r#"max_over_time({app="svc"} | logfmt | unwrap n [10s])"#,
        at,
        at,
        0,
    )
    .unwrap();
    assert_eq!(got.len(), 6, "one series per latency and size: {got:?}");
    assert!(got.iter().all(|s| !s.labels.contains_key("n")));
    let got = metric(
        &store,
        r#"max_over_time({app="svc"} | logfmt | unwrap n [10s]) by (pod)"#,
        at,
        at,
        0,
    )
    .unwrap();
    assert_eq!(
        got,
        vec![MetricSeries {
            labels: map(&[("pod", "p1")]),
            points: vec![(at, 8.0)]
        }]
    );
    // `latency` is not a number: the entries are marked and the query refused, unless a
    // filter drops them.
    let e = metric(
        &store,
        r#"sum_over_time({app="svc"} | logfmt | unwrap latency [10s])"#,
        at,
        at,
        0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("SampleExtractionErr"), "{e}");
    let got = metric(
        &store,
        r#"sum_over_time({app="svc"} | logfmt | unwrap latency | __error__="" [10s])"#,
        at,
        at,
        0,
    )
    .unwrap();
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn pattern_captures_what_lies_between_its_literals() {
    let store = store();
    let mut app = store.appender();
    let web = Labels::new([("app", "web")]).unwrap();
    for (i, line) in [
        r#"10.0.0.1 - - [07/Dec/2026:10:00:00 +0000] "GET /cart HTTP/1.1" 200 512"#,
        r#"10.0.0.2 - - [07/Dec/2026:10:00:01 +0000] "POST /pay HTTP/1.1" 502 31"#,
        "not an access log line",
    ]
    .iter()
    .enumerate()
    {
        app.append(&web, Entry::new(T0 + i as i64, *line)).unwrap();
    }
    app.commit().unwrap();
    let got = streams(
        &store,
        r#"{app="web"} | pattern `<ip> - - [<_>] "<method> <uri> <_>" <status> <size>` | status >= 500"#,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].0,
        map(&[
            ("app", "web"),
            ("ip", "10.0.0.2"),
            ("method", "POST"),
            ("size", "31"),
            ("status", "502"),
            ("uri", "/pay"),
        ])
    );
    // A line the pattern does not fit gets no labels (and no error).
    let got = streams(&store, r#"{app="web"} | pattern "<ip> - - <rest>" | ip="""#);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, ["not an access log line"]);
    let e = parse(r#"{app="web"} | pattern "<a><b>""#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("separated by text"), "{e}");
    let e = parse(r#"{app="web"} | pattern "<_> x""#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("named capture"), "{e}");
}

#[test]
fn a_structured_metadata_filter_reads_only_the_pages_holding_its_value() {
    let store = store();
    let mut app = store.appender();
    let api = Labels::new([("app", "api")]).unwrap();
    // A stream whose *label* is named like the metadata: its pages must never be skipped for
    // the metadata's needle.
    let tagged = Labels::new([("app", "batch"), ("trace_id", "stream-wide")]).unwrap();
    for i in 0..20_000i64 {
        let mut e = Entry::new(T0 + i * 1_000_000, format!("GET /item/{i} 200"));
        e.metadata = vec![("trace_id".into(), format!("{:032x}", i * 7919))];
        app.append(&api, e).unwrap();
    }
    for i in 0..2_000i64 {
        app.append(
            &tagged,
            Entry::new(T0 + i * 1_000_000, format!("job {i} done")),
        )
        .unwrap();
    }
    app.commit().unwrap();
    store.seal().unwrap().unwrap();
    let wanted = format!("{:032x}", 12_345 * 7919);
    let read0 = store.page_stats().read;
    let got = lines(
        &store,
        &format!(r#"{{app="api"}} | trace_id="{wanted}""#),
        Direction::Backward,
        100,
    );
    assert_eq!(got, ["GET /item/12345 200"]);
    assert_eq!(
        store.page_stats().read - read0,
        1,
        "only the page whose entries carry the value"
    );
    let got = lines(
        &store,
        r#"{app="batch"} | trace_id="stream-wide""#,
        Direction::Forward,
        5,
    );
    assert_eq!(
        got.len(),
        5,
        "a stream label of the name is not skipped: {got:?}"
    );
}
