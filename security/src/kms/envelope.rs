//! Envelope encryption: a fresh 256-bit data key per use, wrapped (encrypted) by a master key
//! with AES-256-GCM. The wrap binds the master key id and an encryption context as associated
//! data, so a wrapped key opens only under the same master key and for the same context (a
//! stream's data key cannot be moved to another stream).
//!
//! Wrapped form (61 bytes): `version (1) | nonce (12) | ciphertext (32) | tag (16)`; the nonce
//! is random, which is safe: one master key wraps far fewer than 2^32 data keys.

use super::keystore::MasterKey;
use super::KmsError;
use crate::limits::ENCRYPTION_CONTEXT_BYTES_MAX;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Bytes of a data key: AES-256.
pub const DATA_KEY_BYTES: usize = 32;
/// The wrapped-key format's version byte.
pub const WRAPPED_VERSION: u8 = 1;
/// Bytes of a wrapped data key.
pub const WRAPPED_BYTES: usize = 1 + 12 + DATA_KEY_BYTES + 16;
/// Domain separation of the wrap's associated data from every other use of a master key.
const WRAP_DOMAIN: &[u8] = b"sluice-data-key-wrap-v1\0";

/// A plaintext data key: redacted in `Debug`, wiped on drop.
#[derive(Clone)]
pub struct DataKey(pub(crate) Zeroizing<[u8; DATA_KEY_BYTES]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// A key from its bytes (an unwrapped key, or a fixed key in tests).
    pub fn from_bytes(bytes: [u8; DATA_KEY_BYTES]) -> DataKey {
        DataKey(Zeroizing::new(bytes))
    }

    /// A fresh key from the operating system's generator.
    pub fn generate() -> DataKey {
        let mut key = Zeroizing::new([0u8; DATA_KEY_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut *key);
        DataKey(key)
    }
}

/// A data key wrapped by a master key: safe to store next to the data it protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    pub master_key_id: Uuid,
    pub bytes: Vec<u8>,
}

/// KMS's encryption context: key/value pairs bound to a wrapped key. Kinesis uses
/// `aws:kinesis:arn` = the stream's ARN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(pub BTreeMap<String, String>);

impl EncryptionContext {
    /// The context of a stream's data keys.
    pub fn for_stream(stream_arn: &str) -> EncryptionContext {
        EncryptionContext([("aws:kinesis:arn".to_string(), stream_arn.to_string())].into())
    }

    /// A canonical byte form: pairs in key order, each `len(key) key len(value) value` with
    /// u32 little-endian lengths, so no two contexts share a form.
    fn canonical(&self) -> Result<Vec<u8>, KmsError> {
        let mut out = Vec::new();
        for (key, value) in &self.0 {
            for part in [key, value] {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        if out.len() > ENCRYPTION_CONTEXT_BYTES_MAX {
            return Err(KmsError::new(
                super::KmsErrorKind::InvalidState,
                format!("Encryption context exceeds {ENCRYPTION_CONTEXT_BYTES_MAX} bytes"),
            ));
        }
        Ok(out)
    }
}

fn associated_data(master_key_id: &Uuid, context: &EncryptionContext) -> Result<Vec<u8>, KmsError> {
    let mut aad = WRAP_DOMAIN.to_vec();
    aad.extend_from_slice(master_key_id.as_bytes());
    aad.extend_from_slice(&context.canonical()?);
    Ok(aad)
}

impl MasterKey {
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(self.material.expose()).expect("master keys are 32 bytes")
    }

    /// A new data key and its wrapped form (KMS GenerateDataKey). The caller checks the key
    /// is usable ([`MasterKey::check_usable`]) first.
    pub fn generate_data_key(&self, context: &EncryptionContext) -> Result<(DataKey, WrappedDataKey), KmsError> {
        let key = DataKey::generate();
        let wrapped = self.wrap(&key, context)?;
        Ok((key, wrapped))
    }

    /// Wraps a data key under this master key.
    pub fn wrap(&self, key: &DataKey, context: &EncryptionContext) -> Result<WrappedDataKey, KmsError> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(&self.key_id, context)?;
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &key.0[..], aad: &aad })
            .expect("AES-GCM encrypts any 32-byte message");
        let mut bytes = Vec::with_capacity(WRAPPED_BYTES);
        bytes.push(WRAPPED_VERSION);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(WrappedDataKey { master_key_id: self.key_id, bytes })
    }

    /// Unwraps a data key (KMS Decrypt): KMSAccessDeniedException if it was wrapped by
    /// another key, for another context, or was altered.
    pub fn unwrap_data_key(&self, wrapped: &WrappedDataKey, context: &EncryptionContext) -> Result<DataKey, KmsError> {
        if wrapped.master_key_id != self.key_id
            || wrapped.bytes.len() != WRAPPED_BYTES
            || wrapped.bytes[0] != WRAPPED_VERSION
        {
            return Err(KmsError::cannot_decrypt());
        }
        let aad = associated_data(&self.key_id, context)?;
        let plain = self
            .cipher()
            .decrypt(Nonce::from_slice(&wrapped.bytes[1..13]), Payload { msg: &wrapped.bytes[13..], aad: &aad })
            .map_err(|_| KmsError::cannot_decrypt())?;
        let plain = Zeroizing::new(plain);
        let mut key = Zeroizing::new([0u8; DATA_KEY_BYTES]);
        key.copy_from_slice(&plain);
        Ok(DataKey(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretBytes;

    fn master(byte: u8) -> MasterKey {
        MasterKey::new(Uuid::new_v4(), "us-east-1", "123456789012", SecretBytes::new(vec![byte; 32]))
    }

    #[test]
    fn wrapped_keys_open_only_under_their_master_key_and_context() {
        let master = master(1);
        let context = EncryptionContext::for_stream("arn:aws:kinesis:us-east-1:123456789012:stream/orders");
        let (key, wrapped) = master.generate_data_key(&context).unwrap();
        assert_eq!(wrapped.bytes.len(), WRAPPED_BYTES);
        assert_eq!(*master.unwrap_data_key(&wrapped, &context).unwrap().0, *key.0);

        let other_stream = EncryptionContext::for_stream("arn:aws:kinesis:us-east-1:123456789012:stream/audit");
        assert_eq!(master.unwrap_data_key(&wrapped, &other_stream).unwrap_err(), KmsError::cannot_decrypt());
        let impostor = MasterKey::new(master.key_id, "us-east-1", "123456789012", SecretBytes::new(vec![2; 32]));
        assert!(impostor.unwrap_data_key(&wrapped, &context).is_err());
        let mut altered = wrapped.clone();
        altered.bytes[20] ^= 1;
        assert!(master.unwrap_data_key(&altered, &context).is_err());
        let renamed = WrappedDataKey { master_key_id: Uuid::new_v4(), ..wrapped.clone() };
        assert!(master.unwrap_data_key(&renamed, &context).is_err());
        assert!(master
            .unwrap_data_key(&WrappedDataKey { bytes: wrapped.bytes[..40].to_vec(), ..wrapped }, &context)
            .is_err());
    }

    #[test]
    fn contexts_have_distinct_canonical_forms() {
        let a = EncryptionContext([("ab".into(), "c".into())].into());
        let b = EncryptionContext([("a".into(), "bc".into())].into());
        assert_ne!(a.canonical().unwrap(), b.canonical().unwrap());
        assert!(!format!("{:?}", DataKey::generate()).contains(", "));
    }
}
