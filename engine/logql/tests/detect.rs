//! Field detection over a query's newest lines: JSON keys (nested ones joined with `_`, with
//! their path), logfmt pairs, structured metadata; each field's type read from its values
//! and its distinct values counted; only the lines the query keeps, at most the line limit.

mod common;

use strata_core::labels::Labels;
use strata_logql::detect::{
    DetectedField, FieldSource, FieldType, detect_field_values, detect_fields,
};
use strata_logql::{Expr, LogExpr, parse};
use strata_logs::{Entry, LogStore};

use common::NOW_MS;
const NOW_NS: i64 = NOW_MS * 1_000_000;
const T0: i64 = NOW_NS - 3_600_000_000_000;

/// `api` (JSON lines, a trace id as metadata on every other), `worker` (logfmt), `proxy`
/// (plain text): 40 lines each, a second apart; the older half sealed.
fn store() -> LogStore {
    let store = common::empty_store();
    let api = Labels::new([("app", "api")]).unwrap();
    let worker = Labels::new([("app", "worker")]).unwrap();
    let proxy = Labels::new([("app", "proxy")]).unwrap();
    for half in 0..2 {
        let mut app = store.appender();
        for i in half * 20..(half + 1) * 20i64 {
            let ts = T0 + i * 1_000_000_000;
            let level = ["info", "warn", "error"][(i % 3) as usize];
            let mut e = Entry::new(
                ts,
                format!(
                    r#"{{"level":"{level}","status":{},"took":"{}ms","ok":{},"user":{{"id":"u{}","org.name":"acme"}},"tags":["a"],"ratio":{}}}"#,
                    200 + (i % 4) * 100,
                    i * 3,
                    i % 2 == 0,
                    i % 5,
                    if i % 2 == 0 {
                        "1".to_owned()
                    } else {
                        format!("{i}.5")
                    },
                ),
            );
            if i % 2 == 0 {
                e.metadata.push(("trace_id".into(), format!("{i:032x}")));
            }
            app.append(&api, e).unwrap();
            app.append(
                &worker,
                Entry::new(
                    ts,
                    format!("level={level} job=\"sync {i}\" size={}KB", i % 7),
                ),
            )
            .unwrap();
            app.append(&proxy, Entry::new(ts, format!("GET /x {i}")))
                .unwrap();
        }
        app.commit().unwrap();
        if half == 0 {
            store.seal().unwrap().unwrap();
        }
    }
    store
}

fn query(text: &str) -> LogExpr {
    match parse(text).unwrap() {
        Expr::Log(q) => q,
        Expr::Metric(_) => panic!("{text}: not a log query"),
    }
}

fn field<'a>(fields: &'a [DetectedField], name: &str) -> &'a DetectedField {
    fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
}

#[test]
fn json_fields_are_named_as_the_json_parser_names_them_with_their_path_and_type() {
    let store = store();
    let fields = detect_fields(&store, &query(r#"{app="api"}"#), 0, i64::MAX, 1000, 1000).unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    // Sorted by name; arrays are not fields; metadata is one.
    assert_eq!(
        names,
        [
            "level",
            "ok",
            "ratio",
            "status",
            "took",
            "trace_id",
            "user_id",
            "user_org_name"
        ]
    );
    let level = field(&fields, "level");
    assert_eq!((level.kind, level.cardinality), (FieldType::String, 3));
    assert_eq!(level.sources, [FieldSource::Json]);
    assert_eq!(level.json_path, ["level"]);
    let status = field(&fields, "status");
    assert_eq!((status.kind, status.cardinality), (FieldType::Int, 4));
    assert_eq!(field(&fields, "took").kind, FieldType::Duration);
    assert_eq!(field(&fields, "ok").kind, FieldType::Boolean);
    // 1 (an integer) and 3.5, 5.5, …: numbers that disagree are floats.
    assert_eq!(field(&fields, "ratio").kind, FieldType::Float);
    let org = field(&fields, "user_org_name");
    assert_eq!(org.json_path, ["user", "org.name"]);
    assert_eq!(org.cardinality, 1);
    let trace = field(&fields, "trace_id");
    assert_eq!(trace.sources, [FieldSource::Metadata]);
    assert_eq!(trace.sources[0].parser(), None);
    assert_eq!(trace.cardinality, 20);
}

#[test]
fn logfmt_pairs_are_fields_and_plain_lines_have_none() {
    let store = store();
    let fields =
        detect_fields(&store, &query(r#"{app="worker"}"#), 0, i64::MAX, 1000, 1000).unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["job", "level", "size"]);
    assert!(fields.iter().all(|f| f.sources == [FieldSource::Logfmt]));
    assert_eq!(field(&fields, "size").kind, FieldType::Bytes);
    assert_eq!(field(&fields, "job").cardinality, 40);
    let plain = detect_fields(&store, &query(r#"{app="proxy"}"#), 0, i64::MAX, 1000, 1000).unwrap();
    assert_eq!(plain, []);
}

#[test]
fn only_the_newest_lines_the_query_keeps_are_read() {
    let store = store();
    // The filter keeps i = 3 and 30..=39; the newest five are 35..=39.
    let q = query(r#"{app="worker"} |= "sync 3""#);
    let fields = detect_fields(&store, &q, 0, i64::MAX, 5, 1000).unwrap();
    assert_eq!(field(&fields, "job").cardinality, 5);
    let jobs = detect_field_values(&store, &q, 0, i64::MAX, 5, "job", 100).unwrap();
    assert_eq!(
        jobs,
        ["sync 35", "sync 36", "sync 37", "sync 38", "sync 39"]
    );
    // The time range bounds the sample too: the first ten seconds hold i = 0..=9.
    let early = detect_field_values(&store, &q, 0, T0 + 10_000_000_000, 100, "job", 100).unwrap();
    assert_eq!(early, ["sync 3"]);
    // Limits on fields and values.
    let two = detect_fields(&store, &query(r#"{app="api"}"#), 0, i64::MAX, 1000, 2).unwrap();
    assert_eq!(two.len(), 2);
    let levels = detect_field_values(
        &store,
        &query(r#"{app="api"}"#),
        0,
        i64::MAX,
        1000,
        "level",
        2,
    )
    .unwrap();
    assert_eq!(levels, ["error", "info"]);
    let none = detect_field_values(&store, &q, 0, i64::MAX, 1000, "no_such_field", 10).unwrap();
    assert!(none.is_empty());
}

#[test]
fn value_types_are_read_most_specific_first() {
    for (value, kind) in [
        ("true", FieldType::Boolean),
        ("-42", FieldType::Int),
        ("4.25", FieldType::Float),
        ("1e3", FieldType::Float),
        ("250ms", FieldType::Duration),
        ("1h30m", FieldType::Duration),
        ("12KB", FieldType::Bytes),
        ("3MiB", FieldType::Bytes),
        ("inf", FieldType::String),
        ("NaN", FieldType::String),
        ("GET", FieldType::String),
        ("", FieldType::String),
    ] {
        assert_eq!(FieldType::of(value), kind, "{value:?}");
    }
}
