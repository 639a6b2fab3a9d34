//! The block index: which series a block holds, their labels and chunks, and an inverted index
//! from every `name=value` pair to the series that carry it. Format in `docs/format/index.md`.
//!
//! ```text
//!  0         24
//!  +---------+---------+--------+-------------+----------+------------+
//!  | header  | symbols | series | label index | postings | TOC (84 B) |
//!  +---------+---------+--------+-------------+----------+------------+
//!
//!  header       the WAL's 24-byte file header: magic `SIDX`, version 1, seq 0, 0, CRC32
//!  symbols      count u32 | count x offset u32 | the symbols' bytes, back to back
//!  series       count u32 | count x offset u32 | per series:
//!                 uvarint n_labels, n_labels x (uvarint name symbol, uvarint value symbol),
//!                 uvarint n_chunks, per chunk: min_t (svarint for the first chunk, else
//!                 uvarint min_t - previous max_t, at least 1), uvarint max_t - min_t,
//!                 ChunkRef u64
//!  label index  n_names u32 | n_names x (name symbol u32, table offset u32) | per name:
//!                 n_values u32, n_values x (value symbol u32, postings offset u32)
//!  postings     per pair: uvarint count, uvarint first id, uvarint deltas (each at least 1)
//!  TOC          4 x (offset u64, length u64, crc32 u32) | crc32 u32 of the 80 bytes before
//! ```
//!
//! All fixed-width integers are little-endian. Offsets inside a section are relative to the
//! section's start, so every section is at most 4 GiB (the writer asserts it). Symbols are
//! every distinct label name and value, sorted in byte order, so symbol numbers sort like
//! their strings; series and the label index name strings by symbol number.
//!
//! The sections follow each other with no gap, and together with the header and TOC they
//! cover the file exactly, so every byte is under a CRC: [`IndexReader::open`] checks the
//! header, the TOC and every section's CRC before anything is read, and then the framing of
//! each section (counts against lengths, offset tables in range and increasing, symbols sorted
//! and UTF-8). Entries are decoded lazily; each offset and count read from them is checked
//! against its section before use, and damage is a [`StorageError::Corruption`] naming the
//! file and the byte offset, never wrong data and never a panic.
//!
//! [`IndexReader::select`] evaluates label matchers with the head's semantics
//! (`strata_core::postings`): a missing label has the value `""`, matchers that accept `""`
//! subtract the series whose value they reject, and exact sets and literal prefixes look up or
//! narrow the sorted values instead of scanning them.

use arcstr::ArcStr;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::block::chunks::ChunkRef;
use strata_core::codec::{
    Cursor, FILE_HEADER_BYTES, FileHeader, decode_file_header, encode_file_header, put_svarint,
    put_uvarint,
};
use strata_core::error::StorageError;
use strata_core::fs::Mapped;
use strata_core::labels::matcher::Matcher;
use strata_core::labels::{Label, Labels};
use strata_core::postings::{PostingsList, select_matching, union};

/// Magic bytes of an index file.
pub const INDEX_MAGIC: [u8; 4] = *b"SIDX";

/// The sections, in file order.
const SECTIONS: usize = 4;
const SYMBOLS: usize = 0;
const SERIES: usize = 1;
const LABEL_INDEX: usize = 2;
const POSTINGS: usize = 3;

/// One TOC entry: offset u64, length u64, crc32 u32.
const TOC_ENTRY_BYTES: usize = 8 + 8 + 4;
/// The TOC: an entry per section and the CRC32 of those entries.
pub const TOC_BYTES: usize = SECTIONS * TOC_ENTRY_BYTES + 4;
const _: () = assert!(TOC_BYTES == 84);

/// A count or offset-table entry: u32.
const U32_BYTES: usize = 4;
/// A label-index name or value entry: symbol u32 and offset u32.
const PAIR_BYTES: usize = 8;
/// The least a series' label pair takes: two one-byte varints.
const LABEL_BYTES_MIN: usize = 2;
/// The least a chunk entry takes: two one-byte varints and the u64 reference.
const CHUNK_BYTES_MIN: usize = 1 + 1 + 8;

/// A chunk of a series as the index lists it: its time range and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexChunk {
    /// The chunk's first timestamp.
    pub min_t: i64,
    /// The chunk's last timestamp (at least `min_t`).
    pub max_t: i64,
    /// Where the chunk is in the block's chunk files.
    pub chunk: ChunkRef,
}

/// Builds an index file in memory. Series are added in label order; [`IndexWriter::finish`]
/// returns the file's bytes.
#[derive(Debug, Default)]
pub struct IndexWriter {
    /// Invariant: strictly increasing by labels; each chunk list sorted and non-overlapping.
    series: Vec<(Labels, Vec<IndexChunk>)>,
    /// Per label name and value, the ids of the series that carry the pair (increasing,
    /// because ids are handed out in order).
    postings: BTreeMap<ArcStr, BTreeMap<ArcStr, Vec<u32>>>,
}

impl IndexWriter {
    /// An empty index.
    pub fn new() -> IndexWriter {
        IndexWriter::default()
    }

    /// Adds the next series and returns its id (0, 1, 2, ... in order).
    ///
    /// # Panics
    ///
    /// If `labels` does not sort strictly after the previous series' labels, if the chunks are
    /// not sorted by `min_t` and non-overlapping (each `min_t` after the previous `max_t`), if
    /// a chunk has `max_t < min_t`, or past `u32::MAX` series.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[IndexChunk]) -> u32 {
        if let Some((last, _)) = self.series.last() {
            assert!(
                last < labels,
                "series must be added in strictly increasing label order: {labels:?} after {last:?}"
            );
        }
        for (i, c) in chunks.iter().enumerate() {
            assert!(c.min_t <= c.max_t, "chunk ends before it starts: {c:?}");
            if i > 0 {
                assert!(
                    chunks[i - 1].max_t < c.min_t,
                    "chunks must be sorted and non-overlapping: {c:?} after {:?}",
                    chunks[i - 1]
                );
            }
        }
        let id = u32::try_from(self.series.len()).expect("an index holds at most u32::MAX series");
        for l in labels.iter() {
            self.postings
                .entry(ArcStr::clone(l.name()))
                .or_default()
                .entry(ArcStr::clone(l.value()))
                .or_default()
                .push(id);
        }
        self.series.push((labels.clone(), chunks.to_vec()));
        id
    }

    /// The complete index file.
    pub fn finish(self) -> Vec<u8> {
        let mut strings: Vec<&str> = self
            .postings
            .iter()
            .flat_map(|(name, values)| std::iter::once(&**name).chain(values.keys().map(|v| &**v)))
            .collect();
        strings.sort_unstable();
        strings.dedup();
        let symbol = |s: &str| -> u32 {
            strings
                .binary_search(&s)
                .expect("every label string is a symbol") as u32
        };

        let symbols = offset_table(strings.iter().map(|s| s.as_bytes().to_vec()));

        let series = offset_table(self.series.iter().map(|(labels, chunks)| {
            let mut e = Vec::new();
            put_uvarint(&mut e, labels.len() as u64);
            for l in labels.iter() {
                put_uvarint(&mut e, u64::from(symbol(l.name())));
                put_uvarint(&mut e, u64::from(symbol(l.value())));
            }
            put_uvarint(&mut e, chunks.len() as u64);
            let mut prev_max_t: Option<i64> = None;
            for c in chunks {
                match prev_max_t {
                    None => put_svarint(&mut e, c.min_t),
                    Some(p) => put_uvarint(&mut e, c.min_t.wrapping_sub(p) as u64),
                }
                put_uvarint(&mut e, c.max_t.wrapping_sub(c.min_t) as u64);
                e.extend_from_slice(&c.chunk.0.to_le_bytes());
                prev_max_t = Some(c.max_t);
            }
            e
        }));

        let mut postings = Vec::new();
        let mut names = Vec::new();
        for (name, values) in &self.postings {
            let mut entries = Vec::new();
            for (value, ids) in values {
                entries.push((symbol(value), section_offset(postings.len())));
                put_uvarint(&mut postings, ids.len() as u64);
                let mut prev = None;
                for &id in ids {
                    put_uvarint(&mut postings, u64::from(id - prev.unwrap_or(0)));
                    prev = Some(id);
                }
            }
            names.push((symbol(name), entries));
        }
        let mut label_index = Vec::new();
        put_u32(&mut label_index, names.len() as u32);
        let mut entry_at = U32_BYTES + names.len() * PAIR_BYTES;
        for (name, entries) in &names {
            put_u32(&mut label_index, *name);
            put_u32(&mut label_index, section_offset(entry_at));
            entry_at += U32_BYTES + entries.len() * PAIR_BYTES;
        }
        for (_, entries) in &names {
            put_u32(&mut label_index, entries.len() as u32);
            for &(value, at) in entries {
                put_u32(&mut label_index, value);
                put_u32(&mut label_index, at);
            }
        }
        debug_assert_eq!(label_index.len(), entry_at);
        frame_sections([&symbols, &series, &label_index, &postings])
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// An offset inside a section, which must fit 32 bits.
fn section_offset(at: usize) -> u32 {
    u32::try_from(at).expect("an index section is at most 4 GiB")
}

/// A count, an offset per item (from the section's start), then the items back to back.
fn offset_table(items: impl ExactSizeIterator<Item = Vec<u8>>) -> Vec<u8> {
    let n = items.len();
    let mut table = Vec::with_capacity(U32_BYTES * (n + 1));
    put_u32(
        &mut table,
        u32::try_from(n).expect("at most u32::MAX items"),
    );
    let mut body = Vec::new();
    let base = U32_BYTES * (n + 1);
    for item in items {
        put_u32(&mut table, section_offset(base + body.len()));
        body.extend_from_slice(&item);
    }
    assert!(
        base + body.len() <= u32::MAX as usize,
        "an index section is at most 4 GiB"
    );
    table.extend_from_slice(&body);
    table
}

/// Frames the four section bodies (symbols, series, label index, postings) into an index
/// file: the header, the sections back to back and the TOC with every CRC. The writer uses it;
/// tests and the fuzz target use it to wrap arbitrary section bytes in valid checksums.
pub fn frame_sections(sections: [&[u8]; SECTIONS]) -> Vec<u8> {
    let total = FILE_HEADER_BYTES + sections.iter().map(|s| s.len()).sum::<usize>() + TOC_BYTES;
    let mut out = Vec::with_capacity(total);
    let header = FileHeader {
        seq: 0,
        prev_synced_len: 0,
    };
    out.extend_from_slice(&encode_file_header(INDEX_MAGIC, header));
    let mut toc = Vec::with_capacity(TOC_BYTES);
    for s in sections {
        assert!(
            s.len() <= u32::MAX as usize,
            "an index section is at most 4 GiB"
        );
        toc.extend_from_slice(&(out.len() as u64).to_le_bytes());
        toc.extend_from_slice(&(s.len() as u64).to_le_bytes());
        put_u32(&mut toc, crc32fast::hash(s));
        out.extend_from_slice(s);
    }
    let crc = crc32fast::hash(&toc);
    put_u32(&mut toc, crc);
    out.extend_from_slice(&toc);
    debug_assert_eq!(out.len(), total);
    out
}

/// Reads a sealed index file through a read-only map.
#[derive(Debug, Clone)]
pub struct IndexReader {
    path: PathBuf,
    bytes: Mapped,
    /// Invariant: each section's byte range in `bytes`, checked against its CRC at open.
    sections: [(usize, usize); SECTIONS],
    /// Invariant: the symbol table's offsets are in range and increasing, and every symbol is
    /// non-empty UTF-8, sorted strictly.
    num_symbols: u32,
    /// Invariant: the series offset table is in range and increasing.
    num_series: u32,
    /// Invariant: the name table and every value table are in range, with symbols in range
    /// and increasing.
    num_names: u32,
}

/// A label name's values in the label index: where its value table starts (in the label-index
/// section) and how many entries it has.
#[derive(Debug, Clone, Copy)]
struct ValueTable {
    at: usize,
    len: u32,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

impl IndexReader {
    /// Opens an index: checks the header, the TOC, every section's CRC and the framing of
    /// each section. Damage anywhere is a corruption error.
    pub fn open(path: PathBuf, bytes: Mapped) -> Result<IndexReader, StorageError> {
        let mut r = IndexReader {
            path,
            bytes,
            sections: [(0, 0); SECTIONS],
            num_symbols: 0,
            num_series: 0,
            num_names: 0,
        };
        match decode_file_header(&r.bytes, INDEX_MAGIC) {
            Ok(FileHeader {
                seq: 0,
                prev_synced_len: 0,
            }) => {}
            Ok(_) => return Err(r.corrupt(0, "index file header has non-zero fields")),
            Err(e) => return Err(r.corrupt(0, e.0)),
        }
        let len = r.bytes.len();
        let Some(toc_at) = len
            .checked_sub(TOC_BYTES)
            .filter(|&at| at >= FILE_HEADER_BYTES)
        else {
            return Err(r.corrupt(len as u64, "index file too short for its table of contents"));
        };
        let toc = &r.bytes[toc_at..];
        let stored = u32_at(toc, TOC_BYTES - 4).expect("the TOC is TOC_BYTES long");
        if stored != crc32fast::hash(&toc[..TOC_BYTES - 4]) {
            return Err(r.corrupt(toc_at as u64, "index table of contents checksum mismatch"));
        }
        let mut expected_at = FILE_HEADER_BYTES as u64;
        let mut sections = [(0, 0); SECTIONS];
        for (i, section) in sections.iter_mut().enumerate() {
            let entry = i * TOC_ENTRY_BYTES;
            let at = u64_at(toc, entry).expect("in the TOC");
            let n = u64_at(toc, entry + 8).expect("in the TOC");
            let crc = u32_at(toc, entry + 16).expect("in the TOC");
            let end = at.checked_add(n).filter(|&end| end <= toc_at as u64);
            let Some(end) = end.filter(|_| at == expected_at && n <= u64::from(u32::MAX)) else {
                return Err(r.corrupt(
                    (toc_at + entry) as u64,
                    "index section is not where the table of contents says",
                ));
            };
            let (at, end) = (at as usize, end as usize);
            if crc32fast::hash(&r.bytes[at..end]) != crc {
                return Err(r.corrupt(at as u64, "index section checksum mismatch"));
            }
            *section = (at, end);
            expected_at = end as u64;
        }
        if expected_at != toc_at as u64 {
            return Err(r.corrupt(
                expected_at,
                "index sections do not reach the table of contents",
            ));
        }
        r.sections = sections;
        r.num_symbols = r.check_offset_table(SYMBOLS)?;
        r.check_symbols()?;
        r.num_series = r.check_offset_table(SERIES)?;
        r.num_names = r.check_label_index()?;
        Ok(r)
    }

    fn corrupt(&self, offset: u64, reason: &'static str) -> StorageError {
        StorageError::Corruption {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    fn section(&self, s: usize) -> &[u8] {
        let (at, end) = self.sections[s];
        &self.bytes[at..end]
    }

    /// The absolute file offset of `at` in section `s`.
    fn abs(&self, s: usize, at: usize) -> u64 {
        (self.sections[s].0 + at) as u64
    }

    /// Checks a count and offset table: the table fits, the first item starts right after it,
    /// and offsets increase strictly up to the section's end (so every item is non-empty and
    /// items cover the section). Returns the count.
    fn check_offset_table(&self, s: usize) -> Result<u32, StorageError> {
        let bytes = self.section(s);
        let n = u32_at(bytes, 0)
            .ok_or_else(|| self.corrupt(self.abs(s, 0), "index section cut short"))?;
        let base = (u64::from(n) + 1) * U32_BYTES as u64;
        if base > bytes.len() as u64 {
            return Err(self.corrupt(self.abs(s, 0), "index count exceeds its section"));
        }
        let base = base as usize;
        let mut prev: Option<usize> = None;
        for i in 0..n as usize {
            let at = U32_BYTES * (i + 1);
            let off = u32_at(bytes, at).expect("inside the checked table") as usize;
            let ok = match prev {
                None => off == base,
                Some(p) => off > p,
            };
            if !ok || off >= bytes.len() {
                return Err(
                    self.corrupt(self.abs(s, at), "index offset table out of order or range")
                );
            }
            prev = Some(off);
        }
        if n == 0 && bytes.len() != base {
            return Err(self.corrupt(self.abs(s, base), "index section has bytes past its items"));
        }
        Ok(n)
    }

    /// The byte range of item `i` of an offset-table section (checked at open).
    fn item(&self, s: usize, count: u32, i: u32) -> Result<(usize, &[u8]), StorageError> {
        let bytes = self.section(s);
        let at = U32_BYTES * (i as usize + 1);
        let start = u32_at(bytes, at).map(|v| v as usize);
        let end = if i + 1 < count {
            u32_at(bytes, at + U32_BYTES).map(|v| v as usize)
        } else {
            Some(bytes.len())
        };
        match (start, end) {
            (Some(start), Some(end)) if i < count && start <= end && end <= bytes.len() => {
                Ok((start, &bytes[start..end]))
            }
            _ => Err(self.corrupt(self.abs(s, at), "index offset table out of order or range")),
        }
    }

    /// Symbol `sym`, checked against the table.
    fn symbol(&self, sym: u32, from: u64) -> Result<&str, StorageError> {
        if sym >= self.num_symbols {
            return Err(self.corrupt(from, "symbol number beyond the symbol table"));
        }
        let (at, b) = self.item(SYMBOLS, self.num_symbols, sym)?;
        std::str::from_utf8(b)
            .map_err(|_| self.corrupt(self.abs(SYMBOLS, at), "symbol is not utf-8"))
    }

    fn check_symbols(&self) -> Result<(), StorageError> {
        let mut prev: Option<&str> = None;
        for i in 0..self.num_symbols {
            let s = self.symbol(i, 0)?;
            if prev.is_some_and(|p| p >= s) {
                let (at, _) = self.item(SYMBOLS, self.num_symbols, i)?;
                return Err(self.corrupt(self.abs(SYMBOLS, at), "symbols out of order"));
            }
            prev = Some(s);
        }
        Ok(())
    }

    /// Checks a table of `len` (symbol u32, offset u32) pairs at `at` in the label index:
    /// in range, symbols valid and strictly increasing, offsets below `offset_max`.
    fn check_pairs(&self, at: usize, len: u32, offset_max: usize) -> Result<(), StorageError> {
        let bytes = self.section(LABEL_INDEX);
        let mut prev: Option<u32> = None;
        for i in 0..len as usize {
            let e = at + i * PAIR_BYTES;
            let (Some(sym), Some(off)) = (u32_at(bytes, e), u32_at(bytes, e + 4)) else {
                return Err(self.corrupt(self.abs(LABEL_INDEX, e), "label index table cut short"));
            };
            if sym >= self.num_symbols
                || prev.is_some_and(|p| p >= sym)
                || off as usize >= offset_max
            {
                return Err(self.corrupt(
                    self.abs(LABEL_INDEX, e),
                    "label index entry out of order or range",
                ));
            }
            prev = Some(sym);
        }
        Ok(())
    }

    fn check_label_index(&self) -> Result<u32, StorageError> {
        let bytes = self.section(LABEL_INDEX);
        let n = u32_at(bytes, 0)
            .ok_or_else(|| self.corrupt(self.abs(LABEL_INDEX, 0), "index section cut short"))?;
        let table_end = U32_BYTES as u64 + u64::from(n) * PAIR_BYTES as u64;
        if table_end > bytes.len() as u64 {
            return Err(self.corrupt(self.abs(LABEL_INDEX, 0), "index count exceeds its section"));
        }
        self.check_pairs(U32_BYTES, n, bytes.len())?;
        // The value tables follow the name table back to back, in name order, to the end.
        let mut expected = table_end as usize;
        for i in 0..n {
            let e = U32_BYTES + i as usize * PAIR_BYTES + 4;
            let at = u32_at(bytes, e).expect("checked above") as usize;
            let len = u32_at(bytes, at);
            let end = len.and_then(|len| {
                (len as usize)
                    .checked_mul(PAIR_BYTES)?
                    .checked_add(at.checked_add(U32_BYTES)?)
            });
            let (Some(len), Some(end)) = (len, end) else {
                return Err(self.corrupt(
                    self.abs(LABEL_INDEX, e),
                    "label index entry out of order or range",
                ));
            };
            if at != expected || end > bytes.len() || len == 0 {
                return Err(self.corrupt(
                    self.abs(LABEL_INDEX, e),
                    "label index entry out of order or range",
                ));
            }
            self.check_pairs(at + U32_BYTES, len, self.section(POSTINGS).len())?;
            expected = end;
        }
        if expected != bytes.len() {
            return Err(self.corrupt(
                self.abs(LABEL_INDEX, expected),
                "index section has bytes past its items",
            ));
        }
        Ok(n)
    }

    /// The number of series in the index; their ids are `0..num_series()`.
    pub fn num_series(&self) -> u32 {
        self.num_series
    }

    /// The labels and chunks of series `id`.
    ///
    /// # Panics
    ///
    /// If `id >= num_series()`.
    pub fn series(&self, id: u32) -> Result<(Labels, Vec<IndexChunk>), StorageError> {
        assert!(
            id < self.num_series,
            "series id {id} beyond the index's {} series",
            self.num_series
        );
        let (at, entry) = self.item(SERIES, self.num_series, id)?;
        let from = self.abs(SERIES, at);
        let bad = |reason: &'static str| self.corrupt(from, reason);
        let mut c = Cursor::new(entry);
        let n = c.count(LABEL_BYTES_MIN).map_err(|e| bad(e.0))?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let mut sym = || {
                c.uvarint().map_err(|e| bad(e.0)).and_then(|v| {
                    u32::try_from(v).map_err(|_| bad("symbol number beyond the symbol table"))
                })
            };
            let (name, value) = (sym()?, sym()?);
            labels.push(Label::new(
                self.symbol(name, from)?,
                self.symbol(value, from)?,
            ));
        }
        let labels =
            Labels::from_sorted(labels).map_err(|_| bad("series labels are not canonical"))?;
        let n = c.count(CHUNK_BYTES_MIN).map_err(|e| bad(e.0))?;
        let mut chunks = Vec::with_capacity(n);
        let mut prev_max_t: Option<i64> = None;
        for _ in 0..n {
            let min_t = match prev_max_t {
                None => c.svarint().map_err(|e| bad(e.0))?,
                Some(p) => {
                    let delta = c.uvarint().map_err(|e| bad(e.0))?;
                    if delta == 0 {
                        return Err(bad("series chunks overlap"));
                    }
                    add_delta(p, delta).ok_or_else(|| bad("chunk time overflows"))?
                }
            };
            let span = c.uvarint().map_err(|e| bad(e.0))?;
            let max_t = add_delta(min_t, span).ok_or_else(|| bad("chunk time overflows"))?;
            let chunk = ChunkRef(c.u64_le().map_err(|e| bad(e.0))?);
            chunks.push(IndexChunk {
                min_t,
                max_t,
                chunk,
            });
            prev_max_t = Some(max_t);
        }
        if !c.is_done() {
            return Err(bad("series entry has bytes past its chunks"));
        }
        Ok((labels, chunks))
    }

    /// The name table entry `i`: the name's symbol and its value table.
    fn name_entry(&self, i: u32) -> Result<(u32, ValueTable), StorageError> {
        let bytes = self.section(LABEL_INDEX);
        let e = U32_BYTES + i as usize * PAIR_BYTES;
        let bad = || {
            self.corrupt(
                self.abs(LABEL_INDEX, e),
                "label index entry out of order or range",
            )
        };
        let sym = u32_at(bytes, e).ok_or_else(bad)?;
        let at = u32_at(bytes, e + 4).ok_or_else(bad)? as usize;
        let len = u32_at(bytes, at).ok_or_else(bad)?;
        Ok((
            sym,
            ValueTable {
                at: at + U32_BYTES,
                len,
            },
        ))
    }

    /// Value `i` of a value table: the value and its postings offset.
    fn value_entry(&self, t: ValueTable, i: u32) -> Result<(&str, u32), StorageError> {
        let bytes = self.section(LABEL_INDEX);
        let e = t.at + i as usize * PAIR_BYTES;
        let from = self.abs(LABEL_INDEX, e);
        let (Some(sym), Some(off)) = (u32_at(bytes, e), u32_at(bytes, e + 4)) else {
            return Err(self.corrupt(from, "label index table cut short"));
        };
        Ok((self.symbol(sym, from)?, off))
    }

    /// The value table of label `name`, if any series has it.
    fn values_of(&self, name: &str) -> Result<Option<ValueTable>, StorageError> {
        let (mut lo, mut hi) = (0, self.num_names);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (sym, table) = self.name_entry(mid)?;
            let from = self.abs(LABEL_INDEX, U32_BYTES + mid as usize * PAIR_BYTES);
            match self.symbol(sym, from)?.cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(table)),
            }
        }
        Ok(None)
    }

    /// The index of the first value in `t` not less than `value`.
    fn lower_bound(&self, t: ValueTable, value: &str) -> Result<u32, StorageError> {
        let (mut lo, mut hi) = (0, t.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.value_entry(t, mid)?.0 < value {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The postings list at `off` in the postings section: sorted ids below `num_series`.
    fn postings(&self, off: u32) -> Result<PostingsList, StorageError> {
        let from = self.abs(POSTINGS, off as usize);
        let bad = |reason: &'static str| self.corrupt(from, reason);
        let bytes = self
            .section(POSTINGS)
            .get(off as usize..)
            .ok_or_else(|| bad("postings offset beyond its section"))?;
        let mut c = Cursor::new(bytes);
        let n = c.count(1).map_err(|e| bad(e.0))?;
        let mut out: PostingsList = Vec::with_capacity(n);
        for _ in 0..n {
            let delta = c.uvarint().map_err(|e| bad(e.0))?;
            let id = match out.last() {
                None => delta,
                Some(_) if delta == 0 => return Err(bad("postings list out of order")),
                Some(&prev) => prev.saturating_add(delta),
            };
            if id >= u64::from(self.num_series) {
                return Err(bad("postings list names a series beyond the index"));
            }
            out.push(id);
        }
        Ok(out)
    }

    /// The postings lists of the values of `m.name()` that `m` accepts (`accept == true`) or
    /// rejects, using the matcher's exact set or literal prefix when it has one.
    fn values_where(&self, m: &Matcher, accept: bool) -> Result<Vec<PostingsList>, StorageError> {
        let Some(t) = self.values_of(m.name())? else {
            return Ok(Vec::new());
        };
        let mut lists = Vec::new();
        if accept && let Some(set) = m.set_values() {
            for v in set {
                let i = self.lower_bound(t, v)?;
                if i < t.len {
                    let (value, off) = self.value_entry(t, i)?;
                    if value == v.as_str() {
                        lists.push(self.postings(off)?);
                    }
                }
            }
            return Ok(lists);
        }
        let (start, prefix) = match m.literal_prefix().filter(|_| accept) {
            Some(p) => (self.lower_bound(t, p)?, p),
            None => (0, ""),
        };
        for i in start..t.len {
            let (value, off) = self.value_entry(t, i)?;
            if !value.starts_with(prefix) {
                break;
            }
            if m.matches(value) == accept {
                lists.push(self.postings(off)?);
            }
        }
        Ok(lists)
    }

    /// The ids of the series matching every matcher, sorted; all series for no matchers.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>, StorageError> {
        let result = select_matching(
            matchers,
            |m, accept| Ok(union(self.values_where(m, accept)?.iter())),
            || (0..u64::from(self.num_series)).collect(),
        )?;
        // Every id came from a checked postings list or the range of series ids.
        Ok(result.into_iter().map(|id| id as u32).collect())
    }

    /// Every label name in the index, sorted.
    pub fn label_names(&self) -> Result<Vec<String>, StorageError> {
        (0..self.num_names)
            .map(|i| {
                let (sym, _) = self.name_entry(i)?;
                let from = self.abs(LABEL_INDEX, U32_BYTES + i as usize * PAIR_BYTES);
                Ok(self.symbol(sym, from)?.to_owned())
            })
            .collect()
    }

    /// The values of label `name`, sorted; empty if no series has it.
    pub fn label_values(&self, name: &str) -> Result<Vec<String>, StorageError> {
        let Some(t) = self.values_of(name)? else {
            return Ok(Vec::new());
        };
        (0..t.len)
            .map(|i| Ok(self.value_entry(t, i)?.0.to_owned()))
            .collect()
    }
}

/// `base + delta`, if it fits an `i64`.
fn add_delta(base: i64, delta: u64) -> Option<i64> {
    i64::try_from(i128::from(base) + i128::from(delta)).ok()
}

#[cfg(test)]
mod tests;
