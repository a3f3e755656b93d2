//! The seam every record of an encrypted stream crosses on its way to and from the journal,
//! and the per-core keys it uses (`Node::seal_appends`, `Node::open_records` call it).
//!
//! ```text
//! PutRecord(s) ─► append_admitted (the shard's core) ─► seal ─► journal.append
//! GetRecords, SubscribeToShard, queues, Firehose (through GetRecords)
//!          ◄─ open ◄─ journal.read (tail cache or segment file: the same bytes)
//! ```
//!
//! A record of an encrypted stream is sealed on its shard's core before it is appended: its
//! data becomes `sluice-security`'s sealed form (header naming the master key and data-key
//! version, AES-256-GCM ciphertext, tag; `docs/format.md`, "Sealed record data") and the
//! engine stores the record's `RECORD_SEALED` flag. The associated data is the shard's uid, so
//! a sealed record copied into another shard fails to open. Every reader gets records from
//! `Journal::read` and passes them through [`CoreKeys::open`], which opens sealed ones and
//! leaves the others alone: records written before StartStreamEncryption or after
//! StopStreamEncryption stay plaintext on disk, as Kinesis encrypts only new data.
//!
//! Keys (`sluice_security::kms`): the master key named by the stream's `KeyId`, from
//! `--kms-keys` or the AWS-managed key of the data directory; per core and master key one
//! sealer with a data key derived by HKDF from the master key and a random version drawn at
//! its creation (so after every restart), its nonces a random sealer id plus a counter.

use crate::kinesis::views;
use sluice_engine::catalog::StreamEncryption;
use sluice_engine::{AppendRecord, StoredRecord};
use sluice_model::*;
use sluice_security::kms::{
    open_in_place, BatchSealer, DataKey, KeyStore, KmsError, KmsErrorKind, MasterKey, SealedHeader,
};
use std::collections::HashMap;
use uuid::Uuid;

type Result<T, E = KinesisError> = std::result::Result<T, E>;

/// Data keys one core keeps derived for opening records. Each costs one HKDF to derive again;
/// a core meets one version per sealer per restart per master key, so a few are live at once.
/// When full the cache is emptied.
const OPENED_DATA_KEYS_MAX: usize = 4096;

/// A core's sealers and derived data keys. Core-local: sealers are never shared, so nonces
/// never repeat under one data key.
#[derive(Default)]
pub struct CoreKeys {
    sealers: HashMap<Uuid, BatchSealer>,
    opened: HashMap<(Uuid, u32), DataKey>,
}

/// A KMS error as Kinesis answers it.
pub fn kms_error(error: KmsError) -> KinesisError {
    let kind = match error.kind {
        KmsErrorKind::NotFound => ErrorKind::KmsNotFound,
        KmsErrorKind::Disabled => ErrorKind::KmsDisabled,
        KmsErrorKind::InvalidState => ErrorKind::KmsInvalidState,
        KmsErrorKind::AccessDenied => ErrorKind::KmsAccessDenied,
    };
    KinesisError::new(kind, error.message)
}

/// The streams among `streams` encrypted with a master key that `keys` does not hold, each
/// with the key's id: this node can neither seal their new records nor open their sealed
/// ones (KMSNotFoundException). Every member of a cluster must hold the same keys
/// (`docs/cluster.md`); `sluice_encrypted_streams_without_master_key` counts these.
pub fn streams_without_master_key<'a>(
    keys: Option<&KeyStore>,
    streams: impl IntoIterator<Item = &'a sluice_engine::catalog::StreamMeta>,
) -> Vec<(&'a str, &'a str)> {
    let held = |key_id: &str| {
        let id = Uuid::parse_str(key_id).ok();
        keys.zip(id).is_some_and(|(keys, id)| keys.by_key_id(&id).is_some())
    };
    streams
        .into_iter()
        .filter_map(|meta| meta.encryption.as_ref().map(|encryption| (meta, encryption)))
        .filter(|(_, encryption)| !held(&encryption.master_key_id))
        .map(|(meta, encryption)| (meta.name.as_str(), encryption.master_key_id.as_str()))
        .collect()
}

/// Says in the log which of `streams` this node cannot seal or open (see
/// [`streams_without_master_key`]), once per call; `when` tells where it looked.
pub fn warn_of_missing_master_keys<'a>(
    keys: Option<&KeyStore>,
    streams: impl IntoIterator<Item = &'a sluice_engine::catalog::StreamMeta>,
    when: &str,
) {
    for (stream, key_id) in streams_without_master_key(keys, streams) {
        tracing::error!(
            stream,
            master_key = key_id,
            "{when}: stream {stream} is encrypted with master key {key_id}, which this node's key store \
             (--kms-keys, or the AWS-managed key) does not hold: its writes and its sealed records' reads \
             fail here with KMSNotFoundException. Every member of a cluster needs the same kms-keys file"
        );
    }
}

/// The daemon's key store (`--kms-keys` and the AWS-managed key), or KMSNotFoundException.
pub fn key_store(keys: Option<&KeyStore>) -> Result<&KeyStore> {
    keys.ok_or_else(|| kms_error(KmsError::new(KmsErrorKind::NotFound, "This server has no key store.")))
}

/// The master key `key_id` names, or KMSNotFoundException with KMS's text.
fn master_key<'s>(store: &'s KeyStore, key_id: &Uuid) -> Result<&'s MasterKey> {
    store.by_key_id(key_id).ok_or_else(|| {
        let (region, account) = store.region_and_account();
        kms_error(KmsError::new(
            KmsErrorKind::NotFound,
            format!("Key 'arn:aws:kms:{region}:{account}:key/{key_id}' does not exist"),
        ))
    })
}

impl CoreKeys {
    /// Seals the data of `records` (all of one stream encrypted as `encryption`, on their
    /// shards' core). Called once per append, just before `Journal::append`.
    pub fn seal(
        &mut self,
        store: Option<&KeyStore>,
        encryption: &StreamEncryption,
        records: &mut [AppendRecord],
    ) -> Result<()> {
        let master_key_id = Uuid::parse_str(&encryption.master_key_id)
            .map_err(|_| KinesisError::internal("the catalog names a malformed master key id"))?;
        let key = master_key(key_store(store)?, &master_key_id)?;
        key.check_state().map_err(kms_error)?;
        let sealer = self.sealers.entry(master_key_id).or_insert_with(|| new_sealer(key));
        if sealer.seals_left() < records.len() as u64 {
            *sealer = new_sealer(key);
        }
        for record in records {
            let context = record.shard_uid.to_le_bytes();
            let sealed =
                sealer.seal(&context, &record.data).map_err(|error| KinesisError::internal(error.to_string()))?;
            record.data = sealed.into();
            record.sealed = true;
        }
        Ok(())
    }

    /// Opens the sealed records among `records` (of shard `shard_uid`) in place. A record that
    /// does not authenticate (altered on disk, or its master key's material changed) is an
    /// error, never returned as data.
    pub fn open(&mut self, store: Option<&KeyStore>, shard_uid: u64, records: &mut [StoredRecord]) -> Result<()> {
        let context = shard_uid.to_le_bytes();
        for record in records.iter_mut().filter(|record| record.sealed) {
            let sequence_number = views::sequence_number(record.sequence_number);
            let refuse = |reason: String| {
                tracing::error!(shard_uid, %sequence_number, %reason, "a sealed record cannot be opened");
                KinesisError::internal(format!(
                    "Record {sequence_number} cannot be decrypted: it is damaged, or its key changed."
                ))
            };
            let header = SealedHeader::parse(&record.data).map_err(|error| refuse(error.to_string()))?;
            let slot = (header.master_key_id, header.data_key_version);
            if !self.opened.contains_key(&slot) {
                let key = master_key(key_store(store)?, &header.master_key_id)?;
                if self.opened.len() >= OPENED_DATA_KEYS_MAX {
                    self.opened.clear();
                }
                self.opened.insert(slot, key.derive_data_key(header.data_key_version));
            }
            let mut bytes = record.data.to_vec();
            let plaintext_bytes = open_in_place(&self.opened[&slot], &context, &mut bytes)
                .map_err(|error| refuse(error.to_string()))?
                .len();
            let start = sluice_security::kms::batch::SEALED_HEADER_BYTES;
            bytes.copy_within(start..start + plaintext_bytes, 0);
            bytes.truncate(plaintext_bytes);
            record.data = bytes.into();
        }
        Ok(())
    }
}

fn new_sealer(key: &MasterKey) -> BatchSealer {
    let version = rand::random::<u32>();
    BatchSealer::new(key.key_id, version, key.derive_data_key(version))
}

// The engine lets a sealed record exceed the Kinesis record limit by this much.
const _: () =
    assert!(sluice_security::kms::batch::SEALED_OVERHEAD_BYTES <= sluice_engine::limits::RECORD_SEALING_BYTES_MAX);
