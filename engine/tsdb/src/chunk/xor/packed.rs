//! An encoder at rest: [`PackedEncoder`] keeps a chunk's stream, the encoder's state and the
//! stream's length in one buffer, so a series that is not being appended to costs a pointer
//! and a few bytes of state instead of the 96 bytes of a [`XorEncoder`]. The head holds one
//! per series and unpacks it for the moment of an append.
//!
//! ```text
//! buf  stream (bit_len bits, zero padded to a byte) | state | zeros | bit_len:u32 num_samples:u16
//!
//! state  flags:u8   bit 0 decimal, 1 decimal seen, 2 escaped, 3-4 context, 5 open run,
//!                   6 late != 0
//!        varint zigzag(t0)                    t0 is the stream's first timestamp (also its
//!                                             leading varint, kept here so that an append
//!                                             does not read the stream's first bytes)
//!        varint zigzag(t - t0)                these two only when the chunk holds a sample
//!        varint late                          when flagged
//!        varint interval
//!        decimal: varint zigzag(m), varint zigzag(mean), varint zigzag(size)
//!        XOR:     v:u64 LE, window leading:u8 sig:u8
//!        decimal seen: exp:u8 shift:u8
//!        open run: varint (bit_len - start_bit), varint len
//! ```
//!
//! Only what the next append reads is kept: in decimal mode the value is `m` scaled back and
//! the XOR window is not used; in XOR mode `m`, its mean and the size estimate are not, and a
//! switch back to decimal mode sets them afresh. So unpacking gives an encoder that appends
//! exactly the bits the original would have (the tests check this after every prefix of many
//! streams), not a field-for-field copy. The layout is private to this process: nothing
//! stores it.

use std::num::NonZeroU16;

use super::bits::{unzigzag, zigzag};
use super::{BitWriter, Context, OpenRun, State, Window, XorEncoder, from_decimal};

/// Bytes of the trailer: `bit_len` and `num_samples`.
const TRAILER: usize = 6;

const DECIMAL: u8 = 1 << 0;
const DECIMAL_SEEN: u8 = 1 << 1;
const ESCAPED: u8 = 1 << 2;
const CONTEXT_SHIFT: u32 = 3;
const OPEN_RUN: u8 = 1 << 5;
const LATE: u8 = 1 << 6;

/// Longest state: flags, seven 10-byte varints, the XOR value and window, the decimal
/// parameters, and the run's two varints.
const STATE_BYTES_MAX: usize = 1 + 7 * 10 + 10 + 2 + 2 * 10;

/// A chunk's stream with its encoder's state, at rest. See the module docs.
#[derive(Clone)]
pub struct PackedEncoder {
    // Invariant: `buf.len() >= TRAILER`; the trailer holds `bit_len` and `num_samples` of the
    // stream at the front of `buf`, and the state written by `pack` follows the stream.
    buf: Box<[u8]>,
}

impl std::fmt::Debug for PackedEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedEncoder")
            .field("num_samples", &self.num_samples())
            .field("bytes", &self.data().len())
            .finish_non_exhaustive()
    }
}

impl XorEncoder {
    /// Packs the encoder for keeping; [`PackedEncoder::unpack`] gives back one that goes on
    /// exactly as this one would.
    pub fn pack(self) -> PackedEncoder {
        let XorEncoder {
            writer,
            num_samples,
            state,
            open_run,
            first_t,
        } = self;
        let bit_len = writer.bit_len() as u32;
        let mut state_bytes = StateBytes::default();
        write_state(
            &mut state_bytes,
            &state,
            open_run,
            bit_len,
            num_samples,
            first_t,
        );
        let state_bytes = state_bytes.as_slice();
        let stream = bit_len.div_ceil(8) as usize;
        let mut bytes = writer.into_buffer();
        let len = super::bits::buffer_len(stream + state_bytes.len() + TRAILER);
        if bytes.len() < len {
            let mut grown = Vec::with_capacity(len);
            grown.extend_from_slice(&bytes[..stream]);
            grown.resize(len, 0);
            bytes = grown.into_boxed_slice();
        }
        bytes[stream..stream + state_bytes.len()].copy_from_slice(state_bytes);
        let trailer = bytes.len() - TRAILER;
        bytes[trailer..trailer + 4].copy_from_slice(&bit_len.to_le_bytes());
        bytes[trailer + 4..].copy_from_slice(&num_samples.to_le_bytes());
        PackedEncoder { buf: bytes }
    }
}

impl PackedEncoder {
    fn bit_len(&self) -> u32 {
        let at = self.buf.len() - TRAILER;
        u32::from_le_bytes([
            self.buf[at],
            self.buf[at + 1],
            self.buf[at + 2],
            self.buf[at + 3],
        ])
    }

    /// Bytes of the buffer that holds stream, state and trailer.
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// Number of samples in the stream.
    pub fn num_samples(&self) -> u16 {
        let at = self.buf.len() - 2;
        u16::from_le_bytes([self.buf[at], self.buf[at + 1]])
    }

    /// The stream; decodable with [`PackedEncoder::num_samples`].
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.bit_len().div_ceil(8) as usize]
    }

    /// The timestamp of the first sample.
    pub fn first_t(&self) -> Option<i64> {
        if self.num_samples() == 0 {
            return None;
        }
        let mut r = self.state_reader();
        r.byte();
        Some(unzigzag(r.varint()))
    }

    /// A reader at the start of the state `pack` wrote after the stream.
    fn state_reader(&self) -> Reader<'_> {
        let stream = self.bit_len().div_ceil(8) as usize;
        Reader {
            bytes: &self.buf[stream..self.buf.len() - TRAILER],
        }
    }

    /// The last sample appended.
    pub fn last(&self) -> Option<(i64, f64)> {
        let n = self.num_samples();
        if n == 0 {
            return None;
        }
        let (state, _, _) = self.read_state();
        Some((state.t, f64::from_bits(state.v)))
    }

    /// The timestamp of the last sample appended, read without the rest of the state.
    pub fn last_t(&self) -> Option<i64> {
        if self.num_samples() == 0 {
            return None;
        }
        let mut r = self.state_reader();
        r.byte();
        let first_t = unzigzag(r.varint());
        Some(first_t.wrapping_add(unzigzag(r.varint())))
    }

    /// True when the chunk takes no more samples.
    pub fn is_full(&self) -> bool {
        self.num_samples() == u16::MAX
    }

    /// The encoder, ready to append.
    pub fn unpack(self) -> XorEncoder {
        let bit_len = self.bit_len();
        let num_samples = self.num_samples();
        let (state, open_run, first_t) = self.read_state();
        let mut bytes = self.buf;
        // The writer needs zeros past the stream.
        let stream = bit_len.div_ceil(8) as usize;
        bytes[stream..].fill(0);
        XorEncoder {
            writer: BitWriter::from_buffer(bytes, bit_len),
            num_samples,
            state,
            open_run,
            first_t,
        }
    }

    /// The encoder's state, its open run and its first timestamp (0 while it has none).
    fn read_state(&self) -> (State, Option<OpenRun>, i64) {
        let bit_len = self.bit_len();
        let n = self.num_samples();
        let mut r = self.state_reader();
        let flags = r.byte();
        let mut state = State::EMPTY;
        let mut first_t = 0;
        if n > 0 {
            first_t = unzigzag(r.varint());
            state.t = first_t.wrapping_add(unzigzag(r.varint()));
        }
        if flags & LATE != 0 {
            state.late = r.varint() as u16;
        }
        state.interval = r.varint();
        state.escaped = flags & ESCAPED != 0;
        state.context = match (flags >> CONTEXT_SHIFT) & 3 {
            0 => Context::Change,
            1 => Context::Run,
            _ => Context::Break,
        };
        let values = &mut state.values;
        values.decimal = flags & DECIMAL != 0;
        values.decimal_seen = flags & DECIMAL_SEEN != 0;
        if values.decimal {
            values.m = unzigzag(r.varint());
            values.mean = unzigzag(r.varint());
            values.size = unzigzag(r.varint()) as i16;
        } else {
            state.v = u64::from_le_bytes(r.array());
            let [leading, sig] = r.array();
            values.window = Window::new(u32::from(leading), u32::from(sig));
        }
        if values.decimal_seen {
            let [exp, shift] = r.array();
            values.set_params(u32::from(exp), u32::from(shift));
        }
        if values.decimal {
            state.v = from_decimal(values.m, values.exp(), values.shift());
        }
        let open_run = (flags & OPEN_RUN != 0).then(|| {
            let back = r.varint() as u32;
            let len = r.varint() as u16;
            OpenRun {
                start_bit: bit_len - back,
                len: NonZeroU16::new(len).unwrap_or(NonZeroU16::MIN),
            }
        });
        (state, open_run, first_t)
    }
}

fn write_state(
    out: &mut StateBytes,
    state: &State,
    open_run: Option<OpenRun>,
    bit_len: u32,
    num_samples: u16,
    first_t: i64,
) {
    let values = &state.values;
    let context = match state.context {
        Context::Change => 0,
        Context::Run => 1,
        Context::Break => 2,
    };
    let mut flags = context << CONTEXT_SHIFT;
    for (set, bit) in [
        (values.decimal, DECIMAL),
        (values.decimal_seen, DECIMAL_SEEN),
        (state.escaped, ESCAPED),
        (open_run.is_some(), OPEN_RUN),
        (state.late != 0, LATE),
    ] {
        if set {
            flags |= bit;
        }
    }
    out.push(flags);
    if num_samples > 0 {
        put_varint(out, zigzag(first_t));
        put_varint(out, zigzag(state.t.wrapping_sub(first_t)));
    }
    if state.late != 0 {
        put_varint(out, u64::from(state.late));
    }
    put_varint(out, state.interval);
    if values.decimal {
        debug_assert_eq!(
            state.v,
            from_decimal(values.m, values.exp(), values.shift()),
            "in decimal mode the value is m scaled back"
        );
        put_varint(out, zigzag(values.m));
        put_varint(out, zigzag(values.mean));
        put_varint(out, zigzag(i64::from(values.size)));
    } else {
        out.extend_from_slice(&state.v.to_le_bytes());
        out.extend_from_slice(&[values.window.leading, values.window.sig]);
    }
    if values.decimal_seen {
        out.extend_from_slice(&[values.exp, values.shift]);
    }
    if let Some(run) = open_run {
        put_varint(out, u64::from(bit_len - run.start_bit));
        put_varint(out, u64::from(run.len.get()));
    }
}

fn put_varint(out: &mut StateBytes, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// The state being written, on the stack: packing happens on every append.
struct StateBytes {
    bytes: [u8; STATE_BYTES_MAX],
    // Invariant: len <= STATE_BYTES_MAX, which bounds everything `write_state` writes.
    len: usize,
}

impl Default for StateBytes {
    fn default() -> StateBytes {
        StateBytes {
            bytes: [0; STATE_BYTES_MAX],
            len: 0,
        }
    }
}

impl StateBytes {
    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Reads what `write_state` wrote. The bytes come from this process's own `pack`, so running
/// out is a bug; it reads zeros rather than panicking in release builds.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        debug_assert!(!self.bytes.is_empty(), "packed state ended early");
        let (&b, rest) = self.bytes.split_first().unwrap_or((&0, &[]));
        self.bytes = rest;
        b
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.byte())
    }

    fn varint(&mut self) -> u64 {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte();
            x |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        x
    }
}
