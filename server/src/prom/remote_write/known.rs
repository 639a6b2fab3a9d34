//! The series remote write has stored, by the bytes that name them on the wire.
//!
//! A sender writes a series' labels with the same bytes in every request (Prometheus encodes
//! each series' labels the same way each time), and a catch-up sends each series thousands of
//! times. Decoding those labels, checking them, hashing them and comparing them with the
//! head's was a third of ingestion's CPU. This table maps a series' label fields, as sent, to
//! its reference, and the request's labels are never decoded.
//!
//! A sender also sends its series in much the same order every time (Prometheus's shards
//! append each scrape in scrape order; a catch-up walks the series in one order), and the
//! table keeps entries in the order they were first stored. So a lookup first tries the entry
//! after the one the previous series of the request matched: one comparison of bytes that
//! lie just after the previous ones, which the processor has fetched ahead. Only when that
//! guess is wrong does it hash the bytes and probe the hash table, whose slots, spread over
//! memory, were a cache miss or three per series.
//!
//! Only bytes that decoded as valid labels which passed the request checks, and whose samples
//! were stored, are entered, so a hit is accepted exactly as the full path would accept it.
//! The table remembers the label limits its entries were checked under and is not used by a
//! request under other limits (a reload that changes them empties it). A reference whose
//! series the head has since dropped is not found by the appender, and that series goes the
//! full path again. The table holds each series' label bytes once, in one buffer, and is
//! emptied when it outgrows the head (series that churn leave entries behind), so it stays
//! within a small multiple of the head's series.

use std::sync::{RwLock, RwLockReadGuard};

use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

use crate::prom::limits::WriteLimits;

/// Entries the table keeps at least, whatever the head holds.
const ENTRIES_MIN: usize = 65_536;

/// The series stored, by their label fields as sent.
#[derive(Debug, Default)]
pub struct KnownSeries {
    table: RwLock<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// The label limits every entry passed.
    checked: Option<Checked>,
    /// Entries in the order they were entered.
    entries: Vec<Entry>,
    /// Indexes of `entries`, by the hash of their bytes.
    by_hash: HashTable<u32>,
    /// Every entry's label bytes, one after the other, in the same order.
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

impl Table {
    fn key(&self, i: u32) -> &[u8] {
        let e = &self.entries[i as usize];
        &self.bytes[e.at as usize..][..e.len as usize]
    }

    fn find(&self, raw: &[u8]) -> Option<u32> {
        let hash = xxh3_64(raw);
        self.by_hash.find(hash, |&i| self.key(i) == raw).copied()
    }

    /// Whether `raw` (of `len` bytes) still fits the 32-bit offsets and lengths.
    fn fits(&self, len: usize) -> bool {
        self.bytes.len() + len <= u32::MAX as usize && self.entries.len() < u32::MAX as usize
    }

    fn insert(&mut self, raw: &[u8], series: u64) {
        if let Some(i) = self.find(raw) {
            self.entries[i as usize].series = series;
            return;
        }
        if self.bytes.capacity() - self.bytes.len() < raw.len() {
            // Grown by an eighth, not doubled: the buffer is most of the table's memory, and
            // a doubling leaves up to half of it unused.
            self.bytes
                .reserve_exact(raw.len().max(self.bytes.capacity() / 8).max(4096));
        }
        let i = self.entries.len() as u32;
        self.entries.push(Entry {
            at: self.bytes.len() as u32,
            len: raw.len() as u32,
            series,
        });
        self.bytes.extend_from_slice(raw);
        let Table {
            entries,
            bytes,
            by_hash,
            ..
        } = self;
        let key = |i: &u32| {
            let e = &entries[*i as usize];
            xxh3_64(&bytes[e.at as usize..][..e.len as usize])
        };
        by_hash.insert_unique(key(&i), i, key);
    }
}

impl KnownSeries {
    /// A reader for one request checked under `limits`, under the table's read lock (it
    /// finds nothing if the entries were checked under other limits).
    pub fn reader(&self, limits: &WriteLimits) -> Reader<'_> {
        let table = read(&self.table);
        let usable = table.checked == Some(Checked::of(limits));
        Reader {
            table: usable.then_some(table),
            last: None,
        }
    }

    /// Enters series (their label fields as sent, and their references) that passed the
    /// checks of `limits`, keeping the table within `entries_max` entries or so: the table is
    /// emptied first if it would pass the larger of `entries_max` and [`ENTRIES_MIN`], or if
    /// its entries were checked under other limits.
    pub fn insert(&self, series: &[(&[u8], u64)], limits: &WriteLimits, entries_max: usize) {
        if series.is_empty() {
            return;
        }
        let checked = Some(Checked::of(limits));
        let mut table = write(&self.table);
        if table.entries.len() + series.len() > entries_max.max(ENTRIES_MIN)
            || table.checked != checked
        {
            *table = Table {
                checked,
                ..Table::default()
            };
        }
        for &(raw, r) in series {
            if table.fits(raw.len()) {
                table.insert(raw, r);
            }
        }
    }

    /// Entries held, and the bytes they take.
    pub fn footprint(&self) -> (usize, usize) {
        let t = read(&self.table);
        let bytes = t.bytes.capacity()
            + t.entries.capacity() * size_of::<Entry>()
            + t.by_hash.capacity() * (size_of::<u32>() + 1);
        (t.entries.len(), bytes)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        read(&self.table).entries.len()
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Lookups for one request, under the table's read lock.
#[derive(Debug)]
pub struct Reader<'a> {
    /// The table, if its entries were checked under the request's limits.
    table: Option<RwLockReadGuard<'a, Table>>,
    /// The entry the previous lookup matched.
    last: Option<u32>,
}

impl Reader<'_> {
    /// The reference of the series whose label fields are `raw`, if it was entered: the
    /// entry after the previous match if that is it, else by hash.
    pub fn get(&mut self, raw: &[u8]) -> Option<u64> {
        let table = self.table.as_ref()?;
        let next = self.last.map_or(0, |i| i.wrapping_add(1));
        let found = if (next as usize) < table.entries.len() && table.key(next) == raw {
            Some(next)
        } else {
            table.find(raw)
        };
        if found.is_some() {
            self.last = found;
        }
        found.map(|i| table.entries[i as usize].series)
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
    fn finds_what_was_entered_and_nothing_else_in_any_order() {
        let known = KnownSeries::default();
        let limits = WriteLimits::default();
        known.insert(&[(b"abc", 1), (b"abd", 2), (b"x", 3)], &limits, 0);
        // In the order entered (each the guess after the one before), out of it, and with
        // misses in between.
        let mut r = known.reader(&limits);
        for (raw, want) in [
            (&b"abc"[..], Some(1)),
            (b"abd", Some(2)),
            (b"x", Some(3)),
            (b"abd", Some(2)),
            (b"abc", Some(1)),
            (b"ab", None),
            (b"abd", Some(2)),
            (b"abcd", None),
            (b"", None),
            (b"x", Some(3)),
            (b"x", Some(3)),
        ] {
            assert_eq!(r.get(raw), want, "{raw:?}");
        }
        drop(r);
        // Entering the same bytes again replaces the reference.
        known.insert(&[(b"abc", 7)], &limits, 0);
        assert_eq!(known.reader(&limits).get(b"abc"), Some(7));
        assert_eq!(known.len(), 3);
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
        // Entering under the strict limits empties the table first.
        known.insert(&[(b"abd", 2)], &strict, 0);
        assert_eq!(known.reader(&strict).get(b"abd"), Some(2));
        assert_eq!(known.reader(&strict).get(b"abc"), None);
        assert_eq!(known.reader(&lax).get(b"abd"), None);
    }

    #[test]
    fn stays_within_its_limit_as_series_churn() {
        let known = KnownSeries::default();
        let limits = WriteLimits::default();
        for round in 0..20u64 {
            let keys: Vec<Vec<u8>> = (0..10_000u64)
                .map(|i| format!("series-{round}-{i}").into_bytes())
                .collect();
            let entries: Vec<(&[u8], u64)> = keys
                .iter()
                .zip(0..)
                .map(|(k, i)| (k.as_slice(), round * 10_000 + i))
                .collect();
            known.insert(&entries, &limits, 1000);
            assert!(known.len() <= ENTRIES_MIN, "round {round}: {}", known.len());
            // The newest round's entries are there.
            let mut r = known.reader(&limits);
            assert_eq!(r.get(&keys[9_999]), Some(round * 10_000 + 9_999));
            assert_eq!(r.get(&keys[0]), Some(round * 10_000));
        }
    }
}
