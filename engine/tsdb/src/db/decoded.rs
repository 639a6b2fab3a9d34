//! A bounded cache of decoded block chunks, so queries that read the same data again (a
//! dashboard refreshing, a range query re-run with a moved end) reuse the samples instead of
//! decoding the chunk stream again. The same ring, holding timestamps, keeps the decoded times
//! frames of encoding 3: one frame serves every series of its scrape target, so a query over
//! a target's series decodes its timestamps once, not once per series.
//!
//! Only chunks of blocks are cached: a block never changes after it is published, so a
//! decoded chunk stays right for as long as the block is open. Keys are a process-wide
//! number given to each opened [`Block`](crate::block::Block) and the chunk's reference, so a
//! removed block's entries can never be mistaken for a new block's; they just age out.
//!
//! Eviction is CLOCK (second chance): entries sit in a ring with a "used" bit set on every
//! hit; to make room the hand clears set bits and evicts the first entry whose bit is clear.
//! Hits cost a hash lookup and a bit, under one mutex held for that long only; decoding
//! happens outside it. The budget counts 16 bytes a sample plus a fixed overhead per entry.
//!
//! A query that reads more than the cache holds would, repeated, evict each of its entries
//! before reading it again, and never hit (CLOCK evicts unused entries in the order they came
//! in). So the ring watches its evictions: while most of the latest ones were never hit (the
//! cache is thrashing), a miss that has to evict is cached only one time in eight, and the
//! entries already in stay long enough to be hit. A dashboard whose data fits keeps being
//! admitted: evicting entries that were hit lifts the throttle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use strata_core::sample::Sample;

/// Bytes counted per entry besides its samples (key, slot, map entry, allocation header).
const ENTRY_OVERHEAD_BYTES: usize = 96;
/// The share of the latest evictions that were never hit is a moving average over about this
/// many evictions, kept in 256ths.
const EVICTIONS_WINDOW: u32 = 16;
/// Above this share (in 256ths) of never-hit evictions the cache counts as thrashing.
const THRASHING_SHARE: u32 = 192;
/// While thrashing, one miss in this many that has to evict is cached.
const ADMIT_ONE_IN: u64 = 8;

/// Which chunk: the opened block's number and the chunk's reference in it.
pub(crate) type ChunkKey = (u64, u64);

/// The cache of decoded chunks, `T` a decoded sample (or, for the shared timestamps of
/// encoding 3, a timestamp). With a budget of 0 it holds nothing.
#[derive(Debug)]
pub(crate) struct DecodedCache<T = Sample> {
    budget_bytes: usize,
    inner: Mutex<Ring<T>>,
}

#[derive(Debug)]
struct Ring<T> {
    slots: Vec<Option<Slot<T>>>,
    free: Vec<usize>,
    index: HashMap<ChunkKey, usize>,
    hand: usize,
    // Invariant: the sum of `cost` over the occupied slots.
    bytes: usize,
    hits: u64,
    misses: u64,
    /// Of the latest evictions, the share (in 256ths) whose entry was never hit.
    unhit_evictions: u32,
    /// Misses that would have had to evict while the cache was thrashing.
    crowded_misses: u64,
}

#[derive(Debug)]
struct Slot<T> {
    key: ChunkKey,
    samples: Arc<[T]>,
    /// Hit since the hand last passed (CLOCK's bit).
    used: bool,
    /// Hit at all since it was cached.
    hit: bool,
}

fn cost<T>(samples: &[T]) -> usize {
    std::mem::size_of_val(samples) + ENTRY_OVERHEAD_BYTES
}

/// Counts for `/metrics` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodedCacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub hits: u64,
    pub misses: u64,
}

impl<T> Default for Ring<T> {
    fn default() -> Ring<T> {
        Ring {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            hand: 0,
            bytes: 0,
            hits: 0,
            misses: 0,
            unhit_evictions: 0,
            crowded_misses: 0,
        }
    }
}

impl<T: Copy> DecodedCache<T> {
    pub(crate) fn new(budget_bytes: usize) -> DecodedCache<T> {
        DecodedCache {
            budget_bytes,
            inner: Mutex::new(Ring::default()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.budget_bytes > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring<T>> {
        // The ring's invariant holds between statements that can panic, so a poisoned lock
        // still guards a consistent ring.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached samples of `key` (counted as a hit), or `None` (a miss).
    pub(crate) fn get(&self, key: ChunkKey) -> Option<Arc<[T]>> {
        let mut ring = self.lock();
        if let Some(&i) = ring.index.get(&key) {
            ring.hits += 1;
            let slot = ring.slots[i].as_mut().expect("indexed slots are occupied");
            slot.used = true;
            slot.hit = true;
            return Some(Arc::clone(&slot.samples));
        }
        ring.misses += 1;
        None
    }

    /// Offers the decoded samples of `key` after a miss; they are copied in only if the cache
    /// takes them (not while it is thrashing, but one time in eight; never when larger than
    /// the whole budget).
    pub(crate) fn admit(&self, key: ChunkKey, samples: &[T]) {
        let size = cost(samples);
        if size <= self.budget_bytes {
            self.lock().insert(key, samples, size, self.budget_bytes);
        }
    }

    /// The cached samples of `key`, or those `decode` gives, which are then offered.
    #[cfg(test)]
    fn get_or_insert(&self, key: ChunkKey, decode: impl FnOnce() -> Vec<T>) -> Arc<[T]> {
        if let Some(samples) = self.get(key) {
            return samples;
        }
        let samples = decode();
        self.admit(key, &samples);
        samples.into()
    }

    pub(crate) fn stats(&self) -> DecodedCacheStats {
        let ring = self.lock();
        DecodedCacheStats {
            entries: ring.index.len(),
            bytes: ring.bytes,
            hits: ring.hits,
            misses: ring.misses,
        }
    }
}

impl<T: Copy> Ring<T> {
    fn insert(&mut self, key: ChunkKey, samples: &[T], size: usize, budget: usize) {
        if self.index.contains_key(&key) {
            // Decoded by two queries at once: the first one in stays.
            return;
        }
        if self.bytes + size > budget && self.unhit_evictions > THRASHING_SHARE {
            self.crowded_misses += 1;
            if !self.crowded_misses.is_multiple_of(ADMIT_ONE_IN) {
                return;
            }
        }
        while self.bytes + size > budget && !self.index.is_empty() {
            self.evict_one();
        }
        let slot = Slot {
            key,
            samples: samples.into(),
            used: false,
            hit: false,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.index.insert(key, i);
        self.bytes += size;
    }

    /// Moves the hand until it evicts one entry; at most two turns of the ring.
    fn evict_one(&mut self) {
        let n = self.slots.len();
        for _ in 0..2 * n {
            let i = self.hand;
            self.hand = (self.hand + 1) % n;
            let Some(slot) = &mut self.slots[i] else {
                continue;
            };
            if slot.used {
                slot.used = false;
                continue;
            }
            let slot = self.slots[i].take().expect("checked above");
            self.index.remove(&slot.key);
            self.bytes -= cost(&slot.samples);
            self.free.push(i);
            let unhit = if slot.hit { 0 } else { 256 / EVICTIONS_WINDOW };
            self.unhit_evictions += unhit;
            self.unhit_evictions -= self.unhit_evictions / EVICTIONS_WINDOW;
            return;
        }
        unreachable!("a non-empty ring always has an entry to evict within two turns");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: usize, v: f64) -> Vec<Sample> {
        (0..n).map(|i| Sample::new(i as i64, v)).collect()
    }

    #[test]
    fn a_hit_returns_what_was_decoded_without_decoding_again() {
        let cache = DecodedCache::new(1 << 20);
        let a = cache.get_or_insert((1, 10), || samples(100, 1.0));
        let b = cache.get_or_insert((1, 10), || panic!("decoded twice"));
        assert_eq!(a[..], b[..]);
        // Same chunk reference, another block: another entry.
        let c = cache.get_or_insert((2, 10), || samples(3, 2.0));
        assert_eq!(c[0].v, 2.0);
        let s = cache.stats();
        assert_eq!((s.entries, s.hits, s.misses), (2, 1, 2));
        assert_eq!(s.bytes, cost(&a) + cost(&c));
        // Every hit shares the one cached copy.
        assert!(Arc::ptr_eq(&b, &cache.get((1, 10)).expect("cached")));
    }

    #[test]
    fn the_budget_holds_and_used_entries_get_a_second_chance() {
        let one = cost(&samples(100, 0.0));
        let cache = DecodedCache::new(3 * one);
        for k in 0..3 {
            cache.get_or_insert((0, k), || samples(100, 0.0));
        }
        // Entry 0 is used again; inserting a fourth evicts 1, the oldest unused one.
        cache.get_or_insert((0, 0), || panic!("0 is cached"));
        cache.get_or_insert((0, 3), || samples(100, 0.0));
        let s = cache.stats();
        assert_eq!(s.entries, 3);
        assert!(s.bytes <= 3 * one);
        cache.get_or_insert((0, 0), || panic!("0 kept its second chance"));
        let mut decoded = false;
        cache.get_or_insert((0, 1), || {
            decoded = true;
            samples(100, 0.0)
        });
        assert!(decoded, "1 was the one evicted");
        // Many more entries than fit: the budget still holds.
        for k in 10..200 {
            cache.get_or_insert((0, k), || samples(100, 0.0));
            assert!(cache.stats().bytes <= 3 * one);
        }
    }

    /// Hits over `passes` reads of keys `keys` in order, the last `counted` passes counted.
    fn hits_reading_in_a_loop(
        cache: &DecodedCache,
        keys: std::ops::Range<u64>,
        passes: usize,
        counted: usize,
    ) -> u64 {
        let mut hits = 0;
        for pass in 0..passes {
            for k in keys.clone() {
                let mut decoded = false;
                cache.get_or_insert((0, k), || {
                    decoded = true;
                    samples(100, 0.0)
                });
                if pass >= passes - counted && !decoded {
                    hits += 1;
                }
            }
        }
        hits
    }

    #[test]
    fn a_loop_larger_than_the_cache_still_hits_once_it_thrashes() {
        let one = cost(&samples(100, 0.0));
        // 10 entries fit; a query reads 25 again and again. Plain CLOCK would never hit.
        let cache = DecodedCache::new(10 * one);
        let hits = hits_reading_in_a_loop(&cache, 0..25, 40, 10);
        assert!(
            hits >= 10 * 5,
            "{hits} hits in the last 10 passes of 25 reads: fewer than half of what fits"
        );
        assert!(cache.stats().bytes <= 10 * one);
    }

    #[test]
    fn a_working_set_that_fits_is_admitted_after_a_thrashing_loop() {
        let one = cost(&samples(100, 0.0));
        let cache = DecodedCache::new(10 * one);
        hits_reading_in_a_loop(&cache, 0..25, 20, 0);
        // Another dashboard, 8 chunks: within a few refreshes every read hits.
        let hits = hits_reading_in_a_loop(&cache, 100..108, 12, 2);
        assert_eq!(hits, 2 * 8, "the new working set was not all cached");
    }

    #[test]
    fn entries_larger_than_the_budget_and_a_zero_budget_cache_nothing() {
        let cache = DecodedCache::new(10);
        assert_eq!(cache.get_or_insert((0, 0), || samples(5, 1.0)).len(), 5);
        assert_eq!(cache.stats().entries, 0);
        assert!(!DecodedCache::<Sample>::new(0).enabled());
    }
}
