//! Fuzzes remote-write 1.0 decoding, the server's first contact with untrusted bytes.
//!
//! The input is read two ways. As a protobuf body: the copy-free decoder the server ingests
//! with (`strata_wire::remote_write::decode`) must accept exactly what prost's decoding of the
//! declared messages accepts, and give the same labels, samples (by bits), exemplars and
//! metadata; decoded again with every series' label fields known (as the server's table of
//! stored series knows them), the same. As a snappy-compressed request: decompression within a cap and decoding must
//! return a request or an error, never panic, and never allocate past the decompressed-size
//! cap (the run's RSS limit catches that).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::collections::HashMap;

use strata_wire::remote_write::decode::{Request, decode, decode_with};
use strata_wire::remote_write::v1::{WriteRequest, decode_body};

/// Each series' labels, samples (by bits), exemplar and histogram counts.
type Contents<'a> = Vec<(Vec<(&'a str, &'a str)>, Vec<(i64, u64)>, usize, usize)>;

fn contents<'a>(r: &Request<'a>) -> Contents<'a> {
    r.series
        .iter()
        .map(|s| {
            let samples = r.samples_of(s).iter().map(|&(t, v)| (t, v.to_bits())).collect();
            let labels = r.labels_owned(s).expect("a decoded series' labels decode");
            (labels, samples, s.exemplars.len(), s.histograms)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let fast = decode(data);
    let slow = WriteRequest::decode(data);
    assert_eq!(
        fast.is_ok(),
        slow.is_ok(),
        "the decoders disagree: {fast:?} vs {slow:?}"
    );
    if let (Ok(fast), Ok(slow)) = (fast, slow) {
        let view = Request::view(&slow);
        assert_eq!(contents(&fast), contents(&view));
        assert_eq!(fast.exemplars.len(), view.exemplars.len());
        assert_eq!(fast.metadata, view.metadata);
        let known: HashMap<&[u8], u64> = fast
            .series
            .iter()
            .zip(0..)
            .filter_map(|(s, i)| Some((fast.raw_labels_of(s)?, i)))
            .collect();
        let again = decode_with(data, |raw| known.get(raw).copied())
            .expect("a body decodes again with its series known");
        assert_eq!(contents(&again), contents(&view));
    }
    let _ = decode_body(data, 1 << 20);
});
