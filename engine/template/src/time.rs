//! Times as Go's `time` package writes and reads them with a reference layout: the layout is
//! the reference time `Mon Jan 2 15:04:05 MST 2006` (`01/02 03:04:05PM '06 -0700`) written
//! the way the times should look (`2006-01-02T15:04:05Z07:00`); each piece of the reference
//! time stands for that piece of the time, the rest is copied as it is. Used by sprig's
//! `date`, `toDate` and `toDateInZone` in LogQL's templates.
//!
//! The pieces: years `2006` `06`; months `Jan` `January` `1` `01`; week days `Mon`
//! `Monday`; days `2` `_2` `02`, days of the year `__2` `002`; hours `15` `3` `03`; minutes
//! `4` `04`; seconds `5` `05`; `PM` `pm`; zones `MST`, `-0700` `-07:00` `-07` `-070000`
//! `-07:00:00` and the same with `Z` for `-` (written `Z` at UTC); fractions of a second
//! `.000` (that many digits) or `.999` (at most that many, trailing zeros dropped), also after
//! `,`. Strata's times are written in UTC (the server's local zone, for these functions).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// How Go's `Time.String` writes a time.
pub const GO_STRING: &str = "2006-01-02 15:04:05.999999999 -0700 MST";

/// A point in time: seconds since the Unix epoch and the nanoseconds after them. Go's times
/// reach from year 1 and before, further than nanoseconds in an `i64` (1678 to 2262) do, and
/// a time parsed from a layout without a year is in year 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

impl Time {
    pub fn from_nanos(ns: i64) -> Time {
        Time {
            secs: ns.div_euclid(1_000_000_000),
            nanos: ns.rem_euclid(1_000_000_000) as u32,
        }
    }

    /// Nanoseconds since the epoch (saturated beyond an `i64`'s range, where Go's are
    /// undefined).
    pub fn unix_nanos(&self) -> i64 {
        self.secs
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(self.nanos))
    }

    fn utc(&self) -> Option<NaiveDateTime> {
        DateTime::from_timestamp(self.secs, self.nanos).map(|t| t.naive_utc())
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A piece of a layout that stands for a piece of the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm {
        upper: bool,
    },
    Zone,
    /// A numeric zone: `Z` at UTC when `iso`; seconds and colons as the layout has them;
    /// `short`: hours alone.
    Offset {
        iso: bool,
        colon: bool,
        seconds: bool,
        short: bool,
    },
    /// `digits` of a second's fraction after `sep`; `trim`: trailing zeros dropped (`.999`).
    Fraction {
        sep: u8,
        digits: usize,
        trim: bool,
    },
}

/// Splits a layout at its first piece: the literal text before it, the piece and what
/// follows it (`None`: no piece is left, all of it is literal).
fn next_piece(layout: &str) -> (&str, Option<(Piece, &str)>) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout[i..].starts_with(s);
    let mut i = 0;
    while i < b.len() {
        let found: Option<(Piece, usize)> = match b[i] {
            b'J' if at(i, "January") => Some((Piece::LongMonth, 7)),
            b'J' if at(i, "Jan") => Some((Piece::Month, 3)),
            b'M' if at(i, "Monday") => Some((Piece::LongWeekDay, 6)),
            b'M' if at(i, "Mon") => Some((Piece::WeekDay, 3)),
            b'M' if at(i, "MST") => Some((Piece::Zone, 3)),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => Some((
                [
                    Piece::ZeroMonth,
                    Piece::ZeroDay,
                    Piece::ZeroHour12,
                    Piece::ZeroMinute,
                    Piece::ZeroSecond,
                    Piece::Year,
                ][usize::from(b[i + 1] - b'1')],
                2,
            )),
            b'0' if at(i, "002") => Some((Piece::ZeroYearDay, 3)),
            b'1' if at(i, "15") => Some((Piece::Hour, 2)),
            b'1' => Some((Piece::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Piece::LongYear, 4)),
            b'2' => Some((Piece::Day, 1)),
            // `_2006` is an underscore and a year.
            b'_' if at(i, "_2") && !at(i, "_2006") => Some((Piece::UnderDay, 2)),
            b'_' if at(i, "__2") => Some((Piece::UnderYearDay, 3)),
            b'3' => Some((Piece::Hour12, 1)),
            b'4' => Some((Piece::Minute, 1)),
            b'5' => Some((Piece::Second, 1)),
            b'P' if at(i, "PM") => Some((Piece::Pm { upper: true }, 2)),
            b'p' if at(i, "pm") => Some((Piece::Pm { upper: false }, 2)),
            c @ (b'-' | b'Z') => {
                let iso = c == b'Z';
                [
                    ("07:00:00", true, true, false),
                    ("070000", false, true, false),
                    ("07:00", true, false, false),
                    ("0700", false, false, false),
                    ("07", false, false, true),
                ]
                .into_iter()
                .find(|(rest, ..)| at(i + 1, rest))
                .map(|(rest, colon, seconds, short)| {
                    (
                        Piece::Offset {
                            iso,
                            colon,
                            seconds,
                            short,
                        },
                        1 + rest.len(),
                    )
                })
            }
            sep @ (b'.' | b',') if i + 1 < b.len() && matches!(b[i + 1], b'0' | b'9') => {
                let digit = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == digit {
                    j += 1;
                }
                // `.000` followed by another digit is not a fraction (`.0001` is text).
                (j == b.len() || !b[j].is_ascii_digit()).then_some((
                    Piece::Fraction {
                        sep,
                        digits: j - i - 1,
                        trim: digit == b'9',
                    },
                    j - i,
                ))
            }
            _ => None,
        };
        if let Some((piece, len)) = found {
            return (&layout[..i], Some((piece, &layout[i + len..])));
        }
        i += layout[i..].chars().next().map_or(1, char::len_utf8);
    }
    (layout, None)
}

/// `t` written with Go's `layout`, in UTC; `None` beyond the years chrono knows.
pub fn format(t: Time, layout: &str) -> Option<String> {
    let dt = t.utc()?;
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    loop {
        let (literal, piece) = next_piece(rest);
        out.push_str(literal);
        let Some((piece, after)) = piece else {
            return Some(out);
        };
        rest = after;
        write_piece(&mut out, piece, &dt);
    }
}

fn write_piece(out: &mut String, piece: Piece, dt: &NaiveDateTime) {
    use std::fmt::Write;
    let hour12 = match dt.hour() % 12 {
        0 => 12,
        h => h,
    };
    let month = MONTHS[dt.month0() as usize];
    let day = DAYS[dt.weekday().num_days_from_monday() as usize];
    // Writing to a String cannot fail.
    let _ = match piece {
        Piece::LongMonth => write!(out, "{month}"),
        Piece::Month => write!(out, "{}", &month[..3]),
        Piece::NumMonth => write!(out, "{}", dt.month()),
        Piece::ZeroMonth => write!(out, "{:02}", dt.month()),
        Piece::LongWeekDay => write!(out, "{day}"),
        Piece::WeekDay => write!(out, "{}", &day[..3]),
        Piece::Day => write!(out, "{}", dt.day()),
        Piece::UnderDay => write!(out, "{:>2}", dt.day()),
        Piece::ZeroDay => write!(out, "{:02}", dt.day()),
        Piece::UnderYearDay => write!(out, "{:>3}", dt.ordinal()),
        Piece::ZeroYearDay => write!(out, "{:03}", dt.ordinal()),
        Piece::Hour => write!(out, "{:02}", dt.hour()),
        Piece::Hour12 => write!(out, "{hour12}"),
        Piece::ZeroHour12 => write!(out, "{hour12:02}"),
        Piece::Minute => write!(out, "{}", dt.minute()),
        Piece::ZeroMinute => write!(out, "{:02}", dt.minute()),
        Piece::Second => write!(out, "{}", dt.second()),
        Piece::ZeroSecond => write!(out, "{:02}", dt.second()),
        Piece::LongYear => write!(out, "{:04}", dt.year()),
        Piece::Year => write!(out, "{:02}", dt.year().rem_euclid(100)),
        Piece::Pm { upper } => {
            let pm = if dt.hour() >= 12 { "PM" } else { "AM" };
            if upper {
                write!(out, "{pm}")
            } else {
                write!(out, "{}", pm.to_ascii_lowercase())
            }
        }
        Piece::Zone => write!(out, "UTC"),
        Piece::Offset { iso: true, .. } => write!(out, "Z"),
        Piece::Offset {
            colon,
            seconds,
            short,
            ..
        } => {
            let sep = if colon { ":" } else { "" };
            out.push_str("+00");
            if !short {
                out.push_str(sep);
                out.push_str("00");
            }
            if seconds {
                out.push_str(sep);
                out.push_str("00");
            }
            Ok(())
        }
        Piece::Fraction { sep, digits, trim } => {
            let all = format!("{:09}", dt.nanosecond() % 1_000_000_000);
            let mut frac = &all[..digits.min(9)];
            if trim {
                frac = frac.trim_end_matches('0');
            }
            if !frac.is_empty() {
                out.push(char::from(sep));
                out.push_str(frac);
                for _ in 9..digits {
                    if !trim {
                        out.push('0');
                    }
                }
            }
            Ok(())
        }
    };
}

/// What a value read with a layout said, before it is made a time.
#[derive(Debug, Default)]
struct Fields {
    year: i32,
    month: Option<u32>,
    day: Option<u32>,
    year_day: Option<u32>,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    pm: Option<bool>,
    offset_s: Option<i32>,
}

/// Reads `value` with Go's `layout`. A value that names no zone is in `default_offset_s`
/// (seconds east of UTC). Pieces the layout lacks are zero, or one for the month and day, as
/// in Go (a layout without a year reads a time of year 0). `Err` says what did not match.
pub fn parse(layout: &str, value: &str, default_offset_s: i32) -> Result<Time, String> {
    let bad = |what: &str| format!("parsing time {value:?} as {layout:?}: cannot parse {what}");
    let mut f = Fields::default();
    let mut rest_layout = layout;
    let mut v = value;
    loop {
        let (literal, piece) = next_piece(rest_layout);
        v = v
            .strip_prefix(literal)
            .ok_or_else(|| bad(&format!("{v:?} as {literal:?}")))?;
        let Some((piece, after)) = piece else {
            break;
        };
        rest_layout = after;
        let before = v;
        v = read_piece(piece, v, &mut f).ok_or_else(|| bad(&format!("{before:?}")))?;
        // A fraction may follow the seconds though the layout has none, as Go reads it.
        if matches!(piece, Piece::Second | Piece::ZeroSecond)
            && !matches!(
                next_piece(rest_layout),
                ("", Some((Piece::Fraction { .. }, _)))
            )
            && let Some(after_sep) = v.strip_prefix(['.', ','])
            && after_sep.starts_with(|c: char| c.is_ascii_digit())
        {
            let digits = after_sep.len()
                - after_sep
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .len();
            f.nanos = fraction(&after_sep[..digits]);
            v = &after_sep[digits..];
        }
    }
    if !v.is_empty() {
        return Err(format!(
            "parsing time {value:?} as {layout:?}: extra text: {v:?}"
        ));
    }
    let mut hour = f.hour;
    match f.pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let date = match (f.year_day, f.month, f.day) {
        (Some(yd), None, None) => NaiveDate::from_yo_opt(f.year, yd),
        (Some(yd), m, d) => NaiveDate::from_yo_opt(f.year, yd).filter(|date| {
            m.is_none_or(|m| date.month() == m) && d.is_none_or(|d| date.day() == d)
        }),
        (None, m, d) => NaiveDate::from_ymd_opt(f.year, m.unwrap_or(1), d.unwrap_or(1)),
    }
    .ok_or_else(|| format!("parsing time {value:?}: day out of range"))?;
    let time = NaiveTime::from_hms_nano_opt(hour, f.minute, f.second, f.nanos)
        .ok_or_else(|| format!("parsing time {value:?}: time out of range"))?;
    let local = date.and_time(time).and_utc().timestamp();
    let offset = i64::from(f.offset_s.unwrap_or(default_offset_s));
    Ok(Time {
        secs: local - offset,
        nanos: f.nanos,
    })
}

/// The nanoseconds of a fraction's digits (those past the ninth dropped).
fn fraction(digits: &str) -> u32 {
    let mut n = 0u32;
    for i in 0..9 {
        n = n * 10 + digits.as_bytes().get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    n
}

/// Reads a number of `min` to `max` digits.
fn number(v: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let digits = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if digits < min {
        return None;
    }
    Some((v[..digits].parse().ok()?, &v[digits..]))
}

/// A name of `names` (or its first three letters when `short`) at the start of `v`, in any
/// case; its index.
fn name<'v>(v: &'v str, names: &[&str], short: bool) -> Option<(usize, &'v str)> {
    names.iter().enumerate().find_map(|(i, n)| {
        let n = if short { &n[..3] } else { n };
        let head = v.get(..n.len())?;
        head.eq_ignore_ascii_case(n).then(|| (i, &v[n.len()..]))
    })
}

fn in_range(n: u32, lo: u32, hi: u32) -> Option<u32> {
    (lo..=hi).contains(&n).then_some(n)
}

/// Reads one piece from the start of `v` into `f`; what follows it, or `None` if it does not
/// match.
fn read_piece<'v>(piece: Piece, v: &'v str, f: &mut Fields) -> Option<&'v str> {
    Some(match piece {
        Piece::LongYear => {
            let (y, rest) = number(v, 4, 4)?;
            f.year = y as i32;
            rest
        }
        Piece::Year => {
            let (y, rest) = number(v, 2, 2)?;
            f.year = if y >= 69 {
                1900 + y as i32
            } else {
                2000 + y as i32
            };
            rest
        }
        Piece::LongMonth | Piece::Month => {
            let (m, rest) = name(v, &MONTHS, piece == Piece::Month)?;
            f.month = Some(m as u32 + 1);
            rest
        }
        Piece::NumMonth | Piece::ZeroMonth => {
            let min = if piece == Piece::ZeroMonth { 2 } else { 1 };
            let (m, rest) = number(v, min, 2)?;
            f.month = Some(in_range(m, 1, 12)?);
            rest
        }
        Piece::LongWeekDay | Piece::WeekDay => name(v, &DAYS, piece == Piece::WeekDay)?.1,
        Piece::Day | Piece::UnderDay | Piece::ZeroDay => {
            let v = if piece == Piece::UnderDay {
                v.strip_prefix(' ').unwrap_or(v)
            } else {
                v
            };
            let min = if piece == Piece::ZeroDay { 2 } else { 1 };
            let (d, rest) = number(v, min, 2)?;
            f.day = Some(in_range(d, 1, 31)?);
            rest
        }
        Piece::UnderYearDay | Piece::ZeroYearDay => {
            let v = if piece == Piece::UnderYearDay {
                v.trim_start_matches(' ')
            } else {
                v
            };
            let min = if piece == Piece::ZeroYearDay { 3 } else { 1 };
            let (d, rest) = number(v, min, 3)?;
            f.year_day = Some(in_range(d, 1, 366)?);
            rest
        }
        Piece::Hour => {
            let (h, rest) = number(v, 1, 2)?;
            f.hour = in_range(h, 0, 23)?;
            rest
        }
        Piece::Hour12 | Piece::ZeroHour12 => {
            let min = if piece == Piece::ZeroHour12 { 2 } else { 1 };
            let (h, rest) = number(v, min, 2)?;
            f.hour = in_range(h, 0, 12)?;
            rest
        }
        Piece::Minute | Piece::ZeroMinute => {
            let min = if piece == Piece::ZeroMinute { 2 } else { 1 };
            let (m, rest) = number(v, min, 2)?;
            f.minute = in_range(m, 0, 59)?;
            rest
        }
        Piece::Second | Piece::ZeroSecond => {
            let min = if piece == Piece::ZeroSecond { 2 } else { 1 };
            let (s, rest) = number(v, min, 2)?;
            f.second = in_range(s, 0, 59)?;
            rest
        }
        Piece::Pm { upper } => {
            let head = v.get(..2)?;
            let (am, pm) = if upper { ("AM", "PM") } else { ("am", "pm") };
            f.pm = Some(if head == pm {
                true
            } else if head == am {
                false
            } else {
                return None;
            });
            &v[2..]
        }
        Piece::Zone => {
            if let Some(rest) = v.strip_prefix("UTC").or_else(|| v.strip_prefix("GMT")) {
                f.offset_s = Some(0);
                rest
            } else {
                // An abbreviation Go cannot place is read as UTC, as Go reads it.
                let letters = v.bytes().take_while(u8::is_ascii_uppercase).count();
                if !(3..=5).contains(&letters) {
                    return None;
                }
                f.offset_s = Some(0);
                &v[letters..]
            }
        }
        Piece::Offset {
            iso,
            colon,
            seconds,
            short,
        } => {
            if iso && let Some(rest) = v.strip_prefix('Z') {
                f.offset_s = Some(0);
                return Some(rest);
            }
            let sign = match v.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, mut rest) = number(&v[1..], 2, 2)?;
            let mut m = 0;
            let mut s = 0;
            let next = |rest: &'v str| -> Option<(u32, &'v str)> {
                let rest = if colon { rest.strip_prefix(':')? } else { rest };
                number(rest, 2, 2)
            };
            if !short {
                (m, rest) = next(rest)?;
            }
            if seconds {
                (s, rest) = next(rest)?;
            }
            f.offset_s = Some(sign * (h * 3600 + m * 60 + s) as i32);
            rest
        }
        Piece::Fraction { sep, digits, trim } => {
            let Some(after) = v.strip_prefix(char::from(sep)) else {
                // `.999` may be absent; `.000` may not.
                return trim.then_some(v);
            };
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            if (!trim && n != digits) || n == 0 {
                return None;
            }
            f.nanos = fraction(&after[..n]);
            &after[n..]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2023-11-14 22:13:20.123456789 UTC, a Tuesday, the 318th day of its year.
    const T: i64 = 1_700_000_000_123_456_789;

    #[test]
    fn layouts_write_each_piece_of_the_time() {
        let t = Time::from_nanos(T);
        for (layout, want) in [
            ("2006-01-02T15:04:05Z07:00", "2023-11-14T22:13:20Z"),
            ("2006-01-02T15:04:05.000Z", "2023-11-14T22:13:20.123Z"),
            (
                "2006-01-02 15:04:05.999999999 -0700 MST",
                "2023-11-14 22:13:20.123456789 +0000 UTC",
            ),
            ("Mon Jan _2 15:04:05 2006", "Tue Nov 14 22:13:20 2023"),
            (
                "Monday, 02-Jan-06 03:04:05PM",
                "Tuesday, 14-Nov-23 10:13:20PM",
            ),
            ("January 2, 2006 3:4:5 pm", "November 14, 2023 10:13:20 pm"),
            ("002 __2 1/2", "318 318 11/14"),
            ("-07:00:00 -070000 -07 Z07", "+00:00:00 +000000 +00 Z"),
            ("15:04:05,000000", "22:13:20,123456"),
            ("2006_2006 year", "2023_2023 year"),
            ("no pieces here", "no pieces here"),
        ] {
            assert_eq!(format(t, layout).as_deref(), Some(want), "{layout}");
        }
        // `.999` drops trailing zeros, and the separator with them when nothing is left.
        let whole = Time::from_nanos(1_700_000_000_000_000_000);
        assert_eq!(format(whole, "05.999").as_deref(), Some("20"));
        assert_eq!(format(whole, "05.000").as_deref(), Some("20.000"));
        let half = Time::from_nanos(1_700_000_000_500_000_000);
        assert_eq!(format(half, "05.999").as_deref(), Some("20.5"));
    }

    #[test]
    fn a_written_time_reads_back_the_same() {
        let t = Time::from_nanos(T);
        for layout in [
            "2006-01-02T15:04:05.999999999Z07:00",
            "2006-01-02 15:04:05.000000000 -0700 MST",
            "Mon, 02 Jan 2006 15:04:05.999999999 -07:00",
            "Monday January 2 2006 3:04:05.999999999PM",
        ] {
            let text = format(t, layout).unwrap();
            assert_eq!(parse(layout, &text, 0), Ok(t), "{layout}: {text}");
        }
    }

    #[test]
    fn zones_in_the_value_or_the_default_place_the_time() {
        let utc = parse("2006-01-02 15:04", "2021-11-02 10:00", 0).unwrap();
        assert_eq!(utc.secs, 1_635_847_200);
        // The same wall time two hours east of UTC is two hours earlier.
        let east = parse("2006-01-02 15:04", "2021-11-02 10:00", 7200).unwrap();
        assert_eq!(east.secs, utc.secs - 7200);
        let named = parse("2006-01-02 15:04 -07:00", "2021-11-02 10:00 +02:00", 0).unwrap();
        assert_eq!(named, east);
        let z = parse("2006-01-02T15:04:05Z07:00", "2021-11-02T10:00:00Z", 3600).unwrap();
        assert_eq!(z, utc);
    }

    #[test]
    fn parsing_follows_go_on_what_the_layout_leaves_out() {
        // A fraction after the seconds is read though the layout has none.
        let t = parse("2006-01-02 15:04:05", "2021-11-02 10:00:00.25", 0).unwrap();
        assert_eq!(t.nanos, 250_000_000);
        // No year: year 0; no day: the first.
        let t = parse("15:04", "10:30", 0).unwrap();
        assert_eq!(
            format(t, "2006-01-02 15:04").as_deref(),
            Some("0000-01-01 10:30")
        );
        // 12 PM is noon, 12 AM midnight.
        assert_eq!(parse("3PM", "12AM", 0).unwrap().secs % 86_400, 0);
        let noon = parse("2006-01-02 3PM", "2021-11-02 12PM", 0).unwrap();
        assert_eq!(noon.secs.rem_euclid(86_400), 12 * 3600);
        // Two-digit years: 69 and on are the 1900s.
        assert_eq!(
            format(parse("06", "69", 0).unwrap(), "2006").as_deref(),
            Some("1969")
        );
        assert_eq!(
            format(parse("06", "68", 0).unwrap(), "2006").as_deref(),
            Some("2068")
        );
    }

    #[test]
    fn values_that_do_not_fit_the_layout_are_refused() {
        for (layout, value) in [
            ("2006-01-02", "2021-13-02"),
            ("2006-01-02", "2021-02-30"),
            ("2006-01-02", "2021-1-02"),
            ("2006-01-02", "2021-11-02 extra"),
            ("2006-01-02", "21-11-02"),
            ("15:04:05.000", "10:00:00.12"),
            ("Jan 2", "Foo 2"),
            ("-0700", "0200"),
        ] {
            let e = parse(layout, value, 0).unwrap_err();
            assert!(
                e.contains(value) || e.contains("range"),
                "{layout} {value}: {e}"
            );
        }
    }
}
