//! The protobuf primitives the hand-written encoders share: varints and field keys.
//!
//! Decoding uses prost's primitives (`prost::encoding`); encoding by hand exists because a
//! message written as it is generated (a series' labels encoded once, then copied for every
//! sample) is several times cheaper than building prost's owned structs first.

/// Wire type 0: a varint (`int64`, `uint32`, `bool`, ...).
pub const VARINT: u8 = 0;
/// Wire type 1: eight little-endian bytes (`double`, `fixed64`).
pub const FIXED64: u8 = 1;
/// Wire type 2: a length, then that many bytes (strings, messages, packed fields).
pub const LEN: u8 = 2;

/// The key byte of field `tag` (1 to 15, which fit one byte) of wire type `wire`; meant for
/// constants, so the check costs nothing at run time.
pub const fn key(tag: u8, wire: u8) -> u8 {
    assert!(tag >= 1 && tag <= 15 && wire <= 5);
    (tag << 3) | wire
}

/// Appends `v` as an unsigned LEB128 varint (protobuf's, and snappy's length header).
#[inline]
pub fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The bytes [`put_varint`] writes for `v`.
#[inline]
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends a length-delimited field's key (a [`key`] of wire type [`LEN`]) and length; the
/// caller appends the `len` bytes.
#[inline]
pub fn put_len_key(key: u8, len: usize, out: &mut Vec<u8>) {
    debug_assert_eq!(key & 7, LEN);
    out.push(key);
    put_varint(len as u64, out);
}

/// The bytes of a length-delimited field of `len` bytes (one-byte key), key and length
/// included.
#[inline]
pub fn len_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_prost() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            i64::MIN as u64,
            u64::MAX,
        ] {
            let mut ours = Vec::new();
            put_varint(v, &mut ours);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
            assert_eq!(varint_len(v), ours.len(), "{v}");
        }
        assert_eq!(key(1, LEN), 0x0a);
        assert_eq!(key(2, FIXED64), 0x11);
        assert_eq!(key(2, VARINT), 0x10);
    }
}
