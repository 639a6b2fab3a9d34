//! Arbitrary bytes into the chunk readers: `read_frame` on the whole input, and the XOR decoder
//! on the input after its first two bytes, which give the sample count. Neither may panic or
//! loop; whatever they accept must be self-consistent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_engine::chunk::{Times, read_frame};
use strata_engine::chunk::xor::{XorEncoder, XorIter};

fuzz_target!(|data: &[u8]| {
    if let Ok((frame, len)) = read_frame(data)
        && frame.times == Times::Own
    {
        // (An encoding-3 frame's timestamps are in another frame of its block: the
        // `block_chunks` target reads those.)
        assert!(len <= data.len());
        // An accepted frame decodes cleanly to exactly what its header says.
        let mut iter = frame.samples();
        let samples: Vec<(i64, f64)> = iter.by_ref().collect();
        assert!(iter.err().is_none());
        assert_eq!(samples.len(), usize::from(frame.meta.num_samples));
        if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
            assert_eq!((first.0, last.0), (frame.meta.min_t, frame.meta.max_t));
        }
    }

    let Some((count, stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let num_samples = u16::from_le_bytes(*count);
    let mut iter = XorIter::new(stream, num_samples);
    let mut decoded = 0usize;
    let mut previous = None;
    for (t, _) in iter.by_ref() {
        // The decoder never yields a timestamp that does not increase.
        assert!(previous.is_none_or(|p| t > p));
        previous = Some(t);
        decoded += 1;
    }
    assert!(decoded <= usize::from(num_samples));
    assert_eq!(iter.err().is_none(), decoded == usize::from(num_samples));
    if let Ok(mut encoder) = XorEncoder::resume(stream.to_vec(), num_samples) {
        // A stream that resumes takes more samples and still decodes.
        if !encoder.is_full() {
            let t = encoder.last().map_or(0, |(t, _)| t);
            if let Some(next) = t.checked_add(1) {
                encoder.append(next, 0.5);
                let mut out = Vec::new();
                strata_engine::chunk::xor::decode(encoder.data(), encoder.num_samples(), &mut out)
                    .expect("a resumed stream decodes");
                assert_eq!(out.last().map(|s| s.0), Some(next));
            }
        }
    }
});
