//! What a compaction reads its sources with: a cursor over one block's pages of a stream, and
//! which source's next page can be copied whole rather than decoded and written again.

use strata_core::error::StorageError;

use crate::block::{LogBlock, PAGE_BYTES, PageMeta};
use crate::entry::Entry;

/// A compaction lets go of what it has read of a source every this many bytes.
pub(crate) const RELEASE_BYTES: u64 = 2 << 20;

/// Pages at least this full (uncompressed) are copied by a compaction as they are when
/// nothing else of their stream falls in their time range. An eighth of a page: on 1 GB of
/// `strata-bench logs` a quarter gave 47.4 MB of ingest per CPU-second and 301 MiB, a half
/// 41.0 and 301 MiB, an eighth 53.8 and 311 MiB (5% more on 10 GB). The size targets are out
/// of reach on that data (docs/perf.md, stop 38) and the ingest one was not met at a quarter,
/// so the CPU wins.
pub(crate) const COPY_PAGE_RAW_MIN: u64 = PAGE_BYTES as u64 / 8;

/// The cursor whose next page a compaction can copy whole: it is full enough, and every
/// other cursor's next entry is newer than its newest.
pub(crate) fn copyable(cursors: &[PageCursor<'_>]) -> Option<usize> {
    cursors.iter().enumerate().find_map(|(j, c)| {
        let p = c.next_whole_page()?;
        let before_the_rest = cursors
            .iter()
            .enumerate()
            .all(|(k, o)| k == j || o.next_ts().is_none_or(|ts| ts > p.max_ts));
        (p.raw_len >= COPY_PAGE_RAW_MIN && before_the_rest).then_some(j)
    })
}

/// One block's pages of one stream, read a page at a time (a compaction's input).
pub(crate) struct PageCursor<'b> {
    block: &'b LogBlock,
    pages: std::ops::Range<usize>,
    entries: Vec<Entry>,
    at: usize,
}

impl<'b> PageCursor<'b> {
    pub fn new(block: &'b LogBlock, pages: std::ops::Range<usize>) -> PageCursor<'b> {
        PageCursor {
            block,
            pages,
            entries: Vec::new(),
            at: 0,
        }
    }

    /// The time of the next entry, reading the next page when this one is used up.
    pub fn peek(&mut self) -> Result<Option<i64>, StorageError> {
        while self.at == self.entries.len() {
            let Some(page) = self.pages.next() else {
                return Ok(None);
            };
            self.block.read_page_into(page, &mut self.entries)?;
            self.at = 0;
        }
        Ok(Some(self.entries[self.at].ts_ns))
    }

    /// The next page, when none of the current one is left to take.
    pub fn next_whole_page(&self) -> Option<&'b PageMeta> {
        if self.at < self.entries.len() {
            return None;
        }
        self.block.pages().get(self.pages.clone().next()?)
    }

    /// The block read.
    pub fn block(&self) -> &'b LogBlock {
        self.block
    }

    /// Takes the next page whole (after [`copyable`] chose it): its number in the block.
    pub fn take_page(&mut self) -> Option<usize> {
        self.pages.next()
    }

    /// The time of the next entry, without reading a page (a page's oldest is in the index).
    pub fn next_ts(&self) -> Option<i64> {
        match self.entries.get(self.at) {
            Some(e) => Some(e.ts_ns),
            None => self.next_whole_page().map(|p| p.min_ts),
        }
    }

    /// The next entry (after a [`Self::peek`] that found one).
    pub fn take(&mut self) -> Entry {
        let e = std::mem::replace(&mut self.entries[self.at], Entry::new(0, String::new()));
        self.at += 1;
        e
    }
}
