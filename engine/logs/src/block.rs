//! Sealed blocks: the head's entries of a span of time, written once into one immutable,
//! checksummed file and read back through a memory map. Layout byte by byte in
//! `docs/format/log-block.md`.
//!
//! ```text
//! file     header (24 bytes, magic "SLB4") | pages | streams | page index | filters | footer
//! page     zstd frame | crc32 (u32 LE) of the frame
//! footer   streams_off u64 | index_off u64 | filters_off u64 | footer_off u64 |
//!          min_ts i64 | max_ts i64 | crc32 of bytes streams_off..footer_off u32 |
//!          crc32 of the footer's first 52 bytes u32 | magic "SLBF"          (60 bytes, LE)
//! ```
//!
//! Each stream's entries are cut into pages of about [`PAGE_BYTES`] uncompressed, in time
//! order, each page compressed alone so a query decompresses only the pages it needs: those
//! of the streams its selector picks, whose time range meets the query's, and whose token
//! filter ([`crate::filter`]) may hold its line filters' needles. Inside a page the entries
//! are laid out by column (times, line lengths, metadata, then the lines' bytes) so the
//! compressor sees like next to like.
//!
//! A block is a seal's (level 0) or a compaction's, which merged a run of blocks into one and
//! names them (its sources) in the streams section; see `LogStore::compact`.
//!
//! Opening checks the header, the footer and the checksum of the sections after the pages;
//! each page's checksum is checked when it is read. Damage is a [`StorageError::Corruption`]
//! naming the file and offset, never a panic.

use std::ops::Range;
use std::path::{Path, PathBuf};

use strata_core::codec::{
    Cursor, DecodeError, FILE_HEADER_BYTES, FileHeader, decode_file_header, encode_file_header,
    put_svarint, put_uvarint,
};
use strata_core::error::{StorageError, io_err};
use strata_core::fs::{Fs, Mapped, WritableFile};
use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;

use crate::entry::Entry;
use crate::filter::{FilterBuilder, LineMatch, Needle, is_valid_filter, may_contain};

/// The header's magic bytes. (`SLBK` was the format with trigram filters: such a block is
/// refused, not read with the wrong filter.)
pub const MAGIC: [u8; 4] = *b"SLB4";
/// The magic of blocks whose filters all have a power-of-two size (read the same way: a
/// probe `h mod m` is the same bit either way; a reader that knew only powers of two would
/// misread an `SLB4` filter, so the magic tells it not to try).
pub const MAGIC_V3: [u8; 4] = *b"SLB3";
/// The magic of blocks written before compaction: no level and sources before the streams
/// (read as level 0 without sources).
pub const MAGIC_V2: [u8; 4] = *b"SLB2";
/// The footer's closing magic bytes.
pub const FOOTER_MAGIC: [u8; 4] = *b"SLBF";
/// Bytes of the footer.
pub const FOOTER_BYTES: usize = 6 * 8 + 4 + 4 + 4;
/// A page is closed once its entries reach this many uncompressed bytes.
pub const PAGE_BYTES: usize = 256 * 1024;
/// The zstd level a seal's pages are written at.
pub const ZSTD_LEVEL: i32 = 3;
/// The largest uncompressed page a reader accepts (a page holds at least one entry, and an
/// entry is below the WAL record's size; the bound keeps damage from asking for gigabytes).
const PAGE_RAW_BYTES_MAX: u64 = 64 << 20;

/// A block's file name: its sequence number, so names sort in the order blocks were cut.
pub fn block_file_name(seq: u32) -> String {
    format!("{seq:010}.lblk")
}

/// One page of a block: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMeta {
    /// Offset of the compressed frame in the file; its checksum follows it.
    pub offset: u64,
    /// Bytes of the compressed frame.
    pub len: u64,
    /// Bytes once decompressed.
    pub raw_len: u64,
    pub entries: u64,
    /// Oldest and newest entry, in nanoseconds (both inclusive).
    pub min_ts: i64,
    pub max_ts: i64,
    /// The page's token filter within the filters section.
    filter: Range<usize>,
}

impl PageMeta {
    /// Bytes of the page's token filter.
    pub fn filter_len(&self) -> usize {
        self.filter.len()
    }
}

/// One stream of a block.
#[derive(Debug, Clone)]
pub struct BlockStream {
    pub labels: Labels,
    /// Its pages, in time order, as indexes into [`LogBlock::pages`].
    pub pages: Range<usize>,
}

/// What writing a block produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub streams: usize,
    pub pages: usize,
    pub entries: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// Writes a block of `streams` (each stream's entries in time order; streams with none are
/// left out) as `dir/<seq>.lblk`, a seal's block: written to a temporary name, synced,
/// renamed and the directory synced, so the block is either whole or absent after a crash.
pub fn write_block(
    fs: &dyn Fs,
    dir: &Path,
    seq: u32,
    streams: &[(&Labels, &[Entry])],
) -> Result<BlockSummary, StorageError> {
    let mut streams: Vec<&(&Labels, &[Entry])> =
        streams.iter().filter(|(_, e)| !e.is_empty()).collect();
    streams.sort_by(|a, b| a.0.cmp(b.0));
    let mut writer = BlockWriter::create(fs, dir, seq, ZSTD_LEVEL)?;
    for (labels, entries) in streams {
        writer.write_stream(labels, entries)?;
    }
    writer.finish(0, &[], &dir.join(block_file_name(seq)))
}

/// Bytes an entry counts for when pages are cut: its own and a little for its framing.
pub(crate) fn page_bytes_of(e: &Entry) -> usize {
    e.bytes() + 16
}

/// Writes one block, stream by stream in label order, page by page, straight to a temporary
/// file (so a compaction of gigabytes holds a page in memory, not the block); [`finish`]
/// adds the sections and footer, syncs it and renames it into place. Dropped unfinished,
/// it removes the temporary file.
///
/// [`finish`]: BlockWriter::finish
pub struct BlockWriter<'f> {
    fs: &'f dyn Fs,
    dir: PathBuf,
    seq: u32,
    tmp: PathBuf,
    file: Box<dyn WritableFile>,
    /// Bytes not yet appended to the file; `offset` counts them.
    buf: Vec<u8>,
    offset: u64,
    pages: Vec<PageMeta>,
    /// The pages' filters, in page order: those not yet spilled, and the file holding the
    /// rest (a merge of many blocks has filters of hundreds of MiB, more than a writer
    /// should hold in memory; they follow the pages, so they wait in a file of their own).
    filters: Vec<u8>,
    filters_len: usize,
    filters_buffer: usize,
    spill: Option<(PathBuf, Box<dyn WritableFile>)>,
    streams: Vec<(Labels, Range<usize>)>,
    builder: FilterBuilder,
    /// One compression context for every page (one per page cost a tenth of a seal).
    compressor: zstd::bulk::Compressor<'static>,
    raw: Vec<u8>,
    entries: u64,
    done: bool,
}

impl std::fmt::Debug for BlockWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockWriter")
            .field("tmp", &self.tmp)
            .field("pages", &self.pages.len())
            .finish_non_exhaustive()
    }
}

/// Bytes gathered before they are appended to the file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Bytes of filters a writer holds before it appends them to its filters file.
const FILTERS_BUFFER_BYTES: usize = 1 << 20;

impl<'f> BlockWriter<'f> {
    /// Starts block `seq` in `dir` (created if missing), its pages compressed at `zstd_level`.
    pub fn create(
        fs: &'f dyn Fs,
        dir: &Path,
        seq: u32,
        zstd_level: i32,
    ) -> Result<BlockWriter<'f>, StorageError> {
        fs.create_dir_all(dir)
            .map_err(io_err("create log blocks directory", dir))?;
        let tmp = dir.join(format!("{}.tmp", block_file_name(seq)));
        let file = fs.create(&tmp).map_err(io_err("create log block", &tmp))?;
        let compressor = zstd::bulk::Compressor::new(zstd_level)
            .map_err(|e| StorageError::io("start a log page compressor", dir, e))?;
        let header = encode_file_header(
            MAGIC,
            FileHeader {
                seq,
                prev_synced_len: 0,
            },
        );
        Ok(BlockWriter {
            fs,
            dir: dir.to_path_buf(),
            seq,
            tmp,
            file,
            buf: header.to_vec(),
            offset: header.len() as u64,
            pages: Vec::new(),
            filters: Vec::new(),
            filters_len: 0,
            filters_buffer: FILTERS_BUFFER_BYTES,
            spill: None,
            streams: Vec::new(),
            builder: FilterBuilder::default(),
            compressor,
            raw: Vec::new(),
            entries: 0,
            done: false,
        })
    }

    /// Holds at most `bytes` of filters in memory (1 MiB unless told), the rest in a file of
    /// their own (`<block>.filters.tmp`) until [`BlockWriter::finish`] copies them after the
    /// index. The block's bytes are the same either way.
    pub fn with_filters_buffer(mut self, bytes: usize) -> BlockWriter<'f> {
        self.filters_buffer = bytes;
        self
    }

    /// Writes a whole stream: its entries (in time order) cut into pages of about
    /// [`PAGE_BYTES`]. Streams come in label order.
    pub fn write_stream(&mut self, labels: &Labels, entries: &[Entry]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.begin_stream(labels);
        let mut start = 0;
        while start < entries.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < entries.len() && (end == start || bytes < PAGE_BYTES) {
                bytes += page_bytes_of(&entries[end]);
                end += 1;
            }
            self.write_page(&entries[start..end])?;
            start = end;
        }
        Ok(())
    }

    /// Starts a stream, whose labels sort after the previous stream's; its pages follow.
    pub fn begin_stream(&mut self, labels: &Labels) {
        debug_assert!(
            self.streams.last().is_none_or(|(l, _)| l < labels),
            "streams in label order"
        );
        let at = self.pages.len();
        self.streams.push((labels.clone(), at..at));
    }

    /// Writes one page of the current stream: entries in time order, none older than the
    /// stream's previous page's.
    pub fn write_page(&mut self, page: &[Entry]) -> Result<(), StorageError> {
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(());
        };
        debug_assert!(page.is_sorted_by_key(|e| e.ts_ns), "entries in time order");
        encode_page(&mut self.raw, page);
        self.builder.begin(page.iter().map(Entry::bytes).sum());
        for e in page {
            self.builder.add_line(e.line.as_bytes());
            for (_, value) in &e.metadata {
                self.builder.add_line(value.as_bytes());
            }
        }
        let filter = self.builder.finish();
        let frame = self
            .compressor
            .compress(&self.raw)
            .map_err(|e| StorageError::io("compress log page", &self.dir, e))?;
        let offset = self.offset;
        self.buf.extend_from_slice(&frame);
        self.buf
            .extend_from_slice(&crc32fast::hash(&frame).to_le_bytes());
        self.offset += frame.len() as u64 + 4;
        self.pages.push(PageMeta {
            offset,
            len: frame.len() as u64,
            raw_len: self.raw.len() as u64,
            entries: page.len() as u64,
            min_ts: first.ts_ns,
            max_ts: last.ts_ns,
            filter: self.filters_len..self.filters_len + filter.len(),
        });
        self.add_filter(&filter)?;
        self.entries += page.len() as u64;
        if let Some((_, pages)) = self.streams.last_mut() {
            pages.end = self.pages.len();
        }
        if self.buf.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Copies page `page` of `block` (of the current stream) as it is stored: its frame,
    /// checksum checked, and its filter. A compaction copies a full page this way rather
    /// than decompressing and compressing it again.
    pub fn copy_page(&mut self, block: &LogBlock, page: usize) -> Result<(), StorageError> {
        let (frame, filter, meta) = block.stored_page(page)?;
        let offset = self.offset;
        self.buf.extend_from_slice(frame);
        self.buf
            .extend_from_slice(&crc32fast::hash(frame).to_le_bytes());
        self.offset += frame.len() as u64 + 4;
        self.pages.push(PageMeta {
            offset,
            filter: self.filters_len..self.filters_len + filter.len(),
            ..meta.clone()
        });
        self.add_filter(filter)?;
        self.entries += meta.entries;
        if let Some((_, pages)) = self.streams.last_mut() {
            pages.end = self.pages.len();
        }
        if self.buf.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn add_filter(&mut self, filter: &[u8]) -> Result<(), StorageError> {
        self.filters.extend_from_slice(filter);
        self.filters_len += filter.len();
        if self.filters.len() >= self.filters_buffer {
            let (path, file) = match &mut self.spill {
                Some(spill) => spill,
                None => {
                    let path = self
                        .dir
                        .join(format!("{}.filters.tmp", block_file_name(self.seq)));
                    let file = self
                        .fs
                        .create(&path)
                        .map_err(io_err("create log block filters", &path))?;
                    self.spill.insert((path, file))
                }
            };
            file.append(&self.filters)
                .map_err(io_err("write log block filters", path))?;
            self.filters.clear();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.file
            .append(&self.buf)
            .map_err(io_err("write log block", &self.tmp))?;
        self.buf.clear();
        Ok(())
    }

    /// Adds the sections and footer (`level`: how many compactions the entries went
    /// through; `sources`: the blocks this one replaces, besides the one at `path`), syncs
    /// the file, renames it to `path` (replacing what is there) and syncs the directory.
    pub fn finish(
        mut self,
        level: u32,
        sources: &[u32],
        path: &Path,
    ) -> Result<BlockSummary, StorageError> {
        // Streams without pages are left out.
        self.streams.retain(|(_, pages)| !pages.is_empty());
        self.flush()?;
        let streams_off = self.offset;
        let mut out = std::mem::take(&mut self.buf);
        put_uvarint(&mut out, u64::from(level));
        put_uvarint(&mut out, sources.len() as u64);
        for &s in sources {
            put_uvarint(&mut out, u64::from(s));
        }
        put_uvarint(&mut out, self.streams.len() as u64);
        for (labels, range) in &self.streams {
            put_uvarint(&mut out, labels.len() as u64);
            for l in labels.iter() {
                put_str(&mut out, l.name().as_str());
                put_str(&mut out, l.value().as_str());
            }
            put_uvarint(&mut out, (range.end - range.start) as u64);
        }
        let index_off = streams_off + out.len() as u64;
        put_uvarint(&mut out, self.pages.len() as u64);
        for p in &self.pages {
            put_uvarint(&mut out, p.offset);
            put_uvarint(&mut out, p.len);
            put_uvarint(&mut out, p.raw_len);
            put_uvarint(&mut out, p.entries);
            put_svarint(&mut out, p.min_ts);
            put_uvarint(&mut out, p.max_ts.wrapping_sub(p.min_ts) as u64);
            put_uvarint(&mut out, p.filter.len() as u64);
        }
        let filters_off = streams_off + out.len() as u64;
        let mut sections_crc = crc32fast::Hasher::new();
        sections_crc.update(&out);
        self.buf = out;
        self.offset = filters_off;
        self.flush()?;
        // The filters: those spilled to their file, a piece at a time, then the rest.
        if let Some((spill_path, file)) = self.spill.take() {
            drop(file);
            let spilled = self
                .fs
                .map(&spill_path)
                .map_err(io_err("read log block filters", &spill_path))?;
            for (i, piece) in spilled.chunks(WRITE_BUFFER_BYTES).enumerate() {
                sections_crc.update(piece);
                self.file
                    .append(piece)
                    .map_err(io_err("write log block", &self.tmp))?;
                let at = i * WRITE_BUFFER_BYTES;
                spilled.release(at..at + piece.len());
            }
            self.offset += spilled.len() as u64;
            drop(spilled);
            self.fs
                .remove_file(&spill_path)
                .map_err(io_err("remove log block filters", &spill_path))?;
        }
        sections_crc.update(&self.filters);
        let mut out = std::mem::take(&mut self.filters);
        self.offset += out.len() as u64;
        let footer_off = self.offset;
        debug_assert_eq!(footer_off - filters_off, self.filters_len as u64);
        let min_ts = self.pages.iter().map(|p| p.min_ts).min().unwrap_or(0);
        let max_ts = self.pages.iter().map(|p| p.max_ts).max().unwrap_or(0);
        let footer_start = out.len();
        for v in [streams_off, index_off, filters_off, footer_off] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&min_ts.to_le_bytes());
        out.extend_from_slice(&max_ts.to_le_bytes());
        out.extend_from_slice(&sections_crc.finalize().to_le_bytes());
        let footer_crc = crc32fast::hash(&out[footer_start..]);
        out.extend_from_slice(&footer_crc.to_le_bytes());
        out.extend_from_slice(&FOOTER_MAGIC);
        debug_assert_eq!(out.len() - footer_start, FOOTER_BYTES);
        self.offset += FOOTER_BYTES as u64;
        self.buf = out;
        self.flush()?;
        self.file
            .sync()
            .map_err(io_err("sync log block", &self.tmp))?;
        self.fs
            .rename(&self.tmp, path)
            .map_err(io_err("rename log block", path))?;
        self.done = true;
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("sync log blocks directory", &self.dir))?;
        Ok(BlockSummary {
            path: path.to_path_buf(),
            bytes: self.offset,
            streams: self.streams.len(),
            pages: self.pages.len(),
            entries: self.entries,
            min_ts,
            max_ts,
        })
    }
}

impl Drop for BlockWriter<'_> {
    fn drop(&mut self) {
        if let Some((path, file)) = self.spill.take() {
            drop(file);
            if let Err(e) = self.fs.remove_file(&path) {
                tracing::debug!(path = %path.display(), error = %e, "could not remove an unfinished block's filters");
            }
        }
        if !self.done
            && let Err(e) = self.fs.remove_file(&self.tmp)
        {
            // Opening the store removes what is left of it.
            tracing::debug!(path = %self.tmp.display(), seq = self.seq, error = %e, "could not remove an unfinished log block");
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A page's uncompressed bytes: `uvarint count`; per entry `svarint` time delta (the first
/// against 0); per entry `uvarint` line length; per entry `uvarint` metadata pairs, then
/// every pair as `uvarint len, name, uvarint len, value`; then the lines' bytes, one after
/// the other.
fn encode_page(raw: &mut Vec<u8>, entries: &[Entry]) -> [Range<usize>; 4] {
    raw.clear();
    put_uvarint(raw, entries.len() as u64);
    let times = raw.len();
    let mut prev = 0i64;
    for e in entries {
        put_svarint(raw, e.ts_ns.wrapping_sub(prev));
        prev = e.ts_ns;
    }
    let lengths = raw.len();
    for e in entries {
        put_uvarint(raw, e.line.len() as u64);
    }
    for e in entries {
        put_uvarint(raw, e.metadata.len() as u64);
    }
    let metadata = raw.len();
    for e in entries {
        for (n, v) in &e.metadata {
            put_str(raw, n);
            put_str(raw, v);
        }
    }
    let lines = raw.len();
    for e in entries {
        raw.extend_from_slice(e.line.as_bytes());
    }
    [
        times..lengths,
        lengths..metadata,
        metadata..lines,
        lines..raw.len(),
    ]
}

/// A page's uncompressed bytes as a block stores them (see `docs/format/log-block.md`) and
/// where its columns lie in them: the times, the lengths (of lines and of metadata lists),
/// the metadata, the lines. For measuring what each column costs (the `log_anatomy`
/// example).
pub fn encode_page_columns(entries: &[Entry]) -> (Vec<u8>, [Range<usize>; 4]) {
    let mut raw = Vec::new();
    let columns = encode_page(&mut raw, entries);
    (raw, columns)
}

/// Decodes a page into `out`, replacing what it held but reusing its entries' strings.
fn decode_page(raw: &[u8], out: &mut Vec<Entry>) -> Result<(), DecodeError> {
    let mut c = Cursor::new(raw);
    let n = c.count(3)?;
    out.truncate(n);
    out.resize_with(n, || Entry::new(0, String::new()));
    let mut prev = 0i64;
    for e in out.iter_mut() {
        prev = prev.wrapping_add(c.svarint()?);
        e.ts_ns = prev;
    }
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        lens.push(usize::try_from(c.uvarint()?).map_err(|_| DecodeError("line too long"))?);
    }
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        pairs.push(c.count(2)?);
    }
    for (e, &p) in out.iter_mut().zip(&pairs) {
        e.metadata.truncate(p);
        for j in 0..p {
            let (name, value) = (c.str()?, c.str()?);
            e.set_metadata(j, name, value);
        }
    }
    for (e, len) in out.iter_mut().zip(lens) {
        let line =
            std::str::from_utf8(c.bytes(len)?).map_err(|_| DecodeError("line is not utf-8"))?;
        e.line.clear();
        e.line.push_str(line);
    }
    if !c.is_done() {
        return Err(DecodeError("bytes after the page's last line"));
    }
    Ok(())
}

/// What reading pages reuses on each thread: a zstd context (creating one per page was a
/// sixth of a scan's time) and the buffer pages are decompressed into.
#[derive(Default)]
struct PageReader {
    context: Option<zstd::bulk::Decompressor<'static>>,
    raw: Vec<u8>,
}

thread_local! {
    static PAGE_READER: std::cell::RefCell<PageReader> = std::cell::RefCell::default();
}

/// A sealed block, open for reading.
#[derive(Debug)]
pub struct LogBlock {
    path: PathBuf,
    seq: u32,
    bytes: Mapped,
    filters: Range<usize>,
    /// Compactions its entries went through (0: a seal's block).
    level: u32,
    /// Blocks a compaction replaced with this one, besides the one of its own number.
    sources: Vec<u32>,
    streams: Vec<BlockStream>,
    pages: Vec<PageMeta>,
    /// The store's numbers of the streams (see `crate::catalog`) with their index in
    /// `streams`, by number; empty until the store has taken the block in.
    ids: Vec<(u64, u32)>,
    min_ts: i64,
    max_ts: i64,
}

impl LogBlock {
    /// Opens the block at `path`, checking its header, footer and index.
    pub fn open(fs: &dyn Fs, path: &Path) -> Result<LogBlock, StorageError> {
        let bytes = fs.map(path).map_err(io_err("map log block", path))?;
        let corrupt = |offset: u64, reason: &'static str| StorageError::Corruption {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        let v2 = bytes.get(..4) == Some(&MAGIC_V2[..]);
        let magic = match bytes.get(..4) {
            Some(m) if m == MAGIC_V2 => MAGIC_V2,
            Some(m) if m == MAGIC_V3 => MAGIC_V3,
            _ => MAGIC,
        };
        let header = decode_file_header(&bytes, magic).map_err(|e| corrupt(0, e.0))?;
        let len = bytes.len();
        if len < FILE_HEADER_BYTES + FOOTER_BYTES {
            return Err(corrupt(0, "log block shorter than its header and footer"));
        }
        let footer_start = len - FOOTER_BYTES;
        let footer = &bytes[footer_start..];
        let word = |i: usize| u64::from_le_bytes(footer[i * 8..i * 8 + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(footer[at..at + 4].try_into().expect("4"));
        if footer[56..60] != FOOTER_MAGIC || u32_at(52) != crc32fast::hash(&footer[..52]) {
            return Err(corrupt(footer_start as u64, "log block footer damaged"));
        }
        let [streams_off, index_off, filters_off, footer_off] = [0, 1, 2, 3].map(word);
        let (min_ts, max_ts) = (word(4) as i64, word(5) as i64);
        if !(FILE_HEADER_BYTES as u64 <= streams_off
            && streams_off <= index_off
            && index_off <= filters_off
            && filters_off <= footer_off
            && footer_off == footer_start as u64)
        {
            return Err(corrupt(
                footer_start as u64,
                "log block sections out of order",
            ));
        }
        // The filters (a fifth of a block, tens of MiB for a merge's) are checked a piece at a
        // time and let go of as they are: read all at once they swelled the resident set by
        // their size for a moment at every opening.
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[streams_off as usize..filters_off as usize]);
        let mut at = filters_off as usize;
        while at < footer_start {
            let end = (at + WRITE_BUFFER_BYTES).min(footer_start);
            crc.update(&bytes[at..end]);
            bytes.release(at..end);
            at = end;
        }
        if crc.finalize() != u32_at(48) {
            return Err(corrupt(streams_off, "log block index checksum mismatch"));
        }
        let streams_bytes = &bytes[streams_off as usize..index_off as usize];
        let index_bytes = &bytes[index_off as usize..filters_off as usize];
        let filters_len = (footer_off - filters_off) as usize;

        let (pages, filters_used) = decode_index(index_bytes, streams_off, filters_len)
            .map_err(|e| corrupt(index_off, e.0))?;
        if filters_used != filters_len {
            return Err(corrupt(
                filters_off,
                "log block filters do not fill their section",
            ));
        }
        let filters = filters_off as usize..footer_off as usize;
        for p in &pages {
            if !is_valid_filter(
                &bytes[filters.start + p.filter.start..filters.start + p.filter.end],
            ) {
                return Err(corrupt(filters_off, "log block page filter of a bad size"));
            }
        }
        let (level, sources, streams) = decode_streams(streams_bytes, pages.len(), v2, header.seq)
            .map_err(|e| corrupt(streams_off, e.0))?;
        // The sections were read once here; queries map back the filters they use.
        bytes.release(streams_off as usize..len);
        Ok(LogBlock {
            path: path.to_path_buf(),
            seq: header.seq,
            bytes,
            filters,
            level,
            sources,
            streams,
            pages,
            ids: Vec::new(),
            min_ts,
            max_ts,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number it was written with.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Compactions its entries went through (0: a seal's block).
    pub fn level(&self) -> u32 {
        self.level
    }

    /// The blocks a compaction replaced with this one, besides the one of its own number
    /// (whose file it took the place of): any of them still on disk is a leftover.
    pub fn sources(&self) -> &[u32] {
        &self.sources
    }

    /// Bytes of the file.
    pub fn bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Oldest and newest entry, in nanoseconds.
    pub fn time_range(&self) -> (i64, i64) {
        (self.min_ts, self.max_ts)
    }

    pub fn streams(&self) -> &[BlockStream] {
        &self.streams
    }

    pub fn pages(&self) -> &[PageMeta] {
        &self.pages
    }

    /// The streams matching every matcher, as indexes into [`LogBlock::streams`] (each
    /// stream's labels matched in turn: the store finds its streams through its catalog).
    pub fn select(&self, matchers: &[Matcher]) -> Vec<usize> {
        self.streams
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(m.name()).unwrap_or("")))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Label names of the block's streams, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .streams
            .iter()
            .flat_map(|s| s.labels.iter().map(|l| l.name().as_str().to_string()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Values of `name` among the block's streams, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .streams
            .iter()
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        values
    }

    /// Gives each stream the label set and number `intern` returns for its labels (the
    /// store's shared ones).
    pub(crate) fn intern(&mut self, mut intern: impl FnMut(&Labels) -> (Labels, u64)) {
        self.ids = Vec::with_capacity(self.streams.len());
        for (i, s) in self.streams.iter_mut().enumerate() {
            let (labels, id) = intern(&s.labels);
            s.labels = labels;
            self.ids.push((id, i as u32));
        }
        self.ids.sort_unstable();
    }

    /// Of the streams numbered `ids` (in increasing order), those the block holds, as
    /// indexes into [`LogBlock::streams`], in the order of their numbers.
    pub(crate) fn streams_among(&self, ids: &[u64]) -> Vec<usize> {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < ids.len() && j < self.ids.len() {
            match ids[i].cmp(&self.ids[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    out.push(self.ids[j].1 as usize);
                    i += 1;
                    j += 1;
                }
            }
        }
        out
    }

    /// Whether page `page` may hold a line containing every needle (see [`crate::filter`]).
    pub fn page_may_contain(&self, page: usize, needles: &[&Needle]) -> bool {
        let Some(p) = self.pages.get(page) else {
            return false;
        };
        let filter =
            &self.bytes[self.filters.start + p.filter.start..self.filters.start + p.filter.end];
        needles.iter().all(|n| may_contain(filter, n))
    }

    /// Lets the process stop holding in memory the block's bytes of the pages before `page`
    /// and of their filters (see [`Mapped::release`]): for reads once through in page order,
    /// as a compaction's.
    pub fn release_before(&self, page: usize) {
        let Some(p) = self.pages.get(page) else {
            return;
        };
        self.bytes.release(0..p.offset as usize);
        self.bytes
            .release(self.filters.start..self.filters.start + p.filter.start);
    }

    /// Page `page` as stored: its zstd frame (checksum checked), its filter and its index
    /// entry.
    pub fn stored_page(&self, page: usize) -> Result<(&[u8], &[u8], &PageMeta), StorageError> {
        let corrupt = |offset: u64, reason: &'static str| StorageError::Corruption {
            path: self.path.clone(),
            offset,
            reason,
        };
        let p = self
            .pages
            .get(page)
            .ok_or_else(|| corrupt(0, "log block page out of range"))?;
        // The index was checked against the file when the block was opened.
        let frame = &self.bytes[p.offset as usize..(p.offset + p.len) as usize];
        let stored = &self.bytes[(p.offset + p.len) as usize..(p.offset + p.len + 4) as usize];
        if crc32fast::hash(frame).to_le_bytes() != stored {
            return Err(corrupt(p.offset, "log page checksum mismatch"));
        }
        let filter =
            &self.bytes[self.filters.start + p.filter.start..self.filters.start + p.filter.end];
        Ok((frame, filter, p))
    }

    /// Appends the entries of page `page` to `out`, in time order, after checking its
    /// checksum.
    pub fn read_page(&self, page: usize, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        let mut entries = Vec::new();
        self.read_page_into(page, &mut entries)?;
        out.append(&mut entries);
        Ok(())
    }

    /// Replaces the contents of `out` with the entries of page `page`, as [`Self::read_page`]
    /// reads them, reusing the strings `out` already holds: a scan over many pages then
    /// allocates little beyond its first page. `out` is empty after an `Err`.
    pub fn read_page_into(&self, page: usize, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.read_page_with(page, out, decode_page)?;
        let p = &self.pages[page];
        let got = &out[..];
        if got.len() as u64 != p.entries
            || got.first().map(|e| e.ts_ns) != Some(p.min_ts)
            || got.last().map(|e| e.ts_ns) != Some(p.max_ts)
            || !got.is_sorted_by_key(|e| e.ts_ns)
        {
            out.clear();
            return Err(self.corrupt(p.offset, "log page disagrees with the block's index"));
        }
        Ok(())
    }

    /// As [`Self::read_page_into`], but only the entries whose line holds a match of `m`
    /// (see [`LineMatch`]): the page's lines are searched together, and the others are
    /// neither copied nor checked as UTF-8. The page's times and framing are checked as a
    /// whole read checks them.
    pub fn read_page_matching(
        &self,
        page: usize,
        m: &LineMatch,
        out: &mut Vec<Entry>,
    ) -> Result<(), StorageError> {
        let Some(p) = self.pages.get(page) else {
            return Err(self.corrupt(0, "log block page out of range"));
        };
        let (entries, min_ts, max_ts) = (p.entries, p.min_ts, p.max_ts);
        self.read_page_with(page, out, |raw, out| {
            decode_page_matching(raw, m, out, (entries, min_ts, max_ts))
        })
    }

    fn corrupt(&self, offset: u64, reason: &'static str) -> StorageError {
        StorageError::Corruption {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    /// Decompresses page `page` (checksum and length checked) with this thread's context
    /// and hands the bytes to `decode`; `out` is empty after an `Err`.
    fn read_page_with(
        &self,
        page: usize,
        out: &mut Vec<Entry>,
        decode: impl FnOnce(&[u8], &mut Vec<Entry>) -> Result<(), DecodeError>,
    ) -> Result<(), StorageError> {
        let (frame, _, p) = self.stored_page(page)?;
        PAGE_READER.with(|reader| {
            let mut reader = reader.borrow_mut();
            let PageReader { context, raw, .. } = &mut *reader;
            let context = match context {
                Some(c) => c,
                None => context.insert(
                    zstd::bulk::Decompressor::new()
                        .map_err(|_| self.corrupt(p.offset, "no zstd decompression context"))?,
                ),
            };
            raw.clear();
            raw.reserve(p.raw_len as usize);
            let got = context
                .decompress_to_buffer(frame, raw)
                .map_err(|_| self.corrupt(p.offset, "log page does not decompress"))?;
            if got as u64 != p.raw_len {
                return Err(self.corrupt(p.offset, "log page decompressed to another length"));
            }
            decode(raw, out).map_err(|e| {
                out.clear();
                self.corrupt(p.offset, e.0)
            })
        })
    }
}

fn utf8(b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| DecodeError("line is not utf-8"))
}

/// Decodes the entries of a page whose line holds a match of `m` into `out` (replacing what
/// it held, reusing its strings), after checking the page's entry count and times against
/// `index` (entries, oldest, newest) as a whole read does.
fn decode_page_matching(
    raw: &[u8],
    m: &LineMatch,
    out: &mut Vec<Entry>,
    index: (u64, i64, i64),
) -> Result<(), DecodeError> {
    let mut c = Cursor::new(raw);
    let n = c.count(3)?;
    let mut ts = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(c.svarint()?);
        ts.push(prev);
    }
    if n as u64 != index.0
        || ts.first() != Some(&index.1)
        || ts.last() != Some(&index.2)
        || !ts.is_sorted()
    {
        return Err(DecodeError("log page disagrees with the block's index"));
    }
    let mut ends = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let len = usize::try_from(c.uvarint()?).map_err(|_| DecodeError("line too long"))?;
        total = total.checked_add(len).ok_or(DecodeError("line too long"))?;
        ends.push(total);
    }
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        pairs.push(c.count(2)?);
    }
    // Each entry's metadata, as (name, value) byte slices.
    let mut meta: Vec<(&[u8], &[u8])> = Vec::new();
    let mut meta_at = Vec::with_capacity(n + 1);
    for &p in &pairs {
        meta_at.push(meta.len());
        for _ in 0..p {
            let name_len = usize::try_from(c.uvarint()?).map_err(|_| DecodeError("name"))?;
            let name = c.bytes(name_len)?;
            let value_len = usize::try_from(c.uvarint()?).map_err(|_| DecodeError("value"))?;
            meta.push((name, c.bytes(value_len)?));
        }
    }
    meta_at.push(meta.len());
    let text = c.bytes(total)?;
    if !c.is_done() {
        return Err(DecodeError("bytes after the page's last line"));
    }
    let mut lines = Vec::new();
    m.lines_matching(text, &ends, &mut lines);
    out.truncate(lines.len());
    out.resize_with(lines.len(), || Entry::new(0, String::new()));
    for (e, &i) in out.iter_mut().zip(&lines) {
        e.ts_ns = ts[i];
        let start = if i == 0 { 0 } else { ends[i - 1] };
        e.line.clear();
        e.line.push_str(utf8(&text[start..ends[i]])?);
        let pairs = &meta[meta_at[i]..meta_at[i + 1]];
        e.metadata.truncate(pairs.len());
        for (j, &(name, value)) in pairs.iter().enumerate() {
            e.set_metadata(j, utf8(name)?, utf8(value)?);
        }
    }
    Ok(())
}

/// Decodes the page index; every page must lie between the header and `pages_end`, in
/// order, and the filters must fit `filters_len`. Returns the pages and the filter bytes
/// they use.
fn decode_index(
    bytes: &[u8],
    pages_end: u64,
    filters_len: usize,
) -> Result<(Vec<PageMeta>, usize), DecodeError> {
    let mut c = Cursor::new(bytes);
    let n = c.count(7)?;
    let mut pages = Vec::with_capacity(n);
    let mut next = FILE_HEADER_BYTES as u64;
    let mut filter_at = 0usize;
    for _ in 0..n {
        let offset = c.uvarint()?;
        let len = c.uvarint()?;
        let raw_len = c.uvarint()?;
        let entries = c.uvarint()?;
        let min_ts = c.svarint()?;
        let max_ts = min_ts.wrapping_add(c.uvarint()? as i64);
        let filter_len = c.uvarint()?;
        let end = offset
            .checked_add(len)
            .and_then(|e| e.checked_add(4))
            .ok_or(DecodeError("page length overflows"))?;
        if offset != next || end > pages_end {
            return Err(DecodeError(
                "page outside the pages section or out of order",
            ));
        }
        if entries == 0 || max_ts < min_ts || raw_len > PAGE_RAW_BYTES_MAX {
            return Err(DecodeError(
                "page with an impossible entry count, range or size",
            ));
        }
        let filter_len =
            usize::try_from(filter_len).map_err(|_| DecodeError("filter length overflows"))?;
        let filter_end = filter_at
            .checked_add(filter_len)
            .filter(|&e| e <= filters_len)
            .ok_or(DecodeError("page filter outside the filters section"))?;
        pages.push(PageMeta {
            offset,
            len,
            raw_len,
            entries,
            min_ts,
            max_ts,
            filter: filter_at..filter_end,
        });
        filter_at = filter_end;
        next = end;
    }
    if next != pages_end {
        return Err(DecodeError("bytes between the last page and the streams"));
    }
    if !c.is_done() {
        return Err(DecodeError("bytes after the page index"));
    }
    Ok((pages, filter_at))
}

/// What the streams section holds: the level, the sources and the streams.
type StreamsSection = (u32, Vec<u32>, Vec<BlockStream>);

/// Decodes the streams section: (but for a `v2` block) the level and the sources, numbered
/// below the block's `seq` in increasing order; then each stream's labels and its count of
/// pages, which must cover the `num_pages` pages in order.
fn decode_streams(
    bytes: &[u8],
    num_pages: usize,
    v2: bool,
    seq: u32,
) -> Result<StreamsSection, DecodeError> {
    let mut c = Cursor::new(bytes);
    let (mut level, mut sources) = (0, Vec::new());
    if !v2 {
        level = u32::try_from(c.uvarint()?).map_err(|_| DecodeError("block level"))?;
        let n = c.count(1)?;
        for _ in 0..n {
            let s = u32::try_from(c.uvarint()?).map_err(|_| DecodeError("block source"))?;
            if s >= seq || sources.last().is_some_and(|&p| p >= s) {
                return Err(DecodeError("block sources out of order"));
            }
            sources.push(s);
        }
    }
    let n = c.count(2)?;
    let mut streams: Vec<BlockStream> = Vec::with_capacity(n);
    let mut page = 0usize;
    for _ in 0..n {
        let nlabels = c.count(2)?;
        let mut pairs = Vec::with_capacity(nlabels);
        for _ in 0..nlabels {
            pairs.push((c.str()?, c.str()?));
        }
        let labels = Labels::new(pairs)
            .map_err(|_| DecodeError("stream labels that are not a label set"))?;
        if streams.last().is_some_and(|s| s.labels >= labels) {
            return Err(DecodeError("streams out of order"));
        }
        let count = usize::try_from(c.uvarint()?).map_err(|_| DecodeError("page count"))?;
        let end = page
            .checked_add(count)
            .filter(|&e| count > 0 && e <= num_pages)
            .ok_or(DecodeError("stream pages outside the page index"))?;
        streams.push(BlockStream {
            labels,
            pages: page..end,
        });
        page = end;
    }
    if page != num_pages {
        return Err(DecodeError("pages no stream owns"));
    }
    if !c.is_done() {
        return Err(DecodeError("bytes after the streams"));
    }
    Ok((level, sources, streams))
}
