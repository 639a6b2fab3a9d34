//! A block's `meta.json`: what the block holds, readable by people and tools, and checksummed.
//!
//! The file is one compact JSON object. Its `crc32` field is the CRC32 of the same object
//! serialised with `crc32` set to 0, so any change to a value is caught; unknown fields are
//! refused, so a changed key is caught too; and a change that breaks the JSON is a parse error.

use std::path::Path;

use serde::{Deserialize, Serialize};

use strata_core::error::StorageError;

/// The format version written in `meta.json`.
pub const META_FORMAT: u32 = 1;
/// The file name.
pub const META_FILE: &str = "meta.json";

/// What a block holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockMeta {
    /// Format version, [`META_FORMAT`].
    pub format: u32,
    /// The block's id: its directory name.
    pub id: String,
    /// The first timestamp of any sample in the block.
    pub min_t: i64,
    /// The last timestamp of any sample in the block.
    pub max_t: i64,
    /// Series in the block.
    pub series: u64,
    /// Chunks in the block.
    pub chunks: u64,
    /// Samples in the block.
    pub samples: u64,
    /// 1 for a block cut from the head; compaction adds one per merge.
    pub level: u32,
    /// The ids of the blocks this one was compacted from (empty for level 1).
    pub sources: Vec<String>,
    /// Size of the index file.
    pub index_bytes: u64,
    /// Total size of the chunk files.
    pub chunk_bytes: u64,
    /// CRC32 of this object serialised with `crc32` = 0.
    pub crc32: u32,
}

impl BlockMeta {
    fn checksum(&self) -> u32 {
        let mut copy = self.clone();
        copy.crc32 = 0;
        crc32fast::hash(&serde_json::to_vec(&copy).expect("a meta always serialises"))
    }

    /// The file's bytes, with the checksum filled in.
    pub fn encode(&self) -> Vec<u8> {
        let mut sealed = self.clone();
        sealed.crc32 = sealed.checksum();
        serde_json::to_vec(&sealed).expect("a meta always serialises")
    }

    /// Parses and checks `meta.json` read from `path`.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<BlockMeta, StorageError> {
        let bad = |reason| StorageError::Corruption {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        };
        let meta: BlockMeta = serde_json::from_slice(bytes)
            .map_err(|_| bad("block meta is not valid json of the expected shape"))?;
        if meta.crc32 != meta.checksum() {
            return Err(bad("block meta checksum mismatch"));
        }
        if meta.format != META_FORMAT {
            return Err(bad("unsupported block meta format"));
        }
        if meta.min_t > meta.max_t && meta.samples > 0 {
            return Err(bad("block meta time range is inverted"));
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BlockMeta {
        BlockMeta {
            format: META_FORMAT,
            id: "b-000001".into(),
            min_t: -5,
            max_t: 1_700_000_000_000,
            series: 3,
            chunks: 4,
            samples: 500,
            level: 2,
            sources: vec!["a".into(), "b".into()],
            index_bytes: 1234,
            chunk_bytes: 5678,
            crc32: 0,
        }
    }

    #[test]
    fn meta_round_trips() {
        let m = meta();
        let decoded = BlockMeta::decode(Path::new("m"), &m.encode()).unwrap();
        assert_eq!(
            BlockMeta {
                crc32: 0,
                ..decoded
            },
            m
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let good = meta().encode();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                BlockMeta::decode(Path::new("m"), &bad).is_err(),
                "flip of bit {bit} went undetected: {}",
                String::from_utf8_lossy(&bad)
            );
        }
    }
}
