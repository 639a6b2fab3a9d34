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
