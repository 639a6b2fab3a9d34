//! Which fleet a benchmark sends, as command lines name it: `generated`, `template:PATH` or
//! `scrapes:PATH`.

use std::sync::Arc;

use super::Dataset;
use super::recorded::Recording;
use super::template::Template;

/// Which fleet a benchmark sends: the generated one ([`Dataset::new`]), one made from a
/// scrape ([`Dataset::from_template`]) or one replaying recorded scrapes
/// ([`Dataset::from_recording`]). Written `generated`, `template:PATH` or `scrapes:PATH` on
/// command lines.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum DatasetSpec {
    /// The tables' fleet.
    #[default]
    Generated,
    /// Every line of the scrape in `path` on every host.
    Template {
        /// Where the scrape was read from (for reports).
        path: String,
        /// The scrape.
        template: Template,
    },
    /// The recorded scrapes in `path` replayed on every host.
    Scrapes {
        /// Where the recording was read from (for reports).
        path: String,
        recording: Arc<Recording>,
    },
}

impl DatasetSpec {
    /// The fleet of `hosts` hosts from `seed`.
    pub fn build(&self, hosts: usize, seed: u64) -> Dataset {
        match self {
            DatasetSpec::Generated => Dataset::new(hosts, seed),
            DatasetSpec::Template { template, .. } => Dataset::from_template(template, hosts, seed),
            DatasetSpec::Scrapes { recording, .. } => {
                Dataset::from_recording(recording, hosts, seed)
            }
        }
    }

    /// How reports name it.
    pub fn describe(&self) -> String {
        match self {
            DatasetSpec::Generated => "generated node_exporter-like fleet".into(),
            DatasetSpec::Template { path, template } => {
                format!(
                    "{} series a host from the scrape {path}",
                    template.lines.len()
                )
            }
            DatasetSpec::Scrapes { path, recording } => format!(
                "{} series a host replaying {} real scrapes recorded in {path}",
                recording.labels.len(),
                recording.scrapes()
            ),
        }
    }
}

impl std::str::FromStr for DatasetSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<DatasetSpec, String> {
        if s == "generated" {
            return Ok(DatasetSpec::Generated);
        }
        if let Some(path) = s.strip_prefix("scrapes:") {
            return Ok(DatasetSpec::Scrapes {
                path: path.to_owned(),
                recording: Arc::new(Recording::read(path)?),
            });
        }
        let Some(path) = s.strip_prefix("template:") else {
            return Err(format!(
                "unknown dataset {s:?}: use `generated`, `template:PATH` (a Prometheus text \
                 exposition) or `scrapes:PATH` (a recording of scripts/record-node-exporter.sh)"
            ));
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
        let template = Template::parse(&text).map_err(|e| format!("{path}: {e}"))?;
        Ok(DatasetSpec::Template {
            path: path.to_owned(),
            template,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_names_a_fleet_and_builds_it() {
        let generated: DatasetSpec = "generated".parse().unwrap();
        assert_eq!(generated, DatasetSpec::Generated);
        let err = "csv:x".parse::<DatasetSpec>().unwrap_err();
        assert!(err.contains("unknown dataset"), "{err}");
        let err = "scrapes:/nonexistent.zst"
            .parse::<DatasetSpec>()
            .unwrap_err();
        assert!(err.contains("/nonexistent.zst"), "{err}");

        // The recording the repository carries: every host replays its 507 series.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bench/data/node-exporter-debian-1s.prom.zst"
        );
        let spec: DatasetSpec = format!("scrapes:{path}").parse().unwrap();
        assert_eq!(spec.build(3, 1).series().len(), 3 * 507);
        assert!(
            spec.describe().contains("2451 real scrapes"),
            "{}",
            spec.describe()
        );

        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/node_exporter-1.5-scrape.txt"
        );
        if std::path::Path::new(path).exists() {
            let spec: DatasetSpec = format!("template:{path}").parse().unwrap();
            assert_eq!(spec.build(3, 1).series().len(), 3 * 507);
        } else {
            eprintln!("SKIPPED the template part: {path} is not there (it comes with ../shared)");
        }
    }
}
