//! The head's side of the write-ahead log: its series as `Series` record payloads, and
//! replaying the metrics records ([`crate::record`]) into the head with the same infallible
//! apply that commits use, so a replayed head equals the head that was lost.

use std::sync::atomic::Ordering;

use strata_core::codec::DecodeError;
use strata_wal::frame::RecordType;
use strata_wal::replay::{ReplayHandler, Source};

use super::series::SeriesArc;
use super::{Head, REPLAY_INDEX_GROWTH_MAX, Tally};
use crate::record::{self, ChunkEntry, RefSample, SeriesEntry, encode_series};

/// Encodes a `Series` record payload naming `series` with their labels.
pub(crate) fn encode_series_record(
    out: &mut Vec<u8>,
    series: &[impl std::borrow::Borrow<SeriesArc>],
) {
    encode_series(
        out,
        series.iter().map(|s| {
            let s = s.borrow();
            (
                s.series_ref(),
                s.labels()
                    .iter()
                    .map(|l| (l.name().as_str(), l.value().as_str())),
            )
        }),
    );
}

impl ReplayHandler for Head {
    fn on_record(
        &mut self,
        ty: RecordType,
        payload: &[u8],
        source: Source,
    ) -> Result<(), DecodeError> {
        match ty {
            record::SERIES => {
                let mut entries = Vec::new();
                record::decode_series(payload, &mut entries)?;
                self.replay_series(&entries)
            }
            record::SAMPLES => {
                let mut samples = std::mem::take(&mut self.replay_buffer);
                samples.clear();
                let decoded = record::decode_samples(payload, &mut samples);
                if decoded.is_ok() {
                    self.replay_samples(&samples);
                }
                self.replay_buffer = samples;
                decoded
            }
            record::CHUNKS if source == Source::Checkpoint => {
                let mut entries = Vec::new();
                record::decode_chunks(payload, &mut entries)?;
                self.replay_chunks(&entries)
            }
            record::CHUNKS => Err(DecodeError("checkpoint record in a segment")),
            _ => Err(DecodeError("unknown record type")),
        }
    }
}

impl Head {
    fn replay_series(&mut self, entries: &[SeriesEntry<'_>]) -> Result<(), DecodeError> {
        for e in entries {
            self.restore_series(e.series, &e.labels)?;
            let at = e.series.0 as usize;
            if at < self.replay_index.len() + REPLAY_INDEX_GROWTH_MAX {
                if at >= self.replay_index.len() {
                    self.replay_index.resize(at + 1, None);
                }
                self.replay_index[at] = self.get(e.series);
            }
        }
        Ok(())
    }

    fn replay_samples(&mut self, samples: &[RefSample]) {
        let mut i = 0;
        let mut tally = Tally::default();
        while i < samples.len() {
            // Consecutive samples of one series are applied under one lock.
            let r = samples[i].series;
            let run = samples[i..].iter().take_while(|s| s.series == r).count();
            match self.replayed(r) {
                Some(series) => series.apply_many(
                    samples[i..i + run].iter().map(|s| (s.t, s.v)),
                    &self.limits,
                    &mut tally,
                ),
                None => {
                    self.counters
                        .samples_orphaned
                        .fetch_add(run as u64, Ordering::Relaxed);
                }
            }
            i += run;
        }
        self.record(&tally);
    }

    fn replay_chunks(&mut self, chunks: &[ChunkEntry<'_>]) -> Result<(), DecodeError> {
        for c in chunks {
            match self.replayed(c.series) {
                Some(series) => {
                    let added = series.restore(c, &self.limits)?;
                    self.note_range((c.min_t, c.max_t));
                    self.counters
                        .samples_restored
                        .fetch_add(added, Ordering::Relaxed);
                }
                None => {
                    self.counters
                        .samples_orphaned
                        .fetch_add(u64::from(c.num_samples), Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}
