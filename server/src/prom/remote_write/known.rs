//! The series remote write has stored, by the bytes that name them on the wire.
//!
//! A sender writes a series' labels with the same bytes in every request (Prometheus encodes
//! each series' labels the same way each time), and a catch-up sends each series thousands of
//! times. Decoding those labels, checking them, hashing them and comparing them with the
//! head's was a third of ingestion's CPU. This table maps a series' label fields, as sent, to
//! its reference: a request whose series are all known is looked up with one hash and one
//! comparison of contiguous bytes per series, and its labels are never decoded.
//!
//! Only bytes that decoded as valid labels which passed the request checks, and whose samples
//! were stored, are entered, so a hit is accepted exactly as the full path would accept it.
//! Each shard remembers the label limits its entries were checked under and is not used by a
//! request under other limits (a reload that changes them empties it). A reference whose
//! series the head has since dropped is not found by the appender, and that series goes the
//! full path again. The table holds the label bytes once per series, in one buffer per shard,
//! and is emptied shard by shard when it outgrows the head (series that churn leave entries
//! behind), so it stays within a small multiple of the head's series.

use std::sync::{RwLock, RwLockReadGuard};

use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

use crate::prom::limits::WriteLimits;

const SHARDS: usize = 16;

/// Entries the table keeps at least (per shard, times [`SHARDS`]), whatever the head holds.
const ENTRIES_MIN: usize = 65_536;

/// The series stored, by their label fields as sent.
#[derive(Debug)]
pub struct KnownSeries {
    shards: Box<[RwLock<Shard>]>,
}

#[derive(Debug, Default)]
struct Shard {
    /// The label limits every entry passed.
    checked: Option<Checked>,
    table: HashTable<Entry>,
    /// Every entry's label bytes, one after the other.
    bytes: Vec<u8>,
}

/// The limits a series' labels are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked {
    labels: usize,
    name_bytes: usize,
    value_bytes: usize,
}

impl Checked {
    fn of(limits: &WriteLimits) -> Checked {
        Checked {
            labels: limits.labels_per_series_max,
            name_bytes: limits.label_name_bytes_max,
            value_bytes: limits.label_value_bytes_max,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: u32,
    len: u32,
    series: u64,
}

impl Shard {
    fn key(&self, e: &Entry) -> &[u8] {
        &self.bytes[e.at as usize..][..e.len as usize]
    }

    fn find(&self, hash: u64, raw: &[u8]) -> Option<&Entry> {
        self.table.find(hash, |e| self.key(e) == raw)
    }
}

impl Default for KnownSeries {
    fn default() -> KnownSeries {
        KnownSeries {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }
}

fn shard_of(hash: u64) -> usize {
    // The table uses the low bits; the shard takes the top ones.
    (hash >> 60) as usize % SHARDS
}

impl KnownSeries {
    /// A reader for one request checked under `limits`: every shard's read lock, taken once
    /// (a shard whose entries were checked under other limits is not read).
    pub fn reader(&self, limits: &WriteLimits) -> Reader<'_> {
        let checked = Some(Checked::of(limits));
        Reader {
            shards: self
                .shards
                .iter()
                .map(|s| Some(read(s)).filter(|s| s.checked == checked))
                .collect(),
        }
    }

    /// Enters series (their label fields as sent, and their references) that passed the
    /// checks of `limits`, keeping the table within `entries_max` entries or so: a shard that
    /// would pass its part of the larger of `entries_max` and [`ENTRIES_MIN`], or whose
    /// entries were checked under other limits, is emptied first.
    pub fn insert(&self, series: &[(&[u8], u64)], limits: &WriteLimits, entries_max: usize) {
        let limit = entries_max;
        let checked = Some(Checked::of(limits));
        let per_shard = limit.max(ENTRIES_MIN) / SHARDS;
        let mut by_shard: Vec<Vec<(u64, &[u8], u64)>> = vec![Vec::new(); SHARDS];
        for &(raw, r) in series {
            // Offsets are 32-bit; no valid label set comes near.
            if raw.len() > u32::MAX as usize / 2 {
                continue;
            }
            let hash = xxh3_64(raw);
            by_shard[shard_of(hash)].push((hash, raw, r));
        }
        for (i, entries) in by_shard.iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let mut shard = write(&self.shards[i]);
            if shard.table.len() + entries.len() > per_shard
                || shard.bytes.len() > u32::MAX as usize / 2
                || shard.checked != checked
            {
                *shard = Shard {
                    checked,
                    ..Shard::default()
                };
            }
            for &(hash, raw, r) in entries {
                let Shard { table, bytes, .. } = &mut *shard;
                let at = bytes.len();
                match table.find_mut(hash, |e| &bytes[e.at as usize..][..e.len as usize] == raw) {
                    Some(e) => e.series = r,
                    None => {
                        if bytes.capacity() - bytes.len() < raw.len() {
                            // Grown by an eighth, not doubled: the buffer is most of the
                            // table's memory, and a doubling leaves up to half of it unused.
                            bytes.reserve_exact(raw.len().max(bytes.capacity() / 8).max(4096));
                        }
                        bytes.extend_from_slice(raw);
                        let entry = Entry {
                            at: at as u32,
                            len: raw.len() as u32,
                            series: r,
                        };
                        table.insert_unique(hash, entry, |e| {
                            xxh3_64(&bytes[e.at as usize..][..e.len as usize])
                        });
                    }
                }
            }
        }
    }

    /// Entries held, and the bytes they take.
    pub fn footprint(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, bytes), s| {
            let s = read(s);
            (
                n + s.table.len(),
                bytes + s.bytes.capacity() + s.table.capacity() * (size_of::<Entry>() + 1),
            )
        })
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).table.len()).sum()
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Lookups for one request, under the read locks of every shard.
#[derive(Debug)]
pub struct Reader<'a> {
    /// The shards checked under the request's limits.
    shards: Vec<Option<RwLockReadGuard<'a, Shard>>>,
}

impl Reader<'_> {
    /// The reference of the series whose label fields are `raw`, if it was entered.
    pub fn get(&self, raw: &[u8]) -> Option<u64> {
        let hash = xxh3_64(raw);
        self.shards[shard_of(hash)]
            .as_ref()?
            .find(hash, raw)
            .map(|e| e.series)
    }
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_entered_and_nothing_else() {
        let known = KnownSeries::default();
        let limits = WriteLimits::default();
        known.insert(&[(b"abc", 1), (b"abd", 2)], &limits, 0);
        let r = known.reader(&limits);
        assert_eq!(r.get(b"abc"), Some(1));
        assert_eq!(r.get(b"abd"), Some(2));
        assert_eq!(r.get(b"ab"), None);
        assert_eq!(r.get(b"abcd"), None);
        drop(r);
        // Entering the same bytes again replaces the reference.
        known.insert(&[(b"abc", 7)], &limits, 0);
        assert_eq!(known.reader(&limits).get(b"abc"), Some(7));
        assert_eq!(known.len(), 2);
    }

    #[test]
    fn entries_serve_only_requests_under_the_limits_they_passed() {
        let known = KnownSeries::default();
        let lax = WriteLimits::default();
        let strict = WriteLimits {
            label_value_bytes_max: 2,
            ..lax
        };
        // Limits other than the labels' do not matter.
        let other = WriteLimits {
            sample_age_max_ms: 1,
            ..lax
        };
        known.insert(&[(b"abc", 1)], &lax, 0);
        assert_eq!(known.reader(&other).get(b"abc"), Some(1));
        assert_eq!(known.reader(&strict).get(b"abc"), None);
        // Entering under the strict limits empties the shard the lax entries were in.
        known.insert(&[(b"abc", 2)], &strict, 0);
        assert_eq!(known.reader(&strict).get(b"abc"), Some(2));
        assert_eq!(known.reader(&lax).get(b"abc"), None);
    }

    #[test]
    fn stays_within_its_limit_as_series_churn() {
        let known = KnownSeries::default();
        let limit = 1000;
        for round in 0..20u64 {
            let keys: Vec<Vec<u8>> = (0..10_000u64)
                .map(|i| format!("series-{round}-{i}").into_bytes())
                .collect();
            let entries: Vec<(&[u8], u64)> = keys
                .iter()
                .zip(0..)
                .map(|(k, i)| (k.as_slice(), round * 10_000 + i))
                .collect();
            known.insert(&entries, &WriteLimits::default(), limit);
            // The newest round's entries are there.
            let r = known.reader(&WriteLimits::default());
            assert_eq!(r.get(&keys[9_999]), Some(round * 10_000 + 9_999));
        }
        assert!(known.len() <= ENTRIES_MIN * 2, "{} entries", known.len());
    }
}
