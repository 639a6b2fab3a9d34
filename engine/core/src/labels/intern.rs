//! The string interner that lets series share their label strings.
//!
//! A head holds millions of series, and almost all of their labels repeat: every series of a
//! job carries the same `job`, `instance` and `__name__` pairs. [`Interner`] keeps one
//! `ArcStr` per distinct string and one [`Label`] per distinct pair, so each series stores one
//! pointer per label and the bytes live once.
//!
//! Appenders intern from many threads at once, so the table is split into [`SHARDS`] shards,
//! each behind its own mutex and chosen by a hash of the string. Two appenders contend only
//! when they intern strings that land in the same shard at the same moment. Inside a shard the
//! set uses the standard library's randomly keyed SipHash: label strings come from the
//! network, and a fixed hash there would let a sender flood one bucket chain.
//!
//! Nothing is removed implicitly. [`Interner::purge_unused`] drops the pairs and strings that no
//! series references any more; the head calls it after garbage-collecting series.

use arcstr::ArcStr;
use hashbrown::HashTable;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Label, Pair};

use xxhash_rust::xxh3::xxh3_64;

/// The number of shards. A power of two, so a shard is picked by masking a hash.
pub const SHARDS: usize = 16;

const _: () = assert!(SHARDS.is_power_of_two());

/// A concurrent set of shared strings: interning equal strings returns the same allocation.
///
/// `Interner` is `Send + Sync`; share it between appenders behind an `Arc` or a reference.
pub struct Interner {
    // Invariant: a string lives only in the shard `shard_index(s)` picks, so a lookup needs
    // to lock exactly one shard.
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Default)]
struct Shard {
    set: HashSet<ArcStr>,
    // Invariant: the sum of the lengths of the strings in `set`, in bytes.
    string_bytes: usize,
    /// Pairs whose value picks this shard; hashed with `pair_hasher` (keyed, as `set` is).
    // Invariant: every pair's strings are the interned copies.
    pairs: HashTable<Label>,
    pair_hasher: RandomState,
}

impl Shard {
    fn pair_hash(&self, name: &str, value: &str) -> u64 {
        self.pair_hasher.hash_one((name, value))
    }

    fn find_pair(&self, name: &str, value: &str) -> Option<Label> {
        self.pairs
            .find(self.pair_hash(name, value), |l| {
                l.name() == name && l.value() == value
            })
            .cloned()
    }
}

impl Interner {
    /// Creates an empty interner.
    pub fn new() -> Interner {
        Interner {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
        }
    }

    /// Returns the shared copy of `s`, adding it on first sight.
    ///
    /// Every call with an equal string returns a clone of the same `Arc` (so
    /// `Arc::ptr_eq` holds between them) until [`Interner::purge_unused`] drops it.
    pub fn intern(&self, s: &str) -> ArcStr {
        let mut shard = self.lock(shard_index(s));
        if let Some(shared) = shard.set.get(s) {
            return ArcStr::clone(shared);
        }
        let shared = ArcStr::from(s);
        shard.set.insert(ArcStr::clone(&shared));
        shard.string_bytes += s.len();
        shared
    }

    /// Returns the shared copy of the label `name="value"`, adding it (and interning its
    /// strings) on first sight.
    pub fn intern_label(&self, name: &str, value: &str) -> Label {
        let index = shard_index(value);
        if let Some(label) = self.lock(index).find_pair(name, value) {
            return label;
        }
        // Interning the strings locks other shards, possibly this one: not while holding it.
        let fresh = Label(Arc::new(Pair {
            name: self.intern(name),
            value: self.intern(value),
        }));
        let mut shard = self.lock(index);
        if let Some(label) = shard.find_pair(name, value) {
            return label;
        }
        let hash = shard.pair_hash(name, value);
        let Shard {
            pairs, pair_hasher, ..
        } = &mut *shard;
        pairs.insert_unique(hash, Label::clone(&fresh), |l| {
            pair_hasher.hash_one((l.name().as_str(), l.value().as_str()))
        });
        fresh
    }

    /// The number of distinct label pairs held.
    pub fn pair_count(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).pairs.len()).sum()
    }

    /// The number of distinct strings held.
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).set.len()).sum()
    }

    /// Whether the interner holds no strings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate heap bytes held, for statistics: the string allocations (bytes plus the
    /// header each shared string carries: its length and reference count) and the hash
    /// tables' slots.
    pub fn bytes(&self) -> usize {
        const ARC_COUNTS: usize = 2 * size_of::<usize>();
        // A hashbrown slot is the stored `ArcStr` (a thin pointer) plus one control byte.
        const SLOT: usize = size_of::<ArcStr>() + 1;
        const PAIR: usize = ARC_COUNTS + size_of::<Pair>();
        const PAIR_SLOT: usize = size_of::<Label>() + 1;
        (0..SHARDS)
            .map(|i| {
                let shard = self.lock(i);
                shard.string_bytes
                    + shard.set.len() * ARC_COUNTS
                    + shard.set.capacity() * SLOT
                    + shard.pairs.len() * PAIR
                    + shard.pairs.capacity() * PAIR_SLOT
            })
            .sum()
    }

    /// Drops every pair and string that nothing outside the interner references any more, and
    /// returns how many strings were dropped.
    ///
    /// A pair or string whose only owner is the interner cannot gain a new owner while its
    /// shard is locked (interning is the only way to clone it), so the check and the removal
    /// cannot race with appenders. Pairs go first: they hold their strings.
    pub fn purge_unused(&self) -> usize {
        for i in 0..SHARDS {
            self.lock(i).pairs.retain(|l| Arc::strong_count(&l.0) > 1);
        }
        let mut dropped = 0;
        for i in 0..SHARDS {
            let mut shard = self.lock(i);
            let Shard {
                set, string_bytes, ..
            } = &mut *shard;
            set.retain(|s| {
                let keep = ArcStr::strong_count(s).is_none_or(|n| n > 1);
                if !keep {
                    *string_bytes -= s.len();
                    dropped += 1;
                }
                keep
            });
        }
        dropped
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
        // A panic while a shard was locked cannot leave it inconsistent: each critical
        // section either inserted or removed a whole string and its byte count, or did not
        // get that far. So a poisoned lock is still safe to use.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Interner {
    fn default() -> Interner {
        Interner::new()
    }
}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

/// Picks the shard for `s` from the top bits of its xxh3 hash (the set inside the shard
/// hashes with its own keyed hasher, so the two do not correlate).
fn shard_index(s: &str) -> usize {
    (xxh3_64(s.as_bytes()) >> (64 - SHARDS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interns `strings` in order into a fresh interner and checks the number of distinct
    /// strings it ends up holding.
    fn check(strings: &[&str], distinct: usize) {
        let interner = Interner::new();
        let shared: Vec<ArcStr> = strings.iter().map(|s| interner.intern(s)).collect();
        assert_eq!(interner.len(), distinct, "{strings:?}");
        for (s, a) in strings.iter().zip(&shared) {
            assert_eq!(&**a, *s);
            assert!(
                ArcStr::ptr_eq(a, &interner.intern(s)),
                "{s:?} was not shared"
            );
        }
    }

    #[test]
    fn interning() {
        check(&[], 0);
        check(&["a"], 1);
        check(&["a", "a"], 1);
        check(&["a", "b", "a"], 2);
        check(&["", ""], 1);
        check(&["job", "instance", "job", "__name__"], 3);
        check(&["é", "e\u{301}"], 2);
    }

    #[test]
    fn bytes_grow_with_content() {
        let interner = Interner::new();
        let empty = interner.bytes();
        let _kept = interner.intern(&"x".repeat(1000));
        assert!(interner.bytes() >= empty + 1000);
        assert!(!interner.is_empty());
    }

    #[test]
    fn purge_drops_only_unreferenced_strings() {
        let interner = Interner::new();
        let kept = interner.intern("kept");
        drop(interner.intern("dropped"));
        assert_eq!(interner.purge_unused(), 1);
        assert_eq!(interner.len(), 1);
        assert!(ArcStr::ptr_eq(&kept, &interner.intern("kept")));
        drop(kept);
        assert_eq!(interner.purge_unused(), 1);
        assert!(interner.is_empty());
    }

    #[test]
    fn concurrent_interning_shares_one_copy() {
        let interner = Interner::new();
        let per_thread: Vec<Vec<ArcStr>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..500)
                            .map(|i| interner.intern(&format!("v{i}")))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("interning thread panicked"))
                .collect()
        });
        assert_eq!(interner.len(), 500);
        for strings in &per_thread[1..] {
            for (a, b) in strings.iter().zip(&per_thread[0]) {
                assert!(ArcStr::ptr_eq(a, b));
            }
        }
    }

    #[test]
    fn pairs_are_shared_and_purged_with_their_strings() {
        let interner = Interner::new();
        let a = interner.intern_label("job", "api");
        let b = interner.intern_label("job", "api");
        let c = interner.intern_label("job", "web");
        assert!(Label::ptr_eq(&a, &b));
        assert!(!Label::ptr_eq(&a, &c));
        assert!(ArcStr::ptr_eq(a.name(), c.name()));
        assert_eq!((interner.pair_count(), interner.len()), (2, 3));
        drop(c);
        assert_eq!(interner.purge_unused(), 1, "web goes with its pair");
        assert_eq!((interner.pair_count(), interner.len()), (1, 2));
        drop((a, b));
        assert_eq!(interner.purge_unused(), 2);
        assert!(interner.is_empty());
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Interner>();
    }
}
