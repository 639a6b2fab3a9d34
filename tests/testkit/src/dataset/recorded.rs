//! A fleet that replays real scrapes: a recording made by `scripts/record-node-exporter.sh`
//! (Debian's `prometheus-node-exporter` fetched at a fixed interval on a real machine; the
//! expositions one after the other, each after a line `# SCRAPE <unix ms>`, zstd-compressed).
//! Nothing about the values is generated: they are what the exporter printed, scrape by scrape.
//!
//! | the recording | the fleet |
//! |---|---|
//! | the series | every sample line of the first scrape, on every host (`instance` and `job` set per host); a line missing from a later scrape keeps the value it had |
//! | scrape `k` of host `h` | recorded scrape `(h × 977 + k × s_h ± w) mod n` of the `n` recorded: each host starts at another point of the recording and steps about the 15 s a scrape stands for (`s_h` = 15 recorded scrapes at a 1 s interval, between 3 less and 3 more by host, so hosts run at different speeds), each step moved by up to `w` = 3 either way at random (so no host, and no lap of one, replays a sequence another did: replaying the same runs of the recording would hand a block compressor the same bytes again and again) |
//! | past the recording's end | it starts over; a counter carries on from where it got to (its whole recorded increase added per lap, rounded back to the decimals it was printed with), so it never goes down |
//! | timestamps | the 15 s grid of the other fleets, 20% of scrapes late by 1 to 3 ms (the recording's own interval, often 1 s, is not kept: its values are) |

use std::collections::HashMap;
use std::sync::Arc;

use super::template::Template;
use super::{Dataset, GenSeries, Model, SeriesClass, SplitMix64, hash};

/// What starts each scrape in a recording.
pub const SCRAPE_MARKER: &str = "# SCRAPE ";
/// How far apart hosts start in the recording, in scrapes.
const HOST_OFFSET_SCRAPES: u64 = 977;
/// How far hosts' strides through the recording spread around the scrape interval's.
const STRIDE_SPREAD: u64 = 3;
/// How far each step through the recording moves either way at most.
const WOBBLE_MAX: u64 = 3;
/// Values printed with more decimals than this are kept as they are when a lap is added.
const ROUNDED_DECIMALS_MAX: i32 = 12;

/// Recorded scrapes of one exporter: the first scrape's series, and every scrape's values.
#[derive(Clone, PartialEq)]
pub struct Recording {
    /// Label pairs of each series, `__name__` first.
    pub labels: Vec<Vec<(String, String)>>,
    /// Whether each series counts (and so only grows).
    pub counter: Vec<bool>,
    /// The most decimals each series' values were printed with.
    pub decimals: Vec<i32>,
    /// Scrape-major: the value of series `i` in scrape `j` is `values[j × series + i]`.
    values: Vec<f64>,
    scrapes: usize,
    /// The median time between two recorded scrapes, in milliseconds (1,000 if unknown).
    pub interval_ms: i64,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("series", &self.labels.len())
            .field("scrapes", &self.scrapes)
            .field("interval_ms", &self.interval_ms)
            .finish()
    }
}

impl Recording {
    /// Reads a recording file (zstd-compressed text).
    pub fn read(path: &str) -> Result<Recording, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("reading {path}: {e}"))?;
        let bytes = zstd::decode_all(file).map_err(|e| format!("decompressing {path}: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|e| format!("{path}: not UTF-8: {e}"))?;
        Recording::parse(&text).map_err(|e| format!("{path}: {e}"))
    }

    /// Parses the text of a recording: scrapes, each after a `# SCRAPE` line.
    pub fn parse(text: &str) -> Result<Recording, String> {
        let mut scrapes = text.split(SCRAPE_MARKER).filter(|s| !s.trim().is_empty());
        let first = scrapes.next().ok_or("the recording holds no scrape")?;
        let first =
            Template::parse(skip_marker_rest(first)).map_err(|e| format!("scrape 1: {e}"))?;
        let mut index = HashMap::with_capacity(first.lines.len());
        let mut recording = Recording {
            labels: Vec::with_capacity(first.lines.len()),
            counter: Vec::with_capacity(first.lines.len()),
            decimals: Vec::with_capacity(first.lines.len()),
            values: Vec::new(),
            scrapes: 1,
            interval_ms: median_interval_ms(text),
        };
        for line in first.lines {
            index.insert(line.labels.clone(), recording.labels.len());
            recording.labels.push(line.labels);
            recording.counter.push(line.counter);
            recording.decimals.push(line.decimals);
            recording.values.push(line.value);
        }
        let width = recording.labels.len();
        for (n, scrape) in scrapes.enumerate() {
            let parsed = Template::parse(skip_marker_rest(scrape))
                .map_err(|e| format!("scrape {}: {e}", n + 2))?;
            // Start from the previous scrape's values: a series missing here keeps its value.
            let previous = recording.values.len() - width;
            recording.values.extend_from_within(previous..);
            let row = recording.values.len() - width;
            for line in parsed.lines {
                if let Some(&i) = index.get(&line.labels) {
                    recording.values[row + i] = line.value;
                    recording.decimals[i] = recording.decimals[i].max(line.decimals);
                }
            }
            recording.scrapes += 1;
        }
        Ok(recording)
    }

    /// Scrapes recorded.
    pub fn scrapes(&self) -> usize {
        self.scrapes
    }

    /// Series `line`'s value at scrape `j` of the endless replay.
    pub fn value(&self, line: usize, j: u64) -> f64 {
        let n = self.scrapes as u64;
        let width = self.labels.len();
        let (lap, at) = (j / n, (j % n) as usize);
        let v = self.values[at * width + line];
        if lap == 0 || !self.counter[line] {
            return v;
        }
        let first = self.values[line];
        let last = self.values[(self.scrapes - 1) * width + line];
        let carried = v + lap as f64 * (last - first);
        let d = self.decimals[line];
        if d > ROUNDED_DECIMALS_MAX {
            return carried;
        }
        let scale = 10f64.powi(d);
        (carried * scale).round() / scale
    }
}

/// The median time between consecutive `# SCRAPE <unix ms>` markers (1,000 ms when the
/// recording has fewer than two readable times).
fn median_interval_ms(text: &str) -> i64 {
    let times: Vec<i64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(SCRAPE_MARKER)?.trim().parse().ok())
        .collect();
    let mut gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return 1000;
    }
    gaps.sort_unstable();
    gaps[gaps.len() / 2].max(1)
}

/// Host `host`'s stride through recorded scrapes taken `interval_ms` apart (about a scrape
/// interval of them, spread by host), and how far each step may move either way (less than
/// half the stride, so steps never go back).
fn stride(host: usize, interval_ms: i64) -> (u64, u64) {
    let base = (super::SCRAPE_INTERVAL_MS as f64 / interval_ms.max(1) as f64).round() as u64;
    let spread = 2 * STRIDE_SPREAD + 1;
    let s = (base + host as u64 % spread)
        .saturating_sub(STRIDE_SPREAD)
        .max(1);
    (s, WOBBLE_MAX.min((s - 1) / 2))
}

/// A scrape's text after its `# SCRAPE` marker: the rest of the marker's line is its time.
fn skip_marker_rest(scrape: &str) -> &str {
    scrape.split_once('\n').map_or("", |(_, rest)| rest)
}

impl Dataset {
    /// `hosts` hosts replaying `recording` (see the module docs), derived from `seed`.
    pub fn from_recording(recording: &Arc<Recording>, hosts: usize, seed: u64) -> Dataset {
        let mut series = Vec::with_capacity(recording.labels.len() * hosts);
        for host in 0..hosts {
            let mut rng = SplitMix64::new(hash(seed, host as u64, 0x5eed));
            let instance = format!("host-{host}:9100");
            let (stride, wobble) = stride(host, recording.interval_ms);
            let offset = host as u64 * HOST_OFFSET_SCRAPES + wobble;
            let key = rng.next_u64();
            for (line, labels) in recording.labels.iter().enumerate() {
                let mut labels = labels.clone();
                labels.retain(|(name, _)| name != "instance" && name != "job");
                labels.push(("instance".into(), instance.clone()));
                labels.push(("job".into(), "node".into()));
                labels[1..].sort();
                let class = match (recording.counter[line], recording.decimals[line]) {
                    (true, 0) => SeriesClass::IntCounter,
                    (true, _) => SeriesClass::FloatCounter,
                    (false, _) => SeriesClass::Gauge,
                };
                series.push(GenSeries {
                    labels,
                    class,
                    host,
                    key: rng.next_u64(),
                    model: Model::Recorded {
                        line,
                        offset,
                        stride,
                        wobble,
                        key,
                    },
                });
            }
        }
        Dataset::jittered_like_a_template(seed, hosts, series, Some(Arc::clone(recording)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> String {
        let scrape = |ms: u64, cpu: &str, free: &str, extra: bool| {
            let mut s = format!(
                "{SCRAPE_MARKER}{ms}\n# TYPE node_cpu_seconds_total counter\n\
                 node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {cpu}\n\
                 # TYPE node_memory_MemFree_bytes gauge\nnode_memory_MemFree_bytes {free}\n"
            );
            if extra {
                s.push_str("node_new_series 1\n");
            }
            s
        };
        [
            scrape(1000, "100.25", "2.5e+06", false),
            scrape(2000, "100.5", "2.4e+06", true),
            scrape(3000, "101.75", "2.6e+06", false),
        ]
        .concat()
    }

    #[test]
    fn a_recording_keeps_the_first_scrapes_series_and_every_scrapes_values() {
        let r = Recording::parse(&recording()).unwrap();
        assert_eq!(r.scrapes(), 3);
        assert_eq!(
            r.labels.len(),
            2,
            "a series only a later scrape has is not kept"
        );
        assert_eq!(r.counter, [true, false]);
        assert_eq!(r.decimals[0], 2);
        let cpu: Vec<f64> = (0..3).map(|j| r.value(0, j)).collect();
        assert_eq!(cpu, [100.25, 100.5, 101.75]);
        assert_eq!(r.value(1, 1), 2.4e6);
    }

    #[test]
    fn the_replay_starts_over_with_counters_carried_on() {
        let r = Recording::parse(&recording()).unwrap();
        // Lap 1: the whole recorded increase (1.5) added, at two decimals.
        assert_eq!(r.value(0, 3), 101.75);
        assert_eq!(r.value(0, 4), 102.0);
        assert_eq!(r.value(0, 5), 103.25);
        let mut previous = f64::MIN;
        for j in 0..30 {
            assert!(r.value(0, j) >= previous, "the counter went down at {j}");
            previous = r.value(0, j);
        }
        // A gauge just replays.
        assert_eq!(r.value(1, 4), r.value(1, 1));
    }

    #[test]
    fn hosts_start_at_other_points_of_the_recording() {
        let r = Arc::new(Recording::parse(&recording()).unwrap());
        let d = Dataset::from_recording(&r, 2, 1);
        assert_eq!(d.series().len(), 4);
        assert!(
            d.series()[2]
                .labels
                .contains(&("instance".into(), "host-1:9100".into()))
        );
        // Host 1 starts 977 scrapes in, give or take its first step's move.
        let near: Vec<f64> = (977 - 3..=977 + 3).map(|j| r.value(0, j)).collect();
        assert!(
            near.contains(&d.value(2, 0)),
            "{} is not near 977",
            d.value(2, 0)
        );
    }

    #[test]
    fn hosts_step_about_a_scrape_interval_through_the_recording_at_different_speeds() {
        assert_eq!(Recording::parse(&recording()).unwrap().interval_ms, 1000);
        // 15 s over a 1 s recording: strides 12 to 18 by host, each step moved by up to 3.
        let strides: Vec<(u64, u64)> = (0..8).map(|h| stride(h, 1000)).collect();
        assert_eq!(strides[0], (12, 3));
        assert_eq!(strides[6], (18, 3));
        assert_eq!(strides[7], (12, 3));
        assert_eq!(
            stride(0, 15_000),
            (1, 0),
            "a 15 s recording is replayed scrape by scrape"
        );
        assert_eq!(stride(3, 5_000), (3, 1));
    }

    #[test]
    fn a_replayed_counter_never_goes_down_and_no_two_hosts_step_alike() {
        // A counter that counts the recorded scrapes: a replayed value tells which was replayed
        // (less one per lap, the flat step where a lap starts over).
        let text: String = (0..50u64)
            .map(|j| format!("{SCRAPE_MARKER}{}\n# TYPE c counter\nc {j}\n", 1000 * j))
            .collect();
        let r = Arc::new(Recording::parse(&text).unwrap());
        let d = Dataset::from_recording(&r, 8, 1);
        let steps = |host: usize| -> Vec<f64> {
            (1..400)
                .map(|k| d.value(host, k) - d.value(host, k - 1))
                .collect()
        };
        for host in 0..8 {
            assert!(
                steps(host).iter().all(|&s| s > 0.0),
                "host {host} went back"
            );
        }
        // Hosts 0 and 7 both stride 12, each replayed scrape moved by up to 3: steps of 6 to 18
        // (one less where a lap starts over), varying, and not alike.
        let (a, b) = (steps(0), steps(7));
        assert!(a.iter().all(|&s| (5.0..=18.0).contains(&s)), "{a:?}");
        assert!(a.iter().any(|&s| s != a[0]), "host 0 steps evenly");
        assert_ne!(a, b, "hosts 0 and 7 step alike");
    }
}
