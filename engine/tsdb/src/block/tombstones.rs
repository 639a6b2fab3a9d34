//! A block's `tombstones.json`: time ranges of its series deleted after it was written.
//!
//! Blocks are immutable; deleting series (the admin API's `delete_series`) records what is
//! gone beside the block instead, queries skip it, and the next compaction writes the block's
//! data without it. The file is replaced whole (written as `tombstones.json.tmp`, synced, then
//! renamed over the old one), and checksummed like `meta.json`: a CRC32 of the object with
//! `crc32` set to 0.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use strata_core::error::{StorageError, io_err};
use strata_core::fs::Fs;

/// The file name inside a block.
pub const TOMBSTONES_FILE: &str = "tombstones.json";
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: u32,
    /// Series id in the block's index, and its deleted ranges `[min_t, max_t]`.
    series: Vec<(u32, Vec<(i64, i64)>)>,
    crc32: u32,
}

impl File {
    fn checksum(&self) -> u32 {
        let copy = File {
            format: self.format,
            series: self.series.clone(),
            crc32: 0,
        };
        crc32fast::hash(&serde_json::to_vec(&copy).expect("tombstones always serialise"))
    }
}

/// Deleted time ranges per series of a block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    /// Invariant: each list sorted, not overlapping and not touching, and not empty.
    by_series: BTreeMap<u32, Vec<(i64, i64)>>,
}

impl Tombstones {
    /// Whether nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// The deleted ranges of series `id` (sorted, disjoint), empty if none.
    pub fn ranges(&self, id: u32) -> &[(i64, i64)] {
        self.by_series.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Series with deleted ranges.
    pub fn num_series(&self) -> usize {
        self.by_series.len()
    }

    /// Marks `[min_t, max_t]` of series `id` deleted.
    pub fn add(&mut self, id: u32, min_t: i64, max_t: i64) {
        if min_t > max_t {
            return;
        }
        let list = self.by_series.entry(id).or_default();
        list.push((min_t, max_t));
        list.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(list.len());
        for &(lo, hi) in list.iter() {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        *list = merged;
    }

    /// Reads the block's tombstones in `dir`; none if the file does not exist.
    pub fn read(fs: &dyn Fs, dir: &Path) -> Result<Tombstones, StorageError> {
        let path = dir.join(TOMBSTONES_FILE);
        if !fs
            .exists(&path)
            .map_err(io_err("look for tombstones", &path))?
        {
            return Ok(Tombstones::default());
        }
        let bytes = fs.read(&path).map_err(io_err("read tombstones", &path))?;
        Tombstones::decode(&path, &bytes)
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Tombstones, StorageError> {
        let bad = |reason| StorageError::Corruption {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        };
        let file: File = serde_json::from_slice(bytes)
            .map_err(|_| bad("tombstones are not valid json of the expected shape"))?;
        if file.crc32 != file.checksum() {
            return Err(bad("tombstones checksum mismatch"));
        }
        if file.format != FORMAT {
            return Err(bad("unsupported tombstones format"));
        }
        let mut t = Tombstones::default();
        for (id, ranges) in file.series {
            for (lo, hi) in ranges {
                t.add(id, lo, hi);
            }
        }
        Ok(t)
    }

    fn encode(&self) -> Vec<u8> {
        let mut file = File {
            format: FORMAT,
            series: self
                .by_series
                .iter()
                .map(|(id, r)| (*id, r.clone()))
                .collect(),
            crc32: 0,
        };
        file.crc32 = file.checksum();
        serde_json::to_vec(&file).expect("tombstones always serialise")
    }

    /// Replaces the block's tombstones file in `dir` durably.
    pub fn write(&self, fs: &dyn Fs, dir: &Path) -> Result<(), StorageError> {
        let path = dir.join(TOMBSTONES_FILE);
        let tmp = dir.join(format!("{TOMBSTONES_FILE}.tmp"));
        let mut f = fs.create(&tmp).map_err(io_err("create tombstones", &tmp))?;
        f.append(&self.encode())
            .and_then(|()| f.sync())
            .map_err(io_err("write tombstones", &tmp))?;
        drop(f);
        fs.rename(&tmp, &path)
            .map_err(io_err("replace tombstones", &path))?;
        fs.sync_dir(dir)
            .map_err(io_err("sync block directory", dir))
    }
}

/// Whether `[lo, hi]` lies wholly inside one of `ranges` (sorted, disjoint, not touching).
pub fn covers(ranges: &[(i64, i64)], lo: i64, hi: i64) -> bool {
    let i = ranges.partition_point(|&(_, end)| end < lo);
    ranges
        .get(i)
        .is_some_and(|&(start, end)| start <= lo && hi <= end)
}

/// Whether `t` is in one of `ranges` (sorted, disjoint).
pub fn deleted(ranges: &[(i64, i64)], t: i64) -> bool {
    let i = ranges.partition_point(|&(_, hi)| hi < t);
    ranges.get(i).is_some_and(|&(lo, _)| lo <= t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::fs::sim::SimFs;

    #[test]
    fn ranges_merge_and_answer_membership() {
        let mut t = Tombstones::default();
        t.add(3, 10, 20);
        t.add(3, 30, 40);
        t.add(3, 21, 25);
        t.add(3, 5, 5);
        t.add(7, 1, 0);
        assert_eq!(t.ranges(3), &[(5, 5), (10, 25), (30, 40)]);
        assert!(t.ranges(7).is_empty());
        for (x, want) in [
            (4, false),
            (5, true),
            (6, false),
            (10, true),
            (25, true),
            (26, false),
            (40, true),
            (41, false),
        ] {
            assert_eq!(deleted(t.ranges(3), x), want, "{x}");
        }
    }

    #[test]
    fn the_file_round_trips_survives_a_crash_and_detects_every_bit_flip() {
        let fs = SimFs::new(4);
        let dir = Path::new("/b");
        fs.create_dir_all(dir).unwrap();
        assert!(Tombstones::read(&fs, dir).unwrap().is_empty());
        let mut t = Tombstones::default();
        t.add(0, -5, 5);
        t.add(9, i64::MIN, i64::MAX);
        t.write(&fs, dir).unwrap();
        let after = fs.crash();
        assert_eq!(Tombstones::read(&after, dir).unwrap(), t);
        let good = t.encode();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Tombstones::decode(Path::new("t"), &bad).is_err(),
                "flip of bit {bit} went undetected"
            );
        }
    }
}
