//! Samples built from arbitrary bytes must survive encoding, framing and decoding bit for bit.
//!
//! The input is read as 16-byte pairs (gap u64 LE, value bits u64 LE): the first gap, read as an
//! i64, is the first timestamp, and each later gap (at least 1) is added to the previous one
//! until it would pass `i64::MAX`. So timestamps strictly increase with any gap up to 2^64 - 1,
//! and values are arbitrary bit patterns, NaN payloads included.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_engine::chunk::xor::{self, XorEncoder};
use strata_engine::chunk::{Encoding, read_frame, write_frame};

fuzz_target!(|data: &[u8]| {
    let mut samples: Vec<(i64, u64)> = Vec::new();
    for pair in data.chunks_exact(16).take(usize::from(u16::MAX)) {
        let gap = u64::from_le_bytes(pair[..8].try_into().unwrap());
        let bits = u64::from_le_bytes(pair[8..].try_into().unwrap());
        let t = match samples.last() {
            None => gap as i64,
            Some(&(previous, _)) => match previous.checked_add_unsigned(gap.max(1)) {
                Some(t) => t,
                None => break,
            },
        };
        samples.push((t, bits));
    }

    let mut encoder = XorEncoder::new();
    for &(t, bits) in &samples {
        encoder.append(t, f64::from_bits(bits));
    }
    let n = encoder.num_samples();
    assert_eq!(usize::from(n), samples.len());

    let bit_exact = |decoded: &[(i64, f64)]| -> Vec<(i64, u64)> {
        decoded.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    };
    let mut out = Vec::new();
    xor::decode(encoder.data(), n, &mut out).expect("an encoded stream decodes");
    assert_eq!(bit_exact(&out), samples);

    let mut frame_bytes = Vec::new();
    write_frame(
        &mut frame_bytes,
        Encoding::Xor,
        encoder.meta(),
        encoder.data(),
    );
    let (frame, len) = read_frame(&frame_bytes).expect("a written frame reads back");
    assert_eq!(len, frame_bytes.len());
    assert_eq!(frame.meta, encoder.meta());
    assert_eq!(bit_exact(&frame.samples().collect::<Vec<_>>()), samples);

    // Resuming half way and appending the rest rebuilds the same stream.
    let half = samples.len() / 2;
    let mut first_half = XorEncoder::new();
    for &(t, bits) in &samples[..half] {
        first_half.append(t, f64::from_bits(bits));
    }
    let mut resumed = XorEncoder::resume(first_half.into_data(), half as u16)
        .expect("an encoder's stream resumes");
    for &(t, bits) in &samples[half..] {
        resumed.append(t, f64::from_bits(bits));
    }
    assert_eq!(resumed.data(), encoder.data());
});
