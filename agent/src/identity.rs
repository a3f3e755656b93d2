//! Which file is which: device + inode, plus a fingerprint of the first bytes.
//!
//! The inode alone is not enough: a deleted file's inode is reused by the next file created,
//! and logrotate's `copytruncate` moves a file's content to a new inode. The fingerprint (the
//! XXH3 hash of the first [`limits::FINGERPRINT_BYTES`] bytes, or of all of them while the file
//! is shorter) tells a reused inode from the file it replaced, and finds the copy that carries
//! on a truncated file's content.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

use crate::limits;

/// A hash of a file's first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub len: u32,
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of an empty prefix: matches every file.
    pub const EMPTY: Fingerprint = Fingerprint { len: 0, hash: 0 };

    /// Hashes `bytes` (at most [`limits::FINGERPRINT_BYTES`] of them are used).
    pub fn of(bytes: &[u8]) -> Fingerprint {
        let bytes = &bytes[..bytes.len().min(limits::FINGERPRINT_BYTES)];
        if bytes.is_empty() {
            return Fingerprint::EMPTY;
        }
        Fingerprint { len: bytes.len() as u32, hash: xxhash_rust::xxh3::xxh3_64(bytes) }
    }

    /// Whether the fingerprint covers all the bytes it ever will.
    pub fn is_complete(&self) -> bool {
        self.len as usize >= limits::FINGERPRINT_BYTES
    }
}

/// Device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Inode {
    pub dev: u64,
    pub ino: u64,
}

impl Inode {
    pub fn of(metadata: &std::fs::Metadata) -> Inode {
        Inode { dev: metadata.dev(), ino: metadata.ino() }
    }
}

/// Reads up to `len` bytes from the start of `file`.
pub fn read_prefix(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The fingerprint of `file` as it is now.
pub fn fingerprint(file: &File) -> io::Result<Fingerprint> {
    Ok(Fingerprint::of(&read_prefix(file, limits::FINGERPRINT_BYTES)?))
}

/// Whether `file` still starts with the bytes `expected` was taken from.
pub fn starts_with(file: &File, expected: Fingerprint) -> io::Result<bool> {
    if expected.len == 0 {
        return Ok(true);
    }
    let prefix = read_prefix(file, expected.len as usize)?;
    Ok(prefix.len() == expected.len as usize && Fingerprint::of(&prefix) == expected)
}
