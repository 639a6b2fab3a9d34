//! The Prometheus HTTP API (`/api/v1/...`) that Grafana and Prometheus's own tools speak:
//! series, label names and values, metadata, exemplars, build and TSDB status, and the admin
//! endpoints. Every read endpoint takes GET with a query string or POST with a form body, and
//! answers in Prometheus's envelope: `{"status":"success","data":...}` or
//! `{"status":"error","errorType":...,"error":...}` with the status code Prometheus pairs
//! with the error type ([`crate::prom::error`]).

pub mod params;
pub mod query;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use strata_engine::labels::Labels;
use strata_engine::labels::matcher::Matcher;

use crate::prom::api::params::{MAX_TIME, MIN_TIME, Params};
use crate::prom::error::ApiError;
use crate::prom::exemplars::Exemplar;
use crate::prom::json::{LabelsJson, format_value, seconds, success};
use crate::state::AppState;

fn db(state: &AppState) -> Result<Arc<strata_engine::Db>, ApiError> {
    state.db().ok_or_else(ApiError::not_ready)
}

/// Runs storage work on the blocking pool (it reads files and takes CPU).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the query task failed: {e}")))?
}

/// Cuts `items` to `limit` (0 = no limit), with the warning Prometheus gives.
fn truncate<T>(items: &mut Vec<T>, limit: usize, warnings: &mut Vec<String>) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        warnings.push("results truncated due to limit".into());
    }
}

fn query_error(e: strata_engine::QueryError) -> ApiError {
    ApiError::internal(format!("reading storage: {e}"))
}

/// `/api/v1/series`: the label sets of the series matching any `match[]` in `[start, end]`.
pub async fn series(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = async {
        let db = db(&state)?;
        let selectors = params.selectors(true)?;
        let (start, end) = params.time_range()?;
        let limit = params.limit("limit")?;
        let found = blocking(move || {
            let q = db.querier(start, end);
            let mut all: Vec<Labels> = Vec::new();
            for matchers in &selectors {
                all.extend(q.series(matchers).map_err(query_error)?);
            }
            if selectors.len() > 1 {
                all.sort();
                all.dedup();
            }
            Ok(all)
        })
        .await?;
        let mut found = found;
        let mut warnings = Vec::new();
        truncate(&mut found, limit, &mut warnings);
        let list: Vec<LabelsJson<'_>> = found.iter().map(LabelsJson).collect();
        Ok::<_, ApiError>(success(list, warnings))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Runs `list` with no matchers when `selectors` is empty, else once per selector, and
/// returns the sorted union of the results.
fn union_over(
    selectors: &[Vec<Matcher>],
    mut list: impl FnMut(&[Matcher]) -> Result<Vec<String>, strata_engine::QueryError>,
) -> Result<Vec<String>, ApiError> {
    if selectors.is_empty() {
        return list(&[]).map_err(query_error);
    }
    let mut all = Vec::new();
    for matchers in selectors {
        all.extend(list(matchers).map_err(query_error)?);
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// `/api/v1/labels`: label names, of all series or of those matching `match[]`.
pub async fn label_names(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = async {
        let db = db(&state)?;
        let selectors = params.selectors(false)?;
        let (start, end) = params.time_range()?;
        let limit = params.limit("limit")?;
        let mut names = blocking(move || {
            let q = db.querier(start, end);
            union_over(&selectors, |m| q.label_names(m))
        })
        .await?;
        let mut warnings = Vec::new();
        truncate(&mut names, limit, &mut warnings);
        Ok::<_, ApiError>(success(names, warnings))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/label/<name>/values`: the values of one label.
pub async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    let run = async {
        let db = db(&state)?;
        let name = params::unescape_label_name(&name)?;
        if name.is_empty() {
            return Err(ApiError::bad_data("invalid label name \"\""));
        }
        let selectors = params.selectors(false)?;
        let (start, end) = params.time_range()?;
        let limit = params.limit("limit")?;
        let mut values = blocking(move || {
            let q = db.querier(start, end);
            union_over(&selectors, |m| q.label_values(&name, m))
        })
        .await?;
        let mut warnings = Vec::new();
        truncate(&mut values, limit, &mut warnings);
        Ok::<_, ApiError>(success(values, warnings))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/metadata`: type, help and unit per metric family, as senders reported them.
pub async fn metadata(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = || {
        let limit = params.limit("limit")?;
        let per_metric = params.limit("limit_per_metric")?;
        let found = state
            .prom
            .metadata
            .query(params.get("metric"), limit, per_metric);
        Ok::<_, ApiError>(success(found, Vec::new()))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/query_exemplars`: the exemplars of the series a PromQL query selects, in
/// `[start, end]`.
pub async fn query_exemplars(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = || {
        let query = params
            .get("query")
            .ok_or_else(|| ApiError::bad_data("no query parameter provided"))?;
        let (start, end) = params.time_range()?;
        let expr = promql_parser::parser::parse(query)
            .map_err(|e| ApiError::bad_data(format!("invalid query {query:?}: {e}")))?;
        let mut selectors = Vec::new();
        collect_selectors(&expr, &mut selectors).map_err(ApiError::bad_data)?;
        let found = state.prom.exemplars.query(&selectors, start, end);
        let groups: Vec<ExemplarGroup<'_>> = found
            .iter()
            .map(|(labels, exemplars)| ExemplarGroup {
                series_labels: LabelsJson(labels),
                exemplars: exemplars.iter().map(ExemplarJson).collect(),
            })
            .collect();
        Ok::<_, ApiError>(success(groups, Vec::new()))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

#[derive(Serialize)]
struct ExemplarGroup<'a> {
    #[serde(rename = "seriesLabels")]
    series_labels: LabelsJson<'a>,
    exemplars: Vec<ExemplarJson<'a>>,
}

struct ExemplarJson<'a>(&'a Exemplar);

impl Serialize for ExemplarJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Pairs<'a>(&'a [(String, String)]);
        impl Serialize for Pairs<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (n, v) in self.0 {
                    map.serialize_entry(n, v)?;
                }
                map.end()
            }
        }
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("labels", &Pairs(&self.0.labels))?;
        map.serialize_entry("value", &format_value(self.0.value))?;
        map.serialize_entry("timestamp", &seconds(self.0.t))?;
        map.end()
    }
}

/// The matchers of every vector selector in `expr` (those of range selectors too).
fn collect_selectors(
    expr: &promql_parser::parser::Expr,
    out: &mut Vec<Vec<Matcher>>,
) -> Result<(), String> {
    use promql_parser::parser::Expr;
    match expr {
        Expr::VectorSelector(vs) => out.push(params::selector_matchers(vs)?),
        Expr::MatrixSelector(ms) => out.push(params::selector_matchers(&ms.vs)?),
        Expr::Aggregate(a) => {
            collect_selectors(&a.expr, out)?;
            if let Some(p) = &a.param {
                collect_selectors(p, out)?;
            }
        }
        Expr::Unary(u) => collect_selectors(&u.expr, out)?,
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out)?;
            collect_selectors(&b.rhs, out)?;
        }
        Expr::Paren(p) => collect_selectors(&p.expr, out)?,
        Expr::Subquery(s) => collect_selectors(&s.expr, out)?,
        Expr::Call(c) => {
            for a in &c.args.args {
                collect_selectors(a, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

/// `/api/v1/status/buildinfo`, shaped like Prometheus's and without a `features` key, so
/// Grafana treats Strata as a Prometheus data source.
pub async fn buildinfo() -> Response {
    #[derive(Serialize)]
    struct BuildInfo {
        version: &'static str,
        revision: &'static str,
        branch: &'static str,
        #[serde(rename = "buildUser")]
        build_user: &'static str,
        #[serde(rename = "buildDate")]
        build_date: &'static str,
        #[serde(rename = "goVersion")]
        go_version: &'static str,
    }
    success(
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("STRATA_REVISION").unwrap_or("unknown"),
            branch: option_env!("STRATA_BRANCH").unwrap_or("unknown"),
            build_user: "strata",
            build_date: option_env!("STRATA_BUILD_DATE").unwrap_or("unknown"),
            go_version: concat!("rust", env!("CARGO_PKG_RUST_VERSION")),
        },
        Vec::new(),
    )
}

/// `/api/v1/status/tsdb`: head statistics and the top cardinality lists (`limit`, default 10).
pub async fn tsdb_status(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = async {
        let db = db(&state)?;
        let limit = match params.limit("limit")? {
            0 => 10,
            n => n,
        };
        let (stats, card) = blocking(move || Ok((db.stats(), db.cardinality(limit)))).await?;
        #[derive(Serialize)]
        struct HeadStats {
            #[serde(rename = "numSeries")]
            num_series: u64,
            #[serde(rename = "numLabelPairs")]
            num_label_pairs: u64,
            #[serde(rename = "chunkCount")]
            chunk_count: u64,
            #[serde(rename = "minTime")]
            min_time: i64,
            #[serde(rename = "maxTime")]
            max_time: i64,
        }
        struct Top<'a>(&'a [(String, u64)]);
        impl Serialize for Top<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct Entry<'a> {
                    name: &'a str,
                    value: u64,
                }
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for (name, value) in self.0 {
                    seq.serialize_element(&Entry {
                        name,
                        value: *value,
                    })?;
                }
                seq.end()
            }
        }
        #[derive(Serialize)]
        struct Status<'a> {
            #[serde(rename = "headStats")]
            head_stats: HeadStats,
            #[serde(rename = "seriesCountByMetricName")]
            series_count_by_metric_name: Top<'a>,
            #[serde(rename = "labelValueCountByLabelName")]
            label_value_count_by_label_name: Top<'a>,
            #[serde(rename = "memoryInBytesByLabelName")]
            memory_in_bytes_by_label_name: Top<'a>,
            #[serde(rename = "seriesCountByLabelValuePair")]
            series_count_by_label_value_pair: Top<'a>,
        }
        // Prometheus reports an empty head as minTime = MaxInt64, maxTime = MinInt64.
        let (min_time, max_time) = stats.head_time_range.unwrap_or((i64::MAX, i64::MIN));
        Ok::<_, ApiError>(success(
            Status {
                head_stats: HeadStats {
                    num_series: stats.series,
                    num_label_pairs: card.label_pairs,
                    chunk_count: stats.chunks,
                    min_time,
                    max_time,
                },
                series_count_by_metric_name: Top(&card.series_count_by_metric_name),
                label_value_count_by_label_name: Top(&card.label_value_count_by_name),
                memory_in_bytes_by_label_name: Top(&card.value_bytes_by_name),
                series_count_by_label_value_pair: Top(&card.series_count_by_label_pair),
            },
            Vec::new(),
        ))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

fn admin_enabled(state: &AppState) -> Result<(), ApiError> {
    if state.admin_api() {
        Ok(())
    } else {
        Err(ApiError::unavailable(
            "admin APIs disabled; start Strata with --enable-admin-api",
        ))
    }
}

/// `/api/v1/admin/tsdb/delete_series` (POST or PUT): deletes the samples in `[start, end]`
/// (default: all time) of the series matching any `match[]`; 204 once durable.
pub async fn delete_series(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = async {
        admin_enabled(&state)?;
        let db = db(&state)?;
        let selectors = params.selectors(true)?;
        let (start, end) = params.time_range()?;
        let (start, end) = (
            if start == MIN_TIME { i64::MIN } else { start },
            if end == MAX_TIME { i64::MAX } else { end },
        );
        blocking(move || {
            for matchers in &selectors {
                let stats = db
                    .delete_series(matchers, start, end)
                    .map_err(|e| ApiError::internal(format!("deleting series: {e}")))?;
                tracing::info!(
                    selector = ?matchers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    start,
                    end,
                    ?stats,
                    "series deleted"
                );
            }
            Ok(())
        })
        .await?;
        Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/admin/tsdb/snapshot` (POST or PUT): writes a snapshot under
/// `<data dir>/snapshots/<name>` (`skip_head=true` leaves out data not yet in blocks) and
/// answers its name.
pub async fn snapshot(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = async {
        admin_enabled(&state)?;
        let db = db(&state)?;
        let skip_head = match params.get("skip_head") {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"skip_head\": {other:?} is not a boolean"
                )));
            }
        };
        let name = format!(
            "{}-{:016x}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            snapshot_nonce()
        );
        let dir = db.dir().join("snapshots").join(&name);
        let stats = blocking(move || {
            db.snapshot(&dir, skip_head)
                .map_err(|e| ApiError::internal(format!("writing the snapshot: {e}")))
        })
        .await?;
        tracing::info!(%name, blocks = stats.blocks, head_samples = stats.head_samples, "snapshot written");
        #[derive(Serialize)]
        struct Data {
            name: String,
        }
        Ok::<_, ApiError>(success(Data { name }, Vec::new()))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// A value that makes two snapshots taken in the same second differ.
fn snapshot_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
