//! Runs the LogQL test scripts in `engine/logql/testdata/*.test` (the format is in
//! `testdata/FORMAT.md`): streams loaded into a fresh store, queries evaluated, answers
//! compared with what each script expects. Every script runs; the failures of all of them are
//! reported together.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_core::labels::Labels;
use strata_logql::parse::prom_duration_ns;
use strata_logql::{Expr, MetricLimits, eval_metric, parse, select_logs};
use strata_logs::{Direction, Entry, LogStore};

use common::NOW_MS;
const T0: i64 = NOW_MS * 1_000_000 - 3_600_000_000_000;

type LabelMap = BTreeMap<String, String>;

fn fresh_store() -> LogStore {
    common::empty_store()
}

/// `{a="b", c="d"}` (Go-quoted values) as a map.
fn labels(text: &str) -> Result<LabelMap, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| format!("expected {{…}}, found {text:?}"))?;
    let mut out = LabelMap::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| format!("no = in {text:?}"))?;
        let name = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start();
        let body = after
            .strip_prefix('"')
            .ok_or_else(|| format!("unquoted value in {text:?}"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated value in {text:?}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("dangling escape in {text:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        out.insert(name, value);
        rest = body[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

/// The labels at the start of `text` and the rest after them.
fn split_labels(text: &str) -> Result<(LabelMap, &str), String> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Ok((labels(&text[..=i])?, text[i + 1..].trim())),
            _ => {}
        }
    }
    Err(format!("no closing }} in {text:?}"))
}

fn offset(text: &str) -> Result<i64, String> {
    prom_duration_ns(text)
        .map(|ns| T0 + ns)
        .ok_or_else(|| format!("{text:?} is not an offset"))
}

/// A script line's escapes: `\n`, `\t`, `\e`, `\\`.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('e') => out.push('\u{1b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// `<offset> [with {…}] <line>`.
fn entry(text: &str) -> Result<Entry, String> {
    let (at, rest) = text.split_once(' ').unwrap_or((text, ""));
    let ts_ns = offset(at)?;
    let (metadata, line) = match rest.strip_prefix("with ") {
        Some(with) => {
            let (m, line) = split_labels(with)?;
            (m.into_iter().collect(), line)
        }
        None => (Vec::new(), rest),
    };
    Ok(Entry {
        ts_ns,
        line: unescape(line),
        metadata,
    })
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Runs one script; the failures, each with its line number.
fn run(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut failures = Vec::new();
    let mut store = fresh_store();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let at = i + 1;
        i += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        // The indented lines that belong to this command.
        let mut body = Vec::new();
        while i < lines.len() && lines[i].starts_with("  ") {
            body.push(lines[i]);
            i += 1;
        }
        if let Err(e) = command(&mut store, line, &body) {
            failures.push(format!("{}:{at}: {line}\n    {e}", path.display()));
        }
    }
    failures
}

fn command(store: &mut LogStore, line: &str, body: &[&str]) -> Result<(), String> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "clear" => {
            *store = fresh_store();
            Ok(())
        }
        "seal" => store
            .seal()
            .map(|_| ())
            .map_err(|e| format!("seal failed: {e}")),
        "load" => {
            let stream = Labels::new(labels(rest)?).map_err(|e| e.to_string())?;
            let mut app = store.appender();
            for b in body {
                app.append(&stream, entry(b.trim_start())?)
                    .map_err(|e| format!("{b}: {e}"))?;
            }
            app.commit().map_err(|e| e.to_string())?;
            Ok(())
        }
        "eval" => eval(store, rest, body),
        _ => Err(format!("unknown command {word:?}")),
    }
}

fn eval(store: &LogStore, spec: &str, body: &[&str]) -> Result<(), String> {
    let (kind, rest) = spec.split_once(' ').unwrap_or((spec, ""));
    match kind {
        "logs" => {
            let mut rest = rest;
            let mut direction = Direction::Backward;
            let mut limit = 100;
            loop {
                if let Some(r) = rest.strip_prefix("forward ") {
                    direction = Direction::Forward;
                    rest = r;
                } else if let Some(r) = rest.strip_prefix("backward ") {
                    rest = r;
                } else if let Some(r) = rest.strip_prefix("limit ") {
                    let (n, r) = r.split_once(' ').unwrap_or((r, ""));
                    limit = n.parse().map_err(|_| format!("limit {n:?}"))?;
                    rest = r;
                } else {
                    break;
                }
            }
            let Expr::Log(q) = parse(rest).map_err(|e| e.to_string())? else {
                return Err("not a log query".into());
            };
            let got: Vec<(LabelMap, Vec<(i64, String)>)> =
                select_logs(store, &q, i64::MIN, i64::MAX, direction, limit)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|s| {
                        (
                            s.labels,
                            s.entries.into_iter().map(|e| (e.ts_ns, e.line)).collect(),
                        )
                    })
                    .collect();
            let mut want: Vec<(LabelMap, Vec<(i64, String)>)> = Vec::new();
            for b in body {
                if b.starts_with("    ") {
                    let e = entry(b.trim_start())?;
                    want.last_mut()
                        .ok_or("an entry before any stream's labels")?
                        .1
                        .push((e.ts_ns, e.line));
                } else {
                    want.push((labels(b.trim())?, Vec::new()));
                }
            }
            if got != want {
                return Err(format!(
                    "got:\n{}\n    want:\n{}",
                    show_logs(&got),
                    show_logs(&want)
                ));
            }
            Ok(())
        }
        "instant" | "range" => {
            let (start, end, step, query) = if kind == "instant" {
                let r = rest
                    .strip_prefix("at ")
                    .ok_or("instant needs `at <offset>`")?;
                let (t, q) = r.split_once(' ').ok_or("no query")?;
                let t = offset(t)?;
                (t, t, 0, q)
            } else {
                let words: Vec<&str> = rest.splitn(7, ' ').collect();
                match words.as_slice() {
                    ["from", s, "to", e, "step", st, q] => (
                        offset(s)?,
                        offset(e)?,
                        prom_duration_ns(st).ok_or("bad step")?,
                        *q,
                    ),
                    _ => return Err("range needs `from <o> to <o> step <d> <query>`".into()),
                }
            };
            let Expr::Metric(q) = parse(query).map_err(|e| e.to_string())? else {
                return Err("not a metric query".into());
            };
            let got = eval_metric(store, &q, start, end, step, &MetricLimits::default())
                .map_err(|e| e.to_string())?;
            let steps: Vec<i64> = if step == 0 {
                vec![start]
            } else {
                (0..)
                    .map(|k| start + k * step)
                    .take_while(|&t| t <= end)
                    .collect()
            };
            let got: Vec<(LabelMap, Vec<Option<f64>>)> = got
                .into_iter()
                .map(|s| {
                    let values = steps
                        .iter()
                        .map(|t| s.points.iter().find(|p| p.0 == *t).map(|p| p.1))
                        .collect();
                    (s.labels, values)
                })
                .collect();
            let mut want: Vec<(LabelMap, Vec<Option<f64>>)> = Vec::new();
            for b in body {
                let (l, values) = split_labels(b.trim())?;
                let values = values
                    .split_whitespace()
                    .map(|v| match v {
                        "_" => Ok(None),
                        _ => v.parse().map(Some).map_err(|_| format!("value {v:?}")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                want.push((l, values));
            }
            let same = got.len() == want.len()
                && got.iter().zip(&want).all(|(g, w)| {
                    g.0 == w.0
                        && g.1.len() == w.1.len()
                        && g.1.iter().zip(&w.1).all(|(a, b)| match (a, b) {
                            (Some(a), Some(b)) => close(*a, *b),
                            (None, None) => true,
                            _ => false,
                        })
                });
            if !same {
                return Err(format!("got {got:?}\n    want {want:?}"));
            }
            Ok(())
        }
        "error" => {
            let r = rest
                .strip_prefix("at ")
                .ok_or("error needs `at <offset>`")?;
            let (t, query) = r.split_once(' ').ok_or("no query")?;
            let t = offset(t)?;
            let expected = body
                .first()
                .map(|b| b.trim())
                .ok_or("no expected message")?;
            let message = match parse(query) {
                Err(e) => e.to_string(),
                Ok(Expr::Log(q)) => {
                    match select_logs(store, &q, i64::MIN, i64::MAX, Direction::Backward, 100) {
                        Err(e) => e.to_string(),
                        Ok(_) => return Err("the log query succeeded".into()),
                    }
                }
                Ok(Expr::Metric(q)) => {
                    match eval_metric(store, &q, t, t, 0, &MetricLimits::default()) {
                        Err(e) => e.to_string(),
                        Ok(s) => return Err(format!("the metric query succeeded: {s:?}")),
                    }
                }
            };
            if !message.contains(expected) {
                return Err(format!(
                    "the error {message:?} does not contain {expected:?}"
                ));
            }
            Ok(())
        }
        _ => Err(format!("unknown eval {kind:?}")),
    }
}

fn show_logs(streams: &[(LabelMap, Vec<(i64, String)>)]) -> String {
    streams
        .iter()
        .map(|(l, e)| {
            let entries: Vec<String> = e
                .iter()
                .map(|(t, line)| format!("        {}ms {line:?}", (t - T0) / 1_000_000))
                .collect();
            format!("      {l:?}\n{}", entries.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_logql_script_passes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "the scripts are missing from {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for f in &files {
        failures.extend(run(f));
    }
    assert!(
        failures.is_empty(),
        "{} failures in {} scripts:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
