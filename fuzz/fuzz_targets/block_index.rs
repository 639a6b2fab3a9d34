//! Arbitrary bytes as a block index: `open` either rejects them or every read after it is
//! data or a corruption error; never a panic. Half the inputs are taken as they are (damage
//! the checksums must catch); the other half are cut into four section bodies and framed with
//! valid checksums, so the fuzzer reaches the decoders behind the CRCs.
#![no_main]

use std::path::PathBuf;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use strata_engine::block::index::{IndexReader, frame_sections};
use strata_engine::fs::Mapped;
use strata_engine::labels::matcher::{MatchKind, Matcher};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes: Arc<[u8]> = if mode & 1 == 0 {
        Arc::from(rest)
    } else {
        // Two bytes per cut point, then the sections' bytes.
        let Some((cuts, body)) = rest.split_at_checked(6) else {
            return;
        };
        let mut at = [0usize; 3];
        for (i, c) in cuts.chunks_exact(2).enumerate() {
            at[i] = usize::from(u16::from_le_bytes([c[0], c[1]])) % (body.len() + 1);
        }
        at.sort_unstable();
        let (a, b) = body.split_at(at[0]);
        let (b, c) = b.split_at(at[1] - at[0]);
        let (c, d) = c.split_at(at[2] - at[1]);
        Arc::from(frame_sections([a, b, c, d]))
    };
    let Ok(reader) = IndexReader::open(PathBuf::from("index"), Mapped::from_memory(bytes)) else {
        return;
    };
    let _ = reader.label_names();
    let _ = reader.label_values("job");
    let matchers = [
        vec![],
        vec![Matcher::equal("job", "api")],
        vec![Matcher::not_equal("a", "")],
        vec![
            Matcher::new(MatchKind::Regex, "a", "b.*|c").unwrap(),
            Matcher::new(MatchKind::NotRegex, "job", "x|").unwrap(),
        ],
    ];
    for ms in &matchers {
        if let Ok(ids) = reader.select(ms) {
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            assert!(ids.iter().all(|&id| id < reader.num_series()));
        }
    }
    for id in 0..reader.num_series().min(16) {
        let _ = reader.series(id);
    }
});
