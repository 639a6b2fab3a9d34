//! Where closed head chunks keep their bytes: pages of 64 KiB shared by the chunks closed one
//! after another on a thread, instead of an allocation of a few hundred bytes each.
//!
//! A head closes its series' chunks at about the same time (each series after the same number
//! of samples or at the same chunk boundary), and cuts them into a block together. With an
//! allocation per chunk, the allocator interleaved chunks of different ages in its small-size
//! slabs, and once a cut freed the older ones the newer kept every slab resident: after a
//! 6-hour recorded-scrapes catch-up and its cut the allocator held 78 MB of pages for 47 MB
//! allocated; with pages, 60 MB for 47 (`docs/perf.md`). On a page, chunks closed together
//! are freed together, and the page (a large allocation of whole memory pages) goes back to
//! the allocator at once.
//!
//! A page is freed when its last chunk goes; one long-lived chunk keeps its page resident.
//! Closed chunks live until the head cut after their time, so a page outlives its chunks by
//! at most the chunks closed with it. Chunks larger than a quarter of a page get their own
//! allocation.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// Bytes of a page: a size class of its own in the allocator, so no rounding.
const PAGE_BYTES: usize = 64 * 1024;

thread_local! {
    /// The free end of this thread's current page.
    static PAGE: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A copy of `data` on this thread's current page (on a new one when it does not fit).
pub(crate) fn store(data: &[u8]) -> Bytes {
    if data.len() > PAGE_BYTES / 4 {
        return Bytes::copy_from_slice(data);
    }
    PAGE.with_borrow_mut(|page| {
        if page.capacity() - page.len() < data.len() {
            *page = BytesMut::with_capacity(PAGE_BYTES);
        }
        page.extend_from_slice(data);
        page.split().freeze()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stored_one_after_another_share_a_page_and_keep_their_bytes() {
        let a = store(b"first chunk");
        let b = store(b"second");
        assert_eq!(&a[..], b"first chunk");
        assert_eq!(&b[..], b"second");
        // Closed together, they sit side by side in one allocation.
        let end_of_a = a.as_ptr() as usize + a.len();
        assert!(
            b.as_ptr() as usize == end_of_a || a.len() + b.len() > PAGE_BYTES,
            "the second chunk follows the first on the page"
        );
        drop(a);
        assert_eq!(&b[..], b"second", "a chunk outlives its neighbour's drop");
    }

    #[test]
    fn a_full_page_is_replaced_and_large_chunks_are_stored_alone() {
        let chunk = vec![7u8; PAGE_BYTES / 4];
        let stored: Vec<Bytes> = (0..9).map(|_| store(&chunk)).collect();
        assert!(stored.iter().all(|s| s[..] == chunk[..]));
        let large = vec![9u8; PAGE_BYTES / 4 + 1];
        assert_eq!(&store(&large)[..], &large[..]);
        let next = store(b"after");
        assert_eq!(&next[..], b"after");
    }
}
