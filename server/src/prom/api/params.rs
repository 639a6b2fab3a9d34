//! Request parameters of the Prometheus HTTP API: from the query string of a GET, or also from
//! a form-encoded POST body; times, limits and series selectors parsed as Prometheus does.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use promql_parser::parser::{self, Expr, VectorSelector};
use strata_engine::labels::matcher::Matcher;

use crate::prom::error::ApiError;

/// The most bytes a form-encoded POST body may have.
const FORM_BYTES_MAX: usize = 4 << 20;

/// Every `name=value` pair of the request, query string first, then the form body.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/x-www-form-urlencoded")
            });
        if matches!(*req.method(), Method::POST | Method::PUT) && is_form {
            let body = Bytes::from_request(req, state)
                .await
                .map_err(|e| ApiError::bad_data(format!("reading the form-encoded body: {e}")))?;
            if body.len() > FORM_BYTES_MAX {
                return Err(ApiError::bad_data(format!(
                    "the form body is {} bytes, more than the {FORM_BYTES_MAX} allowed",
                    body.len()
                )));
            }
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Params(pairs))
    }
}

impl Params {
    /// Parameters from explicit pairs (tests, internal callers).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Params {
        Params(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The first value of `name`, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (for repeated parameters such as `match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter in milliseconds, or `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => parse_time(s).ok_or_else(|| {
                ApiError::bad_data(format!(
                    "invalid parameter {name:?}: cannot parse {s:?} to a valid timestamp"
                ))
            }),
        }
    }

    /// `start` and `end` (defaults: all time), checked to be in order.
    pub fn time_range(&self) -> Result<(i64, i64), ApiError> {
        let start = self.time("start", MIN_TIME)?;
        let end = self.time("end", MAX_TIME)?;
        if end < start {
            return Err(ApiError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        Ok((start, end))
    }

    /// A non-negative count parameter (0 or absent = unlimited).
    pub fn limit(&self, name: &str) -> Result<usize, ApiError> {
        match self.get(name) {
            None => Ok(0),
            Some(s) => s.parse::<usize>().map_err(|_| {
                ApiError::bad_data(format!(
                    "invalid parameter {name:?}: {s:?} is not a non-negative integer"
                ))
            }),
        }
    }

    /// Every `match[]` selector, parsed; at least one when `required`.
    pub fn selectors(&self, required: bool) -> Result<Vec<Vec<Matcher>>, ApiError> {
        let raw = self.all("match[]");
        if raw.is_empty() && required {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        raw.into_iter().map(parse_selector).collect()
    }
}

/// The earliest and latest times the API speaks of (what Prometheus uses for an absent
/// `start`/`end`), in milliseconds.
pub const MIN_TIME: i64 = i64::MIN / 2;
pub const MAX_TIME: i64 = i64::MAX / 2;

/// Parses a time as Prometheus does: Unix seconds (a float) first, else RFC 3339. Times far
/// outside the representable range are clamped rather than refused (clients send sentinels
/// such as Go's minimum time, and Grafana's exemplar probe sends milliseconds as seconds).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return None;
        }
        let ms = (secs * 1000.0).round();
        return Some(if ms >= MAX_TIME as f64 {
            MAX_TIME
        } else if ms <= MIN_TIME as f64 {
            MIN_TIME
        } else {
            ms as i64
        });
    }
    // Go's time.Time minimum and maximum, as Prometheus prints them for open ranges.
    if s.starts_with("-292273086-") {
        return Some(MIN_TIME);
    }
    if s.starts_with("292277025-") {
        return Some(MAX_TIME);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis().clamp(MIN_TIME, MAX_TIME))
}

/// Parses a series selector (`up{job="node"}`, `{__name__=~"node_.*"}`) into matchers.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, ApiError> {
    let bad = |m: String| ApiError::bad_data(format!("invalid match[] {s:?}: {m}"));
    match parser::parse(s).map_err(bad)? {
        Expr::VectorSelector(vs) => selector_matchers(&vs).map_err(bad),
        _ => Err(bad(
            "not a series selector (write it as metric_name{label=\"value\"})".into(),
        )),
    }
}

/// The matchers of a parsed vector selector, its metric name included.
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, String> {
    strata_engine::promql::selector_matchers(vs).map_err(|e| e.to_string())
}

/// Decodes a label name given in a URL path: as is, or `U__`-escaped (UTF-8 names: `_` is
/// `__`, any other character `_<hex code point>_`).
pub fn unescape_label_name(name: &str) -> Result<String, ApiError> {
    let Some(rest) = name.strip_prefix("U__") else {
        return Ok(name.to_owned());
    };
    let bad = || ApiError::bad_data(format!("invalid escaped label name {name:?}"));
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() && hex.len() < 8 => hex.push(h),
                _ => return Err(bad()),
            }
        }
        if hex.is_empty() {
            out.push('_');
        } else {
            let code = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
            out.push(char::from_u32(code).ok_or_else(bad)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.123"), Some(1_700_000_000_123));
        assert_eq!(parse_time("-1.5"), Some(-1500));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_time("-292273086-05-16T16:47:06Z"), Some(MIN_TIME));
        assert_eq!(
            parse_time("292277025-08-18T07:12:54.999999999Z"),
            Some(MAX_TIME)
        );
        // Milliseconds sent as seconds: far future, clamped, not an error.
        assert!(parse_time("1700000000000000").is_some());
        assert_eq!(parse_time("1e300"), Some(MAX_TIME));
        for bad in ["", "now", "NaN", "inf", "2023-13-01T00:00:00Z", "12:00"] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn selectors_become_engine_matchers() {
        let m =
            parse_selector(r#"up{job="node",instance!="a",path=~"/api/.*",code!~"5.."}"#).unwrap();
        let shown: Vec<String> = m.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            shown,
            [
                r#"__name__="up""#,
                r#"job="node""#,
                r#"instance!="a""#,
                r#"path=~"/api/.*""#,
                r#"code!~"5..""#
            ]
        );
        assert_eq!(parse_selector(r#"{__name__=~"node_.+"}"#).unwrap().len(), 1);
        for bad in [
            "rate(up[5m])",
            "up[5m]",
            "1",
            "up{",
            r#"{a="b" or c="d"}"#,
            r#"{a=""}"#,
        ] {
            let e = parse_selector(bad).unwrap_err();
            assert!(
                e.message.contains("invalid match[]"),
                "{bad}: {}",
                e.message
            );
        }
    }

    #[test]
    fn escaped_label_names_decode() {
        assert_eq!(unescape_label_name("job").unwrap(), "job");
        assert_eq!(unescape_label_name("U__my__name").unwrap(), "my_name");
        assert_eq!(unescape_label_name("U__a_2e_b").unwrap(), "a.b");
        assert_eq!(unescape_label_name("U___1f600_").unwrap(), "😀");
        for bad in ["U__a_zz_", "U__a_2e", "U___d800_"] {
            assert!(unescape_label_name(bad).is_err(), "{bad}");
        }
    }
}
