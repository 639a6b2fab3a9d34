//! The streams the store's blocks hold, each once: its label set (one allocation, shared by
//! every block that holds the stream), a number, and the inverted index over them.
//!
//! A block of a seal holds a page list for every stream written since the last seal (20,000
//! streams give 20,000 entries per block); each block keeping its own copy of every label
//! set and its own index made the store's memory grow with every seal. With the catalog a
//! block keeps, per stream, the shared label set, its pages and the stream's number; a query
//! matches its selector once against the catalog and finds the numbers in each block.
//!
//! A stream stays while a block holds it (counted); numbers are never reused, so a query
//! that matched before a block was dropped cannot find another stream under a number.

use rustc_hash::FxHashMap;

use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::postings::Postings;
use strata_core::sample::SeriesRef;

use crate::block::LogBlock;

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    by_labels: FxHashMap<Labels, Held>,
    postings: Postings,
    next: u64,
}

#[derive(Debug)]
struct Held {
    /// The same label set as the key: the one every block shares.
    labels: Labels,
    id: u64,
    /// Blocks holding the stream.
    blocks: u32,
}

impl Catalog {
    /// Adds a block's streams: each takes the catalog's label set and number (new streams
    /// get new ones).
    pub fn add_block(&mut self, block: &mut LogBlock) {
        block.intern(|labels| {
            if let Some(held) = self.by_labels.get_mut(labels) {
                held.blocks += 1;
                return (held.labels.clone(), held.id);
            }
            self.next += 1;
            let id = self.next;
            self.postings.add(SeriesRef(id), labels.as_slice());
            let held = Held {
                labels: labels.clone(),
                id,
                blocks: 1,
            };
            self.by_labels.insert(labels.clone(), held);
            (labels.clone(), id)
        });
    }

    /// Lets go of a block's streams: those no other block holds are forgotten.
    pub fn remove_block(&mut self, block: &LogBlock) {
        let mut gone: Vec<(SeriesRef, Labels)> = Vec::new();
        for s in block.streams() {
            if let Some(held) = self.by_labels.get_mut(&s.labels) {
                held.blocks -= 1;
                if held.blocks == 0 {
                    gone.push((SeriesRef(held.id), s.labels.clone()));
                }
            }
        }
        for (_, labels) in &gone {
            self.by_labels.remove(labels);
        }
        let removed: Vec<(SeriesRef, &[strata_core::labels::Label])> =
            gone.iter().map(|(r, l)| (*r, l.as_slice())).collect();
        self.postings.remove(&removed);
    }

    /// The numbers of the streams matching every matcher, in increasing order.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<u64> {
        let mut ids: Vec<u64> = self.postings.select(matchers).into_iter().collect();
        ids.sort_unstable();
        ids
    }

    pub fn label_names(&self) -> Vec<String> {
        self.postings.label_names()
    }

    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.postings.label_values(name)
    }

    /// Streams held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_labels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::write_block;
    use crate::entry::Entry;
    use std::path::Path;
    use strata_core::fs::sim::SimFs;

    fn block(fs: &SimFs, seq: u32, apps: &[&str]) -> LogBlock {
        let labels: Vec<Labels> = apps
            .iter()
            .map(|a| Labels::new([("app", *a)]).unwrap())
            .collect();
        let entries = [Entry::new(1, "a line")];
        let streams: Vec<(&Labels, &[Entry])> = labels.iter().map(|l| (l, &entries[..])).collect();
        let dir = Path::new("/blocks");
        let summary = write_block(fs, dir, seq, &streams).unwrap();
        LogBlock::open(fs, &summary.path).unwrap()
    }

    #[test]
    fn a_stream_stays_while_any_block_holds_it_and_is_found_in_each() {
        let fs = SimFs::new(1);
        let mut catalog = Catalog::default();
        let mut one = block(&fs, 1, &["api", "db"]);
        let mut two = block(&fs, 2, &["db", "web"]);
        catalog.add_block(&mut one);
        catalog.add_block(&mut two);
        assert_eq!(catalog.len(), 3, "db once");
        assert_eq!(catalog.label_values("app"), ["api", "db", "web"]);
        let db = catalog.select(&[Matcher::equal("app", "db")]);
        assert_eq!(db.len(), 1);
        let app = |b: &LogBlock, i: usize| b.streams()[i].labels.get("app").unwrap().to_string();
        let found: Vec<String> = one
            .streams_among(&db)
            .iter()
            .map(|&i| app(&one, i))
            .collect();
        assert_eq!(found, ["db"]);
        let found: Vec<String> = two
            .streams_among(&db)
            .iter()
            .map(|&i| app(&two, i))
            .collect();
        assert_eq!(found, ["db"]);

        catalog.remove_block(&one);
        assert_eq!(
            catalog.label_values("app"),
            ["db", "web"],
            "db is still in two"
        );
        assert_eq!(
            catalog.select(&[Matcher::equal("app", "db")]),
            db,
            "same number"
        );
        catalog.remove_block(&two);
        assert_eq!(catalog.len(), 0);
        assert!(catalog.label_names().is_empty());
        // A stream seen again gets a new number: an old query's numbers find nothing else.
        let mut three = block(&fs, 3, &["db"]);
        catalog.add_block(&mut three);
        assert_ne!(catalog.select(&[Matcher::equal("app", "db")]), db);
    }
}
