//! Sealing record batches: what the engine calls on a commit's payloads.
//!
//! A sealed batch is `header (44) | ciphertext | tag (16)`:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `SLSE` |
//! | 4 | 1 | format version, 1 |
//! | 5 | 1 | algorithm, 1 = AES-256-GCM |
//! | 6 | 2 | reserved, 0 |
//! | 8 | 16 | master key id (UUID bytes) |
//! | 24 | 4 | data-key version, u32 LE |
//! | 28 | 12 | nonce: 4-byte sealer id, then a 64-bit counter LE |
//! | 40 | 4 | plaintext bytes, u32 LE |
//! | 44 | n | ciphertext |
//! | 44 + n | 16 | GCM tag |
//!
//! The associated data is the whole header plus the caller's context (the engine passes the
//! stream, shard and first record index of the batch), so a batch cannot be moved to another
//! place, another key or another version without failing to open.
//!
//! Nonces never repeat under one data key: a [`BatchSealer`] owns its data key alone (it is
//! neither `Clone` nor shared), numbers its seals with a counter from 0, and refuses to seal
//! past [`DATA_KEY_SEALS_MAX`]. The engine gives each sealer a fresh data key (a new data-key
//! version) whenever it starts one, in particular after every restart: a torn commit rewritten
//! at the same disk offset after a crash is sealed under a different key. The random sealer id
//! in the nonce is defence in depth should two sealers ever share a key by mistake.

use super::envelope::DataKey;
use crate::limits::{DATA_KEY_SEALS_MAX, SEALED_PLAINTEXT_BYTES_MAX};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use std::collections::HashMap;
use uuid::Uuid;

pub const SEALED_MAGIC: [u8; 4] = *b"SLSE";
pub const SEALED_VERSION: u8 = 1;
pub const ALGORITHM_AES_256_GCM: u8 = 1;
pub const OFFSET_MASTER_KEY_ID: usize = 8;
pub const OFFSET_DATA_KEY_VERSION: usize = 24;
pub const OFFSET_NONCE: usize = 28;
pub const OFFSET_PLAINTEXT_BYTES: usize = 40;
pub const SEALED_HEADER_BYTES: usize = 44;
pub const SEALED_TAG_BYTES: usize = 16;
/// Bytes a sealed batch adds to its plaintext.
pub const SEALED_OVERHEAD_BYTES: usize = SEALED_HEADER_BYTES + SEALED_TAG_BYTES;

const _: () = assert!(OFFSET_NONCE + 12 == OFFSET_PLAINTEXT_BYTES);
const _: () = assert!(OFFSET_PLAINTEXT_BYTES + 4 == SEALED_HEADER_BYTES);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("data key version {version} has sealed {DATA_KEY_SEALS_MAX} batches; start a new data key")]
    DataKeyExhausted { version: u32 },
    #[error("a batch of {bytes} bytes exceeds {SEALED_PLAINTEXT_BYTES_MAX}")]
    TooLarge { bytes: usize },
    #[error("the frame of {frame_bytes} bytes has no room for the {SEALED_OVERHEAD_BYTES} bytes of header and tag")]
    NoRoom { frame_bytes: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed batch of {bytes} bytes is shorter than its header and tag")]
    Truncated { bytes: usize },
    #[error("not a sealed batch (magic {found:02x?})")]
    BadMagic { found: [u8; 4] },
    #[error("sealed batch format {version}, algorithm {algorithm} is not supported")]
    Unsupported { version: u8, algorithm: u8 },
    #[error("sealed batch says {declared} plaintext bytes but holds {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("no data key version {version} of master key {master_key_id}")]
    UnknownDataKey { master_key_id: Uuid, version: u32 },
    #[error("sealed batch does not authenticate: altered, or opened with the wrong key or context")]
    Authentication,
}

/// A sealed batch's header, parsed and checked (untrusted disk bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedHeader {
    pub master_key_id: Uuid,
    pub data_key_version: u32,
    pub nonce: [u8; 12],
    pub plaintext_bytes: usize,
}

impl SealedHeader {
    /// Parses the header of `sealed` (the whole sealed batch) and checks its length.
    pub fn parse(sealed: &[u8]) -> Result<SealedHeader, OpenError> {
        if sealed.len() < SEALED_OVERHEAD_BYTES {
            return Err(OpenError::Truncated { bytes: sealed.len() });
        }
        let magic: [u8; 4] = sealed[..4].try_into().expect("four bytes");
        if magic != SEALED_MAGIC {
            return Err(OpenError::BadMagic { found: magic });
        }
        if sealed[4] != SEALED_VERSION || sealed[5] != ALGORITHM_AES_256_GCM || sealed[6..8] != [0, 0] {
            return Err(OpenError::Unsupported { version: sealed[4], algorithm: sealed[5] });
        }
        let master_key_id =
            Uuid::from_bytes(sealed[OFFSET_MASTER_KEY_ID..OFFSET_DATA_KEY_VERSION].try_into().expect("16 bytes"));
        let data_key_version =
            u32::from_le_bytes(sealed[OFFSET_DATA_KEY_VERSION..OFFSET_NONCE].try_into().expect("4 bytes"));
        let nonce: [u8; 12] = sealed[OFFSET_NONCE..OFFSET_PLAINTEXT_BYTES].try_into().expect("12 bytes");
        let declared =
            u32::from_le_bytes(sealed[OFFSET_PLAINTEXT_BYTES..SEALED_HEADER_BYTES].try_into().expect("4 bytes"))
                as usize;
        let actual = sealed.len() - SEALED_OVERHEAD_BYTES;
        if declared != actual {
            return Err(OpenError::LengthMismatch { declared, actual });
        }
        Ok(SealedHeader { master_key_id, data_key_version, nonce, plaintext_bytes: declared })
    }

    fn write(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&SEALED_MAGIC);
        out[4] = SEALED_VERSION;
        out[5] = ALGORITHM_AES_256_GCM;
        out[6..8].copy_from_slice(&[0, 0]);
        out[OFFSET_MASTER_KEY_ID..OFFSET_DATA_KEY_VERSION].copy_from_slice(self.master_key_id.as_bytes());
        out[OFFSET_DATA_KEY_VERSION..OFFSET_NONCE].copy_from_slice(&self.data_key_version.to_le_bytes());
        out[OFFSET_NONCE..OFFSET_PLAINTEXT_BYTES].copy_from_slice(&self.nonce);
        out[OFFSET_PLAINTEXT_BYTES..SEALED_HEADER_BYTES].copy_from_slice(&(self.plaintext_bytes as u32).to_le_bytes());
    }
}

fn associated_data(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(context);
    aad
}

/// Seals batches under one data key. Owns the key and the nonce counter; not `Clone`.
pub struct BatchSealer {
    master_key_id: Uuid,
    data_key_version: u32,
    cipher: Aes256Gcm,
    sealer_id: [u8; 4],
    next_counter: u64,
}

impl std::fmt::Debug for BatchSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSealer")
            .field("master_key_id", &self.master_key_id)
            .field("data_key_version", &self.data_key_version)
            .field("next_counter", &self.next_counter)
            .finish_non_exhaustive()
    }
}

impl BatchSealer {
    /// A sealer for a data key that no other sealer uses (the caller made it fresh).
    pub fn new(master_key_id: Uuid, data_key_version: u32, data_key: DataKey) -> BatchSealer {
        let mut sealer_id = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut sealer_id);
        BatchSealer {
            master_key_id,
            data_key_version,
            cipher: Aes256Gcm::new_from_slice(&data_key.0[..]).expect("data keys are 32 bytes"),
            sealer_id,
            next_counter: 0,
        }
    }

    /// Seals left before the data key must be replaced.
    pub fn seals_left(&self) -> u64 {
        DATA_KEY_SEALS_MAX - self.next_counter
    }

    fn next_header(&mut self, plaintext_bytes: usize) -> Result<SealedHeader, SealError> {
        if plaintext_bytes > crate::limits::SEALED_PLAINTEXT_BYTES_MAX {
            return Err(SealError::TooLarge { bytes: plaintext_bytes });
        }
        if self.next_counter >= DATA_KEY_SEALS_MAX {
            return Err(SealError::DataKeyExhausted { version: self.data_key_version });
        }
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&self.sealer_id);
        nonce[4..].copy_from_slice(&self.next_counter.to_le_bytes());
        self.next_counter += 1;
        Ok(SealedHeader {
            master_key_id: self.master_key_id,
            data_key_version: self.data_key_version,
            nonce,
            plaintext_bytes,
        })
    }

    /// Seals `plaintext` into a new buffer.
    pub fn seal(&mut self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut frame = vec![0u8; plaintext.len() + SEALED_OVERHEAD_BYTES];
        frame[SEALED_HEADER_BYTES..SEALED_HEADER_BYTES + plaintext.len()].copy_from_slice(plaintext);
        self.seal_in_place(context, &mut frame)?;
        Ok(frame)
    }

    /// Seals in place, without copying the payload: `frame` holds
    /// `[SEALED_HEADER_BYTES of room][plaintext][SEALED_TAG_BYTES of room]`, as the engine can
    /// lay out its write buffer; header and tag are written into the room.
    pub fn seal_in_place(&mut self, context: &[u8], frame: &mut [u8]) -> Result<(), SealError> {
        if frame.len() < SEALED_OVERHEAD_BYTES {
            return Err(SealError::NoRoom { frame_bytes: frame.len() });
        }
        let plaintext_bytes = frame.len() - SEALED_OVERHEAD_BYTES;
        let header = self.next_header(plaintext_bytes)?;
        header.write(&mut frame[..SEALED_HEADER_BYTES]);
        let aad = associated_data(&frame[..SEALED_HEADER_BYTES], context);
        let (body, tag_room) = frame[SEALED_HEADER_BYTES..].split_at_mut(plaintext_bytes);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&header.nonce), &aad, body)
            .expect("AES-GCM seals any message under 64 GiB");
        tag_room.copy_from_slice(&tag);
        Ok(())
    }
}

/// Opens a sealed batch with its data key, in place: returns the plaintext inside `sealed`.
pub fn open_in_place<'a>(data_key: &DataKey, context: &[u8], sealed: &'a mut [u8]) -> Result<&'a mut [u8], OpenError> {
    let header = SealedHeader::parse(sealed)?;
    let cipher = Aes256Gcm::new_from_slice(&data_key.0[..]).expect("data keys are 32 bytes");
    let aad = associated_data(&sealed[..SEALED_HEADER_BYTES], context);
    let (body, tag) = sealed[SEALED_HEADER_BYTES..].split_at_mut(header.plaintext_bytes);
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(&header.nonce), &aad, body, Tag::from_slice(tag))
        .map_err(|_| OpenError::Authentication)?;
    Ok(body)
}

/// The unwrapped data keys a reader holds, by master key id and data-key version.
#[derive(Debug, Default)]
pub struct DataKeyRing {
    keys: HashMap<(Uuid, u32), DataKey>,
}

impl DataKeyRing {
    pub fn insert(&mut self, master_key_id: Uuid, version: u32, key: DataKey) {
        self.keys.insert((master_key_id, version), key);
    }

    pub fn contains(&self, master_key_id: Uuid, version: u32) -> bool {
        self.keys.contains_key(&(master_key_id, version))
    }

    /// Opens a sealed batch with whichever key its header names.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let header = SealedHeader::parse(sealed)?;
        let key = self.keys.get(&(header.master_key_id, header.data_key_version)).ok_or(OpenError::UnknownDataKey {
            master_key_id: header.master_key_id,
            version: header.data_key_version,
        })?;
        let mut copy = sealed.to_vec();
        let plain = open_in_place(key, context, &mut copy)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sealer(version: u32) -> (BatchSealer, DataKeyRing, Uuid) {
        let master_key_id = Uuid::new_v4();
        let key = DataKey::generate();
        let mut ring = DataKeyRing::default();
        ring.insert(master_key_id, version, key.clone());
        (BatchSealer::new(master_key_id, version, key), ring, master_key_id)
    }

    #[test]
    fn seals_and_opens_with_the_layout_documented() {
        let (mut sealer, ring, master_key_id) = sealer(7);
        let context = b"stream 3 shard 1 index 42";
        let sealed = sealer.seal(context, b"hello, records").unwrap();
        assert_eq!(sealed.len(), 14 + SEALED_OVERHEAD_BYTES);
        assert_eq!(&sealed[..4], b"SLSE");
        let header = SealedHeader::parse(&sealed).unwrap();
        assert_eq!((header.master_key_id, header.data_key_version, header.plaintext_bytes), (master_key_id, 7, 14));
        assert_eq!(&header.nonce[4..], &0u64.to_le_bytes());
        assert_eq!(ring.open(context, &sealed).unwrap(), b"hello, records");
        assert_ne!(&sealed[SEALED_HEADER_BYTES..SEALED_HEADER_BYTES + 14], b"hello, records");
    }

    #[test]
    fn nonces_never_repeat_under_one_key() {
        let (mut sealer, _, _) = sealer(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let sealed = sealer.seal(b"", b"x").unwrap();
            assert!(seen.insert(SealedHeader::parse(&sealed).unwrap().nonce));
        }
        assert_eq!(sealer.seals_left(), DATA_KEY_SEALS_MAX - 10_000);
        sealer.next_counter = DATA_KEY_SEALS_MAX;
        assert_eq!(sealer.seal(b"", b"x").unwrap_err(), SealError::DataKeyExhausted { version: 1 });
    }

    #[test]
    fn anything_altered_fails_to_open() {
        let (mut sealer, mut ring, master_key_id) = sealer(2);
        let sealed = sealer.seal(b"ctx", b"payload bytes").unwrap();
        assert_eq!(ring.open(b"other ctx", &sealed), Err(OpenError::Authentication));
        for position in [4usize, 8, 24, 30, 41, 50, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[position] ^= 0x01;
            assert!(ring.open(b"ctx", &altered).is_err(), "flipping byte {position} went unnoticed");
        }
        assert!(matches!(ring.open(b"ctx", &sealed[..sealed.len() - 1]), Err(OpenError::LengthMismatch { .. })));
        assert!(matches!(ring.open(b"ctx", &sealed[..10]), Err(OpenError::Truncated { bytes: 10 })));
        ring.insert(master_key_id, 2, DataKey::generate());
        assert_eq!(ring.open(b"ctx", &sealed), Err(OpenError::Authentication), "a different key of the same version");
        let (mut other, _, _) = self::sealer(3);
        let foreign = other.seal(b"ctx", b"x").unwrap();
        assert!(matches!(ring.open(b"ctx", &foreign), Err(OpenError::UnknownDataKey { version: 3, .. })));
    }

    #[test]
    fn seals_in_place_in_the_engines_buffer_layout() {
        let (mut sealer, ring, _) = sealer(4);
        let payload = vec![0xA5u8; 4096];
        let mut frame = vec![0u8; SEALED_HEADER_BYTES];
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(&[0u8; SEALED_TAG_BYTES]);
        sealer.seal_in_place(b"c", &mut frame).unwrap();
        assert_eq!(ring.open(b"c", &frame).unwrap(), payload);
        assert_eq!(sealer.seal_in_place(b"c", &mut [0u8; 10]), Err(SealError::NoRoom { frame_bytes: 10 }));
    }

    proptest! {
        #[test]
        fn round_trips(payload in prop::collection::vec(any::<u8>(), 0..2048), context in prop::collection::vec(any::<u8>(), 0..64)) {
            let (mut sealer, ring, _) = sealer(9);
            let sealed = sealer.seal(&context, &payload).unwrap();
            prop_assert_eq!(ring.open(&context, &sealed).unwrap(), payload);
        }

        #[test]
        fn headers_of_garbage_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = SealedHeader::parse(&bytes);
            let ring = DataKeyRing::default();
            let _ = ring.open(b"", &bytes);
        }
    }
}
