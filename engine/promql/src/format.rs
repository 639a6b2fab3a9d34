//! Numbers as Prometheus (a Go program) reads and writes them in labels and messages.

/// A float as Go's `strconv.ParseFloat` reads it (`+Inf`, `inf`, `NaN`, hex floats aside).
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    t.parse::<f64>().ok()
}

/// A float as Go's `%g` verb writes it (shortest digits; exponent form below 1e-4 and from
/// 1e6 up).
pub(crate) fn format_go(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it: shortest digits, never an
/// exponent (`count_values` labels).
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        assert_eq!(format_go(0.5), "0.5");
        assert_eq!(format_go(1e21), "1e+21");
        assert_eq!(format_go(1234567.0), "1.234567e+06");
        assert_eq!(format_value(1234567.0), "1234567");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_go(1e-5), "1e-05");
        assert_eq!(format_go(123456.0), "123456");
        assert_eq!(format_go(f64::NEG_INFINITY), "-Inf");
    }
}
