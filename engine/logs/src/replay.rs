//! Replaying the log into a head on opening: streams restored under their references (or the
//! one their labels already have), entries applied, entries of streams a seal forgot counted
//! and dropped, and the checkpoint's last sealed block number read.

use std::collections::HashMap;

use strata_core::codec::DecodeError;
use strata_core::labels::Labels;
use strata_wal::frame::RecordType;
use strata_wal::replay::{ReplayHandler, Source};

use crate::entry::{Entry, StreamRef};
use crate::head::Head;
use crate::record::{self, EntryRecord, StreamRecord};

/// Replays the log into a head.
pub(crate) struct Replay {
    pub head: Head,
    pub orphaned: u64,
    /// The checkpoint's Sealed number (0: none).
    pub sealed: u32,
    /// References logged for labels already known under another one (a stream a seal
    /// forgot, created again while the log it was first named in was still kept).
    pub aliases: HashMap<StreamRef, StreamRef>,
}

impl ReplayHandler for Replay {
    fn on_record(
        &mut self,
        ty: RecordType,
        payload: &[u8],
        source: Source,
    ) -> Result<(), DecodeError> {
        match ty {
            record::STREAMS => {
                let mut streams: Vec<StreamRecord<'_>> = Vec::new();
                record::decode_streams(payload, &mut streams)?;
                for s in streams {
                    let labels = Labels::new(s.labels.iter().copied())
                        .map_err(|_| DecodeError("stream labels that are not a label set"))?;
                    let r = self
                        .head
                        .restore_stream(s.stream, labels)
                        .map_err(DecodeError)?;
                    if r != s.stream {
                        self.aliases.insert(s.stream, r);
                    }
                }
                Ok(())
            }
            record::ENTRIES => {
                let mut entries: Vec<EntryRecord<'_>> = Vec::new();
                record::decode_entries(payload, &mut entries)?;
                for e in entries {
                    let r = self.aliases.get(&e.stream).copied().unwrap_or(e.stream);
                    if self.head.get(r).is_none() {
                        self.orphaned += 1;
                        continue;
                    }
                    let entry = Entry {
                        ts_ns: e.ts_ns,
                        line: e.line.to_string(),
                        metadata: e
                            .metadata
                            .iter()
                            .map(|&(n, v)| (n.to_string(), v.to_string()))
                            .collect(),
                    };
                    self.head.apply(r, &entry);
                }
                Ok(())
            }
            record::SEALED if source == Source::Checkpoint => {
                self.sealed = record::decode_sealed(payload)?;
                Ok(())
            }
            _ => Err(DecodeError(
                "a record type the log store does not know here",
            )),
        }
    }
}
