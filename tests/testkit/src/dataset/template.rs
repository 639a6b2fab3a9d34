//! A fleet made from one real scrape instead of the tables above: every sample line of a
//! Prometheus text exposition (such as `node_exporter-1.5-scrape.txt`, a real scrape of
//! Debian's `prometheus-node-exporter` 1.5) becomes a series of every host, and its value moves
//! by rules that know only the line's type and value, not the metric:
//!
//! | the line | its series |
//! |---|---|
//! | a counter (`# TYPE … counter`), a summary's or histogram's `_sum`, `_count` or `_bucket` | `start + p × (k + 0.9 u_k)`: random increments every scrape, `p` the template value ÷ a day of scrapes × the host's load, so a counter at 0 in the template stays 0; rounded to the decimals the template value is written with (whole numbers floored) |
//! | anything else (gauges, summary quantiles, untyped) | the template value × the host's load, plus noise of 1% of it at every scrape (the random walk of the tables' gauges), rounded to the template value's decimals; a gauge at 0 stays 0 |
//! | timestamps | as the generated fleet's, with 20% of scrapes late by 1 to 3 ms |
//!
//! So the shapes are the scrape's: its names, label sets, proportions of types and the
//! precision the exporter prints; nothing here is tuned to how Strata compresses.

use super::{Dataset, GenSeries, Model, Quantum, SeriesClass, SplitMix64, hash};

/// Share of a template fleet's scrapes whose timestamp is late, in percent.
pub const TEMPLATE_JITTERED_SCRAPES_PERCENT: u64 = 20;
/// The most a template fleet's late scrape is late by, in milliseconds.
pub const TEMPLATE_JITTER_MS_MAX: u64 = 3;

/// Scrapes in a day: a counter's template value is what it counted over about this many.
const UPTIME_SCRAPES: f64 = 86_400.0 / 15.0;
/// A gauge's noise, relative to its value.
const GAUGE_NOISE: f64 = 0.01;
/// The most decimals a value is rounded to.
const DECIMALS_MAX: i32 = 9;

/// One sample line of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateLine {
    /// Label pairs, `__name__` first.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Decimals the value is written with.
    pub decimals: i32,
    /// Whether it counts (and so only grows).
    pub counter: bool,
}

/// The sample lines of a Prometheus text exposition, with what `# TYPE` says of each.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// In the order of the text.
    pub lines: Vec<TemplateLine>,
}

impl Template {
    /// Parses a text exposition. Comments other than `# TYPE` are skipped; a line that does
    /// not parse is an error naming it.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut types: Vec<(String, String)> = Vec::new();
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    types.push((name.to_owned(), kind.to_owned()));
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let parsed = parse_sample(line).map_err(|e| format!("line {}: {e}: {line}", n + 1))?;
            let (labels, value_text) = parsed;
            let name = labels[0].1.clone();
            let family_type = types
                .iter()
                .rev()
                .find(|(family, _)| {
                    name == *family
                        || ["_sum", "_count", "_bucket", "_total"]
                            .iter()
                            .any(|s| name.strip_suffix(s) == Some(family))
                })
                .map(|(family, kind)| (family.as_str(), kind.as_str()));
            let counter = match family_type {
                Some((_, "counter")) => true,
                Some((family, "summary" | "histogram")) => name != family,
                _ => false,
            };
            let value = parse_value(value_text).ok_or_else(|| {
                format!("line {}: the value {value_text:?} is not a number", n + 1)
            })?;
            lines.push(TemplateLine {
                labels,
                value,
                decimals: decimals(value_text),
                counter,
            });
        }
        if lines.is_empty() {
            return Err("the exposition holds no sample".into());
        }
        Ok(Template { lines })
    }
}

/// A sample line's label pairs (`__name__` first) and the text of its value.
type ParsedSample<'a> = (Vec<(String, String)>, &'a str);

/// `name{a="x",b="y"} value [timestamp]` as its label pairs and the value's text.
fn parse_sample(line: &str) -> Result<ParsedSample<'_>, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut labels = vec![("__name__".to_owned(), name.to_owned())];
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end = loop {
            // Skip separators, then read `name="value"` or the closing brace.
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            let Some(&(start, c)) = chars.peek() else {
                return Err("unclosed label set".into());
            };
            if c == '}' {
                break start + 1;
            }
            let eq = inner[start..].find('=').ok_or("a label without '='")? + start;
            let label = inner[start..eq].trim().to_owned();
            let mut value = String::new();
            let mut i = inner[eq + 1..]
                .find('"')
                .ok_or("a label value without quotes")?
                + eq
                + 2;
            let bytes = inner.as_bytes();
            loop {
                match bytes.get(i) {
                    None => return Err("unterminated label value".into()),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        match bytes.get(i + 1) {
                            Some(b'n') => value.push('\n'),
                            Some(&b) => value.push(b as char),
                            None => return Err("unterminated escape".into()),
                        }
                        i += 2;
                    }
                    Some(_) => {
                        let ch = inner[i..].chars().next().expect("a character");
                        value.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            labels.push((label, value));
            while chars.peek().is_some_and(|&(at, _)| at <= i) {
                chars.next();
            }
        };
        rest = &inner[end..];
    }
    let value = rest.split_whitespace().next().ok_or("no value")?;
    labels[1..].sort();
    Ok((labels, value))
}

/// A value as the exposition writes it (`+Inf`, `NaN` included).
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// How many decimals `text` writes: `12.5` one, `1.445929e+06` none, `1.5e-05` six.
fn decimals(text: &str) -> i32 {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let fraction = mantissa
        .find('.')
        .map_or(0, |at| (mantissa.len() - at - 1) as i32);
    (fraction - exponent).clamp(0, DECIMALS_MAX)
}

impl Dataset {
    /// `hosts` hosts that each expose every line of `template`, derived from `seed` (see the
    /// module docs for how values move).
    pub fn from_template(template: &Template, hosts: usize, seed: u64) -> Dataset {
        let mut series = Vec::with_capacity(template.lines.len() * hosts);
        for host in 0..hosts {
            let mut rng = SplitMix64::new(hash(seed, host as u64, 0x7e3a));
            let load = rng.log_range(0.5, 2.0);
            let instance = format!("host-{host}:9100");
            for line in &template.lines {
                let mut labels = line.labels.clone();
                labels.retain(|(name, _)| name != "instance" && name != "job");
                labels.push(("instance".into(), instance.clone()));
                labels.push(("job".into(), "node".into()));
                labels[1..].sort();
                let quantum = if line.decimals == 0 {
                    Quantum::Multiple(1.0)
                } else {
                    Quantum::Decimals(line.decimals)
                };
                let finite = line.value.is_finite();
                let (class, model) = if !finite || line.value == 0.0 {
                    let model = Model::Constant {
                        value: line.value,
                        step: 0.0,
                        every: 0,
                    };
                    (SeriesClass::Constant, model)
                } else if line.counter {
                    let per_scrape = line.value.abs() / UPTIME_SCRAPES * load;
                    let class = if line.decimals == 0 {
                        SeriesClass::IntCounter
                    } else {
                        SeriesClass::FloatCounter
                    };
                    let model = Model::Counter {
                        start: line.value * load,
                        per_scrape,
                        spread: 0.9,
                        quantum,
                    };
                    (class, model)
                } else {
                    let base = line.value * load;
                    let model = Model::Gauge {
                        base,
                        scale: base.abs() * GAUGE_NOISE,
                        min: if base >= 0.0 { 0.0 } else { f64::MIN },
                        quantum,
                    };
                    (SeriesClass::Gauge, model)
                };
                series.push(GenSeries {
                    labels,
                    class,
                    host,
                    key: rng.next_u64(),
                    model,
                });
            }
        }
        Dataset::jittered_like_a_template(seed, hosts, series, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP go_gc_duration_seconds A summary.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 2.5e-05
go_gc_duration_seconds_sum 0.0123
go_gc_duration_seconds_count 17
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 12345.67
# TYPE node_memory_MemFree_bytes gauge
node_memory_MemFree_bytes 1.445929e+06
# TYPE node_network_info gauge
node_network_info{device="eth0",operstate="up",address="a\"b"} 1
node_errors_total 0
"#;

    #[test]
    fn a_scrape_parses_with_types_and_decimals() {
        let t = Template::parse(SCRAPE).unwrap();
        let summary: Vec<(bool, i32)> = t.lines[..3]
            .iter()
            .map(|l| (l.counter, l.decimals))
            .collect();
        assert_eq!(summary, [(false, 6), (true, 4), (true, 0)]);
        assert_eq!(t.lines[3].labels[0].1, "node_cpu_seconds_total");
        assert_eq!((t.lines[3].counter, t.lines[3].decimals), (true, 2));
        assert_eq!((t.lines[4].value, t.lines[4].decimals), (1_445_929.0, 0));
        assert_eq!(
            t.lines[5].labels,
            [
                ("__name__".to_owned(), "node_network_info".to_owned()),
                ("address".to_owned(), "a\"b".to_owned()),
                ("device".to_owned(), "eth0".to_owned()),
                ("operstate".to_owned(), "up".to_owned()),
            ]
        );
        assert!(Template::parse("up{job=\"x\" 1").is_err());
        assert!(Template::parse("# only a comment\n").is_err());
    }

    #[test]
    fn template_series_move_by_their_type() {
        let t = Template::parse(SCRAPE).unwrap();
        let data = Dataset::from_template(&t, 2, 7);
        assert_eq!(data.series().len(), 2 * t.lines.len());
        let by_name = |name: &str| {
            data.series()
                .iter()
                .position(|s| s.name() == name)
                .expect("the series")
        };
        // A counter only grows, in the template's precision.
        let cpu = by_name("node_cpu_seconds_total");
        let values: Vec<f64> = (0..200).map(|k| data.value(cpu, k)).collect();
        assert!(values.windows(2).all(|w| w[1] >= w[0]));
        assert!(values[199] > values[0]);
        assert!(
            values
                .iter()
                .all(|v| (v * 100.0 - (v * 100.0).round()).abs() < 1e-6)
        );
        // A gauge moves around its value; a counter at 0 stays there.
        let free = by_name("node_memory_MemFree_bytes");
        let gauge: Vec<f64> = (0..200).map(|k| data.value(free, k)).collect();
        assert!(gauge.iter().any(|&v| v != gauge[0]));
        assert!(gauge.iter().all(|v| v.fract() == 0.0));
        let idle = by_name("node_errors_total");
        assert!((0..200).all(|k| data.value(idle, k) == 0.0));
        // Every host has the template's series with its own instance.
        assert_eq!(data.series()[t.lines.len()].host, 1);
        assert!(
            data.series()[t.lines.len()]
                .labels
                .contains(&("instance".to_owned(), "host-1:9100".to_owned()))
        );
        // A fifth of scrapes are late by at most 3 ms.
        let offsets: Vec<i64> = (0..1000)
            .map(|k| data.timestamp(0, k) - k as i64 * super::super::SCRAPE_INTERVAL_MS)
            .collect();
        let on_grid = *offsets.iter().min().expect("offsets");
        assert!(offsets.iter().all(|&o| o - on_grid <= 3));
        let late = offsets.iter().filter(|&&o| o > on_grid).count();
        assert!((120..280).contains(&late), "{late}");
    }

    #[test]
    fn the_real_node_exporter_scrape_parses_whole() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/node_exporter-1.5-scrape.txt"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("SKIPPED: {path} is not there (it comes with ../shared)");
            return;
        };
        let t = Template::parse(&text).unwrap();
        assert_eq!(t.lines.len(), 507);
        let counters = t.lines.iter().filter(|l| l.counter).count();
        assert!((100..300).contains(&counters), "{counters} counters");
    }
}
