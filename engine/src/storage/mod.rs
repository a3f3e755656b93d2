//! The storage seam: every file operation the journal makes goes through [`Storage`], so one
//! journal runs on the disk ([`DmaStorage`]: glommio, io_uring, O_DIRECT) and on the simulated
//! disk of the deterministic simulation tests (`crate::sim`, feature `simulation`), which can
//! fail, tear, forget and corrupt any of these calls.
//!
//! The journal is generic over its storage (monomorphised, no `dyn`), so the seam costs
//! nothing in a release build: `Journal` is `Journal<DmaStorage>`.
//!
//! The calls are the ones a crash-consistent log needs and no more. Their durability contract
//! is POSIX's, which the simulator enforces: bytes written are durable only after
//! [`StorageFile::fdatasync`], and a created, renamed or removed name is durable only after
//! [`Storage::sync_dir`] of its directory.

pub mod dma;

pub use dma::DmaStorage;

use std::future::Future;
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::rc::Rc;

/// A file system and the executor the journal's tasks run on (the journal spawns its flusher
/// and its concurrent writes; the simulator must schedule those itself to be deterministic).
#[expect(async_fn_in_trait, reason = "storage lives on one executor thread; no future here is sent")]
pub trait Storage: Clone + 'static {
    type File: StorageFile<Buffer = Self::Buffer>;
    /// An I/O buffer, aligned as the files of this storage need.
    type Buffer: IoBuffer;
    /// A spawned task: resolves to the future's output.
    type Task<T: 'static>: Future<Output = T> + 'static;

    /// Creates `dir` (and its parents) if needed and prepares it for use. Called once, before
    /// any other call for files in `dir`.
    async fn prepare_dir(&self, dir: &Path) -> io::Result<()>;
    /// Opens a file for reading and writing; creates it (empty) if `create` and it is missing.
    async fn open(&self, path: &Path, create: bool) -> io::Result<Self::File>;
    /// The names of the entries of `dir`.
    async fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Replaces `to` with `from` atomically (both in one directory).
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    async fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// The block size of the file system holding `dir`. Writes into reserved space
    /// ([`StorageFile::allocate`]) that start and end on its blocks are the ones the disk takes
    /// inline: ext4 serializes one that leaves part of a reserved block unwritten, and io_uring
    /// hands it to a worker thread.
    fn block_size(&self, dir: &Path) -> io::Result<usize>;
    /// Runs `future` concurrently on the current executor.
    fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> Self::Task<T>;
}

/// An open file. Writes must be aligned to [`StorageFile::alignment`] (O_DIRECT); reads need not.
#[expect(async_fn_in_trait, reason = "storage lives on one executor thread; no future here is sent")]
pub trait StorageFile: 'static {
    type Buffer: IoBuffer;
    /// Bytes read: at most the length asked for, fewer at the end of the file.
    type Bytes: Deref<Target = [u8]> + 'static;

    /// The alignment of offsets and lengths of writes, probed for this file.
    fn alignment(&self) -> usize;
    /// A buffer of `bytes` bytes that this file can write. Its content is unspecified: the
    /// writer fills every byte it writes (the simulator fills new buffers with garbage).
    fn alloc_buffer(&self, bytes: usize) -> Self::Buffer;
    async fn size(&self) -> io::Result<u64>;
    /// Writes the whole buffer at `offset`; returns the bytes written (fewer on a short write).
    async fn write_at(&self, buffer: Rc<Self::Buffer>, offset: u64) -> io::Result<usize>;
    async fn read_at(&self, offset: u64, bytes: usize) -> io::Result<Self::Bytes>;
    /// Makes every byte written to this file, and its size, durable.
    async fn fdatasync(&self) -> io::Result<()>;
    async fn truncate(&self, bytes: u64) -> io::Result<()>;
    /// Makes the file at least `bytes` long, reserving the space (fallocate): the bytes past
    /// the old end read as zeros until written, and the new size, like a write, is durable
    /// only after [`StorageFile::fdatasync`]. A write into reserved space does not change the
    /// file's size, which on the real disk lets io_uring do it inline instead of handing it to
    /// a worker thread (see `journal::segment::reserve`).
    async fn allocate(&self, bytes: u64) -> io::Result<()>;
}

/// A buffer the journal frames batches into and writes from.
pub trait IoBuffer: 'static {
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Shortens the buffer to its first `bytes` bytes (what a write then writes).
    fn shrink_to(&mut self, bytes: usize);
}

/// `AsMut<[u8]>` over a storage buffer, so `format::BatchWriter` frames straight into it.
pub(crate) struct BufferBytes<B>(pub B);

impl<B: IoBuffer> AsMut<[u8]> for BufferBytes<B> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.bytes_mut()
    }
}

/// Writes a small file so that a crash leaves either the old content or the new, never a mix:
/// write a temporary file, fdatasync it, rename it over `path`, sync the directory. Used for
/// segment index checkpoints and watermarks.
pub async fn write_atomic<S: Storage>(storage: &S, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.file_name().map(|name| name.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let file = storage.open(&tmp, true).await?;
    // A temporary file a crash left behind may be longer than this one.
    file.truncate(0).await?;
    let alignment = file.alignment();
    let padded = bytes.len().div_ceil(alignment) * alignment;
    if padded > 0 {
        let mut buffer = file.alloc_buffer(padded);
        let content = buffer.bytes_mut();
        content[..bytes.len()].copy_from_slice(bytes);
        content[bytes.len()..].fill(0);
        let written = file.write_at(Rc::new(buffer), 0).await?;
        if written != padded {
            return Err(short_write(written, padded));
        }
        // O_DIRECT writes whole blocks: cut the padding off again.
        file.truncate(bytes.len() as u64).await?;
    }
    file.fdatasync().await?;
    drop(file);
    storage.rename(&tmp, path).await?;
    storage.sync_dir(path.parent().unwrap_or(Path::new("."))).await
}

/// The whole content of a small file, or `None` if it does not exist.
pub async fn read_whole<S: Storage>(storage: &S, path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match storage.open(path, false).await {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let size = file.size().await?;
    let size = usize::try_from(size).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
    let bytes = file.read_at(0, size).await?;
    if bytes.len() != size {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("read {} of {size} bytes", bytes.len())));
    }
    Ok(Some(bytes.to_vec()))
}

pub(crate) fn short_write(written: usize, expected: usize) -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, format!("short write: {written} of {expected} bytes"))
}
