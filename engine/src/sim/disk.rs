//! The simulated disk: files and directories in memory, with POSIX's durability rules made
//! explicit so that a simulated power loss can take away exactly what a real one could.
//!
//! - A file's bytes are *live* once written (reads see them) and *durable* once fdatasync'd.
//!   A power loss keeps the durable bytes plus, sector by sector, a random choice of the
//!   written-but-unsynced ones (a write torn at any sector), and either the old or the new
//!   length.
//! - A directory entry created, renamed or removed is durable once the directory is synced.
//!   A power loss keeps the durable entries plus a random prefix of the later changes (file
//!   systems journal metadata in order).
//! - A failed fdatasync leaves each unsynced sector durable or not, at random. A later
//!   successful one makes everything written durable: the journal writes with O_DIRECT, so
//!   unsynced bytes wait in the device's cache, which a flush empties, not in the page cache
//!   (where Linux would drop them after a failed writeback: "fsyncgate").
//! - Any call can fail (EIO; ENOSPC for writes, reservations and creations), after a few random yields that
//!   let other tasks run first; writes must be aligned as O_DIRECT requires (EINVAL if not).
//!
//! A killed process (no power loss) loses nothing written; handles of the old process stop
//! working either way.

use super::executor::{SimExecutor, SimTask};
use super::rng::SimRng;
use crate::checksum::xxh3_64_with_seed;
use crate::storage::{IoBuffer, Storage, StorageFile};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// The unit a write can be torn at, and the smallest O_DIRECT alignment.
pub const SECTOR_BYTES: usize = 512;

/// Linux errno values, so the errors look as the real ones do (and `io::ErrorKind` maps them).
const EIO: i32 = 5;
const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;

/// The calls of the storage seam, for fault plans and the operation trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    PrepareDir,
    Open,
    List,
    Rename,
    Remove,
    SyncDir,
    Size,
    Write,
    Read,
    Fdatasync,
    Truncate,
    Allocate,
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with EIO. A failed write writes nothing; a failed fdatasync leaves the
    /// unsynced sectors durable or not, at random.
    Eio,
    /// The call fails with ENOSPC (writes and file creations only; others get EIO).
    Enospc,
    /// Only the first `sectors` sectors of the write land, then it fails with EIO.
    Torn { sectors: usize },
    /// Only the first `sectors` sectors of the write land, and it reports that (a short write).
    Short { sectors: usize },
}

#[derive(Debug, Clone)]
pub struct DiskConfig {
    /// O_DIRECT alignment of every file: 512 or 4096.
    pub alignment: usize,
    /// Each call fails with probability `1 / fail_one_in` (0: never by chance).
    pub fail_one_in: u64,
    /// Most bytes all files may hold together (live); writes past it get ENOSPC.
    pub capacity_bytes: Option<u64>,
    /// Most yields a call waits before it completes (each call draws `0..=yields_max`).
    pub yields_max: u64,
    /// One read in this many is slow: it waits `slow_read_yields` yields (a reader that
    /// outlives retention, if retention runs meanwhile).
    pub slow_read_one_in: u64,
    pub slow_read_yields: u64,
}

impl Default for DiskConfig {
    fn default() -> DiskConfig {
        DiskConfig {
            alignment: SECTOR_BYTES,
            fail_one_in: 0,
            capacity_bytes: None,
            yields_max: 0,
            slow_read_one_in: 0,
            slow_read_yields: 0,
        }
    }
}

/// Counters for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub ops: u64,
    pub faults: u64,
    pub power_losses: u64,
    pub kills: u64,
    pub bit_flips: u64,
}

struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Sectors whose live content may differ from the durable one.
    dirty: BTreeSet<u64>,
}

impl Inode {
    fn new() -> Inode {
        Inode { live: Vec::new(), durable: Vec::new(), dirty: BTreeSet::new() }
    }

    fn mark_dirty(&mut self, start: usize, end: usize) {
        if end > start {
            let (first, last) = (start / SECTOR_BYTES, (end - 1) / SECTOR_BYTES);
            self.dirty.extend(first as u64..=last as u64);
        }
    }

    /// What survives a power loss (`persist_all`: what a successful fdatasync keeps).
    fn settle(&mut self, rng: &mut SimRng, persist_all: bool) {
        if persist_all {
            self.durable = self.live.clone();
            self.dirty.clear();
            return;
        }
        let length =
            if self.live.len() == self.durable.len() || rng.coin() { self.durable.len() } else { self.live.len() };
        let mut content = self.durable.clone();
        content.resize(length, 0);
        for &sector in &self.dirty {
            if rng.coin() {
                let start = sector as usize * SECTOR_BYTES;
                let end = (start + SECTOR_BYTES).min(length).min(self.live.len());
                if start < end {
                    content[start..end].copy_from_slice(&self.live[start..end]);
                }
            }
        }
        self.durable = content;
        self.dirty.clear();
    }
}

#[derive(Debug, Clone)]
enum DirChange {
    Link(String, u64),
    Unlink(String),
    Rename(String, String),
}

#[derive(Default)]
struct Directory {
    durable: BTreeMap<String, u64>,
    live: BTreeMap<String, u64>,
    /// Changes since the last sync, oldest first: `live` is `durable` with all of them applied.
    changes: Vec<DirChange>,
}

fn apply(entries: &mut BTreeMap<String, u64>, change: &DirChange) {
    match change {
        DirChange::Link(name, inode) => {
            entries.insert(name.clone(), *inode);
        }
        DirChange::Unlink(name) => {
            entries.remove(name);
        }
        DirChange::Rename(from, to) => {
            if let Some(inode) = entries.remove(from) {
                entries.insert(to.clone(), inode);
            }
        }
    }
}

struct Disk {
    config: DiskConfig,
    rng: SimRng,
    inodes: BTreeMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Directory>,
    next_inode: u64,
    /// Bumped by every power loss or kill: handles of an earlier generation are dead.
    generation: u64,
    crash_at_op: Option<u64>,
    crashed: bool,
    /// Planned faults: each the next call of its kind after skipping that many.
    planned: VecDeque<(OpKind, u64, Fault)>,
    stats: DiskStats,
    trace: u64,
}

/// The simulated medium. Clones share it; it outlives the processes (journals) that use it.
#[derive(Clone)]
pub struct SimDisk {
    disk: Rc<RefCell<Disk>>,
}

fn error(errno: i32, what: &str) -> io::Error {
    let os = io::Error::from_raw_os_error(errno);
    io::Error::new(os.kind(), format!("{os} (simulated: {what})"))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found (simulated)", path.display()))
}

fn split(path: &Path) -> (PathBuf, String) {
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    (dir, name)
}

impl Disk {
    fn live_bytes(&self) -> u64 {
        self.inodes.values().map(|inode| inode.live.len() as u64).sum()
    }

    fn record(&mut self, kind: OpKind, detail: &[u64], ok: bool) {
        let mut bytes = Vec::with_capacity(16 + detail.len() * 8);
        bytes.push(kind as u8);
        bytes.push(u8::from(ok));
        for value in detail {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        self.trace = xxh3_64_with_seed(&bytes, self.trace);
    }

    /// The fault this call suffers, if any: planned ones first, then chance.
    fn fault_for(&mut self, kind: OpKind) -> Option<Fault> {
        if let Some(at) = self.planned.iter().position(|(planned, _, _)| *planned == kind) {
            let skip = &mut self.planned[at].1;
            if *skip == 0 {
                self.stats.faults += 1;
                return self.planned.remove(at).map(|(_, _, fault)| fault);
            }
            *skip -= 1;
        }
        if !self.rng.one_in(self.config.fail_one_in) {
            return None;
        }
        self.stats.faults += 1;
        Some(match (kind, self.rng.below(4)) {
            (OpKind::Write, 0) => Fault::Torn { sectors: self.rng.below(16) as usize },
            (OpKind::Write, 1) => Fault::Short { sectors: self.rng.below(16) as usize },
            (OpKind::Write | OpKind::Open | OpKind::Allocate, 2) => Fault::Enospc,
            _ => Fault::Eio,
        })
    }

    fn lookup(&self, path: &Path) -> Option<u64> {
        let (dir, name) = split(path);
        self.dirs.get(&dir)?.live.get(&name).copied()
    }

    fn change(&mut self, dir: &Path, change: DirChange) -> io::Result<()> {
        let directory = self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))?;
        apply(&mut directory.live, &change);
        directory.changes.push(change);
        Ok(())
    }
}

impl SimDisk {
    pub fn new(config: DiskConfig, rng: SimRng) -> SimDisk {
        assert!(config.alignment.is_power_of_two() && config.alignment >= SECTOR_BYTES);
        let disk = Disk {
            config,
            rng,
            inodes: BTreeMap::new(),
            dirs: BTreeMap::new(),
            next_inode: 1,
            generation: 0,
            crash_at_op: None,
            crashed: false,
            planned: VecDeque::new(),
            stats: DiskStats::default(),
            trace: 0,
        };
        SimDisk { disk: Rc::new(RefCell::new(disk)) }
    }

    /// The storage a new process sees, spawning onto `executor`. The tasks it spawns die
    /// with the process (at the next kill or power loss), as a process's threads do.
    pub fn storage(&self, executor: &SimExecutor) -> SimStorage {
        let generation = self.disk.borrow().generation;
        SimStorage { disk: self.clone(), executor: executor.clone(), generation }
    }

    /// Makes the next call of `kind` fail as `fault` says.
    pub fn plan(&self, kind: OpKind, fault: Fault) {
        self.plan_after(kind, 0, fault);
    }

    /// Makes the call of `kind` after the next `skipped` ones fail as `fault` says.
    pub fn plan_after(&self, kind: OpKind, skipped: u64, fault: Fault) {
        self.disk.borrow_mut().planned.push_back((kind, skipped, fault));
    }

    pub fn set_fail_one_in(&self, fail_one_in: u64) {
        self.disk.borrow_mut().config.fail_one_in = fail_one_in;
    }

    pub fn set_capacity_bytes(&self, capacity_bytes: Option<u64>) {
        self.disk.borrow_mut().config.capacity_bytes = capacity_bytes;
    }

    /// The power fails when `calls` more calls have started: that call never completes, and
    /// [`SimDisk::crashed`] turns true.
    pub fn crash_after(&self, calls: u64) {
        let mut disk = self.disk.borrow_mut();
        disk.crash_at_op = Some(disk.stats.ops + calls.max(1));
    }

    pub fn crashed(&self) -> bool {
        self.disk.borrow().crashed
    }

    /// Power returns after a loss (or the machine is cut now): every file and directory keeps
    /// its durable state plus a random part of the rest, and old handles die.
    pub fn power_loss(&self) {
        let mut disk = self.disk.borrow_mut();
        let disk = &mut *disk;
        disk.crashed = false;
        disk.crash_at_op = None;
        disk.planned.clear();
        disk.generation += 1;
        disk.stats.power_losses += 1;
        for directory in disk.dirs.values_mut() {
            let kept = disk.rng.below(directory.changes.len() as u64 + 1) as usize;
            for change in &directory.changes[..kept] {
                apply(&mut directory.durable, change);
            }
            directory.changes.clear();
            directory.live = directory.durable.clone();
        }
        let linked: BTreeSet<u64> = disk.dirs.values().flat_map(|directory| directory.live.values().copied()).collect();
        disk.inodes.retain(|id, _| linked.contains(id));
        for inode in disk.inodes.values_mut() {
            inode.settle(&mut disk.rng, false);
            inode.live = inode.durable.clone();
        }
        let trace = disk.trace;
        disk.record(OpKind::SyncDir, &[u64::MAX, trace], true);
    }

    /// The process dies but the machine stays up: nothing written is lost, old handles die.
    pub fn kill(&self) {
        let mut disk = self.disk.borrow_mut();
        disk.crashed = false;
        disk.crash_at_op = None;
        disk.planned.clear();
        disk.generation += 1;
        disk.stats.kills += 1;
    }

    /// Every file (by path) and its live length, in path order.
    pub fn files(&self) -> Vec<(PathBuf, usize)> {
        let disk = self.disk.borrow();
        let mut files = Vec::new();
        for (dir, directory) in &disk.dirs {
            for (name, inode) in &directory.live {
                files.push((dir.join(name), disk.inodes[inode].live.len()));
            }
        }
        files
    }

    /// A file's live content.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.disk.borrow();
        disk.lookup(path).map(|inode| disk.inodes[&inode].live.clone())
    }

    /// Flips one bit of a file, on the medium (live and durable alike): what the device
    /// returns from now on. Returns false if the file or byte does not exist.
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) -> bool {
        let mut disk = self.disk.borrow_mut();
        let Some(id) = disk.lookup(path) else { return false };
        let inode = disk.inodes.get_mut(&id).expect("linked inodes exist");
        if offset >= inode.live.len() {
            return false;
        }
        inode.live[offset] ^= 1 << (bit % 8);
        if let Some(byte) = inode.durable.get_mut(offset) {
            *byte ^= 1 << (bit % 8);
        }
        disk.stats.bit_flips += 1;
        disk.record(OpKind::Write, &[u64::MAX, id, offset as u64, u64::from(bit)], true);
        true
    }

    pub fn stats(&self) -> DiskStats {
        self.disk.borrow().stats
    }

    /// A hash of every call made and its outcome, in order: equal for two runs of one seed.
    pub fn trace(&self) -> u64 {
        self.disk.borrow().trace
    }

    /// A hash of the durable content of every file and directory entry.
    pub fn durable_digest(&self) -> u64 {
        let disk = self.disk.borrow();
        let mut digest = 0u64;
        for (dir, directory) in &disk.dirs {
            for (name, inode) in &directory.durable {
                digest = xxh3_64_with_seed(dir.join(name).to_string_lossy().as_bytes(), digest);
                digest = xxh3_64_with_seed(disk.inodes.get(inode).map_or(&[][..], |i| &i.durable[..]), digest);
            }
        }
        digest
    }

    /// Waits a few random yields, counts the call, and crashes there if it is time.
    async fn begin(&self, kind: OpKind) -> io::Result<()> {
        let yields = {
            let mut disk = self.disk.borrow_mut();
            let slow_read_one_in = disk.config.slow_read_one_in;
            let slow = kind == OpKind::Read && disk.rng.one_in(slow_read_one_in);
            let base = if slow { disk.config.slow_read_yields } else { 0 };
            let yields_max = disk.config.yields_max;
            base + disk.rng.below(yields_max + 1)
        };
        for _ in 0..yields {
            futures_lite::future::yield_now().await;
        }
        let crash = {
            let mut disk = self.disk.borrow_mut();
            disk.stats.ops += 1;
            if disk.crash_at_op == Some(disk.stats.ops) {
                disk.crashed = true;
            }
            disk.crashed
        };
        if crash {
            // The power is gone: this call never returns.
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    fn check_generation(&self, generation: u64) {
        assert_eq!(self.disk.borrow().generation, generation, "a file handle outlived its process");
    }
}

/// The [`Storage`] of one simulated process.
#[derive(Clone)]
pub struct SimStorage {
    disk: SimDisk,
    executor: SimExecutor,
    /// The disk's generation when the process started.
    generation: u64,
}

/// A task of one simulated process: it stops (its future dropped, never polled again) once
/// the process is gone, so that nothing of it touches the disk afterwards. Several processes
/// may share one executor (the cluster simulation's nodes), so dropping the executor's tasks
/// is not enough.
struct ProcessTask<F> {
    disk: SimDisk,
    generation: u64,
    future: Option<Pin<Box<F>>>,
}

impl<F: Future> Future for ProcessTask<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<F::Output> {
        if self.disk.disk.borrow().generation != self.generation {
            self.future = None;
        }
        match self.future.as_mut() {
            Some(future) => future.as_mut().poll(context),
            None => Poll::Pending,
        }
    }
}

pub struct SimFile {
    disk: SimDisk,
    inode: u64,
    generation: u64,
    alignment: usize,
}

/// An I/O buffer of the simulated disk. New buffers hold garbage, as real ones may.
pub struct SimBuffer(Vec<u8>);

impl IoBuffer for SimBuffer {
    fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    fn shrink_to(&mut self, bytes: usize) {
        self.0.truncate(bytes);
    }
}

impl SimStorage {
    pub fn disk(&self) -> &SimDisk {
        &self.disk
    }

    fn with<T>(&self, work: impl FnOnce(&mut Disk) -> T) -> T {
        work(&mut self.disk.disk.borrow_mut())
    }
}

impl Storage for SimStorage {
    type File = SimFile;
    type Buffer = SimBuffer;
    type Task<T: 'static> = SimTask<T>;

    async fn prepare_dir(&self, dir: &Path) -> io::Result<()> {
        self.disk.begin(OpKind::PrepareDir).await?;
        self.with(|disk| {
            let fault = disk.fault_for(OpKind::PrepareDir);
            disk.record(OpKind::PrepareDir, &[], fault.is_none());
            if fault.is_some() {
                return Err(error(EIO, "mkdir"));
            }
            // Directories themselves are durable at once: the journal never removes one.
            disk.dirs.entry(dir.to_path_buf()).or_default();
            Ok(())
        })
    }

    fn block_size(&self, _dir: &Path) -> io::Result<usize> {
        // The simulated file system's block is its sector alignment: every aligned write is
        // whole blocks.
        self.with(|disk| Ok(disk.config.alignment))
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<SimFile> {
        self.disk.begin(OpKind::Open).await?;
        let (inode, generation, alignment) = self.with(|disk| {
            let existing = disk.lookup(path);
            match disk.fault_for(OpKind::Open) {
                Some(Fault::Enospc) if existing.is_none() && create => {
                    disk.record(OpKind::Open, &[1], false);
                    return Err(error(ENOSPC, "create"));
                }
                Some(_) => {
                    disk.record(OpKind::Open, &[2], false);
                    return Err(error(EIO, "open"));
                }
                None => {}
            }
            let inode = match existing {
                Some(inode) => inode,
                None if create => {
                    let inode = disk.next_inode;
                    disk.next_inode += 1;
                    disk.inodes.insert(inode, Inode::new());
                    let (dir, name) = split(path);
                    disk.change(&dir, DirChange::Link(name, inode))?;
                    inode
                }
                None => {
                    disk.record(OpKind::Open, &[0], false);
                    return Err(not_found(path));
                }
            };
            disk.record(OpKind::Open, &[inode], true);
            Ok((inode, disk.generation, disk.config.alignment))
        })?;
        Ok(SimFile { disk: self.disk.clone(), inode, generation, alignment })
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.disk.begin(OpKind::List).await?;
        self.with(|disk| {
            if disk.fault_for(OpKind::List).is_some() {
                disk.record(OpKind::List, &[], false);
                return Err(error(EIO, "list"));
            }
            let names: Vec<String> = disk.dirs.get(dir).ok_or_else(|| not_found(dir))?.live.keys().cloned().collect();
            disk.record(OpKind::List, &[names.len() as u64], true);
            Ok(names)
        })
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.disk.begin(OpKind::Rename).await?;
        self.with(|disk| {
            if disk.fault_for(OpKind::Rename).is_some() {
                disk.record(OpKind::Rename, &[], false);
                return Err(error(EIO, "rename"));
            }
            let ((dir, from_name), (to_dir, to_name)) = (split(from), split(to));
            assert_eq!(dir, to_dir, "the journal renames within one directory");
            let inode = disk.lookup(from).ok_or_else(|| not_found(from))?;
            disk.change(&dir, DirChange::Rename(from_name, to_name))?;
            disk.record(OpKind::Rename, &[inode], true);
            Ok(())
        })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.disk.begin(OpKind::Remove).await?;
        self.with(|disk| {
            if disk.fault_for(OpKind::Remove).is_some() {
                disk.record(OpKind::Remove, &[], false);
                return Err(error(EIO, "unlink"));
            }
            let (dir, name) = split(path);
            let inode = disk.lookup(path).ok_or_else(|| not_found(path))?;
            // The inode lives on while handles use it (and until a power loss).
            disk.change(&dir, DirChange::Unlink(name))?;
            disk.record(OpKind::Remove, &[inode], true);
            Ok(())
        })
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.disk.begin(OpKind::SyncDir).await?;
        self.with(|disk| {
            if disk.fault_for(OpKind::SyncDir).is_some() {
                disk.record(OpKind::SyncDir, &[], false);
                return Err(error(EIO, "fsync directory"));
            }
            let directory = disk.dirs.get_mut(dir).ok_or_else(|| not_found(dir))?;
            for change in std::mem::take(&mut directory.changes) {
                apply(&mut directory.durable, &change);
            }
            let entries = directory.durable.len() as u64;
            disk.record(OpKind::SyncDir, &[entries], true);
            Ok(())
        })
    }

    fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> SimTask<T> {
        let task = ProcessTask { disk: self.disk.clone(), generation: self.generation, future: Some(Box::pin(future)) };
        self.executor.spawn(task)
    }
}

impl SimFile {
    fn with<T>(&self, work: impl FnOnce(&mut Disk, &mut Inode) -> T) -> T {
        self.disk.check_generation(self.generation);
        let mut disk = self.disk.disk.borrow_mut();
        let disk = &mut *disk;
        let mut inode = disk.inodes.remove(&self.inode).expect("an open file's inode lives");
        let result = work(disk, &mut inode);
        disk.inodes.insert(self.inode, inode);
        result
    }
}

impl StorageFile for SimFile {
    type Buffer = SimBuffer;
    type Bytes = Vec<u8>;

    fn alignment(&self) -> usize {
        self.alignment
    }

    fn alloc_buffer(&self, bytes: usize) -> SimBuffer {
        SimBuffer(vec![0xEE; bytes])
    }

    async fn size(&self) -> io::Result<u64> {
        self.disk.begin(OpKind::Size).await?;
        let id = self.inode;
        self.with(|disk, inode| {
            if disk.fault_for(OpKind::Size).is_some() {
                disk.record(OpKind::Size, &[id], false);
                return Err(error(EIO, "stat"));
            }
            disk.record(OpKind::Size, &[id, inode.live.len() as u64], true);
            Ok(inode.live.len() as u64)
        })
    }

    async fn write_at(&self, buffer: Rc<SimBuffer>, offset: u64) -> io::Result<usize> {
        self.disk.begin(OpKind::Write).await?;
        let (id, alignment) = (self.inode, self.alignment);
        self.with(|disk, inode| {
            let bytes = buffer.bytes();
            let detail = [id, offset, bytes.len() as u64];
            if !offset.is_multiple_of(alignment as u64) || !bytes.len().is_multiple_of(alignment) {
                disk.record(OpKind::Write, &detail, false);
                return Err(error(EINVAL, "unaligned O_DIRECT write"));
            }
            let start = offset as usize;
            let growth = (start + bytes.len()).saturating_sub(inode.live.len()) as u64;
            let full = disk.config.capacity_bytes.is_some_and(|capacity| disk.live_bytes() + growth > capacity);
            let fault = if full { Some(Fault::Enospc) } else { disk.fault_for(OpKind::Write) };
            let (landed, result) = match fault {
                None => (bytes.len(), Ok(bytes.len())),
                Some(Fault::Eio) => (0, Err(error(EIO, "write"))),
                Some(Fault::Enospc) => (0, Err(error(ENOSPC, "write"))),
                Some(Fault::Torn { sectors }) => {
                    ((sectors * SECTOR_BYTES).min(bytes.len()), Err(error(EIO, "write torn")))
                }
                Some(Fault::Short { sectors }) => {
                    let landed = (sectors * SECTOR_BYTES).min(bytes.len());
                    (landed, Ok(landed))
                }
            };
            if landed > 0 {
                if inode.live.len() < start + landed {
                    inode.live.resize(start + landed, 0);
                }
                inode.live[start..start + landed].copy_from_slice(&bytes[..landed]);
                inode.mark_dirty(start, start + landed);
            }
            disk.record(OpKind::Write, &[id, offset, bytes.len() as u64, landed as u64], result.is_ok());
            result
        })
    }

    async fn read_at(&self, offset: u64, bytes: usize) -> io::Result<Vec<u8>> {
        self.disk.begin(OpKind::Read).await?;
        let id = self.inode;
        self.with(|disk, inode| {
            if disk.fault_for(OpKind::Read).is_some() {
                disk.record(OpKind::Read, &[id, offset], false);
                return Err(error(EIO, "read"));
            }
            let start = (offset as usize).min(inode.live.len());
            let end = (start + bytes).min(inode.live.len());
            disk.record(OpKind::Read, &[id, offset, (end - start) as u64], true);
            Ok(inode.live[start..end].to_vec())
        })
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.disk.begin(OpKind::Fdatasync).await?;
        let id = self.inode;
        self.with(|disk, inode| {
            if disk.fault_for(OpKind::Fdatasync).is_some() {
                // Some of the unsynced sectors made it, some did not.
                inode.settle(&mut disk.rng, false);
                disk.record(OpKind::Fdatasync, &[id], false);
                return Err(error(EIO, "fdatasync"));
            }
            inode.settle(&mut disk.rng, true);
            disk.record(OpKind::Fdatasync, &[id, inode.durable.len() as u64], true);
            Ok(())
        })
    }

    async fn truncate(&self, bytes: u64) -> io::Result<()> {
        self.disk.begin(OpKind::Truncate).await?;
        let id = self.inode;
        self.with(|disk, inode| {
            if disk.fault_for(OpKind::Truncate).is_some() {
                disk.record(OpKind::Truncate, &[id, bytes], false);
                return Err(error(EIO, "truncate"));
            }
            let old = inode.live.len();
            inode.live.resize(bytes as usize, 0);
            inode.mark_dirty(old.min(bytes as usize), old.max(bytes as usize));
            disk.record(OpKind::Truncate, &[id, bytes], true);
            Ok(())
        })
    }

    async fn allocate(&self, bytes: u64) -> io::Result<()> {
        self.disk.begin(OpKind::Allocate).await?;
        let id = self.inode;
        self.with(|disk, inode| {
            let old = inode.live.len();
            let growth = (bytes as usize).saturating_sub(old) as u64;
            let full = disk.config.capacity_bytes.is_some_and(|capacity| disk.live_bytes() + growth > capacity);
            let fault = if full { Some(Fault::Enospc) } else { disk.fault_for(OpKind::Allocate) };
            if let Some(fault) = fault {
                disk.record(OpKind::Allocate, &[id, bytes], false);
                return Err(match fault {
                    Fault::Enospc => error(ENOSPC, "fallocate"),
                    _ => error(EIO, "fallocate"),
                });
            }
            if growth > 0 {
                // Zeros, as a real reservation reads; the new length is durable only after an
                // fdatasync, like a write's.
                inode.live.resize(bytes as usize, 0);
                inode.mark_dirty(old, bytes as usize);
            }
            disk.record(OpKind::Allocate, &[id, bytes], true);
            Ok(())
        })
    }
}
