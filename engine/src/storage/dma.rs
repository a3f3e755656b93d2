//! The production storage: glommio's `DmaFile` (O_DIRECT, io_uring) on the executor of the
//! core that owns the journal.
//!
//! Two glommio facts shape it (`shared/reference/toolchain.md`): `DmaFile::create` opens
//! write-only, so files are opened read + write; and glommio decides once per executor whether
//! the disk supports IOPOLL by probing the first `DmaFile` it opens, so [`prime_iopoll_probe`]
//! runs before any other file (see there).

use super::{IoBuffer, Storage, StorageFile};
use crate::histogram::Histogram;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions, ReadResult};
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Any file of at least this size primes glommio's IOPOLL probe correctly.
const IOPOLL_PROBE_BYTES: usize = 4096;
const IOPOLL_PROBE_FILE: &str = ".iopoll-probe";

/// What this thread's (one core's) files did on the disk, for the daemon's metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskStats {
    /// Bytes read by `read_at` (journal reads that missed the tail cache, recovery).
    pub bytes_read: u64,
    /// Microseconds per `fdatasync`.
    pub fdatasync_us: Histogram,
}

thread_local! {
    /// Per thread, and so per core: each executor owns its files, nothing is shared.
    static DISK_STATS: Cell<DiskStats> = Cell::new(DiskStats::default());
}

/// This core's disk counters since it started.
pub fn disk_stats() -> DiskStats {
    DISK_STATS.get()
}

fn count_disk(change: impl FnOnce(&mut DiskStats)) {
    let mut stats = DISK_STATS.get();
    change(&mut stats);
    DISK_STATS.set(stats);
}

/// Files on the local disk through glommio. Must be used on a glommio executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct DmaStorage;

fn io_error(error: glommio::GlommioError<()>) -> io::Error {
    error.into()
}

/// Runs blocking file-system calls (directory operations glommio has no io_uring form for)
/// off the executor thread.
async fn blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(work).await
}

impl Storage for DmaStorage {
    type File = DmaFile;
    type Buffer = DmaBuffer;
    type Task<T: 'static> = glommio::Task<T>;

    async fn prepare_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        prime_iopoll_probe(dir).await
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<DmaFile> {
        // DmaFile::create opens write-only; reads need read + write (toolchain.md).
        OpenOptions::new().read(true).write(true).create(create).dma_open(path).await.map_err(io_error)
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let dir = dir.to_path_buf();
        blocking(move || {
            std::fs::read_dir(&dir)?
                .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        blocking(move || std::fs::rename(from, to)).await
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        blocking(move || std::fs::remove_file(path)).await
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let dir: PathBuf = dir.to_path_buf();
        blocking(move || std::fs::File::open(&dir).and_then(|dir| dir.sync_all())).await
    }

    fn block_size(&self, dir: &Path) -> io::Result<usize> {
        use std::os::unix::fs::MetadataExt;
        // One stat, once per journal at start-up: not worth a trip off the executor.
        Ok(std::fs::metadata(dir)?.blksize() as usize)
    }

    fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> glommio::Task<T> {
        glommio::spawn_local(future)
    }
}

impl StorageFile for DmaFile {
    type Buffer = DmaBuffer;
    type Bytes = ReadResult;

    fn alignment(&self) -> usize {
        DmaFile::alignment(self) as usize
    }

    fn alloc_buffer(&self, bytes: usize) -> DmaBuffer {
        self.alloc_dma_buffer(bytes)
    }

    async fn size(&self) -> io::Result<u64> {
        self.file_size().await.map_err(io_error)
    }

    async fn write_at(&self, buffer: Rc<DmaBuffer>, offset: u64) -> io::Result<usize> {
        self.write_rc_at(buffer, offset).await.map_err(io_error)
    }

    async fn read_at(&self, offset: u64, bytes: usize) -> io::Result<ReadResult> {
        let read = DmaFile::read_at(self, offset, bytes).await.map_err(io_error)?;
        count_disk(|stats| stats.bytes_read += read.len() as u64);
        Ok(read)
    }

    async fn fdatasync(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let synced = DmaFile::fdatasync(self).await.map_err(io_error);
        count_disk(|stats| stats.fdatasync_us.record(started.elapsed().as_micros() as u64));
        synced
    }

    async fn truncate(&self, bytes: u64) -> io::Result<()> {
        DmaFile::truncate(self, bytes).await.map_err(io_error)
    }

    async fn allocate(&self, bytes: u64) -> io::Result<()> {
        // `keep_size: false`: the size grows too, so later writes below it are not appends.
        self.pre_allocate(bytes, false).await.map_err(io_error)
    }
}

impl IoBuffer for DmaBuffer {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }

    fn shrink_to(&mut self, bytes: usize) {
        self.trim_to_size(bytes);
    }
}

/// glommio decides once per executor whether the disk supports IOPOLL, by probing the first
/// `DmaFile` it opens. If that file is new and empty the probe "succeeds" on EOF, IOPOLL is
/// wrongly enabled, and every later O_DIRECT read fails with EOPNOTSUPP (glommio issues 605
/// and 670). Opening an existing non-empty file first makes the probe read real data.
pub async fn prime_iopoll_probe(dir: &Path) -> io::Result<()> {
    let path = dir.join(IOPOLL_PROBE_FILE);
    let long_enough = std::fs::metadata(&path).is_ok_and(|meta| meta.len() >= IOPOLL_PROBE_BYTES as u64);
    if !long_enough {
        std::fs::write(&path, [0xA5u8; IOPOLL_PROBE_BYTES])?;
    }
    let file = DmaFile::open(&path).await.map_err(io_error)?;
    file.close().await.map_err(io_error)
}
