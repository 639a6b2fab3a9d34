//! What the store holds: entries, and the references of the streams they belong to.

/// A stream's reference: stable for the life of the store, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamRef(pub u64);

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The line, as sent.
    pub line: String,
    /// Structured metadata: name/value pairs kept with the entry, not part of its stream's
    /// identity (a trace id, a request id).
    pub metadata: Vec<(String, String)>,
}

impl Entry {
    /// An entry without metadata.
    pub fn new(ts_ns: i64, line: impl Into<String>) -> Entry {
        Entry {
            ts_ns,
            line: line.into(),
            metadata: Vec::new(),
        }
    }

    /// Sets metadata pair `j` (at most one past the last), reusing the strings it held: a
    /// reader filling the same entries page after page allocates little.
    pub fn set_metadata(&mut self, j: usize, name: &str, value: &str) {
        match self.metadata.get_mut(j) {
            Some((n, v)) => {
                n.clear();
                n.push_str(name);
                v.clear();
                v.push_str(value);
            }
            None => self.metadata.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Bytes of the line and of the metadata's names and values: what the limits and the
    /// store's counters measure.
    pub fn bytes(&self) -> usize {
        self.line.len()
            + self
                .metadata
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }
}

/// The order entries are returned in, as Loki's `direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Newest first (Loki's default).
    #[default]
    Backward,
    /// Oldest first.
    Forward,
}
