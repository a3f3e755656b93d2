//! Master keys and their resolution.
//!
//! A key-store file (TOML), or a directory whose `*.toml` files are read in name order:
//!
//! ```toml
//! [[key]]
//! key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"   # a UUID
//! aliases = ["alias/orders"]
//! state = "Enabled"             # Enabled | Disabled | PendingDeletion | PendingImport
//! material = "…"                # base64 of 32 random bytes: head -c 32 /dev/urandom | base64
//! # material_file = "orders.key"  (32 raw bytes, relative to this file), instead of material
//! allowed_principals = ["arn:aws:iam::123456789012:user/alice"]   # optional key policy
//! description = "orders stream"
//! ```

use super::{KmsError, KmsErrorKind};
use crate::credentials::{read_bounded, ReadError};
use crate::limits::MASTER_KEYS_MAX;
use crate::secret::{Secret, SecretBytes};
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Bytes of a master key's material: AES-256.
pub const MASTER_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    PendingImport,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("key store: key {index} ({key_id}): {problem}")]
    Key { index: usize, key_id: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    key: Vec<KeyShape>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyShape {
    key_id: String,
    #[serde(default)]
    aliases: Vec<String>,
    state: Option<KeyState>,
    material: Option<Secret>,
    material_file: Option<PathBuf>,
    allowed_principals: Option<Vec<String>>,
    description: Option<String>,
}

/// One master key. Its material never leaves this crate's envelope functions.
#[derive(Debug)]
pub struct MasterKey {
    pub key_id: Uuid,
    pub arn: String,
    pub aliases: Vec<String>,
    pub state: KeyState,
    pub description: Option<String>,
    /// Principals allowed to use the key; `None`: every principal of the account.
    pub allowed_principals: Option<Vec<String>>,
    pub(crate) material: SecretBytes,
}

impl MasterKey {
    /// A key built in code (tests, tools); `material` must be 32 bytes.
    pub fn new(key_id: Uuid, region: &str, account_id: &str, material: SecretBytes) -> MasterKey {
        assert_eq!(material.len(), MASTER_KEY_BYTES, "AES-256 keys are 32 bytes");
        MasterKey {
            key_id,
            arn: key_arn(region, account_id, &key_id),
            aliases: Vec::new(),
            state: KeyState::Enabled,
            description: None,
            allowed_principals: None,
            material,
        }
    }

    /// A new key with fresh random material from the operating system.
    pub fn generate(region: &str, account_id: &str) -> MasterKey {
        let mut material = vec![0u8; MASTER_KEY_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut material);
        MasterKey::new(Uuid::new_v4(), region, account_id, SecretBytes::new(material))
    }

    /// Whether `principal_arn` may use the key now: KMSDisabledException,
    /// KMSInvalidStateException or KMSAccessDeniedException otherwise, with KMS's texts.
    pub fn check_usable(&self, principal_arn: &str, action: &str) -> Result<(), KmsError> {
        self.check_state()?;
        if let Some(allowed) = &self.allowed_principals {
            if !allowed.iter().any(|arn| arn == principal_arn) {
                return Err(KmsError::new(
                    KmsErrorKind::AccessDenied,
                    format!(
                        "User: {principal_arn} is not authorized to perform: {action} on resource: {} because no resource-based policy allows the {action} action",
                        self.arn
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the key is enabled: KMSDisabledException or KMSInvalidStateException otherwise.
    pub fn check_state(&self) -> Result<(), KmsError> {
        match self.state {
            KeyState::Enabled => {}
            KeyState::Disabled => {
                return Err(KmsError::new(KmsErrorKind::Disabled, format!("{} is disabled.", self.arn)))
            }
            KeyState::PendingDeletion => {
                return Err(KmsError::new(KmsErrorKind::InvalidState, format!("{} is pending deletion.", self.arn)))
            }
            KeyState::PendingImport => {
                return Err(KmsError::new(KmsErrorKind::InvalidState, format!("{} is pending import.", self.arn)))
            }
        }
        Ok(())
    }
}

pub fn key_arn(region: &str, account_id: &str, key_id: &Uuid) -> String {
    format!("arn:aws:kms:{region}:{account_id}:key/{key_id}")
}

pub fn alias_arn(region: &str, account_id: &str, alias: &str) -> String {
    format!("arn:aws:kms:{region}:{account_id}:{alias}")
}

/// `alias/` + 1..=250 of letters, digits, `/_-`; `alias/aws/` is AWS's own.
fn is_valid_alias(alias: &str) -> bool {
    alias.strip_prefix("alias/").is_some_and(|name| {
        !name.is_empty() && name.len() <= 250 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
    }) && !alias.starts_with("alias/aws/")
}

/// The master keys of one region and account, by id and alias.
#[derive(Debug)]
pub struct KeyStore {
    region: String,
    account_id: String,
    keys: Vec<MasterKey>,
    by_id: HashMap<Uuid, usize>,
    by_alias: HashMap<String, usize>,
}

impl KeyStore {
    pub fn new(region: &str, account_id: &str) -> KeyStore {
        KeyStore {
            region: region.to_string(),
            account_id: account_id.to_string(),
            keys: Vec::new(),
            by_id: HashMap::new(),
            by_alias: HashMap::new(),
        }
    }

    /// Adds a key; its id and aliases must be new.
    pub fn insert(&mut self, key: MasterKey) -> Result<(), String> {
        if self.keys.len() >= MASTER_KEYS_MAX {
            return Err(format!("at most {MASTER_KEYS_MAX} keys"));
        }
        if self.by_id.contains_key(&key.key_id) {
            return Err(format!("key id {} is listed twice", key.key_id));
        }
        for alias in &key.aliases {
            if !is_valid_alias(alias) {
                return Err(format!(
                    "alias {alias:?} must be alias/<name> (letters, digits, /_-), not under alias/aws/"
                ));
            }
            if self.by_alias.contains_key(alias) {
                return Err(format!("alias {alias} names two keys"));
            }
        }
        let index = self.keys.len();
        self.by_id.insert(key.key_id, index);
        for alias in &key.aliases {
            self.by_alias.insert(alias.clone(), index);
        }
        self.keys.push(key);
        Ok(())
    }

    /// Adds AWS's own managed key (its alias is under `alias/aws/`, which [`KeyStore::insert`]
    /// refuses for the keys of a key-store file).
    pub(crate) fn insert_managed(&mut self, key: MasterKey) -> Result<(), String> {
        if self.by_id.contains_key(&key.key_id) || key.aliases.iter().any(|alias| self.by_alias.contains_key(alias)) {
            return Err("the AWS-managed key is already in the key store".into());
        }
        let index = self.keys.len();
        self.by_id.insert(key.key_id, index);
        for alias in &key.aliases {
            self.by_alias.insert(alias.clone(), index);
        }
        self.keys.push(key);
        Ok(())
    }

    pub fn region_and_account(&self) -> (&str, &str) {
        (&self.region, &self.account_id)
    }

    /// Loads a key-store file, or every `*.toml` file of a directory (in name order).
    pub fn load(path: &Path, region: &str, account_id: &str) -> Result<KeyStore, KeyStoreError> {
        let mut store = KeyStore::new(region, account_id);
        let file_error = |path: &Path, message: String| KeyStoreError::File { path: path.to_path_buf(), message };
        let files = if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|error| file_error(path, error.to_string()))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|file| file.extension().is_some_and(|ext| ext == "toml"))
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut index = 0;
        for file in files {
            let text = read_bounded(&file).map_err(|error| match error {
                ReadError::Io(error) => file_error(&file, error.to_string()),
                ReadError::TooLarge => file_error(&file, "too large".into()),
            })?;
            let shape: FileShape = toml::from_str(&text).map_err(|error| {
                let line = error.span().map_or(0, |span| {
                    text.as_bytes()[..span.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
                });
                file_error(&file, format!("line {line}: {}", error.message()))
            })?;
            let folder = file.parent().unwrap_or(Path::new("."));
            for entry in shape.key {
                let key_id = entry.key_id.clone();
                let problem = |problem: String| KeyStoreError::Key { index, key_id: key_id.clone(), problem };
                let key = key_from(entry, folder, region, account_id).map_err(problem)?;
                store.insert(key).map_err(problem)?;
                index += 1;
            }
        }
        Ok(store)
    }

    /// Resolves a `KeyId` as StartStreamEncryption takes it: a key id, a key ARN, an alias
    /// name or an alias ARN. KMSNotFoundException with KMS's texts when nothing matches.
    pub fn resolve(&self, key_id: &str) -> Result<&MasterKey, KmsError> {
        let not_found_key = |id: &str| {
            KmsError::new(
                KmsErrorKind::NotFound,
                format!(
                    "Key '{}' does not exist",
                    format_args!("arn:aws:kms:{}:{}:key/{id}", self.region, self.account_id)
                ),
            )
        };
        let not_found_alias = |alias: &str| {
            KmsError::new(
                KmsErrorKind::NotFound,
                format!("Alias '{}' is not found.", alias_arn(&self.region, &self.account_id, alias)),
            )
        };
        let by_alias =
            |alias: &str| self.by_alias.get(alias).map(|&i| &self.keys[i]).ok_or_else(|| not_found_alias(alias));
        let by_id = |id: &str| {
            let uuid = parse_key_id(id).ok_or_else(|| not_found_key(id))?;
            self.by_id.get(&uuid).map(|&i| &self.keys[i]).ok_or_else(|| not_found_key(id))
        };
        if key_id.starts_with("alias/") {
            return by_alias(key_id);
        }
        if let Some(rest) = key_id.strip_prefix("arn:aws:kms:") {
            let mut parts = rest.splitn(3, ':');
            let (region, account, resource) =
                (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let ours = region == self.region && account == self.account_id;
            return match (resource.strip_prefix("key/"), resource.starts_with("alias/")) {
                (Some(id), _) if ours => by_id(id),
                (None, true) if ours => by_alias(resource),
                (Some(_), _) | (None, true) => {
                    Err(KmsError::new(KmsErrorKind::NotFound, format!("Key '{key_id}' does not exist")))
                }
                _ => Err(KmsError::new(KmsErrorKind::NotFound, format!("Invalid keyId '{key_id}'"))),
            };
        }
        if parse_key_id(key_id).is_some() {
            return by_id(key_id);
        }
        Err(KmsError::new(KmsErrorKind::NotFound, format!("Invalid keyId '{key_id}'")))
    }

    /// The key with this id (for opening data keys wrapped under it).
    pub fn by_key_id(&self, key_id: &Uuid) -> Option<&MasterKey> {
        self.by_id.get(key_id).map(|&i| &self.keys[i])
    }

    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }
}

/// A key id: a hyphenated UUID, as KMS writes them.
fn parse_key_id(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::parse_str(text).ok()
}

fn key_from(entry: KeyShape, folder: &Path, region: &str, account_id: &str) -> Result<MasterKey, String> {
    let key_id =
        parse_key_id(&entry.key_id).ok_or("key_id must be a UUID such as 1234abcd-12ab-34cd-56ef-1234567890ab")?;
    let material = match (&entry.material, &entry.material_file) {
        (Some(_), Some(_)) => return Err("give material or material_file, not both".into()),
        (None, None) => return Err("material (base64) or material_file is required".into()),
        (Some(text), None) => base64::engine::general_purpose::STANDARD
            .decode(text.expose().trim())
            .map_err(|_| "material is not base64".to_string())?,
        (None, Some(file)) => {
            let path = folder.join(file);
            std::fs::read(&path).map_err(|error| format!("material_file {}: {error}", path.display()))?
        }
    };
    let material = SecretBytes::new(material);
    if material.len() != MASTER_KEY_BYTES {
        return Err(format!("material must be {MASTER_KEY_BYTES} bytes, not {}", material.len()));
    }
    let mut key = MasterKey::new(key_id, region, account_id, material);
    key.aliases = entry.aliases;
    key.state = entry.state.unwrap_or(KeyState::Enabled);
    key.description = entry.description;
    key.allowed_principals = entry.allowed_principals;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
    const OFF: &str = "0000abcd-12ab-34cd-56ef-1234567890ab";
    const GONE: &str = "1111abcd-12ab-34cd-56ef-1234567890ab";

    fn store() -> KeyStore {
        let material = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let text = format!(
            r#"
[[key]]
key_id = "{ID}"
aliases = ["alias/orders", "alias/team/data"]
material = "{material}"
allowed_principals = ["arn:aws:iam::123456789012:user/alice"]

[[key]]
key_id = "{OFF}"
state = "Disabled"
material = "{material}"

[[key]]
key_id = "{GONE}"
state = "PendingDeletion"
material = "{material}"
"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        std::fs::write(&path, text).unwrap();
        KeyStore::load(&path, "us-east-1", "123456789012").unwrap()
    }

    #[test]
    fn resolves_every_form_of_key_id() {
        let store = store();
        for given in [
            ID.to_string(),
            format!("arn:aws:kms:us-east-1:123456789012:key/{ID}"),
            "alias/orders".to_string(),
            "alias/team/data".to_string(),
            "arn:aws:kms:us-east-1:123456789012:alias/orders".to_string(),
        ] {
            assert_eq!(store.resolve(&given).unwrap().key_id.to_string(), ID, "{given}");
        }
    }

    #[test]
    fn unknown_keys_get_kms_texts() {
        let store = store();
        for (given, expected) in [
            ("alias/nope", "Alias 'arn:aws:kms:us-east-1:123456789012:alias/nope' is not found."),
            (
                "99999999-12ab-34cd-56ef-1234567890ab",
                "Key 'arn:aws:kms:us-east-1:123456789012:key/99999999-12ab-34cd-56ef-1234567890ab' does not exist",
            ),
            (
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "Key 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' does not exist",
            ),
            ("orders", "Invalid keyId 'orders'"),
            (
                "arn:aws:kms:us-east-1:123456789012:thing/x",
                "Invalid keyId 'arn:aws:kms:us-east-1:123456789012:thing/x'",
            ),
        ] {
            let error = store.resolve(given).unwrap_err();
            assert_eq!((error.exception_name(), error.message.as_str()), ("KMSNotFoundException", expected), "{given}");
        }
    }

    #[test]
    fn states_and_key_policies_refuse_use() {
        let store = store();
        let alice = "arn:aws:iam::123456789012:user/alice";
        assert!(store.resolve(ID).unwrap().check_usable(alice, "kms:GenerateDataKey").is_ok());
        let denied = store
            .resolve(ID)
            .unwrap()
            .check_usable("arn:aws:iam::123456789012:user/bob", "kms:GenerateDataKey")
            .unwrap_err();
        assert_eq!(denied.exception_name(), "KMSAccessDeniedException");
        assert!(denied
            .message
            .starts_with("User: arn:aws:iam::123456789012:user/bob is not authorized to perform: kms:GenerateDataKey"));
        let disabled = store.resolve(OFF).unwrap().check_usable(alice, "kms:GenerateDataKey").unwrap_err();
        assert_eq!(
            disabled.to_string(),
            format!("KMSDisabledException: arn:aws:kms:us-east-1:123456789012:key/{OFF} is disabled.")
        );
        let pending = store.resolve(GONE).unwrap().check_usable(alice, "kms:Decrypt").unwrap_err();
        assert_eq!(pending.exception_name(), "KMSInvalidStateException");
    }

    #[test]
    fn refuses_bad_files_without_showing_material() {
        let dir = tempfile::tempdir().unwrap();
        let check = |text: &str, expected: &str| {
            let path = dir.path().join("k.toml");
            std::fs::write(&path, text).unwrap();
            let error = KeyStore::load(&path, "us-east-1", "123456789012").unwrap_err().to_string();
            assert!(error.contains(expected), "{error} lacks {expected}");
            assert!(!error.contains("c2VjcmV0"), "{error}");
        };
        check("[[key]]\nkey_id = \"nope\"\nmaterial = \"c2VjcmV0\"", "key_id must be a UUID");
        check(&format!("[[key]]\nkey_id = \"{ID}\"\nmaterial = \"c2VjcmV0\""), "material must be 32 bytes, not 6");
        check(&format!("[[key]]\nkey_id = \"{ID}\""), "material (base64) or material_file is required");
        check(&format!("[[key]]\nkey_id = \"{ID}\"\nmaterial = c2VjcmV0"), "line 3");
        let good = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        check(
            &format!("[[key]]\nkey_id = \"{ID}\"\naliases = [\"alias/aws/kinesis\"]\nmaterial = \"{good}\""),
            "not under alias/aws/",
        );
        check(
            &format!(
                "[[key]]\nkey_id = \"{ID}\"\nmaterial = \"{good}\"\n[[key]]\nkey_id = \"{ID}\"\nmaterial = \"{good}\""
            ),
            "listed twice",
        );
        let shown = format!("{:?}", store());
        assert!(!shown.contains("7, 7, 7") && shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn loads_a_directory_of_key_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.key"), [9u8; 32]).unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            format!("[[key]]\nkey_id = \"{ID}\"\nmaterial_file = \"a.key\"\naliases = [\"alias/a\"]"),
        )
        .unwrap();
        let material = base64::engine::general_purpose::STANDARD.encode([2u8; 32]);
        std::fs::write(dir.path().join("b.toml"), format!("[[key]]\nkey_id = \"{OFF}\"\nmaterial = \"{material}\""))
            .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a key file").unwrap();
        let store = KeyStore::load(dir.path(), "us-east-1", "123456789012").unwrap();
        assert_eq!(store.keys().len(), 2);
        assert_eq!(store.resolve("alias/a").unwrap().material.expose(), &[9u8; 32]);
    }
}
