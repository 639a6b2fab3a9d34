//! The value-sequence notation of Prometheus's test scripts and of promtool's rule unit tests
//! (`input_series` values): `1 2 3`, `_` (no sample), `_xN`, `vxN` (N+1 copies),
//! `a+bxN`/`a-bxN` (N+1 values stepping by b), `stale` (the staleness marker), numbers with
//! `Inf` and `NaN`, and durations meaning their seconds. Native histograms (`{{…}}`) are
//! recognised and skipped until Strata stores them.

/// One value of a `load` or expected line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Point {
    /// A number.
    Value(f64),
    /// `_`: no sample at this slot.
    Missing,
    /// `stale`: the staleness marker.
    Stale,
}

/// A value sequence; also whether it held a native histogram.
pub fn parse_values(s: &str) -> Result<(Vec<Point>, bool), String> {
    let mut out = Vec::new();
    let mut histogram = false;
    let mut rest = s.trim();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            // A native histogram, possibly `{{…}}xN` or `{{…}}+{{…}}xN`: skipped whole.
            histogram = true;
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let mut token_end = end;
            // Spaces inside braces belong to the histogram.
            let mut depth = 0i32;
            for (i, c) in rest.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    c if c.is_whitespace() && depth == 0 => {
                        token_end = i;
                        break;
                    }
                    _ => {}
                }
                token_end = i + c.len_utf8();
            }
            let _ = end;
            out.push(Point::Missing);
            rest = rest[token_end..].trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        rest = rest[end..].trim_start();
        expand(token, &mut out)?;
    }
    Ok((out, histogram))
}

/// One item of a value sequence.
fn expand(token: &str, out: &mut Vec<Point>) -> Result<(), String> {
    if token == "_" {
        out.push(Point::Missing);
        return Ok(());
    }
    if token == "stale" {
        out.push(Point::Stale);
        return Ok(());
    }
    if let Some(n) = token.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("bad repeat {token:?}"))?;
        out.extend(std::iter::repeat_n(Point::Missing, n));
        return Ok(());
    }
    // a, axN, a+bxN, a-bxN. The sign of `a` may lead; `b`'s sign splits.
    let (body, times) = match token.rfind('x') {
        Some(i) if token[i + 1..].bytes().all(|b| b.is_ascii_digit()) && i + 1 < token.len() => (
            &token[..i],
            Some(token[i + 1..].parse::<usize>().map_err(|_| "bad repeat")?),
        ),
        _ => (token, None),
    };
    let split = body
        .char_indices()
        .skip(1)
        .find(|&(i, c)| (c == '+' || c == '-') && !matches!(body.as_bytes()[i - 1], b'e' | b'E'))
        .map(|(i, _)| i);
    let (start, delta) = match split {
        Some(i) => (&body[..i], Some(&body[i..])),
        None => (body, None),
    };
    let start = parse_number(start).ok_or_else(|| format!("bad value {token:?}"))?;
    match (delta, times) {
        (None, None) => out.push(Point::Value(start)),
        (None, Some(n)) => out.extend(std::iter::repeat_n(Point::Value(start), n + 1)),
        (Some(d), Some(n)) => {
            let d = parse_number(d).ok_or_else(|| format!("bad step {token:?}"))?;
            for k in 0..=n {
                out.push(Point::Value(start + d * k as f64));
            }
        }
        (Some(_), None) => return Err(format!("bad value {token:?}")),
    }
    Ok(())
}

/// A number in a value sequence (a duration means its seconds).
fn parse_number(s: &str) -> Option<f64> {
    parse_float(s).or_else(|| {
        let (neg, d) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        parse_duration(d).map(|ms| {
            let secs = ms as f64 / 1000.0;
            if neg { -secs } else { secs }
        })
    })
}

/// A float as Go's `ParseFloat` reads one, with `Inf` and `NaN` in any case.
pub fn parse_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        _ => {}
    }
    s.parse().ok()
}

/// A Prometheus duration in milliseconds: `1h30m`, `5m`, `0`, `500ms`.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.as_bytes().first()? {
                b's' => (1000, 1),
                b'm' => (60_000, 1),
                b'h' => (3_600_000, 1),
                b'd' => (86_400_000, 1),
                b'w' => (7 * 86_400_000, 1),
                b'y' => (365 * 86_400_000, 1),
                _ => return None,
            }
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expanding_notation() {
        let (points, histogram) = parse_values("1+2x2 _x2 3x1 stale -1-1x1 Inf _").unwrap();
        assert!(!histogram);
        use Point::*;
        assert_eq!(points[..3], [Value(1.0), Value(3.0), Value(5.0)]);
        assert_eq!(points[3..5], [Missing, Missing]);
        assert_eq!(points[5..7], [Value(3.0), Value(3.0)]);
        assert_eq!(points[7], Stale);
        assert_eq!(points[8..10], [Value(-1.0), Value(-2.0)]);
        assert_eq!(points[10], Value(f64::INFINITY));
        assert_eq!(points[11], Missing);
        assert!(parse_values("1+x").is_err());
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
    }
}
