//! The patterns of a query's lines, as Grafana's Logs Drilldown shows them in its Patterns tab
//! (`/loki/api/v1/patterns`): lines that differ only in their variable parts (ids, numbers,
//! addresses, durations) are one pattern, written with `<_>` for each run of variable words,
//! `user <_> logged in from <_>`, and counted per step of time.
//!
//! The grouping is the Drain method: a line is cut into words at white space; a word holding
//! a digit is variable from the start; lines of the same number of words and the same first
//! word are compared with the patterns found so far, and a line joins the one it agrees with in
//! at least half of its words (the words where they differ become variable), or starts one of
//! its own. It reads the newest `line_limit` lines the query keeps (10,000 unless told), so a
//! pattern's counts are of those lines.

use std::collections::{BTreeMap, HashMap};

use strata_logs::LogStore;

use crate::ast::LogExpr;
use crate::eval::{EvalError, for_each_newest};

/// How many of the newest lines a pattern search reads when the caller does not say.
pub const LINE_LIMIT_DEFAULT: usize = 10_000;
/// Words of a line the grouping looks at; the rest of a long line is one variable word.
const WORDS_MAX: usize = 64;
/// Patterns kept; lines that would start another are not counted.
const PATTERNS_MAX: usize = 1_000;
/// The share of its words a line must agree on to join a pattern.
const SIMILARITY_MIN: f64 = 0.5;
/// How a variable word is written.
pub const VARIABLE: &str = "<_>";

/// One pattern and the number of lines it stands for in each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    /// Steps' starts (nanoseconds, multiples of the step) with their counts, oldest first.
    pub samples: Vec<(i64, u64)>,
    pub total: u64,
}

/// A pattern while lines are added: its words (`None`: variable).
#[derive(Debug)]
struct Cluster {
    words: Vec<Option<String>>,
    counts: BTreeMap<i64, u64>,
}

/// Groups lines into patterns.
#[derive(Debug)]
pub struct Miner {
    step_ns: i64,
    clusters: Vec<Cluster>,
    /// The clusters of each (number of words, first word or `None` if variable).
    groups: HashMap<(usize, Option<String>), Vec<usize>>,
}

impl Miner {
    /// A miner counting lines in steps of `step_ns` (at least 1).
    pub fn new(step_ns: i64) -> Miner {
        Miner {
            step_ns: step_ns.max(1),
            clusters: Vec::new(),
            groups: HashMap::new(),
        }
    }

    /// Adds a line of time `ts_ns`.
    pub fn add(&mut self, ts_ns: i64, line: &str) {
        let mut words: Vec<Option<&str>> = line
            .split_whitespace()
            .take(WORDS_MAX + 1)
            .map(|w| (!w.bytes().any(|b| b.is_ascii_digit())).then_some(w))
            .collect();
        if words.is_empty() {
            return;
        }
        // The rest of a longer line is one variable word.
        if words.len() > WORDS_MAX {
            words[WORDS_MAX] = None;
        }
        let step = ts_ns.div_euclid(self.step_ns) * self.step_ns;
        let key = (words.len(), words[0].map(str::to_owned));
        let group = self.groups.entry(key).or_default();
        let best = group
            .iter()
            .map(|&i| (i, similarity(&self.clusters[i].words, &words)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let index = match best {
            Some((i, sim)) if sim >= SIMILARITY_MIN => {
                for (have, word) in self.clusters[i].words.iter_mut().zip(&words) {
                    if have.as_deref() != *word {
                        *have = None;
                    }
                }
                i
            }
            _ if self.clusters.len() >= PATTERNS_MAX => return,
            _ => {
                self.clusters.push(Cluster {
                    words: words.iter().map(|w| w.map(str::to_owned)).collect(),
                    counts: BTreeMap::new(),
                });
                group.push(self.clusters.len() - 1);
                self.clusters.len() - 1
            }
        };
        *self.clusters[index].counts.entry(step).or_default() += 1;
    }

    /// The patterns, the most frequent first (patterns that read the same once their
    /// variable words are joined are one).
    pub fn patterns(self) -> Vec<Pattern> {
        let mut by_text: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
        for c in self.clusters {
            let counts = by_text.entry(text_of(&c.words)).or_default();
            for (step, n) in c.counts {
                *counts.entry(step).or_default() += n;
            }
        }
        let mut out: Vec<Pattern> = by_text
            .into_iter()
            .map(|(text, counts)| Pattern {
                text,
                total: counts.values().sum(),
                samples: counts.into_iter().collect(),
            })
            .collect();
        out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.text.cmp(&b.text)));
        out
    }
}

/// The share of positions where a pattern's word and a line's agree (both variable counts).
fn similarity(pattern: &[Option<String>], words: &[Option<&str>]) -> f64 {
    let same = pattern
        .iter()
        .zip(words)
        .filter(|(p, w)| p.as_deref() == **w)
        .count();
    same as f64 / words.len() as f64
}

/// A pattern's words joined with spaces, each run of variable words one [`VARIABLE`].
fn text_of(words: &[Option<String>]) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(words.len());
    for w in words {
        match w {
            Some(w) => parts.push(w),
            None if parts.last() == Some(&VARIABLE) => {}
            None => parts.push(VARIABLE),
        }
    }
    parts.join(" ")
}

/// The patterns of the newest `line_limit` lines `query` keeps in `[start_ns, end_ns)`,
/// counted in steps of `step_ns`.
pub fn detect_patterns(
    store: &LogStore,
    query: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    step_ns: i64,
    line_limit: usize,
) -> Result<Vec<Pattern>, EvalError> {
    let mut miner = Miner::new(step_ns);
    for_each_newest(store, query, start_ns, end_ns, line_limit, |e| {
        miner.add(e.ts_ns, &e.line)
    })?;
    Ok(miner.patterns())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn mine(lines: &[(i64, &str)], step_ns: i64) -> Vec<Pattern> {
        let mut m = Miner::new(step_ns);
        for (ts, line) in lines {
            m.add(*ts, line);
        }
        m.patterns()
    }

    #[test]
    fn lines_differing_in_their_variable_words_are_one_pattern() {
        let p = mine(
            &[
                (0, "user 42 logged in from 10.0.0.1"),
                (S, "user 7 logged in from 10.0.0.2"),
                (2 * S, "user ann logged in from 10.0.0.3"),
                (3 * S, "payment failed: card declined"),
                (70 * S, "user 9 logged in from 10.0.0.9"),
            ],
            60 * S,
        );
        assert_eq!(
            p,
            vec![
                Pattern {
                    text: "user <_> logged in from <_>".into(),
                    samples: vec![(0, 3), (60 * S, 1)],
                    total: 4,
                },
                Pattern {
                    text: "payment failed: card declined".into(),
                    samples: vec![(0, 1)],
                    total: 1,
                },
            ]
        );
    }

    #[test]
    fn lines_that_agree_on_less_than_half_their_words_stay_apart() {
        let p = mine(
            &[
                (0, "GET /cart took 12ms"),
                (0, "GET /pay took 40ms"),
                (0, "disk full on volume data"),
                (0, "cache warm on volume logs"),
            ],
            S,
        );
        let texts: Vec<&str> = p.iter().map(|p| p.text.as_str()).collect();
        // The requests agree on GET, took and the duration (a digit makes it variable from
        // the start): 3 of 4 words, one pattern. The other two differ in their first word,
        // so they are never compared: two.
        assert_eq!(
            texts,
            vec![
                "GET <_> took <_>",
                "cache warm on volume logs",
                "disk full on volume data"
            ]
        );
        assert_eq!(p[0].total, 2);
    }

    #[test]
    fn runs_of_variable_words_are_written_once() {
        let p = mine(&[(0, "took 1 2 3 ms"), (0, "took 4 5 6 ms")], S);
        assert_eq!(p[0].text, "took <_> ms");
        assert_eq!(p[0].total, 2);
    }

    #[test]
    fn the_number_of_patterns_is_bounded() {
        let lines: Vec<String> = (0..3 * PATTERNS_MAX)
            .map(|i| {
                let w: String = format!("{i:x}")
                    .chars()
                    .map(|c| (b'g' + c as u8 % 16) as char)
                    .collect();
                format!("{w} alone")
            })
            .collect();
        let mut m = Miner::new(S);
        for l in &lines {
            m.add(0, l);
        }
        assert!(m.patterns().len() <= PATTERNS_MAX);
    }
}
