//! Blocks: immutable directories holding a time range of series on disk (being built; today
//! the chunk files, [`chunks`]). Format in `docs/format/block.md`.

pub mod chunks;
pub mod index;
