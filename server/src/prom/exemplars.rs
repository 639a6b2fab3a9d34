//! Exemplars (a trace id or similar labels attached to one observation of a series), kept in
//! memory for `/api/v1/query_exemplars` as Prometheus keeps them: a circular buffer of fixed
//! capacity, the oldest overwritten first. They are not durable (Prometheus's are not either
//! unless its WAL is replayed); Grafana uses them to jump from a graph to recent traces.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use strata_engine::labels::Labels;
use strata_engine::labels::matcher::Matcher;

/// The longest exemplar label set accepted, in characters of names and values together
/// (OpenMetrics' limit, which Prometheus applies too).
pub const EXEMPLAR_LABELS_CHARS_MAX: usize = 128;

/// One exemplar of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub t: i64,
}

/// Why an exemplar was not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExemplarError {
    /// Its labels are longer than [`EXEMPLAR_LABELS_CHARS_MAX`].
    LabelsTooLong(usize),
    /// The series has a newer exemplar already (exemplars of a series arrive in time order).
    OutOfOrder,
    /// The same exemplar is already stored.
    Duplicate,
}

impl std::fmt::Display for ExemplarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExemplarError::LabelsTooLong(n) => write!(
                f,
                "exemplar labels are {n} characters long, more than the {EXEMPLAR_LABELS_CHARS_MAX} allowed"
            ),
            ExemplarError::OutOfOrder => f.write_str("out-of-order exemplar"),
            ExemplarError::Duplicate => f.write_str("duplicate exemplar"),
        }
    }
}

#[derive(Debug)]
struct Entry {
    series: Labels,
    exemplar: Exemplar,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Entry>,
    /// Per series in the ring: how many entries it has and its newest exemplar.
    series: HashMap<Labels, (usize, Exemplar)>,
}

/// The most recent exemplars of all series, at most `capacity` of them.
#[derive(Debug)]
pub struct ExemplarStore {
    ring: Mutex<Ring>,
    capacity: usize,
}

impl ExemplarStore {
    /// A store keeping the newest `capacity` exemplars (0 keeps none).
    pub fn new(capacity: usize) -> ExemplarStore {
        ExemplarStore {
            ring: Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.min(1 << 16)),
                series: HashMap::new(),
            }),
            capacity,
        }
    }

    /// Adds an exemplar of `series`.
    pub fn add(&self, series: &Labels, exemplar: Exemplar) -> Result<(), ExemplarError> {
        let chars: usize = exemplar
            .labels
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        if chars > EXEMPLAR_LABELS_CHARS_MAX {
            return Err(ExemplarError::LabelsTooLong(chars));
        }
        if self.capacity == 0 {
            return Ok(());
        }
        let mut guard = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let ring = &mut *guard;
        if let Some((_, last)) = ring.series.get(series) {
            if *last == exemplar {
                return Err(ExemplarError::Duplicate);
            }
            if exemplar.t < last.t {
                return Err(ExemplarError::OutOfOrder);
            }
        }
        if ring.entries.len() == self.capacity
            && let Some(old) = ring.entries.pop_front()
            && let Some((count, _)) = ring.series.get_mut(&old.series)
        {
            *count -= 1;
            if *count == 0 {
                ring.series.remove(&old.series);
            }
        }
        let slot = ring
            .series
            .entry(series.clone())
            .or_insert_with(|| (0, exemplar.clone()));
        slot.0 += 1;
        slot.1 = exemplar.clone();
        ring.entries.push_back(Entry {
            series: series.clone(),
            exemplar,
        });
        Ok(())
    }

    /// The exemplars in `[mint, maxt]` of the series matched by any of `selectors` (each a
    /// list of matchers that must all match), grouped by series in label order, each group in
    /// time order.
    pub fn query(
        &self,
        selectors: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Vec<(Labels, Vec<Exemplar>)> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let mut found: Vec<(Labels, Vec<Exemplar>)> = Vec::new();
        let mut by_series: HashMap<&Labels, usize> = HashMap::new();
        for e in ring.entries.iter() {
            if e.exemplar.t < mint || e.exemplar.t > maxt {
                continue;
            }
            let matches = selectors.iter().any(|ms| {
                ms.iter()
                    .all(|m| m.matches(e.series.get(m.name()).unwrap_or("")))
            });
            if !matches {
                continue;
            }
            let i = *by_series.entry(&e.series).or_insert_with(|| {
                found.push((e.series.clone(), Vec::new()));
                found.len() - 1
            });
            found[i].1.push(e.exemplar.clone());
        }
        drop(by_series);
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Exemplars held.
    pub fn len(&self) -> usize {
        self.ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(job: &str) -> Labels {
        Labels::new([("__name__", "http_seconds_bucket"), ("job", job)]).unwrap()
    }

    fn ex(trace: &str, t: i64) -> Exemplar {
        Exemplar {
            labels: vec![("trace_id".into(), trace.into())],
            value: 0.25,
            t,
        }
    }

    #[test]
    fn keeps_the_newest_in_order_and_answers_by_selector_and_range() {
        let store = ExemplarStore::new(3);
        store.add(&series("a"), ex("t1", 1000)).unwrap();
        assert_eq!(
            store.add(&series("a"), ex("t1", 1000)),
            Err(ExemplarError::Duplicate)
        );
        assert_eq!(
            store.add(&series("a"), ex("t0", 999)),
            Err(ExemplarError::OutOfOrder)
        );
        store.add(&series("b"), ex("t2", 2000)).unwrap();
        store.add(&series("a"), ex("t3", 3000)).unwrap();
        store.add(&series("a"), ex("t4", 4000)).unwrap();
        assert_eq!(store.len(), 3, "the oldest was overwritten");
        let a = vec![Matcher::equal("job", "a")];
        let got = store.query(std::slice::from_ref(&a), i64::MIN, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, [ex("t3", 3000), ex("t4", 4000)]);
        assert_eq!(store.query(&[a], 3500, 5000)[0].1, [ex("t4", 4000)]);
        let any = vec![Matcher::equal("__name__", "http_seconds_bucket")];
        let both = store.query(&[any], i64::MIN, i64::MAX);
        assert_eq!(
            both.iter()
                .map(|g| g.0.get("job").unwrap())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn rejects_long_label_sets() {
        let store = ExemplarStore::new(10);
        let long = Exemplar {
            labels: vec![("trace_id".into(), "x".repeat(121))],
            value: 1.0,
            t: 0,
        };
        assert_eq!(
            store.add(&series("a"), long),
            Err(ExemplarError::LabelsTooLong(129))
        );
        assert!(store.is_empty());
    }
}
