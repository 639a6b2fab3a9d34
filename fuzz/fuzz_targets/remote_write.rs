//! Fuzzes remote-write 1.0 decoding, the server's first contact with untrusted bytes.
//!
//! The input is read two ways. As a protobuf body: the server's copy-free decoder
//! (`remote_write::wire`) must accept exactly what prost's decoding of the declared messages
//! accepts, and give the same labels, samples (by bits), exemplars and metadata. As a
//! snappy-compressed request: decoding must return a request or a rejection, never panic,
//! and never allocate past the decompressed-size cap (the run's RSS limit catches that).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use strata_server::remote_write::{self, Limits, WriteRequest, wire};

fuzz_target!(|data: &[u8]| {
    let fast = wire::decode(data);
    let slow = WriteRequest::decode(data);
    assert_eq!(
        fast.is_ok(),
        slow.is_ok(),
        "the decoders disagree: {fast:?} vs {slow:?}"
    );
    if let (Ok(fast), Ok(slow)) = (fast, slow) {
        let view = wire::Request::view(&slow);
        assert_eq!(fast.series, view.series);
        assert_eq!(fast.labels, view.labels);
        let bits = |r: &wire::Request<'_>| -> Vec<(i64, u64)> {
            r.samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
        };
        assert_eq!(bits(&fast), bits(&view));
        assert_eq!(fast.exemplars.len(), view.exemplars.len());
        assert_eq!(fast.metadata, view.metadata);
    }
    let limits = Limits {
        decoded_bytes_max: 1 << 20,
        ..Limits::default()
    };
    let _ = remote_write::decode(data, &limits);
});
