//! Silences for the built-in notifiers, kept for the HTTP API of Alertmanager's v2 silences
//! (`super::api`; so `amtool`-style scripts and Grafana's silence forms work): `POST /api/v2/silences` creates
//! (or, with an `id`, updates) one, `GET /api/v2/silences` lists them with their state
//! (`pending`, `active`, `expired`), `GET /api/v2/silence/{id}` shows one and
//! `DELETE /api/v2/silence/{id}` expires it. An alert an active silence matches sends no
//! notification. Silences are kept durable in `rules/silences.json` (rewritten on every
//! change, synced before the answer); expired ones are dropped five days after they end.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use strata_engine::labels::Labels;

use super::route::Matcher;
use super::time::{wall_ms, write_json_durably};

/// How long an expired silence is kept (Alertmanager's default retention).
const EXPIRED_RETENTION_MS: i64 = 5 * 24 * 3600 * 1000;

/// A matcher as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatcherJson {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<MatcherJson>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    pub fn state(&self, now: i64) -> &'static str {
        if self.ends_at <= now {
            "expired"
        } else if self.starts_at > now {
            "pending"
        } else {
            "active"
        }
    }

    fn compiled(&self) -> Vec<Matcher> {
        self.matchers
            .iter()
            .filter_map(|m| Matcher::new(&m.name, &m.value, m.is_regex, !m.is_equal).ok())
            .collect()
    }
}

/// The body of `POST /api/v2/silences`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<MatcherJson>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Default)]
struct Store {
    silences: Vec<Silence>,
    /// Compiled matchers of each silence, in the same order.
    compiled: Vec<Vec<Matcher>>,
}

/// The silences.
#[derive(Debug, Default)]
pub struct Silences {
    store: Mutex<Store>,
    path: Mutex<Option<PathBuf>>,
}

fn new_id() -> String {
    let random = || RandomState::new().build_hasher().finish();
    let (a, b) = (random(), random());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

fn parse_time(s: &str, what: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{what} {s:?} is not an RFC 3339 time: {e}"))
}

impl Silences {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the silences kept in `data_dir` and keeps them there from now on.
    pub fn open(&self, data_dir: &Path) {
        let path = data_dir.join("rules").join("silences.json");
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<Silence>>(&bytes) {
                Ok(list) => {
                    let mut store = self.lock();
                    store.compiled = list.iter().map(Silence::compiled).collect();
                    store.silences = list;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "silences not restored: the file does not parse")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "silences not restored"),
        }
        *self.path.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
    }

    fn save(&self, store: &Store) -> Result<(), String> {
        let path = self.path.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(path) = path else { return Ok(()) };
        write_json_durably(&path, &store.silences)
            .map_err(|e| format!("saving the silences to {}: {e}", path.display()))
    }

    /// Creates a silence, or updates the one with the body's `id`; returns its id.
    pub(crate) fn set(&self, body: PostableSilence) -> Result<String, String> {
        let now = wall_ms();
        let starts_at = parse_time(&body.starts_at, "startsAt")?;
        let ends_at = parse_time(&body.ends_at, "endsAt")?;
        if body.matchers.is_empty() {
            return Err("at least one matcher is needed".into());
        }
        let mut compiled = Vec::new();
        for m in &body.matchers {
            if m.name.is_empty() {
                return Err("a matcher needs a label name".into());
            }
            compiled.push(Matcher::new(&m.name, &m.value, m.is_regex, !m.is_equal)?);
        }
        if compiled.iter().all(|m| m.matches(&Labels::default())) {
            return Err("at least one matcher must not match the empty string".into());
        }
        if ends_at <= starts_at {
            return Err("endsAt must be after startsAt".into());
        }
        if ends_at <= now {
            return Err("endsAt is in the past".into());
        }
        if body.created_by.trim().is_empty() {
            return Err("createdBy is missing".into());
        }
        if body.comment.trim().is_empty() {
            return Err("comment is missing".into());
        }
        let mut store = self.lock();
        store
            .silences
            .retain(|s| s.ends_at + EXPIRED_RETENTION_MS > now);
        let id = match body.id.filter(|id| !id.is_empty()) {
            Some(id) => {
                if !store.silences.iter().any(|s| s.id == id) {
                    return Err(format!("silence {id} not found"));
                }
                id
            }
            None => new_id(),
        };
        let silence = Silence {
            id: id.clone(),
            matchers: body.matchers,
            // A start in the past means now, as Alertmanager reads it.
            starts_at: starts_at.max(now),
            ends_at,
            updated_at: now,
            created_by: body.created_by,
            comment: body.comment,
        };
        match store.silences.iter().position(|s| s.id == id) {
            Some(i) => store.silences[i] = silence,
            None => store.silences.push(silence),
        }
        store.compiled = store.silences.iter().map(Silence::compiled).collect();
        self.save(&store)?;
        Ok(id)
    }

    /// Expires a silence now.
    pub(crate) fn expire(&self, id: &str) -> Result<bool, String> {
        let now = wall_ms();
        let mut store = self.lock();
        let Some(s) = store.silences.iter_mut().find(|s| s.id == id) else {
            return Ok(false);
        };
        if s.ends_at > now {
            s.ends_at = now;
            s.starts_at = s.starts_at.min(now);
            s.updated_at = now;
        }
        self.save(&store)?;
        Ok(true)
    }

    /// Every silence.
    pub fn list(&self) -> Vec<Silence> {
        self.lock().silences.clone()
    }

    /// Whether an active silence matches `labels` at `now`.
    pub fn silenced(&self, labels: &Labels, now: i64) -> bool {
        let store = self.lock();
        store
            .silences
            .iter()
            .zip(&store.compiled)
            .any(|(s, m)| s.state(now) == "active" && m.iter().all(|m| m.matches(labels)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::time::rfc3339;

    fn body(matchers: &str, ends_in_ms: i64) -> PostableSilence {
        serde_json::from_value(serde_json::json!({
            "matchers": serde_json::from_str::<serde_json::Value>(matchers).unwrap(),
            "startsAt": rfc3339(Some(wall_ms() - 1000)),
            "endsAt": rfc3339(Some(wall_ms() + ends_in_ms)),
            "createdBy": "tester",
            "comment": "maintenance",
        }))
        .unwrap()
    }

    #[test]
    fn a_silence_mutes_what_it_matches_until_it_is_expired_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let silences = Silences::default();
        silences.open(dir.path());
        let id = silences
            .set(body(
                r#"[{"name":"alertname","value":"Down","isRegex":false}]"#,
                3_600_000,
            ))
            .unwrap();
        let down = Labels::new([("alertname", "Down"), ("job", "a")]).unwrap();
        let up = Labels::new([("alertname", "Up")]).unwrap();
        assert!(silences.silenced(&down, wall_ms()));
        assert!(!silences.silenced(&up, wall_ms()));
        let reopened = Silences::default();
        reopened.open(dir.path());
        assert!(
            reopened.silenced(&down, wall_ms()),
            "kept in the data directory"
        );
        assert!(reopened.expire(&id).unwrap());
        assert!(!reopened.silenced(&down, wall_ms() + 1));
        assert_eq!(reopened.list()[0].state(wall_ms() + 1), "expired");
    }

    #[test]
    fn bad_silences_are_refused_with_a_reason() {
        let silences = Silences::default();
        let cases = [
            (body("[]", 1000), "at least one matcher"),
            (
                body(r#"[{"name":"a","value":"","isRegex":false}]"#, 1000),
                "empty string",
            ),
            (
                body(r#"[{"name":"a","value":"(","isRegex":true}]"#, 1000),
                "regular expression",
            ),
            (
                body(r#"[{"name":"a","value":"b","isRegex":false}]"#, -5000),
                "endsAt",
            ),
        ];
        for (b, reason) in cases {
            let e = silences.set(b).unwrap_err();
            assert!(e.contains(reason), "{e} (expected {reason})");
        }
    }
}
