//! Numbers and values printed as the template language prints them: Go's `%v`/`%g`/`%e`/`%f`
//! and the rest of `printf`'s verbs, and Prometheus's `humanize*` family.

/// Digits of `v` (finite, non-negative) to `sig` significant digits: the digits and the
/// decimal exponent of the first one. `None` for the shortest exact representation.
fn digits(v: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), v),
        None => format!("{v:e}"),
    };
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    (mantissa.replace('.', ""), exp)
}

fn exp_suffix(exp: i32, upper: bool) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{e}{sign}{:02}", exp.abs())
}

fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// `%g` with a precision (`None`: shortest, as `%v`), without the sign of `v`'s handling of
/// `+` flags (the caller adds it).
pub fn fmt_g(v: f64, prec: Option<usize>, upper: bool, sharp: bool) -> String {
    if let Some(s) = special(v) {
        return s.to_owned();
    }
    let neg = v.is_sign_negative();
    let a = v.abs();
    let prec = prec.map(|p| p.max(1));
    let (mut ds, exp) = if a == 0.0 {
        ("0".to_owned(), 0)
    } else {
        digits(a, prec)
    };
    if !sharp {
        // %g drops trailing zeros.
        while ds.len() > 1 && ds.ends_with('0') {
            ds.pop();
        }
    }
    let eprec = match prec {
        None => 6,
        Some(p) => {
            if p > ds.len() && ds.len() as i32 > exp {
                ds.len()
            } else {
                p
            }
        }
    } as i32;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&ds[..1]);
        if ds.len() > 1 {
            out.push('.');
            out.push_str(&ds[1..]);
        }
        out.push_str(&exp_suffix(exp, upper));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&ds);
    } else {
        let point = exp as usize + 1;
        if ds.len() <= point {
            out.push_str(&ds);
            for _ in ds.len()..point {
                out.push('0');
            }
        } else {
            out.push_str(&ds[..point]);
            out.push('.');
            out.push_str(&ds[point..]);
        }
    }
    out
}

/// `%e` with a precision (default 6).
pub fn fmt_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s.to_owned();
    }
    let s = format!("{:.*e}", prec, v);
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    format!("{m}{}", exp_suffix(e.parse().unwrap_or(0), upper))
}

/// `%f` with a precision (default 6).
pub fn fmt_f(v: f64, prec: usize) -> String {
    match special(v) {
        Some(s) => s.to_owned(),
        None => format!("{v:.prec$}"),
    }
}

/// Go's `FormatFloat(v, 'e' or 'E', -1, 64)`: the shortest mantissa and a two-digit exponent
/// (`1e+00`, `6.1E+01`), `NaN`, `+Inf`, `-Inf`.
pub fn shortest_exp(v: f64, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s.to_owned();
    }
    let s = format!("{v:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    format!("{m}{}", exp_suffix(e.parse().unwrap_or(0), upper))
}

/// `%v` of a float: the shortest representation, as Go prints a float64.
pub fn float(v: f64) -> String {
    fmt_g(v, None, false, false)
}

/// Go's `%.4g`, Prometheus's humanize precision.
fn g4(v: f64) -> String {
    fmt_g(v, Some(4), false, false)
}

/// `v` divided by `base` while it is at least `base`, with the prefix of each step.
fn scale_down(mut v: f64, base: f64, prefixes: [&'static str; 8]) -> (f64, &'static str) {
    let mut prefix = "";
    for p in prefixes {
        if v.abs() < base {
            break;
        }
        prefix = p;
        v /= base;
    }
    (v, prefix)
}

/// `v` (below 1) multiplied by 1000 until it is at least 1, with the SI prefix of each step.
fn scale_up(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

/// `humanize`: SI prefixes (k, M, … and m, u, …) with four significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let (v, prefix) = if v.abs() >= 1.0 {
        scale_down(v, 1000.0, ["k", "M", "G", "T", "P", "E", "Z", "Y"])
    } else {
        scale_up(v)
    };
    format!("{}{prefix}", g4(v))
}

/// `humanize1024`: binary prefixes (ki, Mi, …).
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let (v, prefix) = scale_down(v, 1024.0, ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]);
    format!("{}{prefix}", g4(v))
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s`, or with sub-second prefixes.
pub fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let a = v.abs();
        let whole = a as i64;
        let (days, hours, minutes, seconds) = (
            whole / 86_400,
            (whole / 3600) % 24,
            (whole / 60) % 60,
            whole % 60,
        );
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", g4(a))
        };
    }
    let (v, prefix) = scale_up(v);
    format!("{}{prefix}s", g4(v))
}

/// `humanizePercentage`: a ratio as a percentage.
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// `humanizeTimestamp`: Unix seconds as a UTC time, as Go prints a `time.Time`.
pub fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    go_time(v)
}

/// A Unix time in seconds as Prometheus prints it: cut to milliseconds (its timestamps' unit),
/// then as Go's `Time.String()` in UTC, `2006-01-02 15:04:05.999 +0000 UTC`.
pub fn go_time(v: f64) -> String {
    let nanos = v * 1e9;
    if !(i64::MIN as f64..=i64::MAX as f64).contains(&nanos) {
        return format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            float(v)
        );
    }
    let ms = nanos as i64 / 1_000_000;
    go_time_ns(ms.saturating_mul(1_000_000)).unwrap_or_else(|| g4(v))
}

/// A time in nanoseconds since the epoch as Go's `Time.String()` prints it in UTC,
/// `2006-01-02 15:04:05.999999999 +0000 UTC` (the fraction without its trailing zeros, none
/// when whole); `None` beyond the years chrono knows.
pub fn go_time_ns(ns: i64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), 0)?;
    let mut frac = format!(".{:09}", ns.rem_euclid(1_000_000_000));
    while frac.ends_with('0') {
        frac.pop();
    }
    if frac == "." {
        frac.clear();
    }
    Some(format!("{}{frac} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_a_float64() {
        for (v, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(float(v), want, "{v}");
        }
    }

    #[test]
    fn precision_formats_match_go() {
        assert_eq!(fmt_g(1234.5678, Some(4), false, false), "1235");
        assert_eq!(fmt_g(12345.0, Some(4), false, false), "1.234e+04");
        assert_eq!(fmt_g(1.5, Some(4), false, false), "1.5");
        assert_eq!(fmt_g(100.0, Some(4), false, false), "100");
        assert_eq!(fmt_e(1234.5, 2, false), "1.23e+03");
        assert_eq!(fmt_f(2.0 / 3.0, 2), "0.67");
    }

    #[test]
    fn humanize_family() {
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.0012), "1.2m");
        assert_eq!(humanize(999.0), "999");
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize1024(1048576.0 * 3.5), "3.5Mi");
        assert_eq!(humanize1024(0.5), "0.5");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.0), "1s");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(3600.5), "1h 0m 0s");
        assert_eq!(humanize_duration(0.035), "35ms");
        assert_eq!(humanize_duration(-65.0), "-1m 5s");
        assert_eq!(humanize_percentage(0.1234567), "12.35%");
        assert_eq!(
            humanize_timestamp(1435065584.128),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(humanize_timestamp(0.0), "1970-01-01 00:00:00 +0000 UTC");
    }
}
