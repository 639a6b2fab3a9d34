//! A size model of plain Gorilla, the baseline Strata's on-disk sizes are compared with.
//!
//! Plain Gorilla is the chunk codec's first version, the encoding Prometheus also stores its
//! chunks in (delta-of-delta timestamps, XOR'd values; Prometheus cuts chunks of 120 samples). The model counts the bits that
//! encoding would spend without writing or decoding anything, so the benches can size the
//! baseline over the same samples they store. Shared by the `cold_encoding` and `storage`
//! benches.

/// Bits plain Gorilla (the codec's first version) spends on `samples`, modelled: sample 0 is
/// a zigzag varint timestamp and 64 raw value bits; sample 1's timestamp delta a varint; then
/// each timestamp is a delta-of-delta code of 1, 8, 16, 24 or 68 bits, and each value an XOR
/// with the previous one: 1 bit when equal, `2 + width` inside the current window of meaningful
/// bits, or `14 + width` opening a new window (taken when it saves more than 12 bits).
pub fn gorilla_bits(samples: &[(i64, f64)]) -> u64 {
    fn varint_bits(x: u64) -> u64 {
        let significant = u64::from(64 - x.leading_zeros()).max(1);
        8 * significant.div_ceil(7)
    }
    let Some(&(t0, v0)) = samples.first() else {
        return 0;
    };
    let mut bits = varint_bits(((t0 << 1) ^ (t0 >> 63)) as u64) + 64;
    let (mut prev_t, mut prev_delta, mut prev_v) = (t0, 0u64, v0.to_bits());
    // The current window: leading zeros and width.
    let (mut window_leading, mut window_width) = (0u32, 64u32);
    for (i, &(t, v)) in samples.iter().enumerate().skip(1) {
        let delta = t.wrapping_sub(prev_t) as u64;
        bits += if i == 1 {
            varint_bits(delta)
        } else {
            match delta.wrapping_sub(prev_delta) as i64 {
                0 => 1,
                -32..32 => 8,
                -4096..4096 => 16,
                -524_288..524_288 => 24,
                _ => 68,
            }
        };
        (prev_t, prev_delta) = (t, delta);

        let xor = v.to_bits() ^ prev_v;
        prev_v = v.to_bits();
        if xor == 0 {
            bits += 1;
            continue;
        }
        let leading = xor.leading_zeros();
        let trailing = xor.trailing_zeros();
        let width = 64 - leading - trailing;
        let window_trailing = 64 - window_leading - window_width;
        let fits = leading >= window_leading && trailing >= window_trailing;
        if fits && window_width <= width + 12 {
            bits += 2 + u64::from(window_width);
        } else {
            bits += 14 + u64::from(width);
            (window_leading, window_width) = (leading, width);
        }
    }
    bits
}
