//! The inverted label index: for every label pair, the sorted references of the series
//! that carry it; and the matcher evaluation over it.
//!
//! Matchers follow Prometheus: a label a series lacks has the value `""`. So a matcher that
//! accepts `""` (`a!="x"`, `a=~"x|"`, `a=""`) selects series *without* `a` too, and is
//! evaluated by subtracting the series whose value of `a` it rejects; a matcher that rejects
//! `""` selects from the series that have `a`, through the values it accepts. Value sets come
//! from the matcher's fast paths: an exact set (`=`, `=~"a|b"`) is looked up directly, a known
//! prefix narrows the scan to one range of the sorted values, anything else tests each value
//! of the label once (never each series).

use arcstr::ArcStr;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::labels::Label;
use crate::labels::matcher::{MatchKind, Matcher};
use crate::sample::SeriesRef;

/// A sorted list of series references without duplicates.
pub type PostingsList = Vec<u64>;

/// A postings list of the head: the references of the series that carry one label pair,
/// as a set.
pub trait List: Default + std::fmt::Debug {
    /// A reference as the list stores it.
    type Id: Copy + Ord + std::fmt::Debug;

    /// `r` as this list stores it, if it fits.
    fn id(r: u64) -> Option<Self::Id>;
    fn to_ref(id: Self::Id) -> u64;
    /// Adds `id`. With `sorted` false the list may be left unsorted until [`List::finish`]
    /// (a bulk load that does not pay for ordered inserts).
    fn add(&mut self, id: Self::Id, sorted: bool);
    /// Sorts what unsorted adds left.
    fn finish(&mut self);
    /// Removes the ids in `ids` (sorted).
    fn remove_sorted(&mut self, ids: &[Self::Id]);
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool;
    /// The ids, sorted.
    fn to_vec(&self) -> Vec<Self::Id>;
    /// The sorted union of `lists`.
    fn union<'a>(lists: impl Iterator<Item = &'a Self>) -> Vec<Self::Id>
    where
        Self: 'a;
    /// The references, sorted, for the wide index.
    fn widen(&self) -> Vec<u64>;
}

/// While references fit 4 bytes: a compressed bitmap. Most lists are dense runs of the
/// references handed out while a job's series were created (a roaring bitmap keeps 2 bytes a
/// reference in a sparse 65,536-wide range, a bit in a dense one), so the index takes a few
/// bytes a series instead of 4 bytes a label plus a vector's spare capacity.
impl List for roaring::RoaringBitmap {
    type Id = u32;

    fn id(r: u64) -> Option<u32> {
        u32::try_from(r).ok()
    }

    fn to_ref(id: u32) -> u64 {
        u64::from(id)
    }

    fn add(&mut self, id: u32, _sorted: bool) {
        self.insert(id);
    }

    fn finish(&mut self) {}

    fn remove_sorted(&mut self, ids: &[u32]) {
        for &id in ids {
            self.remove(id);
        }
    }

    fn len(&self) -> u64 {
        roaring::RoaringBitmap::len(self)
    }

    fn is_empty(&self) -> bool {
        roaring::RoaringBitmap::is_empty(self)
    }

    fn to_vec(&self) -> Vec<u32> {
        self.iter().collect()
    }

    fn union<'a>(lists: impl Iterator<Item = &'a Self>) -> Vec<u32> {
        use roaring::MultiOps;
        lists.union().iter().collect()
    }

    fn widen(&self) -> Vec<u64> {
        self.iter().map(u64::from).collect()
    }
}

/// Past 4-byte references: sorted vectors of 8-byte ones.
impl List for Vec<u64> {
    type Id = u64;

    fn id(r: u64) -> Option<u64> {
        Some(r)
    }

    fn to_ref(id: u64) -> u64 {
        id
    }

    fn add(&mut self, id: u64, sorted: bool) {
        if sorted {
            insert_sorted(self, id);
        } else {
            self.push(id);
        }
    }

    fn finish(&mut self) {
        self.sort_unstable();
        self.dedup();
    }

    fn remove_sorted(&mut self, ids: &[u64]) {
        self.retain(|r| ids.binary_search(r).is_err());
    }

    fn len(&self) -> u64 {
        <[u64]>::len(self) as u64
    }

    fn is_empty(&self) -> bool {
        <[u64]>::is_empty(self)
    }

    fn to_vec(&self) -> Vec<u64> {
        self.clone()
    }

    fn union<'a>(lists: impl Iterator<Item = &'a Self>) -> Vec<u64> {
        union(lists)
    }

    fn widen(&self) -> Vec<u64> {
        self.clone()
    }
}

/// The head's inverted index. References are stored in compressed 32-bit bitmaps while they
/// fit (they are handed out from 1 upwards, so a head needs four billion series creations to
/// outgrow them), and in sorted vectors of 8 bytes from the first one that does not.
#[derive(Debug)]
pub enum Postings {
    Narrow(Index<roaring::RoaringBitmap>),
    Wide(Index<Vec<u64>>),
}

impl Default for Postings {
    fn default() -> Postings {
        Postings::Narrow(Index::default())
    }
}

/// Runs `$body` with `$index` bound to the index, whatever its width.
macro_rules! with_index {
    ($postings:expr, $index:ident => $body:expr) => {
        match $postings {
            Postings::Narrow($index) => $body,
            Postings::Wide($index) => $body,
        }
    };
}

#[derive(Debug)]
pub struct Index<L> {
    /// Invariant: no list is empty.
    by_label: FxHashMap<ArcStr, BTreeMap<ArcStr, L>>,
    /// Every series in the index.
    all: L,
    /// Set by [`Postings::add_unordered`]: the lists may be unsorted until
    /// [`Postings::finish_unordered`].
    unordered: bool,
}

impl<L: List> Default for Index<L> {
    fn default() -> Index<L> {
        Index {
            by_label: FxHashMap::default(),
            all: L::default(),
            unordered: false,
        }
    }
}

fn insert_sorted<T: Ord + Copy>(list: &mut Vec<T>, r: T) {
    // References grow over time, so this is nearly always a push.
    match list.last() {
        Some(&last) if last < r => list.push(r),
        None => list.push(r),
        _ => {
            if let Err(at) = list.binary_search(&r) {
                list.insert(at, r);
            }
        }
    }
}

/// The sorted intersection of two sorted lists.
pub fn intersect<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().min(b.len())));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `a` without the elements of `b` (both sorted).
pub fn subtract<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let (mut j, mut out) = (0, Vec::with_capacity(a.len()));
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j >= b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

/// Evaluates `matchers` over an inverted index, with Prometheus's semantics (see the module
/// docs); shared by the head's index and the block index. `values_where(m, accept)` is the
/// union of the postings of the values of `m`'s label that `m` accepts (`accept`) or rejects;
/// `all` lists every series. Returns the matching series, sorted.
pub fn select_matching<T: Ord + Copy, E>(
    matchers: &[Matcher],
    mut values_where: impl FnMut(&Matcher, bool) -> Result<Vec<T>, E>,
    all: impl FnOnce() -> Vec<T>,
) -> Result<Vec<T>, E> {
    let (mut positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
        matchers.iter().partition(|m| !m.matches_empty());
    // The cheapest, most selective lists first: exact values before scans.
    positive.sort_by_key(|m| match (m.kind(), m.set_values().is_some()) {
        (MatchKind::Equal, _) => 0,
        (_, true) => 1,
        _ => 2,
    });
    let mut result: Option<Vec<T>> = None;
    for m in positive {
        let matched = values_where(m, true)?;
        let r = match result {
            None => matched,
            Some(r) => intersect(&r, &matched),
        };
        if r.is_empty() {
            return Ok(Vec::new());
        }
        result = Some(r);
    }
    let mut result = result.unwrap_or_else(all);
    for m in negative {
        result = subtract(&result, &values_where(m, false)?);
    }
    Ok(result)
}

/// The sorted union of several sorted lists.
pub fn union<'a, T: Ord + Copy + 'a>(lists: impl Iterator<Item = &'a Vec<T>>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    let mut n = 0;
    for l in lists {
        out.extend_from_slice(l);
        n += 1;
    }
    if n > 1 {
        out.sort_unstable();
        out.dedup();
    }
    out
}

impl Postings {
    /// The index, in 8-byte references if `r` does not fit the 4-byte ones.
    fn widened_for(&mut self, r: SeriesRef) -> &mut Postings {
        if let Postings::Narrow(narrow) = self
            && <roaring::RoaringBitmap as List>::id(r.0).is_none()
        {
            *self = Postings::Wide(narrow.widen());
        }
        self
    }

    /// Adds a series.
    pub fn add(&mut self, r: SeriesRef, labels: &[Label]) {
        with_index!(self.widened_for(r), index => index.add(r, labels, true))
    }

    /// Adds a series without keeping the lists sorted (replay restores series in whatever
    /// order the checkpoint holds them; sorted inserts would cost a shift each). The index must
    /// not be read before [`Postings::finish_unordered`].
    pub fn add_unordered(&mut self, r: SeriesRef, labels: &[Label]) {
        with_index!(self.widened_for(r), index => index.add(r, labels, false))
    }

    /// Sorts what [`Postings::add_unordered`] added.
    pub fn finish_unordered(&mut self) {
        with_index!(self, index => index.finish_unordered())
    }

    /// Removes series (each with its labels).
    pub fn remove(&mut self, series: &[(SeriesRef, &[Label])]) {
        with_index!(self, index => index.remove(series))
    }

    /// Label names, sorted.
    pub fn label_names(&self) -> Vec<String> {
        with_index!(self, index => {
            let mut names: Vec<String> = index.by_label.keys().map(|n| n.to_string()).collect();
            names.sort();
            names
        })
    }

    /// Values of `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        with_index!(self, index => index
            .by_label
            .get(name)
            .map(|v| v.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default())
    }

    /// The series matching every matcher, sorted.
    pub fn select(&self, matchers: &[Matcher]) -> PostingsList {
        with_index!(self, index => index.select_refs(matchers))
    }

    /// Per label name: how many values it has; per metric name and per label pair: how many
    /// series. Each list sorted by count, descending, then name, and cut to `limit`.
    pub fn cardinality(&self, limit: usize) -> Cardinality {
        with_index!(self, index => index.cardinality(limit))
    }
}

impl<L: List> Index<L> {
    fn add(&mut self, r: SeriesRef, labels: &[Label], sorted: bool) {
        let id = L::id(r.0).expect("the index was widened for this reference");
        for l in labels.iter() {
            let values = self.by_label.entry(ArcStr::clone(l.name())).or_default();
            values
                .entry(ArcStr::clone(l.value()))
                .or_default()
                .add(id, sorted);
        }
        self.all.add(id, sorted);
        self.unordered |= !sorted;
    }

    fn finish_unordered(&mut self) {
        if !std::mem::take(&mut self.unordered) {
            return;
        }
        for values in self.by_label.values_mut() {
            values.values_mut().for_each(L::finish);
        }
        self.all.finish();
    }

    /// The same index with 8-byte references.
    fn widen(&mut self) -> Index<Vec<u64>> {
        Index {
            by_label: std::mem::take(&mut self.by_label)
                .into_iter()
                .map(|(name, values)| {
                    let values = values.into_iter().map(|(v, l)| (v, l.widen())).collect();
                    (name, values)
                })
                .collect(),
            all: self.all.widen(),
            unordered: self.unordered,
        }
    }

    fn remove(&mut self, series: &[(SeriesRef, &[Label])]) {
        // A reference too wide for this index was never added to it.
        let id = |r: &SeriesRef| L::id(r.0);
        let mut by_pair: FxHashMap<(&str, &str), Vec<L::Id>> = FxHashMap::default();
        for (r, labels) in series {
            let Some(id) = id(r) else { continue };
            for l in labels.iter() {
                by_pair.entry((l.name(), l.value())).or_default().push(id);
            }
        }
        for ((name, value), mut ids) in by_pair {
            ids.sort_unstable();
            let Some(values) = self.by_label.get_mut(name) else {
                continue;
            };
            if let Some(list) = values.get_mut(value) {
                list.remove_sorted(&ids);
                if list.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.by_label.remove(name);
            }
        }
        let mut all: Vec<L::Id> = series.iter().filter_map(|(r, _)| id(r)).collect();
        all.sort_unstable();
        self.all.remove_sorted(&all);
    }

    /// The values of `m.name()` that `m` accepts (`accept == true`) or rejects, each with its
    /// postings list. Uses the matcher's exact set or prefix when it has one.
    fn values_where<'a>(
        &'a self,
        m: &'a Matcher,
        accept: bool,
    ) -> Box<dyn Iterator<Item = &'a L> + 'a> {
        let Some(values) = self.by_label.get(m.name()) else {
            return Box::new(std::iter::empty());
        };
        if accept && let Some(set) = m.set_values() {
            return Box::new(set.iter().filter_map(|v| values.get(v.as_str())));
        }
        if accept && let Some(prefix) = m.literal_prefix() {
            let prefix = ArcStr::from(prefix);
            return Box::new(
                values
                    .range(ArcStr::clone(&prefix)..)
                    .take_while(move |(v, _)| v.starts_with(&*prefix))
                    .filter(|(v, _)| m.matches(v))
                    .map(|(_, l)| l),
            );
        }
        Box::new(
            values
                .iter()
                .filter(move |(v, _)| m.matches(v) == accept)
                .map(|(_, l)| l),
        )
    }

    fn select_refs(&self, matchers: &[Matcher]) -> Vec<u64> {
        self.select(matchers).into_iter().map(L::to_ref).collect()
    }

    fn select(&self, matchers: &[Matcher]) -> Vec<L::Id> {
        let result: Result<_, std::convert::Infallible> = select_matching(
            matchers,
            |m, accept| Ok(L::union(self.values_where(m, accept))),
            || self.all.to_vec(),
        );
        result.unwrap_or_else(|never| match never {})
    }

    fn cardinality(&self, limit: usize) -> Cardinality {
        let top = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        let names = self
            .by_label
            .iter()
            .map(|(n, v)| (n.to_string(), v.len() as u64))
            .collect();
        let metrics = self
            .by_label
            .get(crate::labels::METRIC_NAME)
            .map(|v| {
                v.iter()
                    .map(|(name, l)| (name.to_string(), l.len()))
                    .collect()
            })
            .unwrap_or_default();
        let pairs: Vec<(String, u64)> = self
            .by_label
            .iter()
            .flat_map(|(n, v)| {
                v.iter()
                    .map(move |(val, l)| (format!("{n}={val}"), l.len()))
            })
            .collect();
        let label_pairs = pairs.len() as u64;
        let bytes = self
            .by_label
            .iter()
            .map(|(n, v)| {
                let bytes = v.iter().map(|(val, l)| val.len() as u64 * l.len()).sum();
                (n.to_string(), bytes)
            })
            .collect();
        Cardinality {
            series: self.all.len(),
            label_pairs,
            label_value_count_by_name: top(names),
            series_count_by_metric_name: top(metrics),
            series_count_by_label_pair: top(pairs),
            value_bytes_by_name: top(bytes),
        }
    }
}

/// Cardinality statistics of the head, as Prometheus's `/api/v1/status/tsdb` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cardinality {
    /// Series in the head.
    pub series: u64,
    /// Distinct `name=value` pairs in the head.
    pub label_pairs: u64,
    /// Label names with the most distinct values.
    pub label_value_count_by_name: Vec<(String, u64)>,
    /// Metric names with the most series.
    pub series_count_by_metric_name: Vec<(String, u64)>,
    /// `name=value` pairs with the most series.
    pub series_count_by_label_pair: Vec<(String, u64)>,
    /// Label names whose values take the most bytes, counting a value once per series that
    /// has it (Prometheus's `memoryInBytesByLabelName`).
    pub value_bytes_by_name: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;

    fn index() -> Postings {
        let mut p = Postings::default();
        let series: &[&[(&str, &str)]] = &[
            &[("__name__", "up"), ("job", "node"), ("instance", "a")],
            &[("__name__", "up"), ("job", "node"), ("instance", "b")],
            &[("__name__", "up"), ("job", "api")],
            &[
                ("__name__", "requests_total"),
                ("job", "api"),
                ("code", "200"),
            ],
            &[
                ("__name__", "requests_total"),
                ("job", "api"),
                ("code", "500"),
            ],
        ];
        for (i, labels) in series.iter().enumerate() {
            p.add(
                SeriesRef(i as u64 + 1),
                Labels::new(labels.iter().copied()).unwrap().as_slice(),
            );
        }
        p
    }

    fn check(matchers: &[(MatchKind, &str, &str)], expected: &[u64]) {
        let ms: Vec<Matcher> = matchers
            .iter()
            .map(|(k, n, v)| Matcher::new(*k, n, v).unwrap())
            .collect();
        assert_eq!(index().select(&ms), expected, "{matchers:?}");
    }

    #[test]
    fn selects_like_prometheus() {
        use MatchKind::*;
        check(&[(Equal, "__name__", "up")], &[1, 2, 3]);
        check(
            &[(Equal, "__name__", "up"), (Equal, "job", "node")],
            &[1, 2],
        );
        check(
            &[(Equal, "__name__", "up"), (NotEqual, "job", "node")],
            &[3],
        );
        // A missing label is "": instance="" selects the series without instance.
        check(&[(Equal, "__name__", "up"), (Equal, "instance", "")], &[3]);
        check(
            &[(Equal, "__name__", "up"), (NotEqual, "instance", "")],
            &[1, 2],
        );
        check(&[(Regex, "instance", "a|b")], &[1, 2]);
        check(&[(Regex, "instance", "a|")], &[1, 3, 4, 5]);
        check(&[(Regex, "__name__", "req.*")], &[4, 5]);
        check(&[(Regex, "code", "[45].."), (Equal, "job", "api")], &[5]);
        check(&[(NotRegex, "code", "2..")], &[1, 2, 3, 5]);
        check(&[(Regex, "job", ".*")], &[1, 2, 3, 4, 5]);
        check(&[(Regex, "job", ".+")], &[1, 2, 3, 4, 5]);
        check(&[(Equal, "job", "nope")], &[]);
        check(&[(NotEqual, "job", "nope")], &[1, 2, 3, 4, 5]);
        check(&[(Equal, "nolabel", "x")], &[]);
    }

    /// A head that created four billion series goes on past the 4-byte references: the
    /// index widens once and selects the same series, old and new.
    #[test]
    fn references_past_32_bits_widen_the_index() {
        let mut p = index();
        assert!(matches!(p, Postings::Narrow(_)));
        let big = SeriesRef(u64::from(u32::MAX) + 7);
        p.add(
            big,
            Labels::new([("__name__", "up"), ("job", "node")])
                .unwrap()
                .as_slice(),
        );
        assert!(matches!(p, Postings::Wide(_)));
        let up_node = [
            Matcher::new(MatchKind::Equal, "__name__", "up").unwrap(),
            Matcher::new(MatchKind::Equal, "job", "node").unwrap(),
        ];
        assert_eq!(p.select(&up_node), vec![1, 2, big.0]);
        let labels = Labels::new([("__name__", "up"), ("job", "node")]).unwrap();
        p.remove(&[(big, labels.as_slice())]);
        assert_eq!(p.select(&up_node), vec![1, 2]);
        assert_eq!(p.cardinality(10).series, 5);
    }

    #[test]
    fn list_operations() {
        assert_eq!(intersect(&[1u64, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(subtract(&[1u32, 3, 5, 7], &[3, 4, 5]), vec![1, 7]);
        assert_eq!(union([vec![5u64, 9], vec![1, 5]].iter()), vec![1, 5, 9]);
        let mut l = vec![1u32, 5];
        insert_sorted(&mut l, 3);
        insert_sorted(&mut l, 9);
        insert_sorted(&mut l, 5);
        assert_eq!(l, vec![1, 3, 5, 9]);
    }

    #[test]
    fn label_names_values_and_cardinality() {
        let p = index();
        assert_eq!(p.label_names(), vec!["__name__", "code", "instance", "job"]);
        assert_eq!(p.label_values("job"), vec!["api", "node"]);
        let c = p.cardinality(2);
        assert_eq!(c.series, 5);
        assert_eq!(
            c.series_count_by_metric_name,
            vec![("up".to_string(), 3), ("requests_total".to_string(), 2)]
        );
        assert_eq!(
            c.label_value_count_by_name,
            vec![("__name__".to_string(), 2), ("code".to_string(), 2)]
        );
    }

    /// The bitmap lists (narrow) and the vector lists (wide) are two representations of one
    /// index: random adds (sorted and bulk-loaded), removals and selections give the same
    /// series in both, and the same as filtering the live series directly.
    #[test]
    fn narrow_and_wide_indexes_agree_with_a_model() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let jobs = ["api", "node", "db"];
        let codes = ["200", "404", "500"];
        let op = (0u8..4, 1u64..3000, 0usize..3, 0usize..3);
        let mut runner = TestRunner::new(Config {
            cases: 64,
            ..Config::default()
        });
        runner
            .run(&proptest::collection::vec(op, 1..400), |ops| {
                let mut narrow = Postings::default();
                let mut wide = Postings::Wide(Index::default());
                let mut live: BTreeMap<u64, Labels> = BTreeMap::new();
                let mut bulk = false;
                for (kind, r, j, c) in ops {
                    let labels =
                        Labels::new([("__name__", "m"), ("job", jobs[j]), ("code", codes[c])])
                            .unwrap();
                    match kind {
                        0 | 1 if !live.contains_key(&r) => {
                            if kind == 0 {
                                narrow.add(SeriesRef(r), labels.as_slice());
                                wide.add(SeriesRef(r), labels.as_slice());
                            } else {
                                bulk = true;
                                narrow.add_unordered(SeriesRef(r), labels.as_slice());
                                wide.add_unordered(SeriesRef(r), labels.as_slice());
                            }
                            live.insert(r, labels);
                        }
                        2 => {
                            if let Some(l) = live.remove(&r) {
                                if bulk {
                                    narrow.finish_unordered();
                                    wide.finish_unordered();
                                    bulk = false;
                                }
                                narrow.remove(&[(SeriesRef(r), l.as_slice())]);
                                wide.remove(&[(SeriesRef(r), l.as_slice())]);
                            }
                        }
                        _ => {}
                    }
                }
                narrow.finish_unordered();
                wide.finish_unordered();
                let selectors: Vec<Vec<Matcher>> = vec![
                    vec![Matcher::new(MatchKind::Equal, "job", "api").unwrap()],
                    vec![Matcher::new(MatchKind::NotEqual, "job", "api").unwrap()],
                    vec![
                        Matcher::new(MatchKind::Regex, "code", "[45]..").unwrap(),
                        Matcher::new(MatchKind::NotRegex, "job", "db|node").unwrap(),
                    ],
                    vec![Matcher::new(MatchKind::Regex, "__name__", ".+").unwrap()],
                ];
                for ms in &selectors {
                    let expected: Vec<u64> = live
                        .iter()
                        .filter(|(_, l)| {
                            ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or("")))
                        })
                        .map(|(r, _)| *r)
                        .collect();
                    prop_assert_eq!(narrow.select(ms), expected.clone(), "{:?}", ms);
                    prop_assert_eq!(wide.select(ms), expected, "{:?}", ms);
                }
                prop_assert_eq!(narrow.cardinality(10), wide.cardinality(10));
                prop_assert_eq!(narrow.cardinality(10).series, live.len() as u64);
                Ok(())
            })
            .unwrap();
    }
}
