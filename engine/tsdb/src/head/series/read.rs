//! The read side of a series: what a snapshot holds and its samples in a time range, the
//! open chunk's newest sample without decoding, and the iterator over sorted chunks that
//! block reads share.

use strata_core::sample::Sample;

use super::SeriesSnapshot;
use crate::chunk::FrameSamples;
use crate::chunk::xor::XorIter;

impl SeriesSnapshot {
    /// Whether there is nothing in the range.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.active.is_none() && self.ooo.is_empty()
    }

    /// The first and last times its data may hold (chunks whole, before the range is
    /// applied), `None` when empty.
    pub fn span(&self) -> Option<(i64, i64)> {
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        let mut note = |a: i64, b: i64| {
            lo = lo.min(a);
            hi = hi.max(b);
        };
        for c in &self.chunks {
            note(c.min_t, c.max_t);
        }
        if let Some(&(_, _, first, last, _)) = self.active.as_ref() {
            note(first, last);
        }
        if let (Some(a), Some(b)) = (self.ooo.first(), self.ooo.last()) {
            note(a.t, b.t);
        }
        (lo <= hi).then_some((lo, hi))
    }

    /// The snapshot's newest sample, read without decoding, when the open chunk holds it
    /// and it is within `[mint, maxt]`: out-of-order samples and closed chunks are older.
    pub fn newest_open(&self, mint: i64, maxt: i64) -> Option<Sample> {
        let (_, _, _, last, v) = *self.active.as_ref()?;
        let older = self.chunks.iter().all(|c| c.max_t < last)
            && self.ooo.last().is_none_or(|s| s.t < last);
        (older && (mint..=maxt).contains(&last)).then(|| Sample::new(last, v))
    }

    /// The samples in `[mint, maxt]`, in time order, each timestamp once.
    pub fn samples(&self, mint: i64, maxt: i64) -> SnapshotIter<'_> {
        let in_order = self
            .chunks
            .iter()
            .map(|c| (&c.data[..], c.num_samples))
            .chain(self.active.as_ref().map(|(d, n, _, _, _)| (&d[..], *n)));
        if self.ooo.is_empty() {
            let frames = in_order.map(|(d, n)| FrameSamples::xor(d, n));
            return SnapshotIter::InOrder(InOrderIter::new(Box::new(frames), mint, maxt));
        }
        // Merge: in-order data wins over an out-of-order sample with the same timestamp
        // (apply never stores both, but a query must not show two).
        let mut all: Vec<Sample> = in_order
            .flat_map(|(d, n)| XorIter::new(d, n))
            .filter(|&(t, _)| t >= mint && t <= maxt)
            .map(|(t, v)| Sample::new(t, v))
            .collect();
        let in_order_len = all.len();
        all.extend(self.ooo.iter().copied());
        // Stable sort keeps in-order samples first among equal timestamps.
        all.sort_by_key(|s| s.t);
        all.dedup_by_key(|s| s.t);
        debug_assert!(all.len() >= in_order_len.min(1) || all.is_empty());
        SnapshotIter::Merged(all.into_iter())
    }
}

/// Iterates a snapshot's samples.
pub(crate) enum SnapshotIter<'a> {
    InOrder(InOrderIter<'a>),
    Merged(std::vec::IntoIter<Sample>),
}

/// Samples in `[mint, maxt]` of sorted, non-overlapping chunks, decoded one at a time.
pub(crate) struct InOrderIter<'a> {
    chunks: Box<dyn Iterator<Item = FrameSamples<'a>> + 'a>,
    current: Option<FrameSamples<'a>>,
    mint: i64,
    maxt: i64,
}

impl<'a> InOrderIter<'a> {
    pub fn new(
        chunks: Box<dyn Iterator<Item = FrameSamples<'a>> + 'a>,
        mint: i64,
        maxt: i64,
    ) -> InOrderIter<'a> {
        InOrderIter {
            chunks,
            current: None,
            mint,
            maxt,
        }
    }
}

impl Iterator for InOrderIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        loop {
            if let Some(cur) = &mut self.current {
                // Samples before the range are skipped without computing their values.
                if let Some((t, v)) = cur.next_from(self.mint) {
                    if t > self.maxt {
                        self.current = None;
                        self.chunks = Box::new(std::iter::empty());
                        return None;
                    }
                    return Some(Sample::new(t, v));
                }
            }
            self.current = Some(self.chunks.next()?);
        }
    }
}

impl Iterator for SnapshotIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        match self {
            SnapshotIter::Merged(it) => it.next(),
            SnapshotIter::InOrder(it) => it.next(),
        }
    }
}

impl std::fmt::Debug for SnapshotIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotIter")
    }
}
