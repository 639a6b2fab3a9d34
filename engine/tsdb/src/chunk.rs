//! The persisted chunk frame and the errors of every chunk codec.
//!
//! A chunk is a run of one series' samples compressed by one encoding (today only
//! [`Encoding::Xor`], the codec in [`xor`]: grid-predicted timestamps, runs, and decimal or
//! XORed values). This file owns how a chunk's compressed
//! stream is wrapped for disk and for checkpoints: a fixed header that says what the stream
//! holds, the stream itself, and a CRC. Readers trust nothing: [`read_frame`] checks every
//! length before slicing, the CRC, the encoding byte, and then decodes the stream to prove it
//! holds exactly the samples the header promises, so a frame it accepts is never wrong data.
//!
//! Frame layout (all integers little-endian, fixed width; format document:
//! `docs/format/chunk-xor.md`):
//!
//! ```text
//! offset  size  field
//! ------  ----  -----------------------------------------------------------------
//!      0     1  encoding      2 = xor, 3 = xor values over shared timestamps; others rejected
//!      1     2  num_samples   u16, samples in the stream
//!      3     8  min_t         i64, timestamp of the first sample (0 when empty)
//!     11     8  max_t         i64, timestamp of the last sample (0 when empty)
//!     19     4  data_len      u32, bytes of stream that follow, <= CHUNK_DATA_BYTES_MAX
//!     23     n  data          the encoded stream, n = data_len (encoding 3: an 8-byte
//!                             reference to the block's times frame, then the values stream)
//!   23+n     4  crc32         CRC-32 (IEEE) of bytes [0, 23+n): header and data
//! ```

pub mod shared;
pub mod xor;

pub use shared::FrameSamples;

/// Largest stream a frame may carry: 2 MiB.
///
/// Chosen as the next power of two above the worst case a full chunk can reach
/// ([`xor::STREAM_BYTES_MAX`], about 1.46 MiB for 65,535 samples that each take the widest
/// timestamp and value codes), so every chunk the encoder can build fits, while a corrupt length
/// can never make a reader wait for or allocate gigabytes.
pub const CHUNK_DATA_BYTES_MAX: usize = 2 << 20;

const ENCODING_OFFSET: usize = 0;
const NUM_SAMPLES_OFFSET: usize = ENCODING_OFFSET + size_of::<u8>();
const MIN_T_OFFSET: usize = NUM_SAMPLES_OFFSET + size_of::<u16>();
const MAX_T_OFFSET: usize = MIN_T_OFFSET + size_of::<i64>();
const DATA_LEN_OFFSET: usize = MAX_T_OFFSET + size_of::<i64>();

/// Bytes of the fixed header that precedes the stream.
pub const FRAME_HEADER_BYTES: usize = DATA_LEN_OFFSET + size_of::<u32>();
/// Bytes of the CRC that follows the stream.
pub const FRAME_CRC_BYTES: usize = size_of::<u32>();
/// Bytes a frame adds around its stream.
pub const FRAME_OVERHEAD_BYTES: usize = FRAME_HEADER_BYTES + FRAME_CRC_BYTES;

// The layout in the header comment and in docs/format/chunk-xor.md spells these numbers out.
const _: () = assert!(FRAME_HEADER_BYTES == 23);
const _: () = assert!(FRAME_OVERHEAD_BYTES == 27);
// `data_len` is a u32 on disk.
const _: () = assert!(CHUNK_DATA_BYTES_MAX <= u32::MAX as usize);
// Every stream the encoder can produce fits in a frame.
const _: () = assert!(xor::STREAM_BYTES_MAX <= CHUNK_DATA_BYTES_MAX);

/// How a chunk's samples are compressed; stored as the frame's first byte, which doubles as the
/// format version: a new layout gets a new value, never a reinterpretation of an old one (1 was
/// plain Gorilla, retired before any release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Grid-predicted timestamps, runs, and values as scaled decimals or XORs, see [`xor`].
    Xor = 2,
    /// The values as in [`Encoding::Xor`], the timestamps in a frame of the same block that
    /// chunks with the same timestamps share, see [`shared`]. Sealed blocks only.
    SharedTimes = 3,
}

impl TryFrom<u8> for Encoding {
    type Error = ChunkError;

    fn try_from(byte: u8) -> Result<Self, Self::Error> {
        match byte {
            2 => Ok(Encoding::Xor),
            3 => Ok(Encoding::SharedTimes),
            other => Err(ChunkError::UnknownEncoding(other)),
        }
    }
}

/// What a frame's header says about its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Timestamp of the first sample, or 0 for an empty chunk.
    pub min_t: i64,
    /// Timestamp of the last sample, or 0 for an empty chunk.
    pub max_t: i64,
    /// Number of samples in the stream.
    pub num_samples: u16,
}

/// A frame accepted by [`read_frame`]: its stream has been decoded once and agrees with `meta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame<'a> {
    /// The stream's encoding.
    pub encoding: Encoding,
    /// The header's description of the stream.
    pub meta: ChunkMeta,
    /// The encoded stream: the samples, or for [`Encoding::SharedTimes`] the values stream.
    pub data: &'a [u8],
    /// Where the timestamps are.
    pub times: Times<'a>,
}

/// Where a frame's timestamps are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times<'a> {
    /// In its own stream ([`Encoding::Xor`]).
    Own,
    /// In the times frame at this reference of the same block, not read yet.
    Ref(u64),
    /// In this times stream, read from the block by the chunk reader.
    Stream(&'a [u8]),
}

impl<'a> Frame<'a> {
    /// Iterates the frame's samples. A [`Times::Ref`] frame yields none and reports an error:
    /// only the block's chunk reader can find its timestamps.
    pub fn samples(&self) -> FrameSamples<'a> {
        let n = self.meta.num_samples;
        match self.times {
            Times::Own => FrameSamples::xor(self.data, n),
            Times::Stream(times) => FrameSamples::shared(times, self.data, n),
            Times::Ref(_) => FrameSamples::unresolved(),
        }
    }
}

/// Why a chunk frame or stream was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The input ends inside the frame.
    #[error(
        "chunk frame truncated: the field at byte {offset} needs {needed} bytes but only \
         {available} are left"
    )]
    Truncated {
        /// Offset in the input of the field that does not fit.
        offset: u64,
        /// Bytes that field needs, counted from `offset`.
        needed: u64,
        /// Bytes the input has from `offset`.
        available: u64,
    },
    /// The stored CRC does not match the bytes.
    #[error("chunk checksum mismatch: stored {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// The CRC stored in the frame.
        expected: u32,
        /// The CRC of the bytes read.
        actual: u32,
    },
    /// The encoding byte names no encoding this build knows.
    #[error("unknown chunk encoding {0}: this build reads encodings 2 (xor) and 3 (shared times)")]
    UnknownEncoding(u8),
    /// The frame's data length is over [`CHUNK_DATA_BYTES_MAX`].
    #[error("chunk data of {len} bytes exceeds the limit of {max} bytes")]
    DataTooLarge {
        /// The stored data length.
        len: u64,
        /// The limit, [`CHUNK_DATA_BYTES_MAX`].
        max: u64,
    },
    /// The compressed stream is malformed or ends before its last sample.
    #[error("corrupt chunk stream at bit {bit_offset}: expected {expected}")]
    CorruptStream {
        /// Offset in bits from the start of the stream where decoding failed.
        bit_offset: u64,
        /// What the decoder was reading or checking there.
        expected: &'static str,
    },
    /// The stream decodes but disagrees with the frame header.
    #[error("chunk header field {field} is {header} but the stream says {stream}")]
    HeaderMismatch {
        /// The header field that disagrees: `min_t` or `max_t`.
        field: &'static str,
        /// The header's value.
        header: i64,
        /// The value the decoded stream implies.
        stream: i64,
    },
}

/// Appends one frame holding `data`, encoded with `encoding` and described by `meta`, to `out`.
///
/// # Panics
///
/// If `data` is longer than [`CHUNK_DATA_BYTES_MAX`] (which also keeps it within the u32 length
/// field). In debug builds, also if `data` does not decode to what `meta` says: writing a frame
/// that [`read_frame`] would reject is a bug in the caller.
pub fn write_frame(out: &mut Vec<u8>, encoding: Encoding, meta: ChunkMeta, data: &[u8]) {
    assert!(
        data.len() <= CHUNK_DATA_BYTES_MAX,
        "chunk data of {} bytes exceeds CHUNK_DATA_BYTES_MAX",
        data.len()
    );
    debug_assert_eq!(
        split_data(encoding, data).and_then(|(_, d)| check_stream(encoding, meta, d)),
        Ok(())
    );
    let start = out.len();
    out.reserve(FRAME_OVERHEAD_BYTES + data.len());
    out.push(encoding as u8);
    out.extend_from_slice(&meta.num_samples.to_le_bytes());
    out.extend_from_slice(&meta.min_t.to_le_bytes());
    out.extend_from_slice(&meta.max_t.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    debug_assert_eq!(out.len() - start, FRAME_HEADER_BYTES);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Reads the frame at the start of `buf`, returning it and the number of bytes it occupies.
///
/// Bytes after the frame are ignored. Nothing in `buf` can make this panic, and it allocates
/// nothing.
///
/// # Errors
///
/// In the order checked: [`ChunkError::Truncated`] or [`ChunkError::DataTooLarge`] for a frame
/// that does not fit, [`ChunkError::ChecksumMismatch`], [`ChunkError::UnknownEncoding`], then
/// [`ChunkError::CorruptStream`] or [`ChunkError::HeaderMismatch`] for a stream that does not
/// decode to what the header says.
pub fn read_frame(buf: &[u8]) -> Result<(Frame<'_>, usize), ChunkError> {
    let (frame, len) = read_frame_checksummed(buf)?;
    // The CRC only proves the bytes are the ones written; decoding proves they were right.
    check_stream(frame.encoding, frame.meta, frame.data)?;
    Ok((frame, len))
}

/// An encoding-3 frame's data: the times frame's reference, then the values stream.
fn split_data(encoding: Encoding, data: &[u8]) -> Result<(Times<'_>, &[u8]), ChunkError> {
    match encoding {
        Encoding::Xor => Ok((Times::Own, data)),
        Encoding::SharedTimes => match data.split_first_chunk::<8>() {
            Some((r, values)) => Ok((Times::Ref(u64::from_le_bytes(*r)), values)),
            None => Err(ChunkError::CorruptStream {
                bit_offset: 0,
                expected: "the 8-byte reference to the times frame",
            }),
        },
    }
}

/// [`read_frame`] without decoding the stream: the frame's bounds, CRC and encoding byte are
/// checked, so damage to the stored bytes is caught, but not whether the stream decodes to what
/// the header says. For reading frames of sealed block files on a hot path, where the stream
/// was checked when it was written (the encoder's tests, and `debug_assert` in
/// [`write_frame`]) and is decoded right after anyway (a decoder stops at a malformed stream;
/// callers that need certainty compare the decoded count with the header's).
pub fn read_frame_checksummed(buf: &[u8]) -> Result<(Frame<'_>, usize), ChunkError> {
    let Some(header) = buf.first_chunk::<FRAME_HEADER_BYTES>() else {
        return Err(ChunkError::Truncated {
            offset: 0,
            needed: FRAME_HEADER_BYTES as u64,
            available: buf.len() as u64,
        });
    };
    let data_len = u32::from_le_bytes(field(header, DATA_LEN_OFFSET)) as usize;
    if data_len > CHUNK_DATA_BYTES_MAX {
        return Err(ChunkError::DataTooLarge {
            len: data_len as u64,
            max: CHUNK_DATA_BYTES_MAX as u64,
        });
    }
    let crc_offset = FRAME_HEADER_BYTES + data_len;
    let frame_len = crc_offset + FRAME_CRC_BYTES;
    if buf.len() < frame_len {
        return Err(ChunkError::Truncated {
            offset: FRAME_HEADER_BYTES as u64,
            needed: (data_len + FRAME_CRC_BYTES) as u64,
            available: (buf.len() - FRAME_HEADER_BYTES) as u64,
        });
    }
    let expected = u32::from_le_bytes(field(&buf[crc_offset..frame_len], 0));
    let actual = crc32fast::hash(&buf[..crc_offset]);
    if expected != actual {
        return Err(ChunkError::ChecksumMismatch { expected, actual });
    }

    let encoding = Encoding::try_from(header[ENCODING_OFFSET])?;
    let meta = ChunkMeta {
        num_samples: u16::from_le_bytes(field(header, NUM_SAMPLES_OFFSET)),
        min_t: i64::from_le_bytes(field(header, MIN_T_OFFSET)),
        max_t: i64::from_le_bytes(field(header, MAX_T_OFFSET)),
    };
    let (times, data) = split_data(encoding, &buf[FRAME_HEADER_BYTES..crc_offset])?;
    Ok((
        Frame {
            encoding,
            meta,
            data,
            times,
        },
        frame_len,
    ))
}

/// The frame at the start of `buf` without any check beyond bounds: for a frame that
/// [`read_frame`] already accepted from the same immutable bytes. `None` if it does not fit.
pub fn frame_unchecked(buf: &[u8]) -> Option<Frame<'_>> {
    let header = buf.first_chunk::<FRAME_HEADER_BYTES>()?;
    let data_len = u32::from_le_bytes(field(header, DATA_LEN_OFFSET)) as usize;
    let data = buf.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES.checked_add(data_len)?)?;
    let encoding = Encoding::try_from(header[ENCODING_OFFSET]).ok()?;
    let (times, data) = split_data(encoding, data).ok()?;
    Some(Frame {
        encoding,
        times,
        meta: ChunkMeta {
            num_samples: u16::from_le_bytes(field(header, NUM_SAMPLES_OFFSET)),
            min_t: i64::from_le_bytes(field(header, MIN_T_OFFSET)),
            max_t: i64::from_le_bytes(field(header, MAX_T_OFFSET)),
        },
        data,
    })
}

/// Checks that `data` decodes to exactly `meta.num_samples` samples spanning `meta`'s range;
/// for encoding 3, that the values stream does, on its grid (its timestamps are checked by
/// the chunk reader, which reads the times frame).
fn check_stream(encoding: Encoding, meta: ChunkMeta, data: &[u8]) -> Result<(), ChunkError> {
    let (first_t, last_t) = match encoding {
        Encoding::Xor => xor::scan(data, meta.num_samples)?.span(),
        Encoding::SharedTimes => {
            let span = xor::scan(data, meta.num_samples)?.span();
            let last = (i64::from(meta.num_samples).max(1) - 1) * shared::VALUES_GRID_MS;
            if span != (0, last) {
                return Err(ChunkError::CorruptStream {
                    bit_offset: 0,
                    expected: "a values stream on its grid",
                });
            }
            return Ok(());
        }
    };
    // An empty chunk stores zeros in both timestamp fields.
    for (field, header, stream) in [
        ("min_t", meta.min_t, first_t),
        ("max_t", meta.max_t, last_t),
    ] {
        if header != stream {
            return Err(ChunkError::HeaderMismatch {
                field,
                header,
                stream,
            });
        }
    }
    Ok(())
}

/// The `N` bytes of `bytes` at `offset`; callers pass offsets inside a length they checked.
fn field<const N: usize>(bytes: &[u8], offset: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[offset..offset + N]);
    out
}

#[cfg(test)]
mod tests {
    use super::xor::XorEncoder;
    use super::*;
    use proptest::prelude::*;

    fn frame_of(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut enc = XorEncoder::new();
        for &(t, v) in samples {
            enc.append(t, v);
        }
        let mut out = Vec::new();
        write_frame(&mut out, Encoding::Xor, enc.meta(), enc.data());
        out
    }

    /// Reads `bytes` as a frame and renders the outcome: the samples, or the error.
    fn check(bytes: &[u8], expected: Result<&[(i64, f64)], ChunkError>) {
        let got = read_frame(bytes).map(|(frame, len)| {
            assert_eq!(len, bytes.len());
            frame.samples().collect::<Vec<_>>()
        });
        match (got, expected) {
            (Ok(got), Ok(want)) => {
                let bits =
                    |s: &[(i64, f64)]| s.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(want));
            }
            (got, want) => assert_eq!(got.map(|_| ()), want.map(|_| ())),
        }
    }

    #[test]
    fn frames_round_trip() {
        let cases: &[&[(i64, f64)]] = &[
            &[],
            &[(1_700_000_000_000, 1.5)],
            &[(-5, f64::NAN), (7, -0.0), (i64::MAX, f64::INFINITY)],
            &[(1_000, 1.0), (16_000, 2.0), (31_001, 3.0), (46_000, 3.0)],
        ];
        for samples in cases {
            check(&frame_of(samples), Ok(samples));
        }
    }

    /// The worked example of docs/format/chunk-xor.md, byte for byte.
    #[test]
    fn documented_example_frame() {
        let samples = [
            (1_000, 1.0),
            (16_000, 1.0),
            (31_000, 1.5),
            (46_003, 1.5),
            (61_000, 1.5),
            (76_000, 1.5),
        ];
        let expected: &[u8] = &[
            0x02, 0x06, 0x00, 0xe8, 0x03, 0, 0, 0, 0, 0, 0, 0xe0, 0x28, 0x01, 0, 0, 0, 0, 0, 0x0b,
            0, 0, 0, 0xd0, 0x0f, 0x81, 0xb0, 0xfc, 0x82, 0xf0, 0x80, 0x1d, 0x70, 0x6c, 0x93, 0x3a,
            0xab, 0x94,
        ];
        assert_eq!(frame_of(&samples), expected);
        check(expected, Ok(&samples));
    }

    #[test]
    fn header_fields_sit_at_documented_offsets() {
        let bytes = frame_of(&[(10, 1.0), (25, 2.0)]);
        assert_eq!(bytes[0], 2);
        assert_eq!(&bytes[1..3], &2u16.to_le_bytes());
        assert_eq!(&bytes[3..11], &10i64.to_le_bytes());
        assert_eq!(&bytes[11..19], &25i64.to_le_bytes());
        let data_len = u32::from_le_bytes(bytes[19..23].try_into().unwrap()) as usize;
        assert_eq!(bytes.len(), 23 + data_len + 4);
        let crc = crc32fast::hash(&bytes[..23 + data_len]);
        assert_eq!(&bytes[23 + data_len..], &crc.to_le_bytes());
    }

    #[test]
    fn read_frame_reports_each_failure() {
        let good = frame_of(&[(10, 1.0), (25, 2.0)]);
        check(
            &good[..5],
            Err(ChunkError::Truncated {
                offset: 0,
                needed: 23,
                available: 5,
            }),
        );
        let data_len = good.len() as u64 - 27;
        check(
            &good[..good.len() - 1],
            Err(ChunkError::Truncated {
                offset: 23,
                needed: data_len + 4,
                available: data_len + 3,
            }),
        );

        let mut huge = good.clone();
        huge[19..23].copy_from_slice(&u32::MAX.to_le_bytes());
        check(
            &huge,
            Err(ChunkError::DataTooLarge {
                len: u32::MAX as u64,
                max: CHUNK_DATA_BYTES_MAX as u64,
            }),
        );

        let mut flipped = good.clone();
        flipped[24] ^= 0x10;
        let stored = u32::from_le_bytes(good[good.len() - 4..].try_into().unwrap());
        let actual = crc32fast::hash(&flipped[..flipped.len() - 4]);
        check(
            &flipped,
            Err(ChunkError::ChecksumMismatch {
                expected: stored,
                actual,
            }),
        );

        // The cases below have a valid CRC over wrong contents, as a writer bug would produce.
        let reseal = |mut bytes: Vec<u8>| {
            let end = bytes.len() - 4;
            let crc = crc32fast::hash(&bytes[..end]);
            bytes[end..].copy_from_slice(&crc.to_le_bytes());
            bytes
        };
        let mut encoding = good.clone();
        encoding[0] = 1;
        check(&reseal(encoding), Err(ChunkError::UnknownEncoding(1)));

        let mut min_t = good.clone();
        min_t[3..11].copy_from_slice(&9i64.to_le_bytes());
        check(
            &reseal(min_t),
            Err(ChunkError::HeaderMismatch {
                field: "min_t",
                header: 9,
                stream: 10,
            }),
        );
        let mut max_t = good.clone();
        max_t[11..19].copy_from_slice(&26i64.to_le_bytes());
        check(
            &reseal(max_t),
            Err(ChunkError::HeaderMismatch {
                field: "max_t",
                header: 26,
                stream: 25,
            }),
        );

        // The 4 zero bits padding this stream read as one more sample, on the grid with the
        // predicted change: the stored max_t catches it.
        let padded = frame_of(&[(10, 1.0), (25, 2.0), (40, 3.0)]);
        let mut count = padded.clone();
        count[1..3].copy_from_slice(&4u16.to_le_bytes());
        check(
            &reseal(count),
            Err(ChunkError::HeaderMismatch {
                field: "max_t",
                header: 40,
                stream: 55,
            }),
        );
        let mut more = good.clone();
        more[1..3].copy_from_slice(&40u16.to_le_bytes());
        assert!(matches!(
            read_frame(&reseal(more)),
            Err(ChunkError::CorruptStream { .. })
        ));
        let mut fewer = good.clone();
        fewer[1..3].copy_from_slice(&1u16.to_le_bytes());
        assert!(matches!(
            read_frame(&reseal(fewer)),
            Err(ChunkError::CorruptStream { .. })
        ));
    }

    #[test]
    fn read_frame_ignores_bytes_after_the_frame() {
        let mut bytes = frame_of(&[(1, 2.0)]);
        let len = bytes.len();
        bytes.extend_from_slice(&[0xff; 9]);
        let (frame, consumed) = read_frame(&bytes).unwrap();
        assert_eq!(consumed, len);
        assert_eq!(
            frame.meta,
            ChunkMeta {
                min_t: 1,
                max_t: 1,
                num_samples: 1
            }
        );
    }

    /// An encoding-3 frame of `samples`: the reference `times_ref`, then the values stream.
    fn shared_frame_of(samples: &[(i64, f64)], times_ref: u64) -> (Vec<u8>, Vec<u8>) {
        let mut enc = shared::SplitEncoder::new();
        for &(t, v) in samples {
            enc.append(t, v);
        }
        let mut data = times_ref.to_le_bytes().to_vec();
        data.extend_from_slice(enc.values.data());
        let mut out = Vec::new();
        write_frame(&mut out, Encoding::SharedTimes, enc.times.meta(), &data);
        (out, enc.times.data().to_vec())
    }

    #[test]
    fn a_shared_times_frame_reads_its_reference_and_values_and_its_samples_once_resolved() {
        let samples: Vec<(i64, f64)> = (0..100)
            .map(|i| (5_000 + i * 15_000 + i % 3, (i * 7 % 11) as f64 / 10.0))
            .collect();
        let (bytes, times) = shared_frame_of(&samples, 0x0000_0002_0000_0018);
        let (mut frame, len) = read_frame(&bytes).unwrap();
        assert_eq!(len, bytes.len());
        assert_eq!(frame.encoding, Encoding::SharedTimes);
        assert_eq!(frame.times, Times::Ref(0x0000_0002_0000_0018));
        assert_eq!(
            (frame.meta.min_t, frame.meta.max_t),
            (5_000, 5_000 + 99 * 15_000)
        );
        // Unresolved, it reads nothing and says so; resolved, it reads the samples.
        let mut unresolved = frame.samples();
        assert_eq!(unresolved.next(), None);
        assert!(unresolved.err().is_some());
        frame.times = Times::Stream(&times);
        assert_eq!(frame.samples().collect::<Vec<_>>(), samples);
        assert_eq!(
            frame_unchecked(&bytes).map(|f| f.times),
            Some(Times::Ref(0x0000_0002_0000_0018))
        );
    }

    #[test]
    fn a_shared_times_frame_without_its_reference_or_off_its_grid_is_refused() {
        let meta = ChunkMeta {
            min_t: 10,
            max_t: 20,
            num_samples: 2,
        };
        // Too short for the reference.
        let mut bytes = vec![Encoding::SharedTimes as u8];
        bytes.extend_from_slice(&meta.num_samples.to_le_bytes());
        bytes.extend_from_slice(&meta.min_t.to_le_bytes());
        bytes.extend_from_slice(&meta.max_t.to_le_bytes());
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            read_frame(&bytes),
            Err(ChunkError::CorruptStream { .. })
        ));
        // A values stream with the chunk's real timestamps, not the grid's.
        let mut enc = XorEncoder::new();
        enc.append(10, 1.0);
        enc.append(20, 2.0);
        let mut data = 7u64.to_le_bytes().to_vec();
        data.extend_from_slice(enc.data());
        let mut out = Vec::new();
        out.push(Encoding::SharedTimes as u8);
        out.extend_from_slice(&meta.num_samples.to_le_bytes());
        out.extend_from_slice(&meta.min_t.to_le_bytes());
        out.extend_from_slice(&meta.max_t.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            read_frame(&out),
            Err(ChunkError::CorruptStream { .. })
        ));
    }

    #[test]
    fn encoding_byte_round_trips() {
        for encoding in [Encoding::Xor, Encoding::SharedTimes] {
            assert_eq!(Encoding::try_from(encoding as u8), Ok(encoding));
        }
        // 1 was the plain Gorilla layout, retired before any release.
        for byte in [0u8, 1, 4, 0x81, 0xff] {
            assert_eq!(
                Encoding::try_from(byte),
                Err(ChunkError::UnknownEncoding(byte))
            );
        }
    }

    #[test]
    fn error_messages_are_lowercase_without_a_final_period() {
        let errors = [
            ChunkError::Truncated {
                offset: 0,
                needed: 23,
                available: 5,
            },
            ChunkError::ChecksumMismatch {
                expected: 1,
                actual: 2,
            },
            ChunkError::UnknownEncoding(9),
            ChunkError::DataTooLarge { len: 1, max: 0 },
            ChunkError::CorruptStream {
                bit_offset: 3,
                expected: "a value control bit",
            },
            ChunkError::HeaderMismatch {
                field: "min_t",
                header: 1,
                stream: 2,
            },
        ];
        for error in errors {
            let message = error.to_string();
            assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
            assert!(!message.ends_with('.'), "{message}");
        }
    }

    /// A node_exporter-like series of `n` samples: a constant, a counter or a random walk.
    fn series(kind: u8, n: usize) -> Vec<(i64, f64)> {
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut t = 1_700_000_000_000i64;
        let mut v: f64 = match kind {
            0 => 8.0e9,
            1 => 123_456.0,
            _ => 2.4e10,
        };
        (0..n)
            .map(|_| {
                t += 15_000 + (next() % 5) as i64;
                match kind {
                    0 => {}
                    1 => v += (next() % 5_000) as f64,
                    _ => v += (next() % 2_000_001) as f64 - 1_000_000.0,
                }
                (t, v)
            })
            .collect()
    }

    /// Flipping any single bit of a frame makes `read_frame` fail: a frame that passes is never
    /// wrong data.
    #[test]
    fn every_single_bit_flip_is_detected() {
        for kind in 0..3 {
            let samples = series(kind, 120);
            let good = frame_of(&samples);
            check(&good, Ok(&samples));
            let mut bytes = good.clone();
            for bit in 0..bytes.len() * 8 {
                bytes[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    read_frame(&bytes).is_err(),
                    "kind {kind}: flip of bit {bit} accepted"
                );
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        for kind in 0..3 {
            let good = frame_of(&series(kind, 120));
            for len in 0..good.len() {
                assert!(
                    matches!(read_frame(&good[..len]), Err(ChunkError::Truncated { .. })),
                    "kind {kind}: truncation to {len} bytes accepted"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn read_frame_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = read_frame(&bytes);
        }

        /// Random bytes rarely pass the CRC; this makes them pass it so the stream checks run.
        #[test]
        fn read_frame_never_panics_past_the_crc(
            num_samples in any::<u16>(),
            min_t in any::<i64>(),
            max_t in any::<i64>(),
            data in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut bytes = vec![Encoding::Xor as u8];
            bytes.extend_from_slice(&num_samples.to_le_bytes());
            bytes.extend_from_slice(&min_t.to_le_bytes());
            bytes.extend_from_slice(&max_t.to_le_bytes());
            bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&data);
            let crc = crc32fast::hash(&bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
            if let Ok((frame, _)) = read_frame(&bytes) {
                // Whatever passes must decode cleanly to what the header says.
                let mut iter = frame.samples();
                let samples: Vec<_> = iter.by_ref().collect();
                prop_assert!(iter.err().is_none());
                prop_assert_eq!(samples.len(), num_samples as usize);
                if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
                    prop_assert_eq!((first.0, last.0), (min_t, max_t));
                }
            }
        }
    }
}
