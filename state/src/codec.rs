//! The byte form of a log entry: one version byte, then the entry in the postcard encoding
//! (serde-derived from the command types; specified byte by byte in docs/format.md).
//!
//! An entry is the data of one journal record in the core's internal shard. It carries no
//! length prefix and no checksum of its own: the journal's record frame already gives its
//! length and an XXH3-64 checksum seeded with the shard and record index, verified on every
//! read from disk and in recovery, so bytes that reach this decoder are the bytes that were
//! written (and a second checksum would add 8 bytes to entries that are often 30). The decoder
//! still refuses anything malformed, with a typed error and without panicking, and requires
//! that the entry uses every byte it was given.

use crate::limits::LOG_ENTRY_BYTES_MAX;
use crate::machine::InvalidCommand;
use crate::state::Entry;

/// Version of the entry encoding, the first byte of every entry.
pub const LOG_FORMAT_VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the entry encodes to {bytes} bytes, more than the {LOG_ENTRY_BYTES_MAX} a log entry may have")]
    TooLarge { bytes: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty log entry")]
    Empty,
    #[error("log entry of {bytes} bytes is larger than {LOG_ENTRY_BYTES_MAX}")]
    TooLarge { bytes: usize },
    #[error("log entry format version {found}; this build reads version {LOG_FORMAT_VERSION}")]
    UnsupportedVersion { found: u8 },
    #[error("malformed log entry: {0}")]
    Malformed(Malformed),
    #[error("log entry has {bytes} bytes after its end")]
    TrailingBytes { bytes: usize },
    #[error("invalid log entry: {0}")]
    Invalid(InvalidCommand),
}

/// What was wrong with the bytes of a malformed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("it ends early")]
    UnexpectedEnd,
    #[error("a variable-length integer is too long for its type")]
    BadVarint,
    #[error("a boolean is neither 0 nor 1")]
    BadBool,
    #[error("a string is not UTF-8")]
    BadUtf8,
    #[error("an option tag is neither 0 nor 1")]
    BadOption,
    #[error("an enum tag is unknown")]
    BadTag,
    #[error("a value breaks its type's rules")]
    BadValue,
}

fn malformed(error: postcard::Error) -> DecodeError {
    use postcard::Error as E;
    DecodeError::Malformed(match error {
        E::DeserializeUnexpectedEnd => Malformed::UnexpectedEnd,
        E::DeserializeBadVarint => Malformed::BadVarint,
        E::DeserializeBadBool => Malformed::BadBool,
        E::DeserializeBadUtf8 | E::DeserializeBadChar => Malformed::BadUtf8,
        E::DeserializeBadOption => Malformed::BadOption,
        E::DeserializeBadEnum => Malformed::BadTag,
        // serde's own errors: an unknown variant index, a worker id out of bounds, a wrong
        // length of a fixed-size array.
        _ => Malformed::BadValue,
    })
}

/// The bytes of `entry`, as appended to the internal shard.
pub fn encode(entry: &Entry) -> Result<Vec<u8>, EncodeError> {
    let mut bytes = vec![LOG_FORMAT_VERSION];
    bytes = postcard::to_extend(entry, bytes).expect("every entry type has a known length and serializes");
    if bytes.len() > LOG_ENTRY_BYTES_MAX {
        return Err(EncodeError::TooLarge { bytes: bytes.len() });
    }
    Ok(bytes)
}

/// The entry in `bytes`, or why they are not one. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if bytes.len() > LOG_ENTRY_BYTES_MAX {
        return Err(DecodeError::TooLarge { bytes: bytes.len() });
    }
    if version != LOG_FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version });
    }
    let (entry, rest): (Entry, &[u8]) = postcard::take_from_bytes(body).map_err(malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { bytes: rest.len() });
    }
    entry.command.validate().map_err(DecodeError::Invalid)?;
    Ok(entry)
}
