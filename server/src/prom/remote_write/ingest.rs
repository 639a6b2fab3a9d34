//! Remote write 1.0 and 2.0 requests into the engine: decompressed and decoded within the
//! limits (snappy's declared length checked against the cap before anything is allocated, then
//! the series count), 2.0's symbols resolved into 1.0's shape, labels checked, and every
//! sample appended in one commit per request.
//!
//! What a sender gets back (`docs/reference` of the remote-write spec and Prometheus's own
//! receiver): 204 when every sample is durable; 400 with a readable message for what a retry
//! cannot fix (undecodable body, invalid labels, out-of-order or conflicting samples — the
//! valid samples of the request are kept); 429 when the active-series limit is reached; 503
//! when the disk is full or the engine cannot write, so the sender retries and nothing is lost.
//! The handler (`super`) turns a [`Rejection`] into that status.

use std::borrow::Cow;
use std::fmt;

use prost::Message;
use strata_engine::labels::Labels;
use strata_engine::{AppendError, CommitError, Db, SeriesRef};
use strata_wire::remote_write::decode;
use strata_wire::remote_write::v1::{Exemplar, Label, MetricMetadata, TimeSeries, WriteRequest};
use strata_wire::remote_write::v2;
use strata_wire::snappy;

use crate::prom::exemplars::ExemplarStore;
use crate::prom::limits::WriteLimits;
use crate::prom::metadata::{Metadata, MetadataStore};
use crate::prom::remote_write::known::KnownSeries;

/// Which remote-write protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// Why a request was not (wholly) stored, and so which status the sender gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 400: the request or some of its data can never be stored; a retry cannot help.
    BadData(String),
    /// 429: a limit that may clear later (active series).
    TooMany(String),
    /// 503: the disk is full or the engine failed to write; retry later.
    Unavailable(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::BadData(m) | Rejection::TooMany(m) | Rejection::Unavailable(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Decompresses (snappy block format) and decodes a request body of either protocol, within
/// `limits`, then stores it as [`ingest`] does. A 2.0 request is read in 1.0's shape (its
/// symbols resolved, its per-series metadata as metadata entries named after the series'
/// metric).
pub fn receive(
    db: &Db,
    body: &[u8],
    version: Version,
    limits: &WriteLimits,
    sinks: Sinks<'_>,
) -> (Written, Result<(), Rejection>) {
    let raw = match snappy::decompress(body, limits.decoded_bytes_max) {
        Ok(raw) => raw,
        Err(e) => return (Written::default(), Err(Rejection::BadData(e.to_string()))),
    };
    match version {
        Version::V1 => match decode_v1(&raw, sinks.known, limits) {
            Ok(request) => match check_series_count(request.series.len(), limits) {
                Ok(()) => ingest(db, &request, limits, sinks),
                Err(rejection) => (Written::default(), Err(rejection)),
            },
            Err(e) => (
                Written::default(),
                Err(Rejection::BadData(format!(
                    "the body is not a valid remote-write protobuf: {e}"
                ))),
            ),
        },
        Version::V2 => {
            let owned = v2::Request::decode(raw.as_slice())
                .map_err(|e| {
                    Rejection::BadData(format!(
                        "the body is not a valid remote-write 2.0 protobuf: {e}"
                    ))
                })
                .and_then(|request| {
                    check_series_count(request.timeseries.len(), limits)?;
                    from_v2(request).map_err(Rejection::BadData)
                });
            match owned {
                Ok(owned) => ingest(db, &decode::Request::view(&owned), limits, sinks),
                Err(rejection) => (Written::default(), Err(rejection)),
            }
        }
    }
}

/// Decodes a 1.0 request, its series that are known by their label fields marked so.
fn decode_v1<'a>(
    raw: &'a [u8],
    known: &KnownSeries,
    limits: &WriteLimits,
) -> Result<decode::Request<'a>, decode::DecodeError> {
    let mut reader = known.reader(limits);
    decode::decode_with(raw, |fields| reader.get(fields))
}

/// Resolves a 2.0 request's symbol references.
fn from_v2(request: v2::Request) -> Result<WriteRequest, String> {
    let symbols = &request.symbols;
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err("symbols[0] must be the empty string".into());
    }
    let symbol = |r: u32| -> Result<&str, String> {
        symbols.get(r as usize).map(String::as_str).ok_or_else(|| {
            format!(
                "symbol reference {r} is out of range (the table has {} symbols)",
                symbols.len()
            )
        })
    };
    let labels = |refs: &[u32]| -> Result<Vec<Label>, String> {
        if !refs.len().is_multiple_of(2) {
            return Err(format!(
                "labels_refs has {} entries; it must hold name/value pairs",
                refs.len()
            ));
        }
        refs.chunks_exact(2)
            .map(|p| {
                Ok(Label {
                    name: symbol(p[0])?.to_owned(),
                    value: symbol(p[1])?.to_owned(),
                })
            })
            .collect()
    };
    let mut out = WriteRequest::default();
    for ts in &request.timeseries {
        let series_labels = labels(&ts.labels_refs)?;
        if let Some(m) = &ts.metadata
            && let Some(name) = series_labels.iter().find(|l| l.name == "__name__")
            && (m.r#type != 0 || m.help_ref != 0 || m.unit_ref != 0)
        {
            out.metadata.push(MetricMetadata {
                r#type: m.r#type,
                metric_family_name: name.value.clone(),
                help: symbol(m.help_ref)?.to_owned(),
                unit: symbol(m.unit_ref)?.to_owned(),
            });
        }
        let exemplars = ts
            .exemplars
            .iter()
            .map(|e| {
                Ok(Exemplar {
                    labels: labels(&e.labels_refs)?,
                    value: e.value,
                    timestamp: e.timestamp,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        out.timeseries.push(TimeSeries {
            labels: series_labels,
            samples: ts.samples.clone(),
            exemplars,
            histograms: ts.histograms.clone(),
        });
    }
    Ok(out)
}

fn check_series_count(n: usize, limits: &WriteLimits) -> Result<(), Rejection> {
    if n > limits.series_per_request_max {
        return Err(Rejection::BadData(format!(
            "the request carries {n} series, more than the {} allowed",
            limits.series_per_request_max
        )));
    }
    Ok(())
}

/// Where a request's exemplars and metadata go.
#[derive(Debug, Clone, Copy)]
pub struct Sinks<'a> {
    pub metadata: &'a MetadataStore,
    pub exemplars: &'a ExemplarStore,
    /// The series stored, by their label fields as sent: looked up as requests are decoded,
    /// and the series a request stores first entered.
    pub known: &'a KnownSeries,
}

/// What a request stored (the counts remote write 2.0 reports in headers), and how many of
/// its samples were not stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub samples: u64,
    pub histograms: u64,
    pub exemplars: u64,
    /// Float samples rejected (invalid, over a limit, or not stored because writing failed).
    pub rejected_samples: u64,
    /// Native histogram samples not stored (not supported yet).
    pub rejected_histograms: u64,
}

/// Checks the labels of a series against `limits` and the data model: a metric name, no
/// empty or duplicate names. Unsorted labels and empty values are fine (the engine sorts and
/// drops them). Allocates only to describe a failure or to check an unusual set.
fn check_labels(pairs: &[(&str, &str)], limits: &WriteLimits) -> Result<(), String> {
    if pairs.len() > limits.labels_per_series_max {
        return Err(format!(
            "a series has {} labels, more than the {} allowed",
            pairs.len(),
            limits.labels_per_series_max
        ));
    }
    for (name, value) in pairs {
        if name.len() > limits.label_name_bytes_max {
            return Err(format!(
                "label name {:?}… is {} bytes long, more than the {} allowed",
                name.chars().take(32).collect::<String>(),
                name.len(),
                limits.label_name_bytes_max
            ));
        }
        if value.len() > limits.label_value_bytes_max {
            return Err(format!(
                "the value of label {name:?} is {} bytes long, more than the {} allowed",
                value.len(),
                limits.label_value_bytes_max
            ));
        }
    }
    let named = pairs.iter().any(|(n, v)| *n == "__name__" && !v.is_empty());
    if named && strata_engine::labels::is_canonical(pairs) {
        return Ok(());
    }
    let labels = Labels::new(pairs.iter().copied()).map_err(|e| e.to_string())?;
    if !named {
        return Err(format!(
            "series {labels} has no metric name (an empty or missing __name__ label)"
        ));
    }
    Ok(())
}

/// A series' labels as the messages show them.
fn describe(pairs: &[(&str, &str)]) -> String {
    Labels::new(pairs.iter().copied())
        .map(|l| l.to_string())
        .unwrap_or_else(|_| format!("{pairs:?}"))
}

/// Appends every sample of `request` and commits them. Valid samples are stored even when
/// others are rejected (the rejection then says what was dropped and why); the first value is
/// what was stored either way.
pub fn ingest(
    db: &Db,
    request: &decode::Request<'_>,
    limits: &WriteLimits,
    sinks: Sinks<'_>,
) -> (Written, Result<(), Rejection>) {
    let mut app = db.appender();
    app.reserve(request.series.len(), request.samples.len());
    let wanted = |ts: &decode::Series| !request.samples_of(ts).is_empty();
    // Series known by their label fields, added to the batch by reference, all at once.
    let known: Vec<SeriesRef> = request
        .series
        .iter()
        .filter(|ts| wanted(ts))
        .filter_map(|ts| ts.known.map(SeriesRef))
        .collect();
    let Ok(present) = app.resolve_refs(&known) else {
        return closed(request);
    };
    let mut present = present.into_iter();
    // The others by their labels (decoded now for a known series the head no longer holds),
    // looked up together (faster than one at a time); new ones are created as their first
    // sample is appended.
    let mut labels: Vec<Cow<'_, [(&str, &str)]>> = Vec::with_capacity(request.series.len());
    let mut by_ref: Vec<Option<SeriesRef>> = Vec::with_capacity(request.series.len());
    for ts in &request.series {
        let found = match (wanted(ts), ts.known) {
            (true, Some(r)) => present.next().unwrap_or(false).then_some(SeriesRef(r)),
            _ => None,
        };
        by_ref.push(found);
        labels.push(match (found, ts.known) {
            (Some(_), _) => Cow::Borrowed(&[][..]),
            (None, Some(_)) => match request.labels_owned(ts) {
                Ok(pairs) => Cow::Owned(pairs),
                Err(e) => return (Written::default(), Err(Rejection::BadData(e.to_string()))),
            },
            (None, None) => Cow::Borrowed(request.labels_of(ts)),
        });
    }
    let sets: Vec<&[(&str, &str)]> = request
        .series
        .iter()
        .zip(&labels)
        .map(|(ts, pairs)| if wanted(ts) { &pairs[..] } else { &[][..] })
        .collect();
    let Ok(resolved) = app.resolve(&sets) else {
        return closed(request);
    };
    // The series to enter in the known table once the samples are stored.
    let mut learned: Vec<(&[u8], u64)> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    let mut dropped_samples = 0u64;
    let mut too_many: Option<String> = None;
    let mut histograms = 0u64;
    let mut exemplars: Vec<(Labels, crate::prom::exemplars::Exemplar)> = Vec::new();
    let oldest = if limits.sample_age_max_ms > 0 {
        wall_clock_ms().saturating_sub(limits.sample_age_max_ms)
    } else {
        i64::MIN
    };
    for (((ts, resolved), by_ref), pairs) in
        request.series.iter().zip(resolved).zip(by_ref).zip(&labels)
    {
        histograms += ts.histograms as u64;
        let samples = request.samples_of(ts);
        let series_exemplars = request.exemplars_of(ts);
        if samples.is_empty() && series_exemplars.is_empty() {
            continue;
        }
        // A series found by its label fields passed these checks when it was entered; its
        // labels are decoded only if something needs them (exemplars, a message).
        let owned;
        let pairs: &[(&str, &str)] = match by_ref {
            Some(_) if series_exemplars.is_empty() => pairs,
            Some(_) => {
                owned = request.labels_owned(ts).unwrap_or_default();
                &owned
            }
            None => {
                if let Err(reason) = check_labels(pairs, limits) {
                    dropped_samples += samples.len() as u64;
                    dropped.push(reason);
                    continue;
                }
                pairs
            }
        };
        let describe = || match pairs.is_empty() {
            true => describe(&request.labels_owned(ts).unwrap_or_default()),
            false => describe(pairs),
        };
        if !series_exemplars.is_empty()
            && let Ok(labels) = Labels::new(pairs.iter().copied())
        {
            for e in series_exemplars {
                let pairs = e
                    .labels
                    .iter()
                    .filter(|l| !l.value.is_empty())
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                exemplars.push((
                    labels.clone(),
                    crate::prom::exemplars::Exemplar {
                        labels: pairs,
                        value: e.value,
                        t: e.timestamp,
                    },
                ));
            }
        }
        let resolved = by_ref.or(resolved);
        let mut series_ref = resolved;
        for &(t, v) in samples {
            if t < oldest {
                dropped_samples += 1;
                dropped.push(format!(
                    "{}: sample at {t} is older than the retention time ({} ms) allows; it would be deleted at once (raise the retention time to backfill)",
                    describe(),
                    limits.sample_age_max_ms
                ));
                continue;
            }
            let result = match series_ref {
                Some(r) => app.append_ref(r, t, v),
                None => app.append_pairs(pairs, t, v).map(|r| series_ref = Some(r)),
            };
            match result {
                Ok(()) => {}
                Err(e @ AppendError::LimitExceeded { .. }) => {
                    dropped_samples += 1;
                    too_many.get_or_insert_with(|| e.to_string());
                }
                Err(AppendError::Closed) => return closed(request),
                Err(e) => {
                    dropped_samples += 1;
                    dropped.push(format!("{}: {e}", describe()));
                }
            }
        }
        if by_ref.is_none()
            && let (Some(r), Some(fields)) = (series_ref, request.raw_labels_of(ts))
        {
            learned.push((fields, r.0));
        }
    }
    let committed = app.len() as u64;
    let stats = match app.commit() {
        Ok(stats) => stats,
        Err(e) => {
            let nothing = Written {
                rejected_samples: committed + dropped_samples,
                rejected_histograms: histograms,
                ..Written::default()
            };
            return (nothing, Err(unavailable(&e)));
        }
    };
    let mut written = Written {
        samples: stats.samples + stats.duplicates,
        rejected_samples: dropped_samples,
        rejected_histograms: histograms,
        ..Written::default()
    };
    sinks.known.insert(
        &learned,
        limits,
        (db.head_series() as usize).saturating_mul(2),
    );
    // Exemplars and metadata are kept once the samples are: a retried request brings them
    // again.
    for (series, exemplar) in exemplars {
        match sinks.exemplars.add(&series, exemplar) {
            Ok(()) => written.exemplars += 1,
            Err(e) => tracing::debug!(%series, error = %e, "exemplar not kept"),
        }
    }
    for m in &request.metadata {
        sinks.metadata.record(
            &m.metric_family_name,
            Metadata {
                kind: Metadata::type_name(m.r#type).to_owned(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            },
        );
    }
    debug_assert_eq!(stats.samples, committed);
    if let Some(reason) = too_many {
        let message = format!(
            "{dropped_samples} samples were not stored ({} stored): {reason}",
            written.samples
        );
        return (written, Err(Rejection::TooMany(message)));
    }
    let mut problems = Vec::new();
    if !dropped.is_empty() {
        let shown: Vec<&str> = dropped.iter().take(3).map(String::as_str).collect();
        problems.push(format!(
            "{dropped_samples} samples were rejected ({} stored); first reasons: {}",
            written.samples,
            shown.join("; ")
        ));
    }
    if histograms > 0 {
        problems.push(format!(
            "{histograms} native histogram samples were not stored ({} float samples stored): native histograms are not supported yet",
            written.samples
        ));
    }
    if !problems.is_empty() {
        return (written, Err(Rejection::BadData(problems.join("; "))));
    }
    (written, Ok(()))
}

/// What a request gets when the database is shutting down: nothing stored, retry.
fn closed(request: &decode::Request<'_>) -> (Written, Result<(), Rejection>) {
    let nothing = Written {
        rejected_samples: request.samples.len() as u64,
        ..Written::default()
    };
    (
        nothing,
        Err(Rejection::Unavailable(
            "the database is shutting down; retry".into(),
        )),
    )
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn unavailable(e: &CommitError) -> Rejection {
    Rejection::Unavailable(if e.is_disk_full() {
        format!("the disk is full; nothing of this request was stored, retry later: {e}")
    } else {
        format!("storing the samples failed; nothing of this request was stored, retry: {e}")
    })
}
