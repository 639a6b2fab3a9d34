//! Bit-level reading and writing for the chunk stream, and the integer mappings its codes use.
//!
//! Plumbing for [`super`]: a writer that appends bits most significant first to whole bytes
//! (and can cut back, so the encoder can rewrite a growing run), and a reader that serves them
//! through a 64-bit buffer refilled a word at a time, the decoder's fast path.

use super::{VARINT_GROUP_BITS, VARINT_GROUPS_MAX, WIDTH_BITS};

/// Appends bits, most significant first, to a byte buffer.
///
/// The buffer is a boxed slice with at least 8 zero bytes past the stream, so a write stores
/// one fixed-size word; with a 32-bit length the writer takes 20 bytes, not the 32 of a `Vec`
/// and a 64-bit length (a head holds one per series).
#[derive(Debug, Clone, Default)]
pub(super) struct BitWriter {
    // Invariant: `buf.len() >= bit_len.div_ceil(8) + 8` once anything was written, and every
    // bit of `buf` from `bit_len` on is zero, so the next write can OR into it.
    buf: Box<[u8]>,
    bit_len: u32,
}

/// Buffer lengths the writer grows to: 8 bytes less than a multiple of 16, which is what the
/// system allocator hands out for small blocks, so none of a block is wasted.
pub(super) fn buffer_len(min: usize) -> usize {
    (min.max(24) + 8).next_multiple_of(16) - 8
}

impl BitWriter {
    /// Continues writing after the first `bit_len` bits of `bytes`, which must satisfy the
    /// invariant (the caller checked the stream with `scan`, which also bounds its length).
    pub(super) fn resume(mut bytes: Vec<u8>, bit_len: u32) -> BitWriter {
        debug_assert_eq!(bytes.len(), bit_len.div_ceil(8) as usize);
        bytes.resize(buffer_len(bytes.len() + 8), 0);
        BitWriter {
            buf: bytes.into_boxed_slice(),
            bit_len,
        }
    }

    /// Continues writing after the first `bit_len` bits of `buf`, every bit after which is
    /// zero (a buffer from [`BitWriter::into_buffer`]).
    pub(super) fn from_buffer(buf: Box<[u8]>, bit_len: u32) -> BitWriter {
        debug_assert!(buf.len() >= bit_len.div_ceil(8) as usize);
        BitWriter { buf, bit_len }
    }

    /// The whole buffer: the stream, then zeros.
    pub(super) fn into_buffer(self) -> Box<[u8]> {
        self.buf
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[..self.byte_len()]
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        let len = self.byte_len();
        let mut bytes = self.buf.into_vec();
        bytes.truncate(len);
        bytes
    }

    pub(super) fn bit_len(&self) -> u64 {
        u64::from(self.bit_len)
    }

    fn byte_len(&self) -> usize {
        self.bit_len.div_ceil(8) as usize
    }

    /// Writes the low `n` bits of `value`, `n` in 0..=64.
    #[inline]
    pub(super) fn write_bits(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64);
        if n > 56 {
            self.write_bits(value >> 32, n - 32);
            self.write_bits(value, 32);
            return;
        }
        if n == 0 {
            return;
        }
        // Build the partial byte and the new bits in one big-endian word and store its 8 bytes
        // (the bytes past the stream are zero): `used + n` is at most 63 bits. Only the one
        // byte is read back: a wider load over the last store would stall its forwarding.
        let at = (self.bit_len / 8) as usize;
        if self.buf.len() < at + 8 {
            self.grow(at + 8);
        }
        let used = self.bit_len % 8;
        let Some(dst) = self
            .buf
            .get_mut(at..)
            .and_then(|rest| rest.first_chunk_mut::<8>())
        else {
            unreachable!("the buffer was grown to hold 8 bytes past the stream");
        };
        let word = (value & ((1 << n) - 1)) << (64 - used - n) | u64::from(dst[0]) << 56;
        *dst = word.to_be_bytes();
        self.bit_len += n;
    }

    #[cold]
    fn grow(&mut self, min: usize) {
        let len = buffer_len(min.max(self.buf.len() + self.buf.len() / 2));
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&self.buf);
        bytes.resize(len, 0);
        self.buf = bytes.into_boxed_slice();
    }

    /// Writes `value` as LEB128 groups: 7 bits each, low first, the high bit set on all but
    /// the last group.
    pub(super) fn write_varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.write_bits((value & 0x7f) | 0x80, VARINT_GROUP_BITS);
            value >>= 7;
        }
        self.write_bits(value, VARINT_GROUP_BITS);
    }

    /// Drops every bit from `bit_len` on.
    pub(super) fn truncate(&mut self, bit_len: u32) {
        debug_assert!(bit_len <= self.bit_len);
        let end = self.byte_len();
        let keep = bit_len.div_ceil(8) as usize;
        // A run's code, the only thing cut back, is a few bytes: clear them with one store.
        match self
            .buf
            .get_mut(keep..)
            .and_then(|rest| rest.first_chunk_mut::<8>())
        {
            Some(word) if end - keep <= 8 => *word = [0; 8],
            _ => self.buf[keep..end].fill(0),
        }
        let used = bit_len % 8;
        if used != 0
            && let Some(last) = self.buf.get_mut(keep - 1)
        {
            *last &= !(0xff >> used);
        }
        self.bit_len = bit_len;
    }
}

/// The first varint of `data`, read byte by byte (it starts at bit 0, so its groups are
/// whole bytes), if it is complete.
pub(super) fn leading_varint(data: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (group, &byte) in data.iter().take(VARINT_GROUPS_MAX as usize).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * group);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[inline(always)]
pub(super) fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[inline(always)]
pub(super) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

#[inline(always)]
pub(super) fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

pub(super) fn low_bits(x: u64, n: u32) -> u64 {
    if n >= 64 { x } else { x & ((1 << n) - 1) }
}

/// True when `x` is representable in `bits`-bit two's complement.
pub(super) fn fits_signed(x: i64, bits: u32) -> bool {
    bits >= 64 || (-(1i64 << (bits - 1))..(1i64 << (bits - 1))).contains(&x)
}

/// Sign-extends the low `bits` bits of `x`, `bits` in 1..=64.
pub(super) fn sign_extend(x: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((x << shift) as i64) >> shift
}

/// Reads bits most significant first through a 64-bit buffer refilled a word at a time.
#[derive(Debug, Clone)]
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` not yet loaded into `buf`.
    next: usize,
    // Invariant: the top `avail` bits of `buf` are the next unread bits of the stream; the bits
    // below them are zero or the stream bits that follow, so OR-ing a reload in is harmless.
    buf: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            next: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// The buffered bits: the top `avail()` are the next ones of the stream, and any below them
    /// are zero or the stream's.
    #[inline(always)]
    pub(super) fn buf(&self) -> u64 {
        self.buf
    }

    /// How many bits of `buf()` are the stream's.
    #[inline(always)]
    pub(super) fn avail(&self) -> u32 {
        self.avail
    }

    /// Bits consumed so far.
    pub(super) fn bit_pos(&self) -> u64 {
        self.next as u64 * 8 - u64::from(self.avail)
    }

    /// Loads as many whole bytes as fit into `buf`.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self
            .data
            .get(self.next..)
            .and_then(|rest| rest.first_chunk::<8>())
        {
            // Callers refill only when they lack bits, so a shift by 64 cannot happen.
            debug_assert!(self.avail < 64);
            self.buf |= u64::from_be_bytes(*word) >> self.avail;
            let bytes = (64 - self.avail) / 8;
            self.next += bytes as usize;
            self.avail += bytes * 8;
        } else {
            self.refill_tail();
        }
    }

    #[cold]
    fn refill_tail(&mut self) {
        while self.avail <= 56 {
            let Some(&byte) = self.data.get(self.next) else {
                break;
            };
            self.buf |= u64::from(byte) << (56 - self.avail);
            self.next += 1;
            self.avail += 8;
        }
    }

    /// Makes at least `n` bits (<= 57) available, or fails.
    #[inline(always)]
    pub(super) fn ensure(&mut self, n: u32) -> bool {
        if self.avail < n {
            self.refill();
            self.avail >= n
        } else {
            true
        }
    }

    /// Drops `n` available bits, `n` < 64.
    #[inline(always)]
    pub(super) fn consume(&mut self, n: u32) {
        debug_assert!(n < 64 && n <= self.avail);
        self.buf <<= n;
        self.avail -= n;
    }

    /// Reads `n` bits, 1 <= `n` <= 56.
    #[inline(always)]
    pub(super) fn read(&mut self, n: u32) -> Option<u64> {
        debug_assert!((1..=56).contains(&n));
        if !self.ensure(n) {
            return None;
        }
        let value = self.buf >> (64 - n);
        self.consume(n);
        Some(value)
    }

    /// Reads `n` bits, 0 <= `n` <= 64.
    #[inline(always)]
    pub(super) fn read_wide(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            Some(0)
        } else if n <= 56 {
            self.read(n)
        } else {
            let high = self.read(n - 32)?;
            let low = self.read(32)?;
            Some((high << 32) | low)
        }
    }

    pub(super) fn read_varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for group in 0..VARINT_GROUPS_MAX {
            let byte = self
                .read(VARINT_GROUP_BITS)
                .ok_or("a varint group, but the stream ended")?;
            let payload = byte & 0x7f;
            if group == VARINT_GROUPS_MAX - 1 && payload > 1 {
                return Err("a varint within 64 bits");
            }
            value |= payload << (7 * group);
            if byte & 0x80 == 0 {
                if group > 0 && payload == 0 {
                    return Err("a varint without trailing zero groups");
                }
                return Ok(value);
            }
        }
        Err("a varint of at most 10 groups")
    }

    /// Reads a 6-bit width - 1 and that many bits.
    pub(super) fn read_wide_int(&mut self) -> Result<u64, &'static str> {
        let width = self
            .read(WIDTH_BITS)
            .ok_or("an integer width, but the stream ended")? as u32
            + 1;
        self.read_wide(width)
            .ok_or("an integer's bits, but the stream ended")
    }
}
