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

/// The fingerprint of `file` as it is now, if it still starts with the bytes `known` was taken
/// from; `None` if it does not (truncated and written again since). A fingerprint taken while
/// the file was short is extended as the file grows: taken afresh instead, it could be of
/// another content than the one read, and the copy that carries the bytes read would no
/// longer be found (`copytruncate` between the check that the file is intact and the new
/// fingerprint: the copy was read from its start, every line twice).
pub fn extend(file: &File, known: Fingerprint) -> io::Result<Option<Fingerprint>> {
    let prefix = read_prefix(file, limits::FINGERPRINT_BYTES)?;
    let covered = known.len as usize;
    let same = prefix.len() >= covered && Fingerprint::of(&prefix[..covered]) == known;
    Ok(same.then(|| Fingerprint::of(&prefix)))
}

/// The fingerprint of `file` (`size` bytes long, or read up to there) as it is now, if it
/// still starts with the bytes `known` was taken from: `known` itself, or extended if it was
/// taken while the file was shorter ([`extend`]); `None` if it does not. One read of the
/// file's start.
pub fn check(file: &File, known: Fingerprint, size: u64) -> io::Result<Option<Fingerprint>> {
    if !known.is_complete() && size > u64::from(known.len) {
        extend(file, known)
    } else {
        starts_with(file, known).map(|same| same.then_some(known))
    }
}

/// Whether `file` still starts with the bytes `expected` was taken from.
pub fn starts_with(file: &File, expected: Fingerprint) -> io::Result<bool> {
    if expected.len == 0 {
        return Ok(true);
    }
    let prefix = read_prefix(file, expected.len as usize)?;
    Ok(prefix.len() == expected.len as usize && Fingerprint::of(&prefix) == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_holding(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn a_short_fingerprint_is_extended_only_while_the_file_starts_as_it_did() {
        let (_dir, path) = file_holding(b"a0\na1\n");
        let known = Fingerprint::of(b"a0\na1\n");
        // Grown: extended over the new bytes.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"a2\n").unwrap();
        let grown = extend(&File::open(&path).unwrap(), known).unwrap();
        assert_eq!(grown, Some(Fingerprint::of(b"a0\na1\na2\n")));
        // Truncated and written again, longer than before: not this file's bytes.
        std::fs::write(&path, b"b0\nb1\nb2\nb3\n").unwrap();
        assert_eq!(extend(&File::open(&path).unwrap(), known).unwrap(), None);
        // Truncated to fewer bytes than the fingerprint covers.
        std::fs::write(&path, b"a0\n").unwrap();
        assert_eq!(extend(&File::open(&path).unwrap(), known).unwrap(), None);
        // The empty fingerprint matches every file.
        assert_eq!(extend(&File::open(&path).unwrap(), Fingerprint::EMPTY).unwrap(), Some(Fingerprint::of(b"a0\n")));
    }

    #[test]
    fn a_check_extends_a_short_fingerprint_only_past_what_it_covers() {
        let (_dir, path) = file_holding(b"a0\na1\n");
        let known = Fingerprint::of(b"a0\n");
        let file = File::open(&path).unwrap();
        // Read up to what it covers: the fingerprint as it was.
        assert_eq!(check(&file, known, 3).unwrap(), Some(known));
        // Read past it: extended over every byte the file holds now.
        assert_eq!(check(&file, known, 6).unwrap(), Some(Fingerprint::of(b"a0\na1\n")));
        // Rewritten: not this file's bytes, whatever was read.
        std::fs::write(&path, b"b0\nb1\n").unwrap();
        assert_eq!(check(&File::open(&path).unwrap(), known, 3).unwrap(), None);
        assert_eq!(check(&File::open(&path).unwrap(), known, 6).unwrap(), None);
    }
}
