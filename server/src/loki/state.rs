//! The Loki family's part of the server's state: the push API's caps and the label sets its
//! pushes named lately. (The log store it writes to is shared with OTLP: `AppState::logs`.)

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use strata_engine::labels::Labels;
use strata_engine::labels::intern::Interner;
use strata_wire::loki::parse_labels;

/// What the Loki handlers share.
#[derive(Debug)]
pub struct LokiState {
    /// The largest push body read, in bytes, as sent (compressed).
    pub push_body_bytes_max: usize,
    /// The largest push body once decompressed.
    pub push_decoded_bytes_max: usize,
    /// The streams pushes named lately, by the text they were named with.
    pub selectors: SelectorCache,
}

impl Default for LokiState {
    fn default() -> LokiState {
        LokiState {
            push_body_bytes_max: 16 << 20,
            push_decoded_bytes_max: 64 << 20,
            selectors: SelectorCache::new(SELECTORS_HELD),
        }
    }
}

/// Label sets the cache holds before it starts again: the active streams of a large tenant.
const SELECTORS_HELD: usize = 50_000;

/// The label sets of the selectors (`{app="api", env="prod"}`) pushes named lately. A shipper
/// names the same streams in every push, a few entries each: reading the text and building
/// the set again for each was a tenth of a push's CPU. A set from the cache is also the very
/// allocation the store holds for the stream, which it compares by address.
///
/// The sets are built of interned labels: streams share their common pairs (`env="prod"`,
/// `namespace="shop"`) and strings instead of holding a copy each (at a million streams of six
/// labels the copies were 570 MiB of the store's peak).
///
/// Bounded: when it holds its limit it is emptied and fills again (and the interner lets go of
/// what no stream holds any more), so a flood of new streams costs a parse each, as without
/// it, and never more memory than the limit's worth. Keyed with the standard library's
/// randomly seeded hash: the text comes from the network.
#[derive(Debug)]
pub struct SelectorCache {
    held: Mutex<HashMap<Box<str>, Labels>>,
    interner: Interner,
    limit: usize,
}

impl SelectorCache {
    pub fn new(limit: usize) -> SelectorCache {
        SelectorCache {
            held: Mutex::new(HashMap::new()),
            interner: Interner::new(),
            limit,
        }
    }

    /// The labels `text` names, or why it names none (a refusal is not kept: it is parsed
    /// again the next time).
    pub fn labels(&self, text: &str) -> Result<Labels, String> {
        if let Some(labels) = self.lock().get(text) {
            return Ok(labels.clone());
        }
        let read = parse_labels(text)
            .map_err(|e| e.to_string())
            .and_then(|pairs| Labels::new(pairs).map_err(|e| e.to_string()))?;
        let interned: Vec<_> = read
            .iter()
            .map(|l| self.interner.intern_label(l.name(), l.value()))
            .collect();
        let labels = Labels::from_canonical_slice(&interned);
        let mut held = self.lock();
        if held.len() >= self.limit {
            *held = HashMap::new();
            self.interner.purge_unused();
        }
        held.insert(text.into(), labels.clone());
        Ok(labels)
    }

    /// Label sets held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Labels>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_named_again_gives_the_same_set() {
        let cache = SelectorCache::new(10);
        let a = cache.labels(r#"{app="api", env="prod"}"#).unwrap();
        let b = cache.labels(r#"{app="api", env="prod"}"#).unwrap();
        assert_eq!(a, Labels::new([("app", "api"), ("env", "prod")]).unwrap());
        assert_eq!(
            a.as_slice().as_ptr(),
            b.as_slice().as_ptr(),
            "one allocation"
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn sets_share_the_labels_they_have_in_common() {
        let cache = SelectorCache::new(10);
        let a = cache.labels(r#"{env="prod", pod="api-1"}"#).unwrap();
        let b = cache.labels(r#"{env="prod", pod="api-2"}"#).unwrap();
        let env = |l: &Labels| {
            l.iter()
                .find(|l| l.name().as_str() == "env")
                .unwrap()
                .clone()
        };
        let (ea, eb) = (env(&a), env(&b));
        assert!(
            std::ptr::eq(ea.value().as_str(), eb.value().as_str()),
            "one string for prod"
        );
        assert_eq!(b.get("pod"), Some("api-2"));
    }

    #[test]
    fn a_bad_selector_is_refused_every_time_and_not_held() {
        let cache = SelectorCache::new(10);
        for _ in 0..2 {
            let e = cache.labels(r#"{app="api""#).unwrap_err();
            assert!(!e.is_empty());
        }
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_limit() {
        let cache = SelectorCache::new(3);
        for i in 0..10 {
            let labels = cache.labels(&format!(r#"{{app="a{i}"}}"#)).unwrap();
            assert_eq!(labels.get("app"), Some(format!("a{i}").as_str()));
            assert!(cache.len() <= 3, "{} held", cache.len());
        }
        // What it holds still answers right after it started again.
        let again = cache.labels(r#"{app="a9"}"#).unwrap();
        assert_eq!(again.get("app"), Some("a9"));
    }
}
