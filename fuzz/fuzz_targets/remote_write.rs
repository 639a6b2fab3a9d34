//! Fuzzes remote-write 1.0 decoding, the server's first contact with untrusted bytes.
//!
//! The input is read two ways. As a protobuf body: the copy-free decoder the server ingests
//! with (`strata_wire::remote_write::decode`) must accept exactly what prost's decoding of the
//! declared messages accepts, and give the same labels, samples (by bits), exemplars and
//! metadata. As a snappy-compressed request: decompression within a cap and decoding must
//! return a request or an error, never panic, and never allocate past the decompressed-size
//! cap (the run's RSS limit catches that).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use strata_wire::remote_write::decode::{Request, decode};
use strata_wire::remote_write::v1::{WriteRequest, decode_body};

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
        assert_eq!(fast.series, view.series);
        assert_eq!(fast.labels, view.labels);
        let bits = |r: &Request<'_>| -> Vec<(i64, u64)> {
            r.samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
        };
        assert_eq!(bits(&fast), bits(&view));
        assert_eq!(fast.exemplars.len(), view.exemplars.len());
        assert_eq!(fast.metadata, view.metadata);
    }
    let _ = decode_body(data, 1 << 20);
});
