//! Reading framed records back, and telling a torn tail from corruption.
//!
//! [`scan`] walks the frames of one file. When a frame fails to decode it looks for the next
//! offset at which a whole, checksummed frame starts (a *resync*). If one exists, the bytes in
//! between are damage in the middle of the file: real corruption, which the caller quarantines.
//! If none exists, the damage runs to the end of the file: in the last segment that is the
//! normal result of a crash during a write (a *torn tail*) and is cut off; anywhere else it is
//! corruption too.
//!
//! A resync false positive needs a random frame to pass a 32-bit CRC, a plausible length and a
//! nonzero type byte: about one in 10^12 per byte scanned, so it is not worth guarding further.
//! A frame whose type the reading store does not know is rejected by the store, as damage.

use std::ops::Range;

use strata_core::codec::DecodeError;

use crate::frame::{FRAME_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, RecordType, decode_frame};

/// A damaged stretch of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Offset of the first byte that did not decode.
    pub offset: u64,
    /// What was wrong there.
    pub reason: &'static str,
    /// Where the next good frame starts, or `None` if the damage runs to the end of the file.
    pub resumed_at: Option<u64>,
}

/// The result of scanning one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Byte ranges of every frame that decoded and was accepted, in file order.
    pub frames: Vec<Range<usize>>,
    /// Damaged stretches, in file order. At most the last one has `resumed_at == None`.
    pub damage: Vec<Damage>,
}

impl Scan {
    /// The damage that runs to the end of the file, if any.
    pub fn tail_damage(&self) -> Option<&Damage> {
        self.damage.last().filter(|d| d.resumed_at.is_none())
    }

    /// Whether any damage sits before good frames (not just at the tail).
    pub fn has_mid_damage(&self) -> bool {
        self.damage.iter().any(|d| d.resumed_at.is_some())
    }

    /// The end of the last good frame before any tail damage (or `start` if there is none).
    pub fn valid_end(&self, start: usize) -> usize {
        self.frames.last().map_or(start, |r| r.end)
    }
}

/// Scans the frames of `bytes` from `start`, handing each good one to `on_record` with its
/// offset. A frame whose payload `on_record` rejects counts as damage (skipped, scanning goes
/// on after it).
pub fn scan<'a>(
    bytes: &'a [u8],
    start: usize,
    mut on_record: impl FnMut(RecordType, &'a [u8], usize) -> Result<(), DecodeError>,
) -> Scan {
    let mut out = Scan::default();
    let mut pos = start;
    while pos < bytes.len() {
        match decode_frame(&bytes[pos..]) {
            Ok((ty, payload, len)) => {
                match on_record(ty, payload, pos) {
                    Ok(()) => out.frames.push(pos..pos + len),
                    Err(e) => out.damage.push(Damage {
                        offset: pos as u64,
                        reason: e.0,
                        resumed_at: Some((pos + len) as u64),
                    }),
                }
                pos += len;
            }
            Err(e) => {
                let next = resync(bytes, pos + 1);
                out.damage.push(Damage {
                    offset: pos as u64,
                    reason: e.0,
                    resumed_at: next.map(|n| n as u64),
                });
                match next {
                    Some(n) => pos = n,
                    None => break,
                }
            }
        }
    }
    out
}

/// The first offset at or after `from` where a whole, valid frame starts.
fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let last = bytes.len().checked_sub(FRAME_HEADER_BYTES)?;
    (from..=last).find(|&at| {
        // Cheap plausibility checks before the checksum.
        if bytes[at + 8] == 0 {
            return false;
        }
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        len <= RECORD_PAYLOAD_BYTES_MAX
            && at + FRAME_HEADER_BYTES + len <= bytes.len()
            && decode_frame(&bytes[at..]).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_frame;

    fn file(payloads: &[&[u8]]) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut out = vec![0xAA; 16]; // stands in for the file header
        let mut ranges = Vec::new();
        for p in payloads {
            let start = out.len();
            encode_frame(&mut out, RecordType(2), p);
            ranges.push(start..out.len());
        }
        (out, ranges)
    }

    fn frames_of(bytes: &[u8]) -> Scan {
        scan(bytes, 16, |_, _, _| Ok(()))
    }

    #[test]
    fn clean_file_has_no_damage() {
        let (bytes, ranges) = file(&[b"one", b"two", b"three"]);
        let s = frames_of(&bytes);
        assert_eq!(s.frames, ranges);
        assert!(s.damage.is_empty());
    }

    #[test]
    fn a_cut_at_every_offset_keeps_exactly_the_whole_frames_before_it() {
        let (bytes, ranges) = file(&[b"alpha", b"", b"gamma-gamma", b"delta"]);
        for cut in 16..=bytes.len() {
            let s = frames_of(&bytes[..cut]);
            let expected: Vec<_> = ranges.iter().filter(|r| r.end <= cut).cloned().collect();
            assert_eq!(s.frames, expected, "cut at {cut}");
            assert!(!s.has_mid_damage(), "cut at {cut}");
            let whole = expected.last().map_or(16, |r| r.end);
            assert_eq!(s.tail_damage().is_some(), whole < cut, "cut at {cut}");
        }
    }

    #[test]
    fn damage_in_the_middle_resumes_at_the_next_frame() {
        let (mut bytes, ranges) = file(&[b"first", b"second", b"third"]);
        bytes[ranges[1].start + 10] ^= 0x40;
        let s = frames_of(&bytes);
        assert_eq!(s.frames, vec![ranges[0].clone(), ranges[2].clone()]);
        assert_eq!(
            s.damage,
            vec![Damage {
                offset: ranges[1].start as u64,
                reason: "record checksum mismatch",
                resumed_at: Some(ranges[2].start as u64),
            }]
        );
    }

    #[test]
    fn a_rejected_payload_is_damage_and_scanning_goes_on() {
        let (bytes, ranges) = file(&[b"ok", b"bad", b"ok"]);
        let s = scan(&bytes, 16, |_, p, _| {
            if p == b"bad" {
                Err(DecodeError("bad payload"))
            } else {
                Ok(())
            }
        });
        assert_eq!(s.frames, vec![ranges[0].clone(), ranges[2].clone()]);
        assert_eq!(s.damage[0].resumed_at, Some(ranges[2].start as u64));
    }

    #[test]
    fn zeroed_tail_is_tail_damage() {
        let (mut bytes, ranges) = file(&[b"kept"]);
        bytes.extend_from_slice(&[0u8; 700]);
        let s = frames_of(&bytes);
        assert_eq!(s.frames, ranges);
        assert_eq!(
            s.tail_damage().map(|d| d.offset),
            Some(ranges[0].end as u64)
        );
    }
}
