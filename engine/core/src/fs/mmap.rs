//! The engine's only `unsafe` code: mapping an immutable file into memory.
//!
//! A memory map is undefined behaviour if the file changes underneath it, and a truncated
//! mapped file kills the process with SIGBUS on access. So the engine maps only files that are
//! complete, synced and never written again (sealed block files), never writes through a map,
//! and never truncates or rewrites a file that may be mapped: files are replaced by writing a
//! new one and renaming it, and removed only once no reader holds a map (unlinking leaves an
//! existing map valid). [`super::Fs::map`] documents the contract for callers.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Maps the whole of `file` read-only.
pub(super) fn map_readonly(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: callers of `Fs::map` only map sealed files (complete, synced, never modified or
    // truncated while mapped), so the mapped bytes stay valid and unchanged for the map's life.
    unsafe { memmap2::Mmap::map(file) }
}

/// Drops this process's mapping of the pages of `map` covering `offset..offset + len`
/// (best effort): they stop counting in its resident set, stay in the page cache, and the
/// next read of them maps them again.
pub(super) fn release(map: &memmap2::Mmap, offset: usize, len: usize) {
    if len == 0 || offset.checked_add(len).is_none_or(|end| end > map.len()) {
        return;
    }
    // SAFETY: `map` is a read-only shared map of a sealed file (see above). MADV_DONTNEED on
    // a shared file map only removes this process's page-table entries: a later read faults
    // the same bytes of the unchanged file back in, so no reader can observe a change. (The
    // zero-fill that makes the advice unsafe applies to private and anonymous maps.)
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
}
