//! The storage error every store shares: an I/O failure or damaged data, with the operation
//! and the file. Each store wraps it in its own per-operation enums (`strata_tsdb::error`).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A failure of the storage underneath: an I/O error or damaged data.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The file system refused an operation.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the engine was doing, e.g. "sync wal segment".
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Bytes on disk are not what was written.
    #[error("corruption in {path} at byte {offset}: {reason}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What was expected there.
        reason: &'static str,
    },
    /// The database was closed.
    #[error("the database is closed; open it again to write")]
    Closed,
}

/// A `map_err` adapter: wraps an I/O error with what was being done and where.
pub fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |e| StorageError::io(op, path, e)
}

impl StorageError {
    /// Wraps an I/O error with what was being done and where.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> StorageError {
        StorageError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// Whether the disk is full (ENOSPC or EDQUOT): the write can succeed later, once space
    /// is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Io { source, .. } => {
                matches!(source.raw_os_error(), Some(28 | 122))
                    || source.kind() == io::ErrorKind::StorageFull
            }
            _ => false,
        }
    }

    /// Whether retrying the same request later may succeed (every I/O failure: the engine
    /// moves to a fresh WAL segment after one).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Io { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_is_recognised_and_retryable() {
        let e = StorageError::io("append", "/x", io::Error::from_raw_os_error(28));
        assert!(e.is_disk_full());
        assert!(e.is_retryable());
        let e = StorageError::io("append", "/x", io::Error::from_raw_os_error(5));
        assert!(!e.is_disk_full());
        assert!(e.is_retryable());
        assert!(!StorageError::Closed.is_retryable());
    }
}
