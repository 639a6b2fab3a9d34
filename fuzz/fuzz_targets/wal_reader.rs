//! Arbitrary bytes as a WAL segment: the frame scanner and every payload decoder must return
//! errors, never panic or allocate without bound; and opening a database whose only segment
//! holds these bytes must succeed (damage is repaired and reported, never fatal).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use strata_engine::fs::Fs;
use strata_engine::fs::sim::SimFs;
use strata_engine::codec::DecodeError;
use strata_engine::record::{self, decode_chunks, decode_samples, decode_series};
use strata_engine::wal::frame::{RecordType, decode_checkpoint_end};
use strata_engine::wal::reader::scan;
use strata_engine::{Db, ManualClock, Options};

fuzz_target!(|data: &[u8]| {
    let _ = scan(data, 0, |ty, payload, _| {
        match ty {
            record::SERIES => decode_series(payload, &mut Vec::new()),
            record::SAMPLES => decode_samples(payload, &mut Vec::new()),
            record::CHUNKS => decode_chunks(payload, &mut Vec::new()),
            RecordType::CHECKPOINT_END => decode_checkpoint_end(payload).map(|_| ()),
            _ => Err(DecodeError("unknown record type")),
        }
    });

    let fs = SimFs::new(0);
    fs.create_dir_all("/db/wal".as_ref()).unwrap();
    let mut f = fs.create("/db/wal/00000001".as_ref()).unwrap();
    f.append(data).unwrap();
    f.sync().unwrap();
    fs.sync_dir("/db/wal".as_ref()).unwrap();
    let options = Options {
        fs: Arc::new(fs),
        clock: Arc::new(ManualClock::new(0)),
        background_maintenance: false,
        checkpoint_on_close: false,
        ..Options::default()
    };
    let db = Db::open("/db", options).expect("damage is repaired, never fatal");
    drop(db);
});
