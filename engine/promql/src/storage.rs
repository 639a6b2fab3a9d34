//! What a query reads: any storage that selects series by label matchers and time range.

use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::sample::Sample;

use crate::error::PromqlError;
use crate::result::RangeSeries;

/// What [`Storage::select_each`] calls for each series: its labels and samples.
pub type EachSeries<'a> = dyn FnMut(&Labels, &[Sample]) -> Result<(), PromqlError> + 'a;

/// Series data a query reads.
pub trait Storage {
    /// The series matching every matcher with their samples in `[mint, maxt]`, in time order
    /// (the stale marker included). At most `samples_max` samples in all; more is
    /// [`PromqlError::TooManySamples`].
    fn select(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
    ) -> Result<Vec<RangeSeries>, PromqlError>;

    /// [`Storage::select`] a series at a time: `each(labels, samples)` for every series with
    /// samples, which the implementation may decode into one buffer it reuses, so a query
    /// never holds every series' samples at once. The default collects [`Storage::select`].
    fn select_each(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        for s in self.select(mint, maxt, matchers, samples_max)? {
            each(&s.labels, &s.samples)?;
        }
        Ok(())
    }

    /// [`Storage::select_each`] for a caller that needs only each series' newest sample in
    /// range (an instant vector selector at one time): `samples` may hold just that one. The
    /// default passes the last sample of what [`Storage::select_each`] gives.
    fn select_newest_each(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        self.select_each(mint, maxt, matchers, samples_max, &mut |labels, samples| {
            each(labels, &samples[samples.len().saturating_sub(1)..])
        })
    }
}
