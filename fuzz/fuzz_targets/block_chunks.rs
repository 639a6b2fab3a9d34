//! Arbitrary bytes as the frames of a block chunk file, read at arbitrary references: every read is data that
//! passed its CRC and decodes consistently, or a corruption error; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_engine::block::chunks::{CHUNKS_MAGIC, ChunkRef, ChunksReader};
use strata_engine::fs::Fs;
use strata_engine::fs::sim::SimFs;
use strata_engine::codec::{FileHeader, encode_file_header};

fuzz_target!(|data: &[u8]| {
    let Some((refs, file)) = data.split_at_checked(32) else {
        return;
    };
    let fs = SimFs::new(0);
    let dir = Path::new("/b/chunks");
    fs.create_dir_all(dir).unwrap();
    let mut f = fs.create(&dir.join("00000001")).unwrap();
    // A valid header, so the fuzzer spends its time on the frames.
    let header = FileHeader {
        seq: 1,
        prev_synced_len: 0,
    };
    f.append(&encode_file_header(CHUNKS_MAGIC, header)).unwrap();
    f.append(file).unwrap();
    let Ok(reader) = ChunksReader::open(&fs, dir) else {
        return;
    };
    for r in refs.chunks_exact(8) {
        let r = ChunkRef(u64::from_le_bytes(r.try_into().unwrap()) & 0x0000_0003_ffff_ffff);
        if let Ok(frame) = reader.read(r) {
            let n = frame.samples().count();
            assert_eq!(n, usize::from(frame.meta.num_samples));
        }
    }
});
