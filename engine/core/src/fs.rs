//! The file-system layer: every byte the engine reads or writes goes through [`Fs`].
//!
//! The engine takes an `Arc<dyn Fs>` from its embedder. Production uses [`RealFs`]; the crash
//! and fault tests use the simulated disk in [`sim`] (feature `sim`), which keeps unsynced
//! writes apart from durable ones, can tear or drop them at a simulated power cut, and can fail
//! the Nth operation with EIO, ENOSPC, a short write or a failed fsync.
//!
//! The trait is deliberately small and speaks the language of durability: appends, `sync`
//! (the file's data), `sync_dir` (the directory entries: a file that was created or renamed is
//! only durably *there* once its directory has been synced), atomic `rename`.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

mod mmap;
#[cfg(any(test, feature = "sim"))]
pub mod sim;

/// A file system the engine can store its data on.
pub trait Fs: Send + Sync + Debug {
    /// Creates `dir` and every missing parent. Not durable until the parents are synced.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` empty (truncating it if it exists) and opens it for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The length of a file in bytes.
    fn file_len(&self, path: &Path) -> io::Result<u64>;
    /// The names of the entries of `dir`, sorted. Errors with `NotFound` if `dir` is missing.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` exists (file or directory).
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Atomically renames `from` to `to`, replacing `to`. Durable once both directories are
    /// synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Durable once its directory is synced.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything below it. Not atomic on a real disk: rename a
    /// directory out of the way first if a half-removed one must never be read.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive, advisory lock on `path` (created if missing), held until the
    /// returned guard is dropped. Fails with `WouldBlock` if another holder has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>>;
    /// Maps a whole file read-only.
    ///
    /// Contract: only *sealed* files may be mapped: complete, synced, and never written,
    /// truncated or rewritten again while any map of them lives (replace a file by writing a
    /// new one and renaming it; removing a mapped file is fine). Readers check every offset
    /// and length against the map's length before slicing.
    fn map(&self, path: &Path) -> io::Result<Mapped>;
    /// Makes `to` (which must not exist) hold the content of the sealed file `from` (see
    /// [`Fs::map`]): a hard link where the file system has them, else a copy. Not durable
    /// until `to`'s directory is synced.
    fn link_sealed(&self, from: &Path, to: &Path) -> io::Result<()> {
        let source = self.map(from)?;
        let mut file = self.create(to)?;
        for piece in source.chunks(1 << 20) {
            file.append(piece)?;
        }
        file.sync()
    }
}

/// A read-only view of a whole sealed file (see [`Fs::map`]). Cloning shares the view.
#[derive(Clone)]
pub struct Mapped {
    bytes: MappedBytes,
}

#[derive(Clone)]
enum MappedBytes {
    Mmap(Arc<memmap2::Mmap>),
    Memory(Arc<[u8]>),
}

impl Mapped {
    /// A view of bytes held in memory (what simulated file systems hand out).
    pub fn from_memory(bytes: Arc<[u8]>) -> Mapped {
        Mapped {
            bytes: MappedBytes::Memory(bytes),
        }
    }
}

impl Mapped {
    /// Lets the process stop holding the pages of `range` in memory (best effort; a no-op
    /// for bytes held in memory): the bytes stay readable and unchanged, the next read of
    /// them maps them again from the page cache or the disk. For reads of a large file
    /// once through (a compaction), so they do not swell the resident set.
    pub fn release(&self, range: std::ops::Range<usize>) {
        if let MappedBytes::Mmap(m) = &self.bytes {
            mmap::release(m, range.start, range.end.saturating_sub(range.start));
        }
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.bytes {
            MappedBytes::Mmap(m) => m,
            MappedBytes::Memory(b) => b,
        }
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.bytes {
            MappedBytes::Mmap(_) => "mmap",
            MappedBytes::Memory(_) => "memory",
        };
        write!(f, "Mapped({kind}, {} bytes)", self.len())
    }
}

/// A file opened for appending.
pub trait WritableFile: Send + Debug {
    /// Appends all of `buf`. On error an unknown prefix of `buf` may have been written: callers
    /// treat the file as damaged from its last synced length on.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes; later appends continue from there. Not durable until
    /// [`WritableFile::sync`].
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// The current length in bytes, including unsynced appends.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Holds a lock taken with [`Fs::lock`] until dropped.
pub trait LockGuard: Send + Sync + Debug {}

/// The file in a store's directory whose lock says a process has the store open.
pub const LOCK_FILE: &str = "LOCK";

/// Why [`lock_store_dir`] failed.
#[derive(Debug)]
pub enum StoreLockError {
    /// Another process holds the lock: the path of the lock file.
    Locked(std::path::PathBuf),
    /// Creating the directory or taking the lock failed.
    Storage(crate::error::StorageError),
}

/// Creates a store's directory if missing and takes its [`LOCK_FILE`], so one process at a
/// time opens the store in it; the lock lasts as long as the guard.
pub fn lock_store_dir(fs: &dyn Fs, dir: &Path) -> Result<Box<dyn LockGuard>, StoreLockError> {
    use crate::error::StorageError;
    fs.create_dir_all(dir)
        .map_err(|e| StoreLockError::Storage(StorageError::io("create store directory", dir, e)))?;
    let path = dir.join(LOCK_FILE);
    fs.lock(&path).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => StoreLockError::Locked(path.clone()),
        _ => StoreLockError::Storage(StorageError::io("lock store directory", &path, e)),
    })
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile {
    file: File,
    len: u64,
}

impl WritableFile for RealFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        // `write_all` may have written a prefix when it fails; account for what the file
        // actually holds so `len` stays truthful.
        let result = self.file.write_all(buf);
        match &result {
            Ok(()) => self.len += buf.len() as u64,
            Err(_) => self.len = self.file.metadata()?.len(),
        }
        result
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct RealLock {
    _file: File,
}

impl LockGuard for RealLock {}

impl Fs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        // Reopen in append mode so that every write lands at the end even after `truncate`.
        drop(file);
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(RealFile { file, len: 0 }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(RealFile { file, len }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut file = File::open(path)?;
        let mut buf = Vec::with_capacity(file.metadata()?.len() as usize);
        file.read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // Names that are not UTF-8 were not written by Strata; skip them.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn link_sealed(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(RealLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the lock is held by another process",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            // Mapping an empty file fails on some systems; an empty view is the same thing.
            return Ok(Mapped::from_memory(Arc::from(&[][..])));
        }
        Ok(Mapped {
            bytes: MappedBytes::Mmap(Arc::new(mmap::map_readonly(&file)?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_fs_appends_truncates_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs;
        let path = dir.path().join("a");
        let mut file = fs.create(&path).unwrap();
        file.append(b"hello ").unwrap();
        file.append(b"world").unwrap();
        file.sync().unwrap();
        assert_eq!(file.len(), 11);
        file.truncate(5).unwrap();
        file.append(b"!").unwrap();
        drop(file);
        assert_eq!(fs.read(&path).unwrap(), b"hello!");
        let mut again = fs.open_append(&path).unwrap();
        assert_eq!(again.len(), 6);
        again.append(b"?").unwrap();
        assert_eq!(fs.read(&path).unwrap(), b"hello!?");
        fs.rename(&path, &dir.path().join("b")).unwrap();
        fs.sync_dir(dir.path()).unwrap();
        assert_eq!(fs.list(dir.path()).unwrap(), vec!["b".to_string()]);
        assert!(!fs.exists(&path).unwrap());
    }

    #[test]
    fn real_fs_maps_sealed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealed");
        let mut f = RealFs.create(&path).unwrap();
        f.append(b"immutable bytes").unwrap();
        f.sync().unwrap();
        drop(f);
        let map = RealFs.map(&path).unwrap();
        assert_eq!(&map[..], b"immutable bytes");
        // Removing a mapped file leaves the map readable.
        RealFs.remove_file(&path).unwrap();
        assert_eq!(&map.clone()[..9], b"immutable");
        let empty = dir.path().join("empty");
        drop(RealFs.create(&empty).unwrap());
        assert!(RealFs.map(&empty).unwrap().is_empty());
    }

    #[test]
    fn real_fs_links_sealed_files_and_removing_the_source_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("sealed"), dir.path().join("linked"));
        let mut f = RealFs.create(&from).unwrap();
        f.append(b"block bytes").unwrap();
        f.sync().unwrap();
        drop(f);
        RealFs.link_sealed(&from, &to).unwrap();
        RealFs.remove_file(&from).unwrap();
        assert_eq!(RealFs.read(&to).unwrap(), b"block bytes");
        // The target must not exist.
        RealFs.link_sealed(&to, &to).unwrap_err();
    }

    #[test]
    fn real_fs_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let guard = RealFs.lock(&path).unwrap();
        let err = RealFs.lock(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(guard);
        RealFs.lock(&path).unwrap();
    }
}
