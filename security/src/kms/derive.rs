//! Data keys derived from a master key, and the AWS-managed key `alias/aws/kinesis`.
//!
//! Kinesis asks KMS for a data key per stream and caches it; our stand-in derives the data key
//! instead, with HKDF-SHA-256 (RFC 5869) from the master key's material, bound to the master
//! key id and a *data-key version*. Nothing needs storing: any core, and the daemon after a
//! restart, derives the same key from what a sealed record's header names (master key id and
//! version). The record's place (its shard) is bound in as associated data instead.
//!
//! Nonce uniqueness: every sealer (one per master key per core per start) draws a fresh random
//! 32-bit version, so it has a key of its own, and its nonces are a random 32-bit sealer id
//! plus a counter. A (key, nonce) pair repeats only if two sealers of one stream draw the same
//! version *and* the same sealer id with overlapping counters: 64 random bits per sealer.
//!
//! The AWS-managed key (`alias/aws/kinesis`, what the console offers by default) is a master
//! key file in the data directory (`kms/aws-kinesis.key`, 32 random bytes, mode 0600), created
//! the first time the daemon starts on that directory. Its key id is derived from its material,
//! so it is stable across restarts without a second file. A cluster's members must seal and
//! open each other's records, so in cluster mode each derives the key's material from the
//! cluster secret instead ([`add_aws_managed_key_material`], `members::ClusterSecret`), and
//! every member holds the same key under the same id.

use super::envelope::{DataKey, DATA_KEY_BYTES};
use super::keystore::{KeyStore, KeyStoreError, MasterKey, MASTER_KEY_BYTES};
use crate::secret::SecretBytes;
use hkdf::Hkdf;
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The alias of the AWS-managed key for Kinesis.
pub const AWS_MANAGED_ALIAS: &str = "alias/aws/kinesis";
/// Its file under the data directory.
pub const AWS_MANAGED_KEY_FILE: &str = "kms/aws-kinesis.key";
/// HKDF salt: separates these derivations from every other use of a master key (the wraps of
/// `envelope` use the key directly with AES-GCM, never as HKDF input).
const DATA_KEY_SALT: &[u8] = b"sluice-kinesis-data-key-v1";
const KEY_ID_INFO: &[u8] = b"sluice-aws-managed-key-id-v1";

impl MasterKey {
    /// The data key of `version` under this master key.
    pub fn derive_data_key(&self, version: u32) -> DataKey {
        let hkdf = Hkdf::<Sha256>::new(Some(DATA_KEY_SALT), self.material.expose());
        let mut info = [0u8; 20];
        info[..16].copy_from_slice(self.key_id.as_bytes());
        info[16..].copy_from_slice(&version.to_le_bytes());
        let mut key = Zeroizing::new([0u8; DATA_KEY_BYTES]);
        hkdf.expand(&info, &mut key[..]).expect("32 bytes is a valid HKDF-SHA-256 length");
        DataKey(key)
    }
}

/// Loads the AWS-managed key of `data_dir`, creating it (0600) if it is not there yet, and adds
/// it to `store` under [`AWS_MANAGED_ALIAS`].
pub fn add_aws_managed_key(store: &mut KeyStore, data_dir: &Path) -> Result<(), KeyStoreError> {
    let path = data_dir.join(AWS_MANAGED_KEY_FILE);
    let file_error = |path: &PathBuf, message: String| KeyStoreError::File { path: path.clone(), message };
    let material = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_key_file(&path)
            .map_err(|error| file_error(&path, format!("creating the AWS-managed key: {error}")))?,
        Err(error) => return Err(file_error(&path, error.to_string())),
    };
    if material.len() != MASTER_KEY_BYTES {
        return Err(file_error(&path, format!("must hold {MASTER_KEY_BYTES} bytes, not {}", material.len())));
    }
    add_aws_managed_key_material(store, SecretBytes::new(material)).map_err(|problem| file_error(&path, problem))
}

/// Adds the AWS-managed key with `material` (32 bytes) to `store`, under an id derived from
/// the material.
pub fn add_aws_managed_key_material(store: &mut KeyStore, material: SecretBytes) -> Result<(), String> {
    if material.expose().len() != MASTER_KEY_BYTES {
        return Err(format!("the AWS-managed key must hold {MASTER_KEY_BYTES} bytes"));
    }
    let mut id = [0u8; 16];
    Hkdf::<Sha256>::new(None, material.expose()).expand(KEY_ID_INFO, &mut id).expect("16 bytes");
    let key_id = uuid::Builder::from_random_bytes(id).into_uuid();
    let (region, account) = store.region_and_account();
    let (region, account) = (region.to_string(), account.to_string());
    let mut key = MasterKey::new(key_id, &region, &account, material);
    key.aliases = vec![AWS_MANAGED_ALIAS.to_string()];
    key.description = Some("Default key that protects my Kinesis data when no other key is defined".into());
    store.insert_managed(key)
}

/// Writes 32 fresh random bytes to `path` with mode 0600, durably (file and directory synced),
/// without replacing a file another process created meanwhile.
fn create_key_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path.parent().expect("the key file is under the data directory");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mut material = vec![0u8; MASTER_KEY_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut material);
    let tmp = dir.join(format!(".aws-kinesis.key.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    file.write_all(&material)?;
    file.sync_all()?;
    // A hard link fails if the name exists: two daemons cannot both create it (the data
    // directory's lock prevents that anyway).
    let linked = std::fs::hard_link(&tmp, path);
    std::fs::remove_file(&tmp)?;
    linked?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_aws_managed_key_is_created_once_with_mode_0600_and_resolves_by_alias() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = KeyStore::new("us-east-1", "123456789012");
        add_aws_managed_key(&mut store, dir.path()).unwrap();
        let path = dir.path().join(AWS_MANAGED_KEY_FILE);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let first = store.resolve(AWS_MANAGED_ALIAS).unwrap().key_id;
        let by_arn = store.resolve("arn:aws:kms:us-east-1:123456789012:alias/aws/kinesis").unwrap().key_id;
        assert_eq!(first, by_arn);
        let data_key = store.resolve(AWS_MANAGED_ALIAS).unwrap().derive_data_key(7);

        let mut again = KeyStore::new("us-east-1", "123456789012");
        add_aws_managed_key(&mut again, dir.path()).unwrap();
        let key = again.resolve(AWS_MANAGED_ALIAS).unwrap();
        assert_eq!(key.key_id, first, "the key id is stable across restarts");
        assert_eq!(*key.derive_data_key(7).0, *data_key.0, "and so are its data keys");
        assert_ne!(*key.derive_data_key(8).0, *data_key.0, "another version");
    }

    #[test]
    fn a_damaged_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("kms")).unwrap();
        std::fs::write(dir.path().join(AWS_MANAGED_KEY_FILE), b"short").unwrap();
        let error = add_aws_managed_key(&mut KeyStore::new("us-east-1", "1"), dir.path()).unwrap_err();
        assert!(error.to_string().contains("must hold 32 bytes, not 5"), "{error}");
    }
}
