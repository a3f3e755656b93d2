//! A local KMS-like key store and envelope encryption.
//!
//! - [`keystore`]: master keys (`--kms-keys FILE` or a directory of such files) with key ids
//!   (UUIDs), key ARNs, aliases and states; resolution of a `KeyId` given as key id, key ARN,
//!   alias name or alias ARN; the KMS errors Kinesis answers with.
//! - [`envelope`]: data keys generated per use, wrapped by a master key with AES-256-GCM,
//!   bound to the master key id and an encryption context.
//! - [`derive`]: data keys derived with HKDF from a master key, the stream and a data-key
//!   version (what `sluiced` uses), and the AWS-managed key `alias/aws/kinesis`.
//! - [`batch`]: sealing record batches with a data key: an authenticated header naming the
//!   master key and data-key version, a nonce that never repeats under one data key, and
//!   the caller's context (stream, shard, position) bound in as associated data. The byte
//!   layout is in [`batch`] and in `docs/security.md` ("Encrypted batches"), to move to
//!   `docs/format.md` when the engine writes it.
//!
//! Key material is [`SecretBytes`](crate::secret::SecretBytes) or `Zeroizing` arrays: never
//! in `Debug` output, logs or errors, wiped on drop.

pub mod batch;
pub mod derive;
pub mod envelope;
pub mod keystore;

pub use batch::{open_in_place, BatchSealer, DataKeyRing, OpenError, SealError, SealedHeader};
pub use derive::{add_aws_managed_key, add_aws_managed_key_material, AWS_MANAGED_ALIAS};
pub use envelope::{DataKey, EncryptionContext, WrappedDataKey};
pub use keystore::{KeyState, KeyStore, KeyStoreError, MasterKey};

/// The KMS exceptions Kinesis lists for StartStreamEncryption, PutRecord(s) and GetRecords
/// (botocore's `kinesis/2013-12-02/service-2.json`). KMS's own `InvalidKeyIdFormat` has no
/// Kinesis counterpart; a malformed `KeyId` is KMSNotFoundException, as a key that is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KmsErrorKind {
    NotFound,
    Disabled,
    InvalidState,
    AccessDenied,
}

impl KmsErrorKind {
    pub fn exception_name(self) -> &'static str {
        match self {
            KmsErrorKind::NotFound => "KMSNotFoundException",
            KmsErrorKind::Disabled => "KMSDisabledException",
            KmsErrorKind::InvalidState => "KMSInvalidStateException",
            KmsErrorKind::AccessDenied => "KMSAccessDeniedException",
        }
    }
}

/// A KMS refusal: exception and message (key ids and ARNs only, never material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.exception_name())]
pub struct KmsError {
    pub kind: KmsErrorKind,
    pub message: String,
}

impl KmsError {
    pub fn new(kind: KmsErrorKind, message: impl Into<String>) -> KmsError {
        KmsError { kind, message: message.into() }
    }

    pub fn exception_name(&self) -> &'static str {
        self.kind.exception_name()
    }

    pub fn http_status(&self) -> u16 {
        400
    }

    /// KMS's text when a ciphertext cannot be opened with the key it names.
    pub fn cannot_decrypt() -> KmsError {
        KmsError::new(
            KmsErrorKind::AccessDenied,
            "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.",
        )
    }
}
