//! The settings of an [`Engine`](crate::engine::Engine).

/// Settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back a vector selector looks for a series' latest sample. Default 5 minutes.
    pub lookback_delta_ms: i64,
    /// The most samples a query may hold in memory at once (selected samples and result
    /// points), as Prometheus's `--query.max-samples`. Default 50,000,000.
    pub samples_max: usize,
    /// The most points a range query may return per series. Default 11,000.
    pub points_per_series_max: usize,
    /// The step of a subquery that names none (`x[5m:]`). Default 1 minute.
    pub subquery_step_ms: i64,
    /// Prometheus 2's windows: range selectors, subquery ranges and the lookback include
    /// their left end (`[t - range, t]`) instead of excluding it. For comparing results with
    /// Prometheus 2; off by default.
    pub left_closed_windows: bool,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            samples_max: 50_000_000,
            points_per_series_max: 11_000,
            subquery_step_ms: 60 * 1000,
            left_closed_windows: false,
        }
    }
}
