//! The metrics store as PromQL's storage: [`Storage`] for [`Db`], reading each series into one
//! reused buffer, and only the newest sample where a selector at one time needs no more.

use strata_core::labels::matcher::Matcher;
use strata_core::sample::Sample;
use strata_tsdb::Db;

use crate::error::PromqlError;
use crate::result::RangeSeries;
use crate::storage::{EachSeries, Storage};

fn too_many_samples(max: usize) -> PromqlError {
    PromqlError::TooManySamples {
        phase: "query execution",
        max,
    }
}

impl Storage for Db {
    fn select(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
    ) -> Result<Vec<RangeSeries>, PromqlError> {
        let mut out = Vec::new();
        self.select_each(mint, maxt, matchers, samples_max, &mut |labels, samples| {
            out.push(RangeSeries {
                labels: labels.clone(),
                samples: samples.to_vec(),
            });
            Ok(())
        })?;
        Ok(out)
    }

    fn select_each(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        db_select_each(self, mint, maxt, matchers, samples_max, false, each)
    }

    fn select_newest_each(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        db_select_each(self, mint, maxt, matchers, samples_max, true, each)
    }
}

/// Both selections of [`Db`]: every sample of each series, decoded into one buffer reused
/// from series to series, or with `newest` only the newest one.
fn db_select_each(
    db: &Db,
    mint: i64,
    maxt: i64,
    matchers: &[Matcher],
    samples_max: usize,
    newest: bool,
    each: &mut EachSeries<'_>,
) -> Result<(), PromqlError> {
    let querier = db.querier(mint, maxt);
    if newest && let Some(found) = querier.select_newest(matchers) {
        if found.len() > samples_max {
            return Err(too_many_samples(samples_max));
        }
        for (labels, sample) in &found {
            each(labels, std::slice::from_ref(sample))?;
        }
        return Ok(());
    }
    let selected = querier.select(matchers)?;
    let mut total = 0usize;
    let mut buffer: Vec<Sample> = Vec::new();
    for s in &selected {
        buffer.clear();
        // The head's open chunk knows its last sample: a query at "now" decodes nothing.
        match s.newest_without_decoding().filter(|_| newest) {
            Some(sample) => buffer.push(sample),
            None => {
                s.samples_into(&mut buffer);
                if newest {
                    let keep = buffer.len().saturating_sub(1);
                    buffer.drain(..keep);
                }
            }
        }
        total += buffer.len();
        if total > samples_max {
            return Err(too_many_samples(samples_max));
        }
        if !buffer.is_empty() {
            each(s.labels(), &buffer)?;
        }
    }
    Ok(())
}
