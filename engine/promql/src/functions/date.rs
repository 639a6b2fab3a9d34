//! The calendar functions (`year()`, `month()`, … `minute()`): a field of a Unix time in
//! seconds, in UTC, as Prometheus's date functions give it.

pub(crate) fn year(v: f64) -> f64 {
    civil(v).0 as f64
}

pub(crate) fn month(v: f64) -> f64 {
    civil(v).1 as f64
}

pub(crate) fn day_of_month(v: f64) -> f64 {
    civil(v).2 as f64
}

pub(crate) fn day_of_week(v: f64) -> f64 {
    let days = (v as i64).div_euclid(86_400);
    (days + 4).rem_euclid(7) as f64
}

pub(crate) fn day_of_year(v: f64) -> f64 {
    let (y, m, d) = civil(v);
    (days_before_month(y, m) + d) as f64
}

pub(crate) fn days_in_month(v: f64) -> f64 {
    let (y, m, _) = civil(v);
    month_days(y, m) as f64
}

pub(crate) fn hour(v: f64) -> f64 {
    (v as i64).rem_euclid(86_400).div_euclid(3600) as f64
}

pub(crate) fn minute(v: f64) -> f64 {
    (v as i64).rem_euclid(3600).div_euclid(60) as f64
}

/// Year, month (1–12) and day (1–31) of a Unix time in seconds.
fn civil(v: f64) -> (i64, i64, i64) {
    let days = (v as i64).div_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_days(y: i64, m: i64) -> i64 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_before_month(y: i64, m: i64) -> i64 {
    (1..m).map(|k| month_days(y, k)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_fields() {
        // 2024-02-29T13:45:00Z
        let t = 1_709_214_300.0;
        assert_eq!(civil(t), (2024, 2, 29));
        assert_eq!(day_of_week(t), 4.0);
        assert_eq!(day_of_year(t), 60.0);
        assert_eq!(days_in_month(t), 29.0);
        assert_eq!(hour(t), 13.0);
        assert_eq!(minute(t), 45.0);
        assert_eq!(civil(-1.0), (1969, 12, 31));
    }
}
