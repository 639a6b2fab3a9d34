//! Sealed blocks: the head's entries of a span of time, written once into one immutable,
//! checksummed file and read back through a memory map. Layout byte by byte in
//! `docs/format/log-block.md`.
//!
//! ```text
//! file     header (24 bytes, magic "SLB2") | pages | streams | page index | filters | footer
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
use strata_core::fs::{Fs, Mapped};
use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::postings::Postings;
use strata_core::sample::SeriesRef;

use crate::entry::Entry;
use crate::filter::{FilterBuilder, Needle, is_valid_filter, may_contain};

/// The header's magic bytes. (`SLBK` was the format with trigram filters: such a block is
/// refused, not read with the wrong filter.)
pub const MAGIC: [u8; 4] = *b"SLB2";
/// The footer's closing magic bytes.
pub const FOOTER_MAGIC: [u8; 4] = *b"SLBF";
/// Bytes of the footer.
pub const FOOTER_BYTES: usize = 6 * 8 + 4 + 4 + 4;
/// A page is closed once its entries reach this many uncompressed bytes.
pub const PAGE_BYTES: usize = 256 * 1024;
/// The zstd level pages are written at.
const ZSTD_LEVEL: i32 = 3;
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

/// Writes a block of `streams` (each stream's entries in time order, at least one each;
/// streams with none are left out) as `dir/<seq>.lblk`: written to a temporary name, synced,
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

    let mut out = encode_file_header(
        MAGIC,
        FileHeader {
            seq,
            prev_synced_len: 0,
        },
    )
    .to_vec();
    let mut pages: Vec<PageMeta> = Vec::new();
    let mut filters: Vec<u8> = Vec::new();
    let mut stream_pages: Vec<Range<usize>> = Vec::with_capacity(streams.len());
    let mut builder = FilterBuilder::default();
    // One compression context for every page (creating one per page cost a tenth of a seal).
    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
        .map_err(|e| StorageError::io("start a log page compressor", dir, e))?;
    let mut raw = Vec::new();
    let mut entries_total = 0u64;
    for (_, entries) in &streams {
        debug_assert!(
            entries.is_sorted_by_key(|e| e.ts_ns),
            "entries in time order"
        );
        let first_page = pages.len();
        let mut start = 0;
        while start < entries.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < entries.len() && (end == start || bytes < PAGE_BYTES) {
                bytes += entries[end].bytes() + 16;
                end += 1;
            }
            let page = &entries[start..end];
            encode_page(&mut raw, page);
            builder.begin(page.iter().map(Entry::bytes).sum());
            for e in page {
                builder.add_line(e.line.as_bytes());
                for (_, value) in &e.metadata {
                    builder.add_line(value.as_bytes());
                }
            }
            let filter = builder.finish();
            let frame = compressor
                .compress(&raw)
                .map_err(|e| StorageError::io("compress log page", dir, e))?;
            let offset = out.len() as u64;
            out.extend_from_slice(&frame);
            out.extend_from_slice(&crc32fast::hash(&frame).to_le_bytes());
            pages.push(PageMeta {
                offset,
                len: frame.len() as u64,
                raw_len: raw.len() as u64,
                entries: page.len() as u64,
                min_ts: page[0].ts_ns,
                max_ts: page[page.len() - 1].ts_ns,
                filter: filters.len()..filters.len() + filter.len(),
            });
            filters.extend_from_slice(&filter);
            entries_total += page.len() as u64;
            start = end;
        }
        stream_pages.push(first_page..pages.len());
    }

    let streams_off = out.len() as u64;
    put_uvarint(&mut out, streams.len() as u64);
    for ((labels, _), range) in streams.iter().zip(&stream_pages) {
        put_uvarint(&mut out, labels.len() as u64);
        for l in labels.iter() {
            put_str(&mut out, l.name().as_str());
            put_str(&mut out, l.value().as_str());
        }
        put_uvarint(&mut out, (range.end - range.start) as u64);
    }
    let index_off = out.len() as u64;
    put_uvarint(&mut out, pages.len() as u64);
    for p in &pages {
        put_uvarint(&mut out, p.offset);
        put_uvarint(&mut out, p.len);
        put_uvarint(&mut out, p.raw_len);
        put_uvarint(&mut out, p.entries);
        put_svarint(&mut out, p.min_ts);
        put_uvarint(&mut out, p.max_ts.wrapping_sub(p.min_ts) as u64);
        put_uvarint(&mut out, p.filter.len() as u64);
    }
    let filters_off = out.len() as u64;
    out.extend_from_slice(&filters);
    let footer_off = out.len() as u64;
    let min_ts = pages.iter().map(|p| p.min_ts).min().unwrap_or(0);
    let max_ts = pages.iter().map(|p| p.max_ts).max().unwrap_or(0);
    let sections_crc = crc32fast::hash(&out[streams_off as usize..]);
    let footer_start = out.len();
    for v in [streams_off, index_off, filters_off, footer_off] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&min_ts.to_le_bytes());
    out.extend_from_slice(&max_ts.to_le_bytes());
    out.extend_from_slice(&sections_crc.to_le_bytes());
    let footer_crc = crc32fast::hash(&out[footer_start..]);
    out.extend_from_slice(&footer_crc.to_le_bytes());
    out.extend_from_slice(&FOOTER_MAGIC);
    debug_assert_eq!(out.len() - footer_start, FOOTER_BYTES);

    fs.create_dir_all(dir)
        .map_err(io_err("create log blocks directory", dir))?;
    let name = block_file_name(seq);
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = fs.create(&tmp).map_err(io_err("create log block", &tmp))?;
    file.append(&out).map_err(io_err("write log block", &tmp))?;
    file.sync().map_err(io_err("sync log block", &tmp))?;
    drop(file);
    fs.rename(&tmp, &path)
        .map_err(io_err("rename log block", &path))?;
    fs.sync_dir(dir)
        .map_err(io_err("sync log blocks directory", dir))?;
    Ok(BlockSummary {
        path,
        bytes: out.len() as u64,
        streams: streams.len(),
        pages: pages.len(),
        entries: entries_total,
        min_ts,
        max_ts,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A page's uncompressed bytes: `uvarint count`; per entry `svarint` time delta (the first
/// against 0); per entry `uvarint` line length; per entry `uvarint` metadata pairs, then
/// every pair as `uvarint len, name, uvarint len, value`; then the lines' bytes, one after
/// the other.
fn encode_page(raw: &mut Vec<u8>, entries: &[Entry]) {
    raw.clear();
    put_uvarint(raw, entries.len() as u64);
    let mut prev = 0i64;
    for e in entries {
        put_svarint(raw, e.ts_ns.wrapping_sub(prev));
        prev = e.ts_ns;
    }
    for e in entries {
        put_uvarint(raw, e.line.len() as u64);
    }
    for e in entries {
        put_uvarint(raw, e.metadata.len() as u64);
    }
    for e in entries {
        for (n, v) in &e.metadata {
            put_str(raw, n);
            put_str(raw, v);
        }
    }
    for e in entries {
        raw.extend_from_slice(e.line.as_bytes());
    }
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
            match e.metadata.get_mut(j) {
                Some((n, v)) => {
                    n.clear();
                    n.push_str(name);
                    v.clear();
                    v.push_str(value);
                }
                None => e.metadata.push((name.to_owned(), value.to_owned())),
            }
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
    streams: Vec<BlockStream>,
    pages: Vec<PageMeta>,
    /// Streams by label, stream `i` as reference `i + 1`.
    postings: Postings,
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
        let header = decode_file_header(&bytes, MAGIC).map_err(|e| corrupt(0, e.0))?;
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
        let sections = &bytes[streams_off as usize..footer_start];
        if crc32fast::hash(sections) != u32_at(48) {
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
        let streams =
            decode_streams(streams_bytes, pages.len()).map_err(|e| corrupt(streams_off, e.0))?;
        let mut postings = Postings::default();
        for (i, s) in streams.iter().enumerate() {
            postings.add(SeriesRef(i as u64 + 1), s.labels.as_slice());
        }
        Ok(LogBlock {
            path: path.to_path_buf(),
            seq: header.seq,
            bytes,
            filters,
            streams,
            pages,
            postings,
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

    /// The streams matching every matcher, as indexes into [`LogBlock::streams`].
    pub fn select(&self, matchers: &[Matcher]) -> Vec<usize> {
        self.postings
            .select(matchers)
            .into_iter()
            .map(|r| r as usize - 1)
            .collect()
    }

    /// Label names of the block's streams, sorted.
    pub fn label_names(&self) -> Vec<String> {
        self.postings.label_names()
    }

    /// Values of `name` among the block's streams, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.postings.label_values(name)
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
        PAGE_READER.with(|reader| {
            let mut reader = reader.borrow_mut();
            let PageReader { context, raw } = &mut *reader;
            let context = match context {
                Some(c) => c,
                None => context.insert(
                    zstd::bulk::Decompressor::new()
                        .map_err(|_| corrupt(p.offset, "no zstd decompression context"))?,
                ),
            };
            raw.clear();
            raw.reserve(p.raw_len as usize);
            let got = context
                .decompress_to_buffer(frame, raw)
                .map_err(|_| corrupt(p.offset, "log page does not decompress"))?;
            if got as u64 != p.raw_len {
                return Err(corrupt(p.offset, "log page decompressed to another length"));
            }
            decode_page(raw, out).map_err(|e| {
                out.clear();
                corrupt(p.offset, e.0)
            })
        })?;
        let got = &out[..];
        if got.len() as u64 != p.entries
            || got.first().map(|e| e.ts_ns) != Some(p.min_ts)
            || got.last().map(|e| e.ts_ns) != Some(p.max_ts)
            || !got.is_sorted_by_key(|e| e.ts_ns)
        {
            out.clear();
            return Err(corrupt(
                p.offset,
                "log page disagrees with the block's index",
            ));
        }
        Ok(())
    }
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

/// Decodes the streams section: each stream's labels and its count of pages, which must
/// cover the `num_pages` pages in order.
fn decode_streams(bytes: &[u8], num_pages: usize) -> Result<Vec<BlockStream>, DecodeError> {
    let mut c = Cursor::new(bytes);
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
    Ok(streams)
}
