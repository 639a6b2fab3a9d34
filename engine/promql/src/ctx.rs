//! What the nodes of one query share while it is evaluated: the settings, the storage and its
//! sample budget, the query's times, the stop handle, the annotations collected so far and
//! where each node stands in the query's text.

use std::time::{Duration, SystemTime};

use promql_parser::parser::{AtModifier, Expr, Offset};
use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::sample::Sample;

use crate::annotations::Annotations;
use crate::error::PromqlError;
use crate::options::EngineOptions;
use crate::position::Positions;
use crate::stop::Stop;
use crate::storage::{EachSeries, Storage};
use crate::value::Steps;

/// State shared by the nodes of one query.
pub(crate) struct Ctx<'a> {
    pub opts: &'a EngineOptions,
    storage: &'a dyn Storage,
    stop: &'a Stop,
    /// The query's first and last evaluation times (`@ start()`, `@ end()`).
    pub query_start: i64,
    pub query_end: i64,
    /// The query's step, milliseconds (0 for an instant query).
    pub query_step: i64,
    pub annotations: Annotations,
    /// Where the query's nodes start, for annotations.
    pub positions: Positions,
    /// Samples read from storage so far, against `opts.samples_max`.
    samples_loaded: usize,
}

impl<'a> Ctx<'a> {
    /// The context of a query evaluated from `start` to `end` (`step`: 0 for an instant
    /// query) whose text and tree are `text` and `expr`.
    #[allow(clippy::too_many_arguments)] // reason: the query's whole description, passed once
    pub(crate) fn new(
        opts: &'a EngineOptions,
        storage: &'a dyn Storage,
        stop: &'a Stop,
        start: i64,
        end: i64,
        step: i64,
        text: &str,
        expr: &Expr,
    ) -> Ctx<'a> {
        Ctx {
            opts,
            storage,
            stop,
            query_start: start,
            query_end: end,
            query_step: step,
            annotations: Annotations::default(),
            positions: Positions::new(text, expr),
            samples_loaded: 0,
        }
    }

    /// ` (line:column)` of `e` in the query text, for an annotation about it.
    pub fn at(&self, e: &Expr) -> String {
        self.positions.suffix(e)
    }

    /// Ends the query if its caller stopped it.
    pub fn check_stop(&self) -> Result<(), PromqlError> {
        self.stop.check()
    }

    /// The evaluation time of each step: the `@` time if there is one, else the step's.
    fn eval_times(&self, at: &Option<AtModifier>, steps: Steps) -> Vec<i64> {
        let fixed = match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(time_millis(*t)),
        };
        steps.times().map(|t| fixed.unwrap_or(t)).collect()
    }

    /// The time each step reads data at, after `@` and `offset`: never decreasing.
    pub fn read_times(
        &self,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
        steps: Steps,
    ) -> Vec<i64> {
        let shift = match offset {
            None => 0,
            Some(Offset::Pos(d)) => millis(*d),
            Some(Offset::Neg(d)) => -millis(*d),
        };
        self.eval_times(at, steps)
            .into_iter()
            .map(|t| t.saturating_sub(shift))
            .collect()
    }

    /// Calls `each(labels, samples)` for the series matching `matchers` with samples in
    /// `[mint, maxt]`, counting them against the query's budget. With `newest`, `samples`
    /// may hold only each series' newest sample in range ([`Storage::select_newest_each`]).
    pub fn select_counted(
        &mut self,
        newest: bool,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        let budget = self.opts.samples_max.saturating_sub(self.samples_loaded);
        let mut loaded = 0usize;
        let stop = self.stop;
        let mut counted = |labels: &Labels, samples: &[Sample]| {
            loaded += samples.len();
            stop.check()?;
            each(labels, samples)
        };
        if newest {
            self.storage
                .select_newest_each(mint, maxt, matchers, budget, &mut counted)?;
        } else {
            self.storage
                .select_each(mint, maxt, matchers, budget, &mut counted)?;
        }
        self.samples_loaded += loaded;
        Ok(())
    }
}

/// Milliseconds of a parsed duration.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the epoch of a parsed time (which may be before it).
fn time_millis(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => millis(d),
        Err(e) => -millis(e.duration()),
    }
}
