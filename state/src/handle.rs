//! Receipt handles: what ReceiveQueueRecords gives a consumer to acknowledge a record or
//! change its visibility. Opaque to clients and unforgeable: the fields are signed with
//! HMAC-SHA-256 under a key the state keeps (written to the log by `Command::Init`, so handles
//! stay valid across restarts). A handle names one *delivery*: the record's attempt number
//! grows with every receive, so a handle from before a redelivery is stale, and the state
//! refuses it.
//!
//! Layout before base64 (URL-safe alphabet, no padding; 62 characters):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 1 | version, 1 |
//! | 1 | 8 | queue id, u64 little-endian |
//! | 9 | 8 | shard uid |
//! | 17 | 8 | record index |
//! | 25 | 4 | attempt, u32 |
//! | 29 | 1 | side: 0 queue, 1 dead-letter |
//! | 30 | 16 | HMAC-SHA-256 of bytes 0..30, first 16 bytes |

use crate::ids::{QueueId, RecordIndex, ShardUid};
use crate::limits::{HANDLE_KEY_BYTES, RECEIPT_HANDLE_CHARS_MAX};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const VERSION: u8 = 1;
const BODY_BYTES: usize = 30;
/// 128 bits of tag: forging a handle takes 2^128 tries on average (NIST SP 800-107 allows
/// truncating HMAC tags to this length and less).
const TAG_BYTES: usize = 16;
const HANDLE_BYTES: usize = BODY_BYTES + TAG_BYTES;
/// Length of every handle this version issues.
pub const RECEIPT_HANDLE_CHARS: usize = (HANDLE_BYTES * 8).div_ceil(6);
const _: () = assert!(RECEIPT_HANDLE_CHARS <= RECEIPT_HANDLE_CHARS_MAX);

/// Which of a queue's two paths a record is on: delivered by ReceiveQueueRecords, or, once it
/// was received MaxReceiveCount times without acknowledgement, by the dead-letter operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    Queue,
    DeadLetter,
}

/// The key receipt handles are signed with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleKey(pub [u8; HANDLE_KEY_BYTES]);

impl std::fmt::Debug for HandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key itself (it would let anyone who reads logs forge handles).
        f.write_str("HandleKey(..)")
    }
}

/// One delivery of one record, as a receipt handle names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub shard: ShardUid,
    pub index: RecordIndex,
    /// Which receive of the record this is: 1 for the first, +1 for every receive on either
    /// side (never reset, so a handle is never valid twice).
    pub attempt: u32,
    pub side: Side,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("the receipt handle is not one this queue issued")]
    Malformed,
    #[error("the receipt handle was issued by another queue")]
    OtherQueue,
}

impl HandleKey {
    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(body);
        mac
    }

    /// The receipt handle of `delivery` from `queue`.
    pub fn sign(&self, queue: QueueId, delivery: Delivery) -> String {
        let mut bytes = [0u8; HANDLE_BYTES];
        bytes[0] = VERSION;
        bytes[1..9].copy_from_slice(&queue.0.to_le_bytes());
        bytes[9..17].copy_from_slice(&delivery.shard.0.to_le_bytes());
        bytes[17..25].copy_from_slice(&delivery.index.0.to_le_bytes());
        bytes[25..29].copy_from_slice(&delivery.attempt.to_le_bytes());
        bytes[29] = match delivery.side {
            Side::Queue => 0,
            Side::DeadLetter => 1,
        };
        let tag = self.mac(&bytes[..BODY_BYTES]).finalize().into_bytes();
        bytes[BODY_BYTES..].copy_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The delivery `handle` names, if this key signed it for `queue`. Any other input, of any
    /// length or content, is an error.
    pub fn verify(&self, queue: QueueId, handle: &str) -> Result<Delivery, HandleError> {
        if handle.len() != RECEIPT_HANDLE_CHARS {
            return Err(HandleError::Malformed);
        }
        let mut bytes = [0u8; HANDLE_BYTES + 2];
        let decoded = URL_SAFE_NO_PAD.decode_slice(handle, &mut bytes).map_err(|_| HandleError::Malformed)?;
        if decoded != HANDLE_BYTES || bytes[0] != VERSION {
            return Err(HandleError::Malformed);
        }
        let (body, tag) = bytes[..HANDLE_BYTES].split_at(BODY_BYTES);
        // Constant-time comparison of the truncated tag.
        self.mac(body).verify_truncated_left(tag).map_err(|_| HandleError::Malformed)?;
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        if u64_at(1) != queue.0 {
            return Err(HandleError::OtherQueue);
        }
        let side = match body[29] {
            0 => Side::Queue,
            1 => Side::DeadLetter,
            _ => return Err(HandleError::Malformed),
        };
        Ok(Delivery {
            shard: ShardUid(u64_at(9)),
            index: RecordIndex(u64_at(17)),
            attempt: u32::from_le_bytes(body[25..29].try_into().expect("4 bytes")),
            side,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery { shard: ShardUid(7), index: RecordIndex(1234), attempt: 3, side: Side::DeadLetter }
    }

    #[test]
    fn handles_round_trip_and_are_62_characters() {
        let key = HandleKey([5; 32]);
        let handle = key.sign(QueueId(42), delivery());
        assert_eq!(handle.len(), RECEIPT_HANDLE_CHARS);
        assert_eq!(RECEIPT_HANDLE_CHARS, 62);
        assert_eq!(key.verify(QueueId(42), &handle), Ok(delivery()));
    }

    #[test]
    fn every_changed_character_is_refused() {
        let key = HandleKey([5; 32]);
        let handle = key.sign(QueueId(42), delivery());
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for at in 0..handle.len() {
            for replacement in alphabet.chars().filter(|&c| c != handle.as_bytes()[at] as char) {
                let mut forged = handle.clone();
                forged.replace_range(at..at + 1, &replacement.to_string());
                assert!(key.verify(QueueId(42), &forged).is_err(), "{forged} passed");
            }
        }
    }

    #[test]
    fn another_key_or_queue_or_garbage_is_refused() {
        let handle = HandleKey([5; 32]).sign(QueueId(42), delivery());
        assert_eq!(HandleKey([6; 32]).verify(QueueId(42), &handle), Err(HandleError::Malformed));
        assert_eq!(HandleKey([5; 32]).verify(QueueId(43), &handle), Err(HandleError::OtherQueue));
        for garbage in ["", "x", &"A".repeat(62), &"é".repeat(31), &handle[..61], &format!("{handle}A")] {
            assert_eq!(HandleKey([5; 32]).verify(QueueId(42), garbage), Err(HandleError::Malformed), "{garbage}");
        }
    }
}
