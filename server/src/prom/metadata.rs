//! Metric metadata (type, help, unit) as senders report it, kept for `/api/v1/metadata`.
//!
//! Prometheus sends each metric family's metadata periodically (remote write 1.0, a list per
//! request) or with every series (2.0). The store keeps the distinct entries per family,
//! bounded in families and entries per family, and is saved to `metadata.json` in the data
//! directory at shutdown so it survives restarts (senders resend it within minutes anyway).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One metadata entry, as `/api/v1/metadata` shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Metadata {
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`, `stateset` or
    /// `unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

impl Metadata {
    /// The name Prometheus uses for a remote-write `MetricType` number.
    pub fn type_name(metric_type: i32) -> &'static str {
        match metric_type {
            1 => "counter",
            2 => "gauge",
            3 => "histogram",
            4 => "gaugehistogram",
            5 => "summary",
            6 => "info",
            7 => "stateset",
            _ => "unknown",
        }
    }
}

/// Bounds on what the store keeps.
#[derive(Debug, Clone, Copy)]
pub struct MetadataLimits {
    /// Metric families kept; entries for new families beyond it are dropped.
    pub families_max: usize,
    /// Distinct entries kept per family (the newest replace the oldest).
    pub entries_per_family_max: usize,
    /// Longest help text kept, in bytes (longer ones are cut at a character boundary).
    pub help_bytes_max: usize,
}

impl Default for MetadataLimits {
    fn default() -> MetadataLimits {
        MetadataLimits {
            families_max: 100_000,
            entries_per_family_max: 8,
            help_bytes_max: 4096,
        }
    }
}

/// The metadata of every metric family seen.
#[derive(Debug, Default)]
pub struct MetadataStore {
    families: Mutex<BTreeMap<String, Vec<Metadata>>>,
    limits: MetadataLimits,
}

impl MetadataStore {
    /// An empty store.
    pub fn new(limits: MetadataLimits) -> MetadataStore {
        MetadataStore {
            families: Mutex::default(),
            limits,
        }
    }

    /// Records `entry` for `family`. Returns whether it was kept (false when the family limit
    /// is reached or the name is empty).
    pub fn record(&self, family: &str, mut entry: Metadata) -> bool {
        if family.is_empty() {
            return false;
        }
        if entry.help.len() > self.limits.help_bytes_max {
            let mut cut = self.limits.help_bytes_max;
            while !entry.help.is_char_boundary(cut) {
                cut -= 1;
            }
            entry.help.truncate(cut);
        }
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let full = families.len() >= self.limits.families_max;
        let entries = match families.get_mut(family) {
            Some(e) => e,
            None if full => return false,
            None => families.entry(family.to_owned()).or_default(),
        };
        if let Some(i) = entries.iter().position(|e| *e == entry) {
            // Seen again: it becomes the newest.
            let e = entries.remove(i);
            entries.push(e);
        } else {
            if entries.len() >= self.limits.entries_per_family_max {
                entries.remove(0);
            }
            entries.push(entry);
        }
        true
    }

    /// The families (all, or only `metric`) with up to `per_metric` entries each (0 = all),
    /// newest first, and at most `limit` families (0 = all), sorted by name.
    pub fn query(
        &self,
        metric: Option<&str>,
        limit: usize,
        per_metric: usize,
    ) -> BTreeMap<String, Vec<Metadata>> {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let pick = |entries: &Vec<Metadata>| {
            let n = if per_metric == 0 {
                entries.len()
            } else {
                per_metric
            };
            entries.iter().rev().take(n).cloned().collect::<Vec<_>>()
        };
        match metric {
            Some(m) => families
                .get(m)
                .map(|e| BTreeMap::from([(m.to_owned(), pick(e))]))
                .unwrap_or_default(),
            None => families
                .iter()
                .take(if limit == 0 { usize::MAX } else { limit })
                .map(|(k, e)| (k.clone(), pick(e)))
                .collect(),
        }
    }

    /// Families held.
    pub fn len(&self) -> usize {
        self.families
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the store to `path` (via a temporary file and a rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = {
            let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_vec(&*families)?
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Loads what [`MetadataStore::save`] wrote; a missing file is an empty store. A damaged
    /// file is an error the caller may log and ignore (metadata is resent by senders).
    pub fn load(path: &Path, limits: MetadataLimits) -> std::io::Result<MetadataStore> {
        let store = MetadataStore::new(limits);
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(e),
        };
        let families: BTreeMap<String, Vec<Metadata>> = serde_json::from_slice(&bytes)?;
        for (family, entries) in families {
            for e in entries {
                store.record(&family, e);
            }
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: &str, help: &str) -> Metadata {
        Metadata {
            kind: kind.into(),
            help: help.into(),
            unit: String::new(),
        }
    }

    #[test]
    fn keeps_distinct_entries_newest_first_within_limits() {
        let store = MetadataStore::new(MetadataLimits {
            families_max: 2,
            entries_per_family_max: 2,
            help_bytes_max: 5,
        });
        assert!(store.record("up", meta("gauge", "a")));
        assert!(store.record("up", meta("gauge", "a")));
        assert!(store.record("up", meta("counter", "b")));
        assert!(store.record("up", meta("gauge", "c")));
        assert!(store.record("x", meta("gauge", "héllo wörld")));
        assert!(!store.record("y", meta("gauge", "")), "family limit");
        assert!(!store.record("", meta("gauge", "")), "empty name");
        let all = store.query(None, 0, 0);
        assert_eq!(all["up"], [meta("gauge", "c"), meta("counter", "b")]);
        assert_eq!(all["x"], [meta("gauge", "héll")], "cut at a char boundary");
        assert_eq!(store.query(Some("up"), 0, 1)["up"], [meta("gauge", "c")]);
        assert_eq!(store.query(None, 1, 0).len(), 1);
        assert!(store.query(Some("nope"), 0, 0).is_empty());
    }

    #[test]
    fn survives_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.json");
        let store = MetadataStore::new(MetadataLimits::default());
        store.record("up", meta("gauge", "1 if the target is up"));
        store.save(&path).unwrap();
        let loaded = MetadataStore::load(&path, MetadataLimits::default()).unwrap();
        assert_eq!(loaded.query(None, 0, 0), store.query(None, 0, 0));
        let missing = MetadataStore::load(&dir.path().join("none"), MetadataLimits::default());
        assert!(missing.unwrap().is_empty());
        std::fs::write(&path, b"{not json").unwrap();
        MetadataStore::load(&path, MetadataLimits::default()).unwrap_err();
    }
}
