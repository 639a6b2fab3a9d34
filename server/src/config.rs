//! Settings: defaults, overridden by the YAML configuration file, overridden by command-line
//! flags. [`Settings::resolve`] merges the three and checks every value; the server applies
//! the result at start and again on reload (SIGHUP, `POST /-/reload`), where settings that
//! can change while running do, and the rest wait for a restart (the log says which).
//!
//! The file (every key optional; unknown keys are an error, so a typo does not pass
//! silently):
//!
//! ```yaml
//! listen: 127.0.0.1:9201
//! data_dir: strata-data
//! log_level: info
//! enable_admin_api: false
//! storage:
//!   retention_time: 15d        # 0 keeps everything
//!   retention_size: 0          # e.g. 50GB; 0 = unlimited
//!   fsync: always              # or an interval such as 1s
//!   max_series: 10000000
//!   out_of_order_window: 10m
//! remote_write:
//!   max_body_size: 32MB        # compressed
//!   max_decoded_size: 128MB
//!   max_series_per_request: 1000000
//!   max_labels_per_series: 64
//!   max_label_name_length: 1024
//!   max_label_value_length: 16384
//!   max_inflight_requests: 64  # more wait up to 10 s, then get 503
//! exemplars:
//!   max_exemplars: 100000      # 0 keeps none
//! global:
//!   evaluation_interval: 1m    # rule groups that set no interval
//!   external_labels: {}        # seen by alert templates, added to notifications
//! external_url: ""             # links in notifications; default http://<listen>
//! rule_files:                  # Prometheus rule files; globs; relative to this file
//!   - rules/*.yml
//! log_rule_files:              # Loki ruler files (LogQL metric queries); the same way
//!   - log-rules/*.yml
//! alerting:
//!   resend_delay: 1m           # how often a firing alert is sent again
//!   alertmanagers:             # Prometheus's keys: static targets, path prefix, timeout
//!     - static_configs: [{targets: ['127.0.0.1:9093']}]
//!       path_prefix: /
//!       scheme: http
//!       timeout: 10s
//! notifiers:                   # Slack and webhooks without an Alertmanager (see
//!   receivers: []              # docs/alerting.md): receivers and a routing tree
//!   route: {receiver: NAME, group_by: [alertname], group_wait: 30s, ...}
//! logs:
//!   ingestion_rate: 256MB      # log bytes a second taken by the push APIs; more is 429
//!   ingestion_burst: 512MB     # taken at once above the rate
//! query:
//!   timeout: 2m                # then 503 `timeout`
//!   max_concurrency: 20        # more wait for a turn (within their timeout)
//!   max_samples: 50000000      # in memory at once; more is 422 `execution`
//!   lookback_delta: 5m
//!   max_query_length: 256KB    # longer query texts are 400 `bad_data`
//!   decoded_cache_size: 32MB   # decoded block chunks kept for repeated queries; 0 = off
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use strata_engine::FsyncMode;

use crate::prom::limits::{QueryLimits, WriteLimits};

/// The YAML file, as written (everything optional).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub enable_admin_api: Option<bool>,
    pub storage: StorageFile,
    pub remote_write: RemoteWriteFile,
    pub exemplars: ExemplarsFile,
    pub query: QueryFile,
    pub logs: LogsFile,
    pub global: GlobalFile,
    pub external_url: Option<String>,
    pub rule_files: Vec<String>,
    /// Loki ruler files: rule groups whose expressions are LogQL metric queries.
    pub log_rule_files: Vec<String>,
    pub alerting: AlertingFile,
    pub notifiers: crate::alerting::route::NotifiersFile,
}

/// `alerting:` in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingFile {
    pub resend_delay: Option<String>,
    pub alertmanagers: Vec<AlertmanagerFile>,
}

/// One entry of `alerting.alertmanagers`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerFile {
    pub static_configs: Vec<StaticConfigFile>,
    pub path_prefix: Option<String>,
    pub scheme: Option<String>,
    pub timeout: Option<String>,
    pub api_version: Option<String>,
}

/// `static_configs` entries: targets as `host:port`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfigFile {
    pub targets: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// `global:` in the file (Prometheus's keys).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalFile {
    pub evaluation_interval: Option<String>,
    pub external_labels: std::collections::BTreeMap<String, String>,
}

/// `logs:` in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsFile {
    /// Bytes a second the log push APIs take (lines and metadata), all senders together.
    pub ingestion_rate: Option<ByteSize>,
    /// Bytes they may take at once above the rate.
    pub ingestion_burst: Option<ByteSize>,
}

/// `query:` in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueryFile {
    pub timeout: Option<String>,
    pub max_concurrency: Option<usize>,
    pub max_samples: Option<usize>,
    pub lookback_delta: Option<String>,
    pub max_query_length: Option<ByteSize>,
    pub decoded_cache_size: Option<ByteSize>,
}

/// `storage:` in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageFile {
    pub retention_time: Option<String>,
    pub retention_size: Option<ByteSize>,
    pub fsync: Option<String>,
    pub max_series: Option<u64>,
    pub out_of_order_window: Option<String>,
}

/// `remote_write:` in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteFile {
    pub max_body_size: Option<ByteSize>,
    pub max_decoded_size: Option<ByteSize>,
    pub max_series_per_request: Option<usize>,
    pub max_labels_per_series: Option<usize>,
    pub max_label_name_length: Option<usize>,
    pub max_label_value_length: Option<usize>,
    pub max_inflight_requests: Option<usize>,
}

/// `exemplars:` in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsFile {
    pub max_exemplars: Option<usize>,
}

/// A size written as a number of bytes or with a unit (`512MB`, `10GiB`; units are powers
/// of 1024, as Prometheus's `--storage.tsdb.retention.size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(s) => parse_bytes(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `0`, `1048576`, `512MB`, `10GiB`, `1.5TB` (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (write e.g. 512MB or 10GB)"))?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" | "K" => 1 << 10,
        "MB" | "MIB" | "M" => 1 << 20,
        "GB" | "GIB" | "G" => 1 << 30,
        "TB" | "TIB" | "T" => 1 << 40,
        "PB" | "PIB" | "P" => 1 << 50,
        other => {
            return Err(format!(
                "{other:?} is not a size unit (B, KB, MB, GB, TB, PB)"
            ));
        }
    };
    let bytes = n * scale as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes as u64)
}

/// Parses a Prometheus duration (`15d`, `1h30m`, `500ms`, `0`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::alerting::time::parse_duration(s)
        .map_err(|_| format!("{s:?} is not a duration (write e.g. 15d, 2h, 30s)"))
}

/// Parses `always` or a sync interval.
pub fn parse_fsync(s: &str) -> Result<FsyncMode, String> {
    if s.trim().eq_ignore_ascii_case("always") {
        return Ok(FsyncMode::Always);
    }
    let interval = parse_duration(s)
        .map_err(|_| format!("fsync {s:?} must be `always` or an interval such as 1s"))?;
    if interval.is_zero() {
        return Err("an fsync interval must be longer than 0 (or write `always`)".into());
    }
    Ok(FsyncMode::Interval(interval))
}

/// What flags say, each `None` when not given (so the file or the default decides).
#[derive(Debug, Clone, Default)]
pub struct FlagOverrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub enable_admin_api: bool,
    pub retention_time: Option<String>,
    pub retention_size: Option<String>,
    pub fsync: Option<String>,
    pub max_series: Option<u64>,
}

/// Every setting, resolved and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log_level: String,
    pub enable_admin_api: bool,
    /// 0 keeps everything.
    pub retention_ms: i64,
    /// 0 = unlimited.
    pub retention_bytes: u64,
    pub fsync: FsyncMode,
    pub max_series: u64,
    pub out_of_order_window_ms: i64,
    pub write_limits: WriteLimits,
    /// Remote-write requests handled at once (more wait, then get 503).
    pub max_inflight_writes: usize,
    pub max_exemplars: usize,
    pub query: QueryLimits,
    /// Log bytes a second the push APIs take (0 = unlimited), and the burst above it.
    pub log_ingestion_rate_bytes: u64,
    pub log_ingestion_burst_bytes: u64,
    /// Bytes of decoded block chunks the engine keeps (0 = none).
    pub decoded_cache_bytes: usize,
    /// Rule files (glob patterns).
    pub rule_files: Vec<String>,
    /// Log rule files (glob patterns): LogQL expressions.
    pub log_rule_files: Vec<String>,
    /// The interval of rule groups that set none.
    pub evaluation_interval: Duration,
    /// Labels alert templates see as `$externalLabels` and notifications carry.
    pub external_labels: Vec<(String, String)>,
    /// Where links in notifications point.
    pub external_url: String,
    /// How often a firing alert is sent again.
    pub resend_delay: Duration,
    /// The Alertmanagers alerts go to.
    pub alertmanagers: Vec<crate::alerting::alertmanager::Target>,
    /// The built-in notifiers (Slack, webhooks), when configured.
    pub notifiers: Option<crate::alerting::route::Notifiers>,
}

/// The log ingestion rate and burst by default, in bytes: high enough that one machine's
/// shippers never meet it in normal work, there to stop a runaway sender.
pub const DEFAULT_LOG_RATE: u64 = 256 << 20;
pub const DEFAULT_LOG_BURST: u64 = 512 << 20;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9201";

impl Settings {
    /// Reads the configuration file at `path`.
    pub fn read_file(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the configuration file {}: {e}", path.display()))?;
        if text.trim().is_empty() {
            return Ok(FileConfig::default());
        }
        let mut file: FileConfig = serde_saphyr::from_str(&text)
            .map_err(|e| format!("configuration file {}: {e}", path.display()))?;
        // Rule files are found relative to the configuration file, as Prometheus finds them.
        if let Some(dir) = path.parent() {
            for pattern in file
                .rule_files
                .iter_mut()
                .chain(file.log_rule_files.iter_mut())
            {
                if Path::new(pattern.as_str()).is_relative() {
                    *pattern = dir.join(pattern.as_str()).to_string_lossy().into_owned();
                }
            }
        }
        Ok(file)
    }

    /// Merges defaults, `file` and `flags` (flags win), and checks the result.
    pub fn resolve(file: &FileConfig, flags: &FlagOverrides) -> Result<Settings, String> {
        let defaults = WriteLimits::default();
        let rw = &file.remote_write;
        let retention_time = flags
            .retention_time
            .as_deref()
            .or(file.storage.retention_time.as_deref())
            .unwrap_or("15d");
        let retention_bytes = match &flags.retention_size {
            Some(s) => parse_bytes(s).map_err(|e| format!("--retention-size: {e}"))?,
            None => file.storage.retention_size.map_or(0, |b| b.0),
        };
        let fsync = flags
            .fsync
            .as_deref()
            .or(file.storage.fsync.as_deref())
            .unwrap_or("always");
        let ooo = file.storage.out_of_order_window.as_deref().unwrap_or("10m");
        let settings = Settings {
            listen: flags
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid address")),
            data_dir: flags
                .data_dir
                .clone()
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from("strata-data")),
            log_level: flags
                .log_level
                .clone()
                .or_else(|| file.log_level.clone())
                .unwrap_or_else(|| "info".into()),
            enable_admin_api: flags.enable_admin_api || file.enable_admin_api.unwrap_or(false),
            retention_ms: millis(
                parse_duration(retention_time).map_err(|e| format!("retention time: {e}"))?,
            ),
            retention_bytes,
            fsync: parse_fsync(fsync)?,
            max_series: flags
                .max_series
                .or(file.storage.max_series)
                .unwrap_or(10_000_000),
            out_of_order_window_ms: millis(
                parse_duration(ooo).map_err(|e| format!("out_of_order_window: {e}"))?,
            ),
            write_limits: WriteLimits {
                body_bytes_max: rw
                    .max_body_size
                    .map_or(defaults.body_bytes_max, |b| b.0 as usize),
                decoded_bytes_max: rw
                    .max_decoded_size
                    .map_or(defaults.decoded_bytes_max, |b| b.0 as usize),
                series_per_request_max: rw
                    .max_series_per_request
                    .unwrap_or(defaults.series_per_request_max),
                labels_per_series_max: rw
                    .max_labels_per_series
                    .unwrap_or(defaults.labels_per_series_max),
                label_name_bytes_max: rw
                    .max_label_name_length
                    .unwrap_or(defaults.label_name_bytes_max),
                label_value_bytes_max: rw
                    .max_label_value_length
                    .unwrap_or(defaults.label_value_bytes_max),
                sample_age_max_ms: 0,
            },
            max_inflight_writes: rw.max_inflight_requests.unwrap_or(64),
            max_exemplars: file.exemplars.max_exemplars.unwrap_or(100_000),
            query: query_limits(&file.query)?,
            log_ingestion_rate_bytes: file.logs.ingestion_rate.map_or(DEFAULT_LOG_RATE, |b| b.0),
            log_ingestion_burst_bytes: file.logs.ingestion_burst.map_or(DEFAULT_LOG_BURST, |b| b.0),
            decoded_cache_bytes: file
                .query
                .decoded_cache_size
                .map_or(strata_engine::Options::default().decoded_cache_bytes, |b| {
                    b.0 as usize
                }),
            rule_files: file.rule_files.clone(),
            log_rule_files: file.log_rule_files.clone(),
            evaluation_interval: match &file.global.evaluation_interval {
                Some(s) => {
                    parse_duration(s).map_err(|e| format!("global.evaluation_interval: {e}"))?
                }
                None => Duration::from_secs(60),
            },
            external_labels: file
                .global
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            external_url: String::new(),
            resend_delay: match &file.alerting.resend_delay {
                Some(s) => parse_duration(s).map_err(|e| format!("alerting.resend_delay: {e}"))?,
                None => Duration::from_secs(60),
            },
            alertmanagers: alertmanager_targets(&file.alerting.alertmanagers)?,
            notifiers: crate::alerting::route::Notifiers::from_file(&file.notifiers)?,
        };
        let mut settings = settings;
        settings.external_url = match &file.external_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", settings.listen),
        };
        // Samples retention would delete at once are refused rather than acknowledged.
        settings.write_limits.sample_age_max_ms = settings.retention_ms;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), String> {
        if self.evaluation_interval.is_zero() {
            return Err("global.evaluation_interval must be longer than 0".into());
        }
        for (name, _) in &self.external_labels {
            if !crate::alerting::rulefile::valid_label_name(name) {
                return Err(format!(
                    "global.external_labels: {name:?} is not a valid label name"
                ));
            }
        }
        let l = &self.write_limits;
        if l.body_bytes_max == 0 || l.decoded_bytes_max == 0 {
            return Err("remote_write sizes must be larger than 0".into());
        }
        if l.series_per_request_max == 0
            || l.labels_per_series_max == 0
            || l.label_name_bytes_max == 0
            || l.label_value_bytes_max == 0
        {
            return Err("remote_write limits must be larger than 0".into());
        }
        if self.max_inflight_writes == 0 {
            return Err("remote_write.max_inflight_requests must be larger than 0".into());
        }
        if self.max_series == 0 {
            return Err("max_series must be larger than 0".into());
        }
        Ok(())
    }

    /// The settings that differ from `self` in `new` and only take effect after a restart.
    pub fn restart_needed(&self, new: &Settings) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.listen != new.listen {
            changed.push("listen");
        }
        if self.data_dir != new.data_dir {
            changed.push("data_dir");
        }
        if self.fsync != new.fsync {
            changed.push("storage.fsync");
        }
        if self.out_of_order_window_ms != new.out_of_order_window_ms {
            changed.push("storage.out_of_order_window");
        }
        if self.max_inflight_writes != new.max_inflight_writes {
            changed.push("remote_write.max_inflight_requests");
        }
        if self.max_exemplars != new.max_exemplars {
            changed.push("exemplars.max_exemplars");
        }
        if self.query.max_concurrency != new.query.max_concurrency {
            changed.push("query.max_concurrency");
        }
        if self.decoded_cache_bytes != new.decoded_cache_bytes {
            changed.push("query.decoded_cache_size");
        }
        changed
    }
}

fn query_limits(file: &QueryFile) -> Result<QueryLimits, String> {
    let defaults = QueryLimits::default();
    let duration = |value: &Option<String>, default: Duration, what: &str| match value {
        None => Ok(default),
        Some(s) => parse_duration(s).map_err(|e| format!("query.{what}: {e}")),
    };
    let limits = QueryLimits {
        timeout: duration(&file.timeout, defaults.timeout, "timeout")?,
        max_concurrency: file.max_concurrency.unwrap_or(defaults.max_concurrency),
        max_samples: file.max_samples.unwrap_or(defaults.max_samples),
        lookback_delta_ms: millis(duration(
            &file.lookback_delta,
            Duration::from_millis(defaults.lookback_delta_ms as u64),
            "lookback_delta",
        )?),
        max_query_bytes: file
            .max_query_length
            .map_or(defaults.max_query_bytes, |b| b.0 as usize),
    };
    if limits.timeout.is_zero()
        || limits.max_concurrency == 0
        || limits.max_samples == 0
        || limits.lookback_delta_ms <= 0
        || limits.max_query_bytes == 0
    {
        return Err("query limits must be larger than 0".into());
    }
    Ok(limits)
}

/// Each Alertmanager's alerts URL from `alerting.alertmanagers`.
fn alertmanager_targets(
    entries: &[AlertmanagerFile],
) -> Result<Vec<crate::alerting::alertmanager::Target>, String> {
    let mut out = Vec::new();
    for (i, am) in entries.iter().enumerate() {
        let scheme = am.scheme.as_deref().unwrap_or("http");
        if scheme != "http" {
            return Err(format!(
                "alerting.alertmanagers[{i}].scheme: {scheme:?} is not supported yet (http)"
            ));
        }
        if let Some(v) = am.api_version.as_deref()
            && v != "v2"
        {
            return Err(format!(
                "alerting.alertmanagers[{i}].api_version: {v:?}; Alertmanager's API v2 is the one there is"
            ));
        }
        let timeout = match &am.timeout {
            Some(t) => parse_duration(t)
                .map_err(|e| format!("alerting.alertmanagers[{i}].timeout: {e}"))?,
            None => Duration::from_secs(10),
        };
        let prefix = am.path_prefix.as_deref().unwrap_or("").trim_matches('/');
        for sc in &am.static_configs {
            for target in &sc.targets {
                if target.contains('/') || target.is_empty() {
                    return Err(format!(
                        "alerting.alertmanagers[{i}]: target {target:?} must be host:port"
                    ));
                }
                let path = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{prefix}")
                };
                out.push(crate::alerting::alertmanager::Target {
                    url: format!("{scheme}://{target}{path}/api/v2/alerts"),
                    timeout,
                });
            }
        }
    }
    Ok(out)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_fsync_parse() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("10GiB"), Ok(10 << 30));
        assert_eq!(parse_bytes("1.5KB"), Ok(1536));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("MB").is_err());
        assert_eq!(parse_duration("15d"), Ok(Duration::from_secs(15 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_fsync("always"), Ok(FsyncMode::Always));
        assert_eq!(
            parse_fsync("250ms"),
            Ok(FsyncMode::Interval(Duration::from_millis(250)))
        );
        assert!(parse_fsync("0").is_err());
        assert!(parse_fsync("never").is_err());
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file: FileConfig = serde_saphyr::from_str(
            "listen: 127.0.0.1:9999\nstorage:\n  retention_time: 30d\n  retention_size: 10GB\n  fsync: 1s\nremote_write:\n  max_labels_per_series: 10\nexemplars:\n  max_exemplars: 5\nlogs:\n  ingestion_rate: 1MB\n",
        )
        .unwrap();
        let defaults =
            Settings::resolve(&FileConfig::default(), &FlagOverrides::default()).unwrap();
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(defaults.retention_ms, 15 * 86_400_000);
        assert_eq!(defaults.fsync, FsyncMode::Always);
        assert_eq!(defaults.write_limits.labels_per_series_max, 64);
        let from_file = Settings::resolve(&file, &FlagOverrides::default()).unwrap();
        assert_eq!(from_file.listen.port(), 9999);
        assert_eq!(from_file.retention_ms, 30 * 86_400_000);
        assert_eq!(from_file.retention_bytes, 10 << 30);
        assert_eq!(from_file.fsync, FsyncMode::Interval(Duration::from_secs(1)));
        assert_eq!(from_file.write_limits.labels_per_series_max, 10);
        assert_eq!(from_file.max_exemplars, 5);
        assert_eq!(defaults.log_ingestion_rate_bytes, DEFAULT_LOG_RATE);
        assert_eq!(from_file.log_ingestion_rate_bytes, 1 << 20);
        assert_eq!(from_file.log_ingestion_burst_bytes, DEFAULT_LOG_BURST);
        let flags = FlagOverrides {
            retention_time: Some("2h".into()),
            fsync: Some("always".into()),
            enable_admin_api: true,
            ..FlagOverrides::default()
        };
        let both = Settings::resolve(&file, &flags).unwrap();
        assert_eq!(both.retention_ms, 2 * 3_600_000);
        assert_eq!(both.fsync, FsyncMode::Always);
        assert!(both.enable_admin_api);
        assert_eq!(both.listen.port(), 9999);
        assert_eq!(
            defaults.restart_needed(&from_file),
            ["listen", "storage.fsync", "exemplars.max_exemplars"]
        );
    }

    #[test]
    fn mistakes_in_the_file_are_errors_that_say_where() {
        let unknown = serde_saphyr::from_str::<FileConfig>("storage:\n  retention: 1d\n");
        assert!(unknown.unwrap_err().to_string().contains("retention"));
        let bad_size = serde_saphyr::from_str::<FileConfig>("storage:\n  retention_size: lots\n");
        assert!(bad_size.unwrap_err().to_string().contains("not a size"));
        let zero =
            serde_saphyr::from_str::<FileConfig>("remote_write:\n  max_labels_per_series: 0\n")
                .unwrap();
        assert!(Settings::resolve(&zero, &FlagOverrides::default()).is_err());
        let bad_duration = FileConfig {
            storage: StorageFile {
                retention_time: Some("forever".into()),
                ..StorageFile::default()
            },
            ..FileConfig::default()
        };
        let e = Settings::resolve(&bad_duration, &FlagOverrides::default()).unwrap_err();
        assert!(e.contains("retention time"), "{e}");
    }
}
