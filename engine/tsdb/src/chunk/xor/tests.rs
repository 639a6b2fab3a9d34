use super::*;
use proptest::prelude::*;

/// The bit pattern that marks a series as stale.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// A 2023 timestamp in ms; its zigzag varint takes 6 bytes.
const T0: i64 = 1_700_000_000_000;

fn encode(samples: &[(i64, f64)]) -> XorEncoder {
    let mut enc = XorEncoder::new();
    for &(t, v) in samples {
        enc.append(t, v);
    }
    enc
}

fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

/// Encodes `samples`, checks the stream's size in bits (rounded up to bytes), and checks that
/// every way of reading it back (iterator, `decode`, `resume` at every prefix then appending
/// the rest) gives the samples bit for bit.
fn check(samples: &[(i64, f64)], expected_bits: usize) {
    let enc = encode(samples);
    let n = enc.num_samples();
    assert_eq!(usize::from(n), samples.len());
    assert_eq!(
        enc.writer.bit_len(),
        expected_bits as u64,
        "bits of {samples:?}"
    );
    assert_eq!(enc.data().len(), expected_bits.div_ceil(8));

    let mut iter = XorIter::new(enc.data(), n);
    let got: Vec<_> = iter.by_ref().collect();
    assert_eq!(iter.err(), None);
    assert_eq!(bits(&got), bits(samples));

    let mut out = vec![(7, 7.0)];
    decode(enc.data(), n, &mut out).unwrap();
    assert_eq!(bits(&out[1..]), bits(samples));

    assert_eq!(enc.first_t(), samples.first().map(|s| s.0));
    assert_eq!(
        enc.last().map(|s| bits(&[s])),
        samples.last().map(|&s| bits(&[s]))
    );

    for split in 0..=samples.len() {
        let prefix = encode(&samples[..split]);
        let mut resumed = XorEncoder::resume(prefix.into_data(), split as u16).unwrap();
        for &(t, v) in &samples[split..] {
            resumed.append(t, v);
        }
        assert_eq!(resumed.data(), enc.data(), "resumed after {split} samples");
    }
}

/// `n` samples 15 s apart from `T0`.
fn scrapes(n: usize, value: impl Fn(usize) -> f64) -> Vec<(i64, f64)> {
    (0..n).map(|i| (T0 + 15_000 * i as i64, value(i))).collect()
}

/// Scrapes of a constant 1.0, each delayed by the given milliseconds.
fn delayed(delays: &[i64]) -> Vec<(i64, f64)> {
    let grid = scrapes(delays.len(), |_| 1.0);
    grid.iter()
        .zip(delays)
        .map(|(&(t, v), d)| (t + d, v))
        .collect()
}

/// Bits of sample 0 at `T0` with a small integer value `v`: 48 bits of varint, `1` (decimal),
/// `0` (a plain integer), a 6-bit width and zigzag(v).
fn head_bits(v: i64) -> usize {
    48 + 1 + 1 + 6 + bit_len(zigzag(v)).max(1) as usize
}

/// Bits of sample 1's interval of 15,000 ms: exponent 3 and a one-group varint of 15.
const INTERVAL_BITS: usize = 2 + 8;

/// Bits of a run of `n` in Exp-Golomb of order 2.
fn run_bits(n: u32) -> usize {
    let b = bit_len(u64::from(n) + 4) as usize;
    2 * b - 3
}

#[test]
fn empty() {
    check(&[], 0);
}

#[test]
fn one_sample() {
    // 3.25 is 325 / 10^2: `1`, `1` + exponent 2 and shift 0, then zigzag(325) in 10 bits.
    check(&[(T0, 3.25)], 48 + 1 + 12 + 6 + 10);
    check(&[(0, 0.0)], 8 + 1 + 1 + 6 + 1);
    check(&[(i64::MIN, -1.0)], 80 + 1 + 1 + 6 + 1);
    // No decimal gives a NaN: 64 raw bits.
    check(&[(i64::MAX, f64::from_bits(STALE_NAN))], 80 + 1 + 64);
    // -0.0 is not an integer's value either.
    check(&[(0, -0.0)], 8 + 1 + 64);
}

#[test]
fn constant_series() {
    // Sample 1: the interval, `11` (general code), `0` (on the grid), `0` (unchanged). Every
    // later sample extends one run.
    check(&scrapes(2, |_| 1.0), head_bits(1) + INTERVAL_BITS + 4);
    for n in [3, 4, 120, 240] {
        let expected = head_bits(1) + INTERVAL_BITS + 4 + run_bits(n as u32 - 2);
        check(&scrapes(n, |_| 1.0), expected);
    }
    // 11 bytes hold 120 samples of 0.
    check(&scrapes(120, |_| 0.0), 82);
    // 2^13 has 13 trailing zero bits, at least the 8 a shift needs: `1`, `1` + exponent 0
    // and shift 13, then zigzag(1).
    check(
        &scrapes(120, |_| 8192.0),
        48 + 1 + 12 + 6 + 2 + INTERVAL_BITS + 4 + run_bits(118),
    );
}

#[test]
fn late_scrapes_cost_one_code_each() {
    // After a run, a scrape late by 1 to 7 ms costs 3 bits and keeps the grid: the next
    // on-time scrape starts a new run.
    let base = head_bits(1) + INTERVAL_BITS + 4;
    check(
        &delayed(&[0, 0, 0, 0, 3, 0, 0]),
        base + run_bits(2) + 3 + run_bits(2),
    );
    // Two late scrapes in a row: an empty run between them.
    check(
        &delayed(&[0, 0, 0, 5, 5, 0]),
        base + run_bits(1) + 3 + run_bits(0) + 3 + run_bits(1),
    );
    // A delay of 8 ms or more takes the general code: `000`, `1`, the 8-bit small residual
    // and `0` (unchanged).
    check(
        &delayed(&[0, 0, 0, 9, 0]),
        base + run_bits(1) + 3 + 1 + 8 + 1 + run_bits(1),
    );
    // A late sample 1 keeps the interval at 15 s (whole seconds) and the grid at sample 0.
    check(
        &delayed(&[0, 4, 0]),
        head_bits(1) + INTERVAL_BITS + 2 + 8 + 1 + run_bits(1),
    );
    // So does a late sample 0: sample 1 comes 4 ms early (an 8-bit small residual), which
    // moves the grid to it.
    check(
        &delayed(&[4, 0, 0]),
        head_bits(1) + INTERVAL_BITS + 2 + 8 + 1 + run_bits(1),
    );
}

#[test]
fn grid_resets() {
    let base = head_bits(1) + INTERVAL_BITS + 4;
    // A missed scrape: the residual of 15 s escapes (`000`, `1`, `111`, a 3-group varint of
    // 30,000 and `0` for "same interval"), the grid restarts at that sample, and the next
    // scrape is on it.
    let mut samples = scrapes(6, |_| 1.0);
    samples.remove(3);
    let escape = 3 + 24 + 1;
    check(
        &samples,
        base + run_bits(1) + 3 + 1 + escape + 1 + run_bits(1),
    );
    // The interval doubles: one escape keeps the old interval, the second sets the new one
    // (its adjustment `1` + 8 bits), and the scrapes after it are on the new grid.
    let ts = [0, 15_000, 30_000, 60_000, 90_000, 120_000, 150_000];
    let samples: Vec<_> = ts.iter().map(|&t| (T0 + t, 1.0)).collect();
    check(
        &samples,
        base + run_bits(1)
            + 3
            + 1
            + escape
            + 1
            + run_bits(0)
            + 3
            + 1
            + escape
            + 8
            + 1
            + run_bits(2),
    );
    // A shift of 2 s is a medium residual (`110` + 14 bits) after an empty run; a late one
    // keeps the grid.
    check(
        &delayed(&[0, 0, 2_000, 0]),
        base + run_bits(0) + 3 + 1 + 17 + 1 + run_bits(1),
    );
}

#[test]
fn integer_counters() {
    // These sizes are pinned: if one moves, the encoder's choices, and so its output, did.
    // A counter rising by exactly 1,000: sample 1's change escapes (16 ones and a raw 11-bit
    // zigzag: 34 bits with its `0`), then the predicted change is exact and the Rice order
    // decays to 0, where a sample costs 2 bits.
    check(&scrapes(120, |i| 5.0e6 + 1_000.0 * i as f64), 399);
    // Increments of 1,000 to 1,009: about 5 bits a sample.
    check(
        &scrapes(120, |i| 5.0e6 + 1_003.0 * i as f64 + (i % 7) as f64),
        716,
    );
    // Resets and large jumps escape to raw integers.
    check(&scrapes(6, |i| [10.0, 20.0, 0.0, 5.0, 1e15, 3.0][i]), 242);
}

#[test]
fn decimal_values() {
    // A float counter printed with 2 decimals, as CPU seconds are: in hundredths it is an
    // integer counter.
    let cpu_seconds = |i| ((300.0 + 14.87 * i as f64) * 100.0).round() / 100.0;
    check(&scrapes(120, cpu_seconds), 393);
    // 300.0 needs no decimals; 314.87 then switches to exponent 2: `11`, `0` (on the grid),
    // `111`, the 12-bit header and zigzag(31487 - 30000) in 6 + 12 bits. The next change is
    // predicted exactly: `0`, then a Rice code of order 12 for 0.
    let values = [300.0, 314.87, 329.74, 344.61];
    check(
        &scrapes(4, |i| values[i]),
        66 + INTERVAL_BITS + 36 + 14 + 11,
    );
    // Memory in 4 KiB pages: a shift of 12 drops the zero bits of every value.
    let pages = |i: usize| (1_000_000.0 + [0.0, 3.0, -2.0, 7.0, 1.0][i % 5] * i as f64) * 4096.0;
    check(&scrapes(60, pages), 736);
    // A value that is not a multiple of the shift switches to a smaller one: 2^23 starts with
    // shift 23, 8192 x 1025 switches to 13 and 4096 x 2051 to 12 (26 bits each), then a
    // change of 2 pages against a mean of 1 takes a Rice code of order 2.
    let values = [
        8192.0 * 1024.0,
        8192.0 * 1025.0,
        4096.0 * 2051.0,
        4096.0 * 2053.0,
    ];
    check(&scrapes(4, |i| values[i]), 69 + INTERVAL_BITS + 26 + 26 + 4);
}

#[test]
fn mode_switches() {
    // An integer counter that goes stale and comes back: the NaN switches to XOR mode (a new
    // window), the next integer straight back to the last decimal parameters.
    let values = [100.0, 150.0, f64::from_bits(STALE_NAN), 250.0, 300.0, 350.0];
    check(&scrapes(values.len(), |i| values[i]), 227);
    // Values that are no short decimal stay in XOR mode, every sample a new window: `11`,
    // `0`, `110`, the 12-bit header and (here) 47 significant bits.
    let values = [0.1 + 0.2, 0.7 + 0.1, 1.0 / 3.0, std::f64::consts::PI];
    check(
        &scrapes(values.len(), |i| values[i]),
        113 + INTERVAL_BITS + 3 * 65,
    );
    // A series that starts in XOR mode and turns integer looks for decimals every 16 samples
    // and switches once a value and the one before it fit: at sample 16.
    let pi_then_integers = |i: usize| {
        if i == 0 {
            std::f64::consts::PI
        } else {
            i as f64
        }
    };
    let samples = scrapes(40, pi_then_integers);
    check(&samples, 759);
    let enc = encode(&samples[..16]);
    assert!(!enc.state.values.decimal);
    let enc = encode(&samples[..17]);
    assert!(enc.state.values.decimal);
}

#[test]
fn resume_extends_an_open_run() {
    // The stream ends inside a run; the resumed encoder rewrites the run's code rather than
    // starting another, so the bytes match an encoder that never stopped.
    let samples = scrapes(50, |_| 7.0);
    let prefix = encode(&samples[..20]);
    assert!(prefix.open_run.is_some());
    let mut resumed = XorEncoder::resume(prefix.into_data(), 20).unwrap();
    assert_eq!(resumed.open_run.map(|r| r.len.get()), Some(18));
    for &(t, v) in &samples[20..] {
        resumed.append(t, v);
    }
    assert_eq!(resumed.data(), encode(&samples).data());
}

#[test]
fn huge_deltas() {
    // A delta of 2^64 - 1 is the interval (10 groups), and sample 1 is on the grid; its value
    // changes by 1: `0` and a Rice code of order 0 for zigzag 2 (`110`), none of the escape.
    check(
        &[(i64::MIN, 1.0), (i64::MAX, 2.0)],
        80 + 10 + 2 + 80 + 1 + 3,
    );
    // Deltas of 2^63 - 1, 1, 2^63 - 2 and 1: after the first (the interval), the deltas of 1
    // escape, and 2^63 - 2 is 1 ms early on the grid.
    let samples = [
        (i64::MIN, 1.0),
        (-1, 1.0),
        (0, 1.0),
        (i64::MAX - 1, 1.0),
        (i64::MAX, 1.0),
    ];
    check(&samples, 224);
    // A delta of 1, then one of 2^64 - 2: the residual wraps to -3, a small code.
    check(
        &[(i64::MIN, 0.0), (i64::MIN + 1, 0.0), (i64::MAX, 0.0)],
        89 + 14 + 3 + 13,
    );
}

#[test]
fn every_timestamp_bucket_boundary() {
    // Residuals at the edges of the small (6-bit) and medium (14-bit) buckets, each on a value
    // change so that no run forms: `11`, the time code, then `10` and a Rice code.
    let residuals = [31, -32, 32, -33, 8191, -8192, 8192, -8193];
    let mut samples = vec![(0, 0.0), (1_000_000, 1.0)];
    let mut grid = 1_000_000;
    for (i, r) in residuals.into_iter().enumerate() {
        grid += 1_000_000;
        samples.push((grid + r, 2.0 + i as f64));
        if !(-8192..8192).contains(&r) {
            // An escape restarts the grid at the sample.
            grid += r;
        } else if r < 0 {
            grid += r;
        }
    }
    let enc = encode(&samples);
    let mut out = Vec::new();
    decode(enc.data(), enc.num_samples(), &mut out).unwrap();
    assert_eq!(bits(&out), bits(&samples));
    check(&samples, enc.writer.bit_len() as usize);
    // The pinned total: 17 + 18 + 4 for samples 0 and 1, then per sample `11`, the time
    // code, `10` and a short Rice code.
    assert_eq!(enc.writer.bit_len(), 233);
}

#[test]
fn nan_payloads_and_signed_zeros() {
    let values = [
        STALE_NAN,
        f64::NAN.to_bits(),
        0xfff8_0000_0000_0001,
        0x7ff0_0000_0000_0001,
        0x7fff_ffff_ffff_ffff,
        (-0.0f64).to_bits(),
        0,
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        f64::MIN_POSITIVE.to_bits(),
        1,
        STALE_NAN,
        STALE_NAN,
        1.0f64.to_bits(),
    ];
    // Pinned, like the counters' sizes.
    check(&scrapes(values.len(), |i| f64::from_bits(values[i])), 778);
}

/// Packs a string of `0` and `1` (spaces ignored) into bytes, most significant bit first.
fn stream(bits: &str) -> Vec<u8> {
    let bits: Vec<u8> = bits.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, &b) in bits.iter().enumerate() {
        assert!(b == b'0' || b == b'1');
        out[i / 8] |= (b - b'0') << (7 - i % 8);
    }
    out
}

/// Sample 0 at t = 0 with the integer value 0: a 1-group varint, `1`, `0`, width 1, `0`.
const ZERO_HEAD: &str = "00000000 1 0 000000 0";
/// Sample 1's interval of 1 ms: exponent 0 and a varint of 1.
const INTERVAL_1: &str = "00 00000001";

#[test]
fn decoding_stops_at_malformed_streams() {
    let head = |rest: &str| format!("{ZERO_HEAD} {rest}");
    let cases: Vec<(String, u16, u64, &str)> = vec![
        (String::new(), 1, 0, "a varint group, but the stream ended"),
        (
            "10000000".into(),
            1,
            8,
            "a varint group, but the stream ended",
        ),
        (
            "10000000 00000000".into(),
            1,
            16,
            "a varint without trailing zero groups",
        ),
        ("11111111".repeat(10), 1, 80, "a varint within 64 bits"),
        (
            "00000000".into(),
            1,
            8,
            "the first value, but the stream ended",
        ),
        (
            "00000000 0 1111111".into(),
            1,
            9,
            "the first value's 64 bits, but the stream ended",
        ),
        (
            "00000000 1 1 11111 000000".into(),
            1,
            21,
            "a decimal exponent of at most 22",
        ),
        // An interval of 0: sample 1 on the grid lands on sample 0's timestamp.
        (head("00 00000000 0 0"), 2, 28, ERR_ORDER),
        // A window of 63 leading zeros and 2 significant bits.
        (
            head(&format!("{INTERVAL_1} 11 0 110 111111 000001 11")),
            2,
            45,
            "a value window of at most 64 bits",
        ),
        // Sample 1 unchanged, then a run code of 17 zeros.
        (
            head(&format!("{INTERVAL_1} 11 0 0 {}", "0".repeat(24))),
            3,
            31,
            "a run code of at most 16 leading zeros",
        ),
        // A Rice code cut inside its ones.
        (
            head(&format!("{INTERVAL_1} 0 1111")),
            2,
            32,
            "a value code, but the stream ended",
        ),
        // A timestamp code cut after its first bit.
        (
            head(&format!("{INTERVAL_1} 11 1")),
            2,
            31,
            "a timestamp code, but the stream ended",
        ),
        // An early residual of -1 on an interval of 1: the timestamp does not move. Near the
        // end of the stream and away from it, as the decoder reads those differently.
        (
            head(&format!("{INTERVAL_1} 11 10 111111")),
            2,
            37,
            ERR_ORDER,
        ),
        (
            head(&format!("{INTERVAL_1} 11 10 111111 0 {}", "0".repeat(64))),
            2,
            37,
            ERR_ORDER,
        ),
        // A run on an interval of 0 (set by an escape of delta 1 with adjustment -1).
        (
            head(&format!("{INTERVAL_1} 11 111 00000001 1 11111111 0 101")),
            3,
            53,
            ERR_ORDER,
        ),
    ];
    for (bits, n, bit_offset, expected) in cases {
        let data = stream(&bits);
        let mut iter = XorIter::new(&data, n);
        iter.by_ref().for_each(drop);
        let want = ChunkError::CorruptStream {
            bit_offset,
            expected,
        };
        assert_eq!(iter.err(), Some(&want), "{bits}");
        assert_eq!(decode(&data, n, &mut Vec::new()), Err(want), "{bits}");
    }
}

#[test]
fn decodes_a_hand_written_stream() {
    // The worked example of docs/format/chunk-xor.md: (1000, 1.0), (16000, 1.0),
    // (31000, 1.5), (46003, 1.5), (61000, 1.5), (76000, 1.5).
    let data = stream(
        "11010000 00001111  1 0 000001 10 \
         11 00001111  11 0 0 \
         100  000 1 0 111 1 00001 000000 000011 1010 \
         11 10 000011 0 \
         110",
    );
    let samples = [
        (1_000, 1.0),
        (16_000, 1.0),
        (31_000, 1.5),
        (46_003, 1.5),
        (61_000, 1.5),
        (76_000, 1.5),
    ];
    let mut out = Vec::new();
    decode(&data, 6, &mut out).unwrap();
    assert_eq!(bits(&out), bits(&samples));
    assert_eq!(encode(&samples).data(), &data[..]);
}

#[test]
fn resume_rejects_what_the_encoder_never_writes() {
    let data = encode(&scrapes(3, |i| i as f64 * 7.0)).into_data();
    // Zero padding can read as extra samples, which is why the frame stores the count and the
    // last timestamp; a count past the padding fails.
    assert!(XorEncoder::resume(data.clone(), 3 + 8).is_err());
    assert!(
        XorEncoder::resume(data.clone(), 2).is_err(),
        "bytes after the last sample"
    );
    let mut padded = data.clone();
    padded.push(0);
    assert!(
        XorEncoder::resume(padded, 3).is_err(),
        "a whole byte of padding"
    );
    let mut dirty = data.clone();
    *dirty.last_mut().unwrap() |= 1;
    assert!(XorEncoder::resume(dirty, 3).is_err(), "non-zero padding");
    // A run that goes on past the last sample.
    let data = encode(&scrapes(10, |_| 1.0)).into_data();
    assert!(XorEncoder::resume(data.clone(), 10).is_ok());
    assert_eq!(
        XorEncoder::resume(data, 9).map(|_| ()),
        Err(ChunkError::CorruptStream {
            bit_offset: 77,
            expected: "a run that ends at the last sample"
        })
    );
}

#[test]
fn worst_case_stream_fits_the_bound() {
    // Alternating huge and tiny deltas (escapes), and values that switch between decimal and
    // XOR mode with wide changes.
    let mut enc = XorEncoder::new();
    let mut t = i64::MIN;
    for i in 0..u64::from(u16::MAX) {
        let v = match i % 4 {
            0 => 0x8000_0000_0000_0001,
            1 => (4.0e15 + i as f64).to_bits(),
            2 => u64::MAX,
            _ => (-4.0e15 - i as f64).to_bits(),
        };
        enc.append(t, f64::from_bits(v));
        t += if i % 2 == 0 { 1 } else { 1 << 46 };
    }
    assert!(enc.is_full());
    assert!(enc.data().len() <= STREAM_BYTES_MAX);
    let mut out = Vec::new();
    decode(enc.data(), u16::MAX, &mut out).unwrap();
    assert_eq!(out.len(), usize::from(u16::MAX));
}

/// Strictly increasing timestamps from any start.
fn increasing_timestamps() -> impl Strategy<Value = Vec<i64>> {
    // Mostly scrape-like gaps, and now and then one of any magnitude up to 2^64 - 1.
    let gap = prop_oneof![
        4 => Just(15_000u64),
        4 => 14_990u64..15_010,
        2 => 1u64..100,
        1 => (any::<u64>(), 0u32..64).prop_map(|(gap, shift)| (gap >> shift).max(1)),
    ];
    (any::<i64>(), proptest::collection::vec(gap, 0..300)).prop_map(|(start, gaps)| {
        let mut out = vec![start];
        for gap in gaps {
            match out.last().unwrap().checked_add_unsigned(gap) {
                Some(t) => out.push(t),
                None => break,
            }
        }
        out
    })
}

/// Any bit pattern, with the interesting ones and small integers overrepresented.
fn values() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(STALE_NAN),
        Just(0),
        Just(1.0f64.to_bits()),
        (0u64..1_000_000).prop_map(|x| (x as f64).to_bits()),
    ]
}

/// Increasing timestamps of any spacing, each with any bit pattern as its value.
fn any_series() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (
        increasing_timestamps(),
        proptest::collection::vec(values(), 300),
    )
        .prop_map(|(ts, vs)| {
            ts.iter()
                .zip(&vs)
                .map(|(&t, &v)| (t, f64::from_bits(v)))
                .collect()
        })
}

/// Scrape-shaped series: a grid with late, early and missed scrapes, and values that hold,
/// count, step through decimals and go stale, so runs and mode switches mix.
fn scrape_series() -> impl Strategy<Value = Vec<(i64, f64)>> {
    let step = (
        prop_oneof![8 => Just(0i64), 2 => 1i64..12, 1 => -12i64..0, 1 => Just(15_000), 1 => 1i64..40_000],
        prop_oneof![
            6 => Just(None),
            3 => (0i64..2_000).prop_map(Some),
            1 => Just(Some(i64::MIN)),
        ],
        0u32..4,
    );
    (proptest::collection::vec(step, 1..400)).prop_map(|steps| {
        let mut out = Vec::new();
        let (mut grid, mut value, mut last_t) = (T0, 0i64, i64::MIN);
        for (jitter, change, decimals) in steps {
            grid += 15_000;
            let t = (grid + jitter).max(last_t + 1);
            last_t = t;
            let v = match change {
                None => value as f64 / 10f64.powi(decimals as i32),
                Some(i64::MIN) => f64::from_bits(STALE_NAN),
                Some(delta) => {
                    value += delta;
                    value as f64 / 10f64.powi(decimals as i32)
                }
            };
            out.push((t, v));
        }
        out
    })
}

fn round_trip(samples: &[(i64, f64)], split: usize) -> Result<(), TestCaseError> {
    let enc = encode(samples);
    let mut out = Vec::new();
    decode(enc.data(), enc.num_samples(), &mut out).unwrap();
    prop_assert_eq!(bits(&out), bits(samples));
    // Resuming part way and appending the rest gives the same bytes.
    let split = split % (samples.len() + 1);
    let prefix = encode(&samples[..split]);
    let mut resumed = XorEncoder::resume(prefix.into_data(), split as u16).unwrap();
    for &(t, v) in &samples[split..] {
        resumed.append(t, v);
    }
    prop_assert_eq!(resumed.data(), enc.data());
    Ok(())
}

/// An encoder packed and unpacked before every append writes the same stream as one that
/// never was, and the packed form reports the same stream, count, first and last sample.
fn packed_between_appends(samples: &[(i64, f64)]) -> Result<(), TestCaseError> {
    let enc = encode(samples);
    let mut packed = XorEncoder::new().pack();
    for (i, &(t, v)) in samples.iter().enumerate() {
        let mut e = packed.unpack();
        e.append(t, v);
        packed = e.pack();
        prop_assert_eq!(packed.num_samples() as usize, i + 1);
        // Both ends come from the packed state, not from the stream.
        prop_assert_eq!(packed.first_t(), Some(samples[0].0));
        prop_assert_eq!(packed.last_t(), Some(t));
        prop_assert_eq!(
            packed.last().map(|(t, v)| (t, v.to_bits())),
            Some((t, v.to_bits()))
        );
    }
    prop_assert_eq!(packed.data(), enc.data());
    prop_assert_eq!(packed.first_t(), enc.first_t());
    let unpacked = packed.unpack();
    prop_assert_eq!(unpacked.data(), enc.data());
    Ok(())
}

/// A packed encoder keeps no more than its stream, its state (here under 40 bytes: decimal
/// mode, one interval) and one 16-byte allocator step: packing grows the buffer only to what
/// the state needs, so a head's growing chunks carry no spare capacity at rest.
#[test]
fn a_packed_encoder_holds_no_spare_growth() {
    let mut packed = XorEncoder::new().pack();
    let mut worst = 0;
    for k in 0..240i64 {
        let mut e = packed.unpack();
        // A counter of irregular steps: a few bits a sample.
        e.append(1_700_000_000_000 + 15_000 * k, (k * k % 97 + 40 * k) as f64);
        packed = e.pack();
        worst = worst.max(packed.buffer_len() - packed.data().len());
    }
    assert!(packed.data().len() > 200, "{}", packed.data().len());
    assert!(worst <= 40 + 16, "{worst} bytes beyond the stream");
}

/// `next_from(t)`, which skips samples without computing their values, then plain
/// iteration give the samples at or after `t`, bit for bit, whatever modes and runs the
/// skipped part went through.
fn skipping_reads_the_rest(samples: &[(i64, f64)], at: usize) -> Result<(), TestCaseError> {
    let enc = encode(samples);
    let t = samples
        .get(at % (samples.len() + 1))
        .map_or(i64::MAX, |s| s.0);
    for from in [t, t.saturating_sub(1), t.saturating_add(1)] {
        let mut it = XorIter::new(enc.data(), enc.num_samples());
        let got: Vec<(i64, f64)> = it.next_from(from).into_iter().chain(it.by_ref()).collect();
        let want: Vec<(i64, f64)> = samples.iter().copied().filter(|s| s.0 >= from).collect();
        prop_assert_eq!(bits(&got), bits(&want), "from {}", from);
        prop_assert!(it.err().is_none());
    }
    Ok(())
}

proptest! {
    #[test]
    fn skipping_scrape_shaped_series_reads_the_rest(samples in scrape_series(), at in any::<usize>()) {
        skipping_reads_the_rest(&samples, at)?;
    }

    #[test]
    fn skipping_any_series_reads_the_rest(samples in any_series(), at in any::<usize>()) {
        skipping_reads_the_rest(&samples, at)?;
    }

    #[test]
    fn packing_between_appends_changes_nothing(samples in any_series()) {
        packed_between_appends(&samples)?;
    }

    #[test]
    fn packing_scrape_shaped_series_changes_nothing(samples in scrape_series()) {
        packed_between_appends(&samples)?;
    }

    #[test]
    fn round_trips(samples in any_series(), split in any::<usize>()) {
        round_trip(&samples, split)?;
    }

    #[test]
    fn scrape_shaped_series_round_trip(samples in scrape_series(), split in any::<usize>()) {
        round_trip(&samples, split)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        num_samples in any::<u16>(),
    ) {
        let mut out = Vec::new();
        let result = decode(&data, num_samples, &mut out);
        prop_assert!(out.capacity() <= usize::from(num_samples));
        prop_assert_eq!(result.is_ok(), out.len() == usize::from(num_samples));
        prop_assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        let _ = XorEncoder::resume(data, num_samples);
    }

    /// Random bytes fail early; damaged real streams reach deeper into the decoder.
    #[test]
    fn damaged_streams_never_panic(
        samples in scrape_series(),
        flips in proptest::collection::vec(any::<usize>(), 1..4),
        cut in any::<usize>(),
        extra in 0u16..3,
    ) {
        let enc = encode(&samples);
        let n = enc.num_samples() + extra;
        let mut data = enc.into_data();
        if !data.is_empty() {
            for flip in flips {
                let bit = flip % (data.len() * 8);
                data[bit / 8] ^= 1 << (bit % 8);
            }
            data.truncate(data.len() - cut % data.len());
        }
        let mut out = Vec::new();
        let result = decode(&data, n, &mut out);
        prop_assert!(out.capacity() <= usize::from(n));
        prop_assert_eq!(result.is_ok(), out.len() == usize::from(n));
        prop_assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        if let Ok(mut resumed) = XorEncoder::resume(data, n) {
            // Whatever resumes takes another sample and still decodes.
            if let Some(t) = resumed.last().and_then(|(t, _)| t.checked_add(1)) {
                resumed.append(t, 0.5);
                let mut out = Vec::new();
                prop_assert!(decode(resumed.data(), resumed.num_samples(), &mut out).is_ok());
            }
        }
    }
}
