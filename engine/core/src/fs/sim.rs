//! A simulated, seeded, fault-injecting disk for crash and fault tests.
//!
//! [`SimFs`] keeps every file twice: the bytes a reader sees now, and the bytes that would be
//! left after a power cut. Appends and truncations are *pending* until the file is synced;
//! creations, renames and removals are pending until a directory sync. [`SimFs::crash`] plays
//! a power cut: it keeps the durable state, a random prefix of the pending namespace changes,
//! and for each file a random prefix of its pending writes, the last of which may be torn (cut
//! at any byte, its last sector garbled, or the file extended with zeros as when the size
//! reached the disk before the data). The dying handle is fenced off: every later call on it
//! fails, the way a killed process can write nothing more.
//!
//! Faults: [`SimFs::fail_op`] fails the Nth mutating operation (append, sync, create, rename,
//! remove, truncate, mkdir, directory sync) with EIO, ENOSPC, a short write or a failed fsync;
//! [`SimFs::set_disk_full`] makes every append and creation fail with ENOSPC until it is
//! turned off. A failed fsync behaves as Linux does: the call errors, the data stays readable,
//! but the pages are marked clean, so those bytes never reach the disk even if a later fsync of
//! the same file succeeds (they read back as zeros after a crash).
//!
//! Everything random comes from one seed, so a failing test reproduces from the seed it prints.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Fs, LockGuard, Mapped, WritableFile};

/// A small, fast, seedable pseudo-random generator (SplitMix64). Good enough for choosing
/// crash points and fault positions; not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        // Multiply-shift: unbiased enough for test choices, and never loops.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// A fault to inject at one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails with EIO and has no effect.
    Io,
    /// The operation fails with ENOSPC and has no effect.
    NoSpace,
    /// An append writes a random strict prefix of its bytes, then fails with ENOSPC. Other
    /// operations fail as with [`Fault::Io`].
    ShortWrite,
    /// A sync fails: the pending bytes stay readable but never become durable. Other
    /// operations fail as with [`Fault::Io`].
    SyncFail,
}

/// Counters of what the simulated disk has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Mutating operations performed (the index space of [`SimFs::fail_op`]).
    pub ops: u64,
    /// Successful file syncs.
    pub syncs: u64,
    /// Successful directory syncs.
    pub dir_syncs: u64,
    /// Faults injected so far.
    pub faults: u64,
}

type NodeId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Dir,
    File(NodeId),
}

#[derive(Debug, Clone)]
enum NsOp {
    Put(PathBuf, Entry),
    Remove(PathBuf),
    Rename(PathBuf, PathBuf),
}

#[derive(Debug, Clone)]
enum Pending {
    Append { at: u64, bytes: Vec<u8> },
    Truncate(u64),
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// What reads see now.
    data: Vec<u8>,
    /// What a crash leaves at least.
    durable: Vec<u8>,
    /// Changes since the last sync, oldest first.
    pending: Vec<Pending>,
    /// Byte ranges whose write-back was lost to a failed fsync: they reach the disk as zeros.
    lost: Vec<Range<u64>>,
}

#[derive(Debug)]
struct State {
    dead: bool,
    rng: SplitMix64,
    stats: SimStats,
    faults: BTreeMap<u64, Fault>,
    disk_full: bool,
    next_node: NodeId,
    names: BTreeMap<PathBuf, Entry>,
    durable_names: BTreeMap<PathBuf, Entry>,
    pending_ns: Vec<NsOp>,
    nodes: HashMap<NodeId, Node>,
    locks: BTreeSet<PathBuf>,
    /// A power cut planned just before this mutating operation.
    crash_at: Option<u64>,
    /// The disk as it came back from the planned power cut.
    crashed: Option<SimFs>,
}

/// The simulated disk. Cloning gives another handle on the same disk.
#[derive(Debug, Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn dead_error() -> io::Error {
    io::Error::other("simulated process is dead: the disk was crashed under it")
}

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(28) // ENOSPC
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5) // EIO
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such file or directory: {}", path.display()),
    )
}

fn is_root(path: &Path) -> bool {
    path.as_os_str().is_empty() || path == Path::new("/")
}

impl State {
    fn check_alive(&self) -> io::Result<()> {
        if self.dead { Err(dead_error()) } else { Ok(()) }
    }

    /// Plays a power cut (see [`SimFs::crash`]).
    fn power_cut(&mut self) -> SimFs {
        let old = self;
        old.dead = true;
        let mut rng = SplitMix64::new(old.rng.next_u64());

        // Namespace: the durable entries plus a random prefix of the pending changes, in order.
        let mut names = old.durable_names.clone();
        let keep_ns = rng.below(old.pending_ns.len() as u64 + 1) as usize;
        for op in &old.pending_ns[..keep_ns] {
            State::apply_ns(&mut names, op);
        }

        let mut nodes = HashMap::new();
        for entry in names.values() {
            let Entry::File(id) = entry else { continue };
            let Some(node) = old.nodes.get(id) else {
                continue;
            };
            let image = crash_image(node, &mut rng);
            nodes.insert(
                *id,
                Node {
                    data: image.clone(),
                    durable: image,
                    pending: Vec::new(),
                    lost: Vec::new(),
                },
            );
        }

        SimFs {
            state: Arc::new(Mutex::new(State {
                dead: false,
                rng,
                stats: SimStats::default(),
                faults: BTreeMap::new(),
                disk_full: false,
                next_node: old.next_node,
                durable_names: names.clone(),
                names,
                pending_ns: Vec::new(),
                nodes,
                locks: BTreeSet::new(),
                crash_at: None,
                crashed: None,
            })),
        }
    }

    /// Counts a mutating operation and returns the fault to inject into it, if any.
    fn begin_op(&mut self) -> io::Result<Option<Fault>> {
        self.check_alive()?;
        let index = self.stats.ops;
        if self.crash_at == Some(index) {
            self.crashed = Some(self.power_cut());
            return Err(dead_error());
        }
        self.stats.ops += 1;
        let fault = self.faults.remove(&index);
        if fault.is_some() {
            self.stats.faults += 1;
        }
        Ok(fault)
    }

    fn dir_exists(&self, dir: &Path) -> bool {
        is_root(dir) || self.names.get(dir) == Some(&Entry::Dir)
    }

    fn parent_exists(&self, path: &Path) -> bool {
        path.parent().is_none_or(|p| self.dir_exists(p))
    }

    fn file_node(&self, path: &Path) -> io::Result<NodeId> {
        match self.names.get(path) {
            Some(Entry::File(id)) => Ok(*id),
            Some(Entry::Dir) => Err(io::Error::other(format!(
                "is a directory: {}",
                path.display()
            ))),
            None => Err(not_found(path)),
        }
    }

    fn apply_ns(names: &mut BTreeMap<PathBuf, Entry>, op: &NsOp) {
        match op {
            NsOp::Put(path, entry) => {
                names.insert(path.clone(), *entry);
            }
            NsOp::Remove(path) => {
                // A directory goes with everything below it.
                names.retain(|p, _| !p.starts_with(path));
            }
            NsOp::Rename(from, to) => {
                // A directory moves with everything below it.
                let moved: Vec<PathBuf> = names
                    .keys()
                    .filter(|p| *p == from || p.starts_with(from))
                    .cloned()
                    .collect();
                for old in moved {
                    let entry = names.remove(&old).expect("listed above");
                    let rest = old.strip_prefix(from).expect("under from");
                    let new = if rest.as_os_str().is_empty() {
                        to.clone()
                    } else {
                        to.join(rest)
                    };
                    names.insert(new, entry);
                }
            }
        }
    }

    fn ns_op(&mut self, op: NsOp) {
        State::apply_ns(&mut self.names, &op);
        self.pending_ns.push(op);
    }

    fn touches(op: &NsOp, dir: &Path) -> bool {
        let parent_is = |p: &PathBuf| p.parent() == Some(dir);
        match op {
            NsOp::Put(p, _) | NsOp::Remove(p) => parent_is(p),
            NsOp::Rename(a, b) => parent_is(a) || parent_is(b),
        }
    }
}

impl Node {
    fn apply(data: &mut Vec<u8>, pending: &Pending) {
        match pending {
            Pending::Append { at, bytes } => {
                data.truncate(*at as usize);
                data.resize(*at as usize, 0);
                data.extend_from_slice(bytes);
            }
            Pending::Truncate(len) => data.resize(*len as usize, 0),
        }
    }

    fn zero_lost(&self, image: &mut [u8]) {
        for range in &self.lost {
            let start = (range.start as usize).min(image.len());
            let end = (range.end as usize).min(image.len());
            image[start..end].fill(0);
        }
    }
}

impl Default for SimFs {
    fn default() -> SimFs {
        SimFs::new(0)
    }
}

impl SimFs {
    /// An empty disk whose random choices come from `seed`.
    pub fn new(seed: u64) -> SimFs {
        SimFs {
            state: Arc::new(Mutex::new(State {
                dead: false,
                rng: SplitMix64::new(seed),
                stats: SimStats::default(),
                faults: BTreeMap::new(),
                disk_full: false,
                next_node: 1,
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                pending_ns: Vec::new(),
                nodes: HashMap::new(),
                locks: BTreeSet::new(),
                crash_at: None,
                crashed: None,
            })),
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the disk from the test's own assertions.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails the mutating operation with index `op` (counting from 0, see [`SimStats::ops`]).
    pub fn fail_op(&self, op: u64, fault: Fault) {
        self.lock_state().faults.insert(op, fault);
    }

    /// Turns the disk-full condition on or off.
    pub fn set_disk_full(&self, full: bool) {
        self.lock_state().disk_full = full;
    }

    /// Counters of what the disk has seen.
    pub fn stats(&self) -> SimStats {
        self.lock_state().stats
    }

    /// Plays a power cut and returns the disk as it comes back up. The handle this is called on
    /// (and every clone of it, and every file opened through it) fails from now on.
    pub fn crash(&self) -> SimFs {
        self.lock_state().power_cut()
    }

    /// Plans a power cut just before mutating operation `op` (counting from 0, see
    /// [`SimStats::ops`]): that operation and everything after it fail as on a dead disk, and
    /// [`SimFs::crashed`] returns the disk as it comes back up.
    pub fn crash_before_op(&self, op: u64) {
        self.lock_state().crash_at = Some(op);
    }

    /// The disk after the power cut planned by [`SimFs::crash_before_op`], once it happened.
    pub fn crashed(&self) -> Option<SimFs> {
        self.lock_state().crashed.clone()
    }

    /// Flips one bit of a file, durably: for corruption tests.
    pub fn flip_bit(&self, path: &Path, bit: u64) -> io::Result<()> {
        let mut st = self.lock_state();
        let id = st.file_node(path)?;
        let node = st.nodes.get_mut(&id).expect("named node exists");
        let byte = (bit / 8) as usize;
        if byte >= node.data.len() {
            return Err(io::Error::other("bit past the end of the file"));
        }
        node.data[byte] ^= 1 << (bit % 8);
        if byte < node.durable.len() {
            node.durable[byte] ^= 1 << (bit % 8);
        }
        Ok(())
    }

    /// Replaces a file's content durably (for corruption and truncation tests).
    pub fn set_content(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.lock_state();
        let id = st.file_node(path)?;
        let node = st.nodes.get_mut(&id).expect("named node exists");
        node.data = bytes.to_vec();
        node.durable = bytes.to_vec();
        node.pending.clear();
        Ok(())
    }

    /// The paths of every file, sorted: for assertions about what exists.
    pub fn files(&self) -> Vec<PathBuf> {
        let st = self.lock_state();
        st.names
            .iter()
            .filter(|(_, e)| matches!(e, Entry::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }
}

/// What one file holds after a power cut.
fn crash_image(node: &Node, rng: &mut SplitMix64) -> Vec<u8> {
    let mut image = node.durable.clone();
    let keep = rng.below(node.pending.len() as u64 + 1) as usize;
    for pending in &node.pending[..keep] {
        Node::apply(&mut image, pending);
    }
    // The next write may be torn.
    if let Some(Pending::Append { at, bytes }) = node.pending.get(keep)
        && !bytes.is_empty()
        && rng.chance(1, 2)
    {
        {
            let cut = rng.below(bytes.len() as u64) as usize;
            let at = *at as usize;
            image.truncate(at);
            image.resize(at, 0);
            image.extend_from_slice(&bytes[..cut]);
            match rng.below(3) {
                // The last, partly written sector holds garbage.
                0 => {
                    let sector_start = (at + cut) & !511;
                    let start = sector_start.max(at);
                    for b in &mut image[start..] {
                        *b = rng.next_u64() as u8;
                    }
                }
                // The file's size reached the disk before its data: zeros.
                1 => image.resize(at + bytes.len(), 0),
                _ => {}
            }
        }
    }
    node.zero_lost(&mut image);
    image
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    node: NodeId,
}

impl SimFile {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl WritableFile for SimFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.lock_state();
        let fault = st.begin_op()?;
        let disk_full = st.disk_full;
        let keep = match fault {
            Some(Fault::Io | Fault::SyncFail) => return Err(eio()),
            Some(Fault::NoSpace) => return Err(no_space()),
            _ if disk_full => return Err(no_space()),
            Some(Fault::ShortWrite) if !buf.is_empty() => st.rng.below(buf.len() as u64) as usize,
            _ => buf.len(),
        };
        let node = st.nodes.get_mut(&self.node).ok_or_else(eio)?;
        let at = node.data.len() as u64;
        node.data.extend_from_slice(&buf[..keep]);
        node.pending.push(Pending::Append {
            at,
            bytes: buf[..keep].to_vec(),
        });
        if keep < buf.len() {
            return Err(no_space());
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut st = self.lock_state();
        let fault = st.begin_op()?;
        let node = st.nodes.get_mut(&self.node).ok_or_else(eio)?;
        if fault.is_some() {
            // Linux marks the dirty pages clean after a failed write-back: their bytes never
            // reach the disk, even if a later fsync succeeds.
            for pending in node.pending.drain(..) {
                if let Pending::Append { at, bytes } = pending {
                    node.lost.push(at..at + bytes.len() as u64);
                }
            }
            return Err(eio());
        }
        let mut image = node.data.clone();
        node.zero_lost(&mut image);
        node.durable = image;
        node.pending.clear();
        st.stats.syncs += 1;
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut st = self.lock_state();
        if st.begin_op()?.is_some() {
            return Err(eio());
        }
        let node = st.nodes.get_mut(&self.node).ok_or_else(eio)?;
        node.data.resize(len as usize, 0);
        node.pending.push(Pending::Truncate(len));
        Ok(())
    }

    fn len(&self) -> u64 {
        let st = self.lock_state();
        st.nodes.get(&self.node).map_or(0, |n| n.data.len() as u64)
    }
}

#[derive(Debug)]
struct SimLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.locks.remove(&self.path);
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock_state();
        st.check_alive()?;
        let mut missing: Vec<PathBuf> = dir
            .ancestors()
            .filter(|p| !is_root(p) && !st.dir_exists(p))
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        for path in missing {
            if st.names.contains_key(&path) {
                return Err(io::Error::other(format!(
                    "not a directory: {}",
                    path.display()
                )));
            }
            if st.begin_op()?.is_some() {
                return Err(eio());
            }
            st.ns_op(NsOp::Put(path, Entry::Dir));
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut st = self.lock_state();
        let fault = st.begin_op()?;
        if fault.is_some() || st.disk_full {
            return Err(if fault == Some(Fault::Io) {
                eio()
            } else {
                no_space()
            });
        }
        if !st.parent_exists(path) {
            return Err(not_found(path));
        }
        let id = st.next_node;
        st.next_node += 1;
        st.nodes.insert(id, Node::default());
        st.ns_op(NsOp::Put(path.to_path_buf(), Entry::File(id)));
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            node: id,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let st = self.lock_state();
        st.check_alive()?;
        let id = st.file_node(path)?;
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            node: id,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = self.lock_state();
        st.check_alive()?;
        let id = st.file_node(path)?;
        Ok(st.nodes[&id].data.clone())
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let st = self.lock_state();
        st.check_alive()?;
        let id = st.file_node(path)?;
        Ok(st.nodes[&id].data.len() as u64)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.lock_state();
        st.check_alive()?;
        if !st.dir_exists(dir) {
            return Err(not_found(dir));
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let st = self.lock_state();
        st.check_alive()?;
        Ok(is_root(path) || st.names.contains_key(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock_state();
        if st.begin_op()?.is_some() {
            return Err(eio());
        }
        if !st.names.contains_key(from) {
            return Err(not_found(from));
        }
        if !st.parent_exists(to) {
            return Err(not_found(to));
        }
        st.ns_op(NsOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock_state();
        if st.begin_op()?.is_some() {
            return Err(eio());
        }
        st.file_node(path)?;
        st.ns_op(NsOp::Remove(path.to_path_buf()));
        Ok(())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock_state();
        if st.begin_op()?.is_some() {
            return Err(eio());
        }
        if is_root(dir) || !st.dir_exists(dir) {
            return Err(not_found(dir));
        }
        st.ns_op(NsOp::Remove(dir.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock_state();
        if st.begin_op()?.is_some() {
            return Err(eio());
        }
        if !st.dir_exists(dir) {
            return Err(not_found(dir));
        }
        // Journaled file systems commit namespace changes in order: syncing a directory makes
        // every change up to its own latest one durable.
        if let Some(last) = st.pending_ns.iter().rposition(|op| State::touches(op, dir)) {
            let done: Vec<NsOp> = st.pending_ns.drain(..=last).collect();
            for op in &done {
                State::apply_ns(&mut st.durable_names, op);
            }
        }
        st.stats.dir_syncs += 1;
        Ok(())
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        let st = self.lock_state();
        st.check_alive()?;
        let id = st.file_node(path)?;
        // A copy: the simulated disk cannot enforce the sealed-file contract, but a copy
        // cannot be changed under its reader either.
        Ok(Mapped::from_memory(Arc::from(&st.nodes[&id].data[..])))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        let mut st = self.lock_state();
        st.check_alive()?;
        if !st.locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the lock is held by another handle",
            ));
        }
        Ok(Box::new(SimLock {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn synced_data_and_synced_names_survive_a_crash() {
        let fs = SimFs::new(1);
        fs.create_dir_all(&p("/db/wal")).unwrap();
        let mut f = fs.create(&p("/db/wal/1")).unwrap();
        f.append(b"durable").unwrap();
        f.sync().unwrap();
        fs.sync_dir(&p("/db/wal")).unwrap();
        f.append(b" maybe").unwrap();
        for _ in 0..50 {
            let after = fs.clone().crash_without_fencing();
            let data = after.read(&p("/db/wal/1")).unwrap();
            assert!(data.starts_with(b"durable"), "{data:?}");
            assert!(data.len() <= b"durable maybe".len());
        }
    }

    #[test]
    fn a_file_whose_directory_was_not_synced_may_vanish() {
        let mut vanished = 0;
        for seed in 0..64 {
            let fs = SimFs::new(seed);
            fs.create_dir_all(&p("/d")).unwrap();
            fs.sync_dir(&p("/")).unwrap();
            let mut f = fs.create(&p("/d/x")).unwrap();
            f.append(b"abc").unwrap();
            f.sync().unwrap();
            let after = fs.crash();
            if !after.exists(&p("/d/x")).unwrap() {
                vanished += 1;
            }
        }
        assert!(vanished > 0, "an unsynced directory entry always survived");
        assert!(vanished < 64, "an unsynced directory entry never survived");
    }

    #[test]
    fn renaming_a_directory_moves_its_files() {
        let fs = SimFs::new(8);
        fs.create_dir_all(&p("/b/x.tmp/chunks")).unwrap();
        let mut f = fs.create(&p("/b/x.tmp/chunks/1")).unwrap();
        f.append(b"data").unwrap();
        f.sync().unwrap();
        fs.sync_dir(&p("/b/x.tmp/chunks")).unwrap();
        fs.rename(&p("/b/x.tmp"), &p("/b/x")).unwrap();
        fs.sync_dir(&p("/b")).unwrap();
        assert_eq!(fs.read(&p("/b/x/chunks/1")).unwrap(), b"data");
        assert!(!fs.exists(&p("/b/x.tmp")).unwrap());
        let after = fs.crash();
        assert_eq!(after.read(&p("/b/x/chunks/1")).unwrap(), b"data");
    }

    #[test]
    fn a_map_is_a_stable_view() {
        let fs = SimFs::new(6);
        fs.create_dir_all(&p("/d")).unwrap();
        let mut f = fs.create(&p("/d/x")).unwrap();
        f.append(b"sealed").unwrap();
        f.sync().unwrap();
        let map = fs.map(&p("/d/x")).unwrap();
        fs.remove_file(&p("/d/x")).unwrap();
        assert_eq!(&map[..], b"sealed");
        assert!(fs.map(&p("/d/x")).is_err());
    }

    #[test]
    fn the_crashed_handle_is_fenced() {
        let fs = SimFs::new(3);
        fs.create_dir_all(&p("/d")).unwrap();
        let mut f = fs.create(&p("/d/x")).unwrap();
        let _after = fs.crash();
        assert!(f.append(b"late").is_err());
        assert!(fs.read(&p("/d/x")).is_err());
    }

    #[test]
    fn injected_faults_hit_the_chosen_operation() {
        let fs = SimFs::new(4);
        fs.create_dir_all(&p("/d")).unwrap(); // op 0
        let mut f = fs.create(&p("/d/x")).unwrap(); // op 1
        fs.fail_op(2, Fault::ShortWrite);
        fs.fail_op(3, Fault::NoSpace);
        let err = f.append(&[7u8; 100]).unwrap_err(); // op 2
        assert_eq!(err.raw_os_error(), Some(28));
        let short = fs.read(&p("/d/x")).unwrap().len();
        assert!(short < 100);
        assert_eq!(f.append(b"x").unwrap_err().raw_os_error(), Some(28)); // op 3
        f.append(b"y").unwrap(); // op 4
        assert_eq!(fs.stats().faults, 2);
        fs.set_disk_full(true);
        assert!(f.append(b"z").is_err());
        assert!(fs.create(&p("/d/y")).is_err());
        fs.set_disk_full(false);
        f.append(b"z").unwrap();
    }

    #[test]
    fn bytes_lost_to_a_failed_fsync_never_reach_the_disk() {
        let fs = SimFs::new(5);
        fs.create_dir_all(&p("/d")).unwrap(); // op 0
        fs.sync_dir(&p("/")).unwrap(); // op 1
        let mut f = fs.create(&p("/d/x")).unwrap(); // op 2
        fs.sync_dir(&p("/d")).unwrap(); // op 3
        f.append(b"aaaa").unwrap(); // op 4
        fs.fail_op(5, Fault::SyncFail);
        assert!(f.sync().is_err()); // op 5
        f.append(b"bbbb").unwrap();
        f.sync().unwrap();
        assert_eq!(fs.read(&p("/d/x")).unwrap(), b"aaaabbbb");
        let after = fs.crash();
        assert_eq!(after.read(&p("/d/x")).unwrap(), b"\0\0\0\0bbbb");
    }

    impl SimFs {
        /// Crash images without fencing the original, so one history can be crashed many
        /// times in a test.
        fn crash_without_fencing(self) -> SimFs {
            let copy = {
                let st = self.lock_state();
                let mut rng = st.rng.clone();
                let seed = rng.next_u64() ^ st.stats.ops;
                drop(st);
                self.lock_state().rng = SplitMix64::new(seed);
                SimFs {
                    state: Arc::new(Mutex::new(clone_state(&self.lock_state()))),
                }
            };
            copy.crash()
        }
    }

    fn clone_state(st: &State) -> State {
        State {
            dead: false,
            rng: st.rng.clone(),
            stats: st.stats,
            faults: st.faults.clone(),
            disk_full: st.disk_full,
            next_node: st.next_node,
            names: st.names.clone(),
            durable_names: st.durable_names.clone(),
            pending_ns: st.pending_ns.clone(),
            nodes: st.nodes.clone(),
            locks: BTreeSet::new(),
            crash_at: None,
            crashed: None,
        }
    }
}
