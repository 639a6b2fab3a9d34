//! Selectors: the engine's matchers for a parsed selector, and reading instant and range
//! vectors from storage with lookback, staleness, `offset` and `@`.

use promql_parser::label::MatchOp;
use promql_parser::parser::{MatrixSelector, VectorSelector};
use strata_core::labels::METRIC_NAME;
use strata_core::labels::matcher::{MatchKind, Matcher};
use strata_core::sample::{Sample, is_stale_marker};

use crate::ctx::{Ctx, millis};
use crate::error::PromqlError;
use crate::value::{ABSENT, EachRangeSeries, Series, Steps, Val, Windows, canonical, present};

/// The engine's matchers for a parsed selector: the name of `foo{…}` becomes a matcher on
/// `__name__`. The parser's `or` inside braces, which is not PromQL, is refused.
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, PromqlError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromqlError::Parse(
            "\"or\" is not allowed inside a vector selector".into(),
        ));
    }
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(METRIC_NAME, name));
    }
    for m in &vs.matchers.matchers {
        let kind = match m.op {
            MatchOp::Equal => MatchKind::Equal,
            MatchOp::NotEqual => MatchKind::NotEqual,
            MatchOp::Re(_) => MatchKind::Regex,
            MatchOp::NotRe(_) => MatchKind::NotRegex,
        };
        out.push(
            Matcher::new(kind, &m.name, &m.value)
                .map_err(|e| PromqlError::BadData(e.to_string()))?,
        );
    }
    Ok(out)
}

impl Ctx<'_> {
    /// A vector selector's value at every step: each series' newest sample in
    /// `(t - lookback, t]`, unless that is a stale marker. With `timestamps`, the value is
    /// the sample's time in seconds instead (for `timestamp()`).
    pub fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        steps: Steps,
        timestamps: bool,
    ) -> Result<Val, PromqlError> {
        let matchers = selector_matchers(vs)?;
        let times = self.read_times(&vs.at, &vs.offset, steps);
        let (Some(&lo), Some(&hi)) = (times.first(), times.last()) else {
            return Ok(Val::Vector(Vec::new()));
        };
        let lookback = self.opts.lookback_delta_ms;
        // The first time a window reaches back to: its start, or just after it.
        let open = i64::from(!self.opts.left_closed_windows);
        let mut out = Vec::new();
        // At one time only each series' newest sample matters.
        self.select_counted(
            times.len() == 1,
            &matchers,
            lo.saturating_sub(lookback) + open,
            hi,
            &mut |labels, samples| {
                let mut values = vec![ABSENT; steps.n];
                let mut next = 0;
                let mut any = false;
                for (i, &t) in times.iter().enumerate() {
                    while next < samples.len() && samples[next].t <= t {
                        next += 1;
                    }
                    if next == 0 {
                        continue;
                    }
                    let last = samples[next - 1];
                    if last.t >= t - lookback + open && !is_stale_marker(last.v) {
                        values[i] = if timestamps {
                            last.t as f64 / 1000.0
                        } else {
                            canonical(last.v)
                        };
                        any = true;
                    }
                }
                if any {
                    out.push(Series {
                        labels: labels.clone(),
                        drop_name: false,
                        values,
                    });
                }
                Ok(())
            },
        )?;
        Ok(Val::Vector(out))
    }

    /// Reads a matrix selector a series at a time, never holding it whole: `each(windows,
    /// labels, false, samples)` for every series with samples (stale markers removed).
    /// Returns where the windows lie.
    pub fn matrix_series(
        &mut self,
        ms: &MatrixSelector,
        steps: Steps,
        each: &mut EachRangeSeries<'_>,
    ) -> Result<Windows, PromqlError> {
        let matchers = selector_matchers(&ms.vs)?;
        let ends = self.read_times(&ms.vs.at, &ms.vs.offset, steps);
        let range_ms = millis(ms.range);
        let lo = ends.first().copied().unwrap_or(0);
        let hi = ends.last().copied().unwrap_or(-1);
        let open = i64::from(!self.opts.left_closed_windows);
        let windows = Windows {
            range_ms,
            ends,
            ts: steps.times().collect(),
            left_closed: self.opts.left_closed_windows,
        };
        let (mint, maxt) = (lo.saturating_sub(range_ms) + open, hi);
        if mint > maxt {
            return Ok(windows);
        }
        let mut scratch: Vec<Sample> = Vec::new();
        self.select_counted(false, &matchers, mint, maxt, &mut |labels, samples| {
            let samples = if samples
                .iter()
                .any(|s| is_stale_marker(s.v) || !present(s.v))
            {
                scratch.clear();
                scratch.extend(
                    samples
                        .iter()
                        .filter(|s| !is_stale_marker(s.v))
                        .map(|s| Sample::new(s.t, canonical(s.v))),
                );
                &scratch[..]
            } else {
                samples
            };
            if samples.is_empty() {
                return Ok(());
            }
            each(&windows, labels, false, samples)
        })?;
        Ok(windows)
    }
}
