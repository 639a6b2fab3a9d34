//! Times and durations as the rules' files and APIs spell them, and the durable writes of the
//! rules' state files.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// Wall-clock milliseconds.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Milliseconds as Go writes a time in JSON (RFC 3339, fraction without trailing zeros); Go's
/// zero time when never.
pub fn rfc3339(ms: Option<i64>) -> String {
    ms.and_then(|ms| utc(ms, "%Y-%m-%dT%H:%M:%S", "Z"))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned())
}

/// `ms` as a UTC time in `format`, then its millisecond fraction as Go prints one (`.5`, none
/// for a whole second), then `suffix`; `None` out of chrono's range.
pub fn utc(ms: i64, format: &str, suffix: &str) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    let mut frac = format!(".{:03}", ms.rem_euclid(1000));
    while frac.ends_with('0') {
        frac.pop();
    }
    if frac == "." {
        frac.clear();
    }
    Some(format!("{}{frac}{suffix}", t.format(format)))
}

/// Prometheus's duration syntax (`90s`, `1h30m`, `0`), never negative.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("not a valid duration string: {s:?}");
    // Zero in units (`0m`, `0s0ms`): the parser refuses a zero duration, Prometheus does not.
    if s.bytes().all(|b| b == b'0' || b.is_ascii_alphabetic()) && s.starts_with('0') {
        return promql_parser::util::parse_duration(&s.replace('0', "1"))
            .map(|_| Duration::ZERO)
            .map_err(|_| bad());
    }
    promql_parser::util::parse_duration(s).map_err(|_| bad())
}

/// Writes `value` as JSON to `path` so that a crash leaves either the old file or the new one
/// (a temporary file synced, renamed over it, the directory synced).
pub fn write_json_durably<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(value).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_prometheus_syntax_zero_included() {
        assert_eq!(parse_duration("0m"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("0x").is_err());
        assert!(parse_duration("-1m").is_err());
    }

    #[test]
    fn times_as_go_writes_them_in_json() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(1_500)), "1970-01-01T00:00:01.5Z");
        assert_eq!(rfc3339(Some(1_000)), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn a_durable_write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.json");
        write_json_durably(&path, &vec![1, 2]).unwrap();
        write_json_durably(&path, &vec![3]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[3]");
        assert!(!path.with_extension("json.tmp").exists());
    }
}
