//! The credentials file (`--credentials FILE`): who may call Sluice, with which keys, and the
//! identity policies attached to each principal.
//!
//! ```toml
//! account_id = "123456789012"          # the account of principals given without an ARN
//!
//! [[principal]]
//! name = "reader"
//! arn = "arn:aws:iam::123456789012:user/reader"   # optional: arn:aws:iam::<account_id>:user/<name>
//! access_key_id = "AKIAREADER0000000001"
//! secret_access_key = "…"
//! session_token = "…"                  # optional; then every request must carry it
//! session_token_expires = "2027-01-01T00:00:00Z"   # optional
//! policies = ['''{"Version": "2012-10-17", "Statement": [ … ]}''']
//! policy_files = ["reader-policy.json"]           # relative to this file
//! ```
//!
//! Secrets are [`Secret`]s. Errors name the file, the principal and the line, never a value:
//! the TOML parser's own error text quotes the offending line, which could be a secret's, so
//! only its message and position are kept.

use crate::limits::{CONFIG_FILE_BYTES_MAX, IDENTITY_POLICY_CHARS_MAX, PRINCIPALS_MAX};
use crate::policy::{is_account_id, parse_iam_arn, Policy, PolicyError, PolicyKind};
use crate::secret::Secret;
use crate::timestamp::parse_policy_date;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Account id used when the file names none: the one Sluice reports by default.
pub const ACCOUNT_ID_DEFAULT: &str = "000000000000";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {bytes_max} bytes at most")]
    TooLarge { path: PathBuf, bytes_max: u64 },
    #[error("credentials file, line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("credentials file: principal {index} ({name}): {problem}")]
    Principal { index: usize, name: String, problem: String },
    #[error("credentials file: principal {index} ({name}): policy {policy}: {error}")]
    Policy { index: usize, name: String, policy: String, error: PolicyError },
    #[error("credentials file: {0}")]
    File(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    account_id: Option<String>,
    #[serde(default)]
    principal: Vec<PrincipalShape>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalShape {
    name: String,
    arn: Option<String>,
    principal_id: Option<String>,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    session_token_expires: Option<String>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    policy_files: Vec<PathBuf>,
}

/// Each principal loaded gets a new generation, so caches of keys derived from an old
/// secret (after a reload) are never used for a new one.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// One caller: its identity, its keys and its identity policies.
#[derive(Debug)]
pub struct Principal {
    /// The user or role name (`aws:username`).
    pub name: String,
    /// `arn:aws:iam::<account>:user/<name>` (`aws:PrincipalArn`).
    pub arn: String,
    /// The 12-digit account.
    pub account_id: String,
    /// CloudTrail's `principalId`.
    pub principal_id: String,
    pub access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    session_token_expires_ms: Option<i64>,
    pub policies: Vec<Policy>,
    generation: u64,
}

impl Principal {
    /// A principal built in code (tests, the daemon's open mode).
    pub fn new(
        name: &str,
        account_id: &str,
        access_key_id: &str,
        secret_access_key: Secret,
        policies: Vec<Policy>,
    ) -> Principal {
        Principal {
            name: name.to_string(),
            arn: format!("arn:aws:iam::{account_id}:user/{name}"),
            account_id: account_id.to_string(),
            principal_id: derived_principal_id(&format!("arn:aws:iam::{account_id}:user/{name}")),
            access_key_id: access_key_id.to_string(),
            secret_access_key,
            session_token: None,
            session_token_expires_ms: None,
            policies,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The same principal with a session token (and its expiry, epoch ms).
    pub fn with_session_token(mut self, token: Secret, expires_ms: Option<i64>) -> Principal {
        self.session_token = Some(token);
        self.session_token_expires_ms = expires_ms;
        self
    }

    pub fn secret_access_key(&self) -> &Secret {
        &self.secret_access_key
    }

    pub fn session_token(&self) -> Option<&Secret> {
        self.session_token.as_ref()
    }

    pub fn session_token_expires_ms(&self) -> Option<i64> {
        self.session_token_expires_ms
    }

    /// Changes whenever the principal is loaded again; caches of derived keys check it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// `IAMUser` or `AssumedRole`/`Role`, as CloudTrail's `userIdentity.type` says.
    pub fn identity_type(&self) -> &'static str {
        if self.arn.contains(":role/") {
            "AssumedRole"
        } else if self.arn.ends_with(":root") {
            "Root"
        } else {
            "IAMUser"
        }
    }
}

/// A stable, unique-looking principal id (`AIDA` + 17 characters), as IAM gives users.
fn derived_principal_id(arn: &str) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(arn.as_bytes());
    let tail: String = digest.iter().take(17).map(|b| ALPHABET[usize::from(b % 32)] as char).collect();
    format!("AIDA{tail}")
}

/// The access key id prefix of a cluster member's credential (`members`), which the
/// credentials file may not use.
pub const MEMBER_KEY_PREFIX: &str = "SLUICEMEMBER";

/// Whether `access_key_id` is a cluster member's (its verification goes to the members' store,
/// `members::ClusterSecret::store`).
pub fn is_member_key(access_key_id: &str) -> bool {
    access_key_id.starts_with(MEMBER_KEY_PREFIX)
}

/// Every principal of one credentials file, by access key id.
#[derive(Debug, Default)]
pub struct CredentialStore {
    /// Shared so that a server can keep an authenticated caller's principal for the length
    /// of its request (or its native connection) without borrowing the store.
    principals: Vec<Arc<Principal>>,
    by_access_key: HashMap<String, usize>,
}

impl CredentialStore {
    /// A store of the given principals; access key ids must be unique.
    pub fn new(principals: Vec<Principal>) -> Result<CredentialStore, CredentialsError> {
        let mut by_access_key = HashMap::new();
        for (index, principal) in principals.iter().enumerate() {
            if by_access_key.insert(principal.access_key_id.clone(), index).is_some() {
                return Err(CredentialsError::Principal {
                    index,
                    name: principal.name.clone(),
                    problem: format!("access key id {} is used by an earlier principal too", principal.access_key_id),
                });
            }
        }
        Ok(CredentialStore { principals: principals.into_iter().map(Arc::new).collect(), by_access_key })
    }

    /// Reads and checks a credentials file; `policy_files` are read relative to its folder.
    pub fn load(path: &Path) -> Result<CredentialStore, CredentialsError> {
        let text = read_bounded(path).map_err(|error| match error {
            ReadError::Io(source) => CredentialsError::Io { path: path.to_path_buf(), source },
            ReadError::TooLarge => {
                CredentialsError::TooLarge { path: path.to_path_buf(), bytes_max: CONFIG_FILE_BYTES_MAX }
            }
        })?;
        let folder = path.parent().unwrap_or(Path::new("."));
        CredentialStore::parse(&text, folder)
    }

    /// Parses credentials from TOML text; `policy_files` are read relative to `folder`.
    pub fn parse(text: &str, folder: &Path) -> Result<CredentialStore, CredentialsError> {
        let shape: FileShape = toml::from_str(text).map_err(|error| CredentialsError::Syntax {
            line: error.span().map_or(0, |span| {
                text.as_bytes()[..span.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
            }),
            message: error.message().to_string(),
        })?;
        let account_default = shape.account_id.unwrap_or_else(|| ACCOUNT_ID_DEFAULT.to_string());
        if !is_account_id(&account_default) {
            return Err(CredentialsError::File(format!("account_id {account_default:?} must be 12 digits")));
        }
        if shape.principal.len() > PRINCIPALS_MAX {
            return Err(CredentialsError::File(format!(
                "{} principals; at most {PRINCIPALS_MAX}",
                shape.principal.len()
            )));
        }
        let mut principals = Vec::with_capacity(shape.principal.len());
        for (index, entry) in shape.principal.into_iter().enumerate() {
            principals.push(principal_from(index, entry, &account_default, folder)?);
        }
        CredentialStore::new(principals)
    }

    /// The principal holding this access key id.
    pub fn principal(&self, access_key_id: &str) -> Option<&Principal> {
        self.by_access_key.get(access_key_id).map(|&index| &*self.principals[index])
    }

    /// The principal holding this access key id, shared.
    pub fn shared(&self, access_key_id: &str) -> Option<Arc<Principal>> {
        self.by_access_key.get(access_key_id).map(|&index| self.principals[index].clone())
    }

    pub fn principals(&self) -> &[Arc<Principal>] {
        &self.principals
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}

/// The credentials file of a running daemon (`--credentials`), re-read on demand (its SIGHUP
/// handler calls [`ReloadableCredentials::reload`]). The store sits in an `ArcSwap`: each
/// request or handshake takes the current one ([`ReloadableCredentials::current`]), and a
/// reload that fails (unreadable, malformed, no principal) keeps the old store serving.
#[derive(Debug)]
pub struct ReloadableCredentials {
    path: PathBuf,
    current: arc_swap::ArcSwap<CredentialStore>,
}

impl ReloadableCredentials {
    /// Reads the file; a file with no principal is refused (nobody could call).
    pub fn load(path: &Path) -> Result<ReloadableCredentials, CredentialsError> {
        let store = ReloadableCredentials::read(path)?;
        Ok(ReloadableCredentials { path: path.to_path_buf(), current: arc_swap::ArcSwap::from_pointee(store) })
    }

    fn read(path: &Path) -> Result<CredentialStore, CredentialsError> {
        let store = CredentialStore::load(path)?;
        if store.is_empty() {
            return Err(CredentialsError::File(format!("{}: no [[principal]]: nobody could call", path.display())));
        }
        Ok(store)
    }

    /// The store as of now; a request keeps the one it took for its whole length.
    pub fn current(&self) -> Arc<CredentialStore> {
        self.current.load_full()
    }

    /// Re-reads the file and swaps it in; on error the previous store keeps serving. Returns
    /// the number of principals now loaded.
    pub fn reload(&self) -> Result<usize, CredentialsError> {
        let store = ReloadableCredentials::read(&self.path)?;
        let principals = store.principals().len();
        self.current.store(Arc::new(store));
        Ok(principals)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn principal_from(
    index: usize,
    entry: PrincipalShape,
    account_default: &str,
    folder: &Path,
) -> Result<Principal, CredentialsError> {
    let name = entry.name.clone();
    let problem = |problem: String| CredentialsError::Principal { index, name: name.clone(), problem };
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !name_ok {
        return Err(problem("name must be 1 to 64 letters, digits or +=,.@_- (IAM user names)".into()));
    }
    let key_ok = !entry.access_key_id.is_empty()
        && entry.access_key_id.len() <= 128
        && entry.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !key_ok {
        return Err(problem("access_key_id must be 1 to 128 letters, digits or underscores".into()));
    }
    if is_member_key(&entry.access_key_id) {
        return Err(problem(format!(
            "access_key_id may not start with {MEMBER_KEY_PREFIX}: the cluster's members use those (--cluster-secret)"
        )));
    }
    if entry.secret_access_key.is_empty() {
        return Err(problem("secret_access_key is empty".into()));
    }
    let arn = entry.arn.unwrap_or_else(|| format!("arn:aws:iam::{account_default}:user/{name}"));
    let account_id = parse_iam_arn(&arn).ok_or_else(|| {
        problem(format!(
            "arn {arn:?} is not an IAM principal ARN (arn:aws:iam::<12 digits>:user/<name> or :role/<name>)"
        ))
    })?;
    let session_token_expires_ms = match &entry.session_token_expires {
        None => None,
        Some(text) => Some(
            parse_policy_date(text).ok_or_else(|| problem(format!("session_token_expires {text:?} is not a date")))?,
        ),
    };
    if entry.session_token.is_none() && session_token_expires_ms.is_some() {
        return Err(problem("session_token_expires without a session_token".into()));
    }
    let mut policies = Vec::new();
    for (number, text) in entry.policies.iter().enumerate() {
        let policy = parse_identity_policy(text).map_err(|error| CredentialsError::Policy {
            index,
            name: name.clone(),
            policy: format!("#{}", number + 1),
            error,
        })?;
        policies.push(policy);
    }
    for file in &entry.policy_files {
        let path = folder.join(file);
        let text = read_bounded(&path).map_err(|error| {
            problem(match error {
                ReadError::Io(error) => format!("policy file {}: {error}", path.display()),
                ReadError::TooLarge => format!("policy file {}: too large", path.display()),
            })
        })?;
        let policy = parse_identity_policy(&text).map_err(|error| CredentialsError::Policy {
            index,
            name: name.clone(),
            policy: path.display().to_string(),
            error,
        })?;
        policies.push(policy);
    }
    Ok(Principal {
        principal_id: entry.principal_id.unwrap_or_else(|| derived_principal_id(&arn)),
        name,
        arn,
        account_id,
        access_key_id: entry.access_key_id,
        secret_access_key: entry.secret_access_key,
        session_token: entry.session_token,
        session_token_expires_ms,
        policies,
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
    })
}

fn parse_identity_policy(text: &str) -> Result<Policy, PolicyError> {
    if text.chars().count() > IDENTITY_POLICY_CHARS_MAX {
        return Err(PolicyError::TooLarge { chars: text.chars().count(), chars_max: IDENTITY_POLICY_CHARS_MAX });
    }
    Policy::parse(text, PolicyKind::Identity)
}

pub(crate) enum ReadError {
    Io(std::io::Error),
    TooLarge,
}

/// Reads a whole text file of at most [`CONFIG_FILE_BYTES_MAX`] bytes; the buffer is wiped
/// when the returned text is dropped.
pub(crate) fn read_bounded(path: &Path) -> Result<Zeroizing<String>, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut text = Zeroizing::new(String::new());
    file.take(CONFIG_FILE_BYTES_MAX + 1).read_to_string(&mut text).map_err(ReadError::Io)?;
    if text.len() as u64 > CONFIG_FILE_BYTES_MAX {
        return Err(ReadError::TooLarge);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
account_id = "123456789012"

[[principal]]
name = "alice"
access_key_id = "AKIAALICE0000000001"
secret_access_key = "alice-secret-do-not-print"
policies = ['''{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}}''']

[[principal]]
name = "ci"
arn = "arn:aws:iam::123456789012:role/ci"
access_key_id = "ASIACI00000000000001"
secret_access_key = "ci-secret"
session_token = "ci-session-token"
session_token_expires = "2030-01-01T00:00:00Z"
"#;

    #[test]
    fn loads_principals_with_their_policies() {
        let store = CredentialStore::parse(FILE, Path::new(".")).unwrap();
        let alice = store.principal("AKIAALICE0000000001").unwrap();
        assert_eq!(alice.arn, "arn:aws:iam::123456789012:user/alice");
        assert_eq!(alice.account_id, "123456789012");
        assert_eq!(alice.policies.len(), 1);
        assert_eq!(alice.identity_type(), "IAMUser");
        assert!(alice.principal_id.starts_with("AIDA") && alice.principal_id.len() == 21);
        let ci = store.principal("ASIACI00000000000001").unwrap();
        assert_eq!(ci.identity_type(), "AssumedRole");
        assert_eq!(ci.session_token().unwrap().expose(), "ci-session-token");
        assert_eq!(ci.session_token_expires_ms(), Some(1_893_456_000_000));
        assert!(store.principal("AKIAUNKNOWN").is_none());
        assert_ne!(alice.generation(), ci.generation());
    }

    #[test]
    fn debug_output_and_errors_never_show_secrets() {
        let store = CredentialStore::parse(FILE, Path::new(".")).unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains("alice-secret") && !shown.contains("ci-session-token"), "{shown}");
        // A syntax error on the secret's own line: the message gives the line, not the text.
        let broken = FILE.replace(
            "secret_access_key = \"alice-secret-do-not-print\"",
            "secret_access_key = alice-secret-do-not-print",
        );
        let error = CredentialsError::to_string(&CredentialStore::parse(&broken, Path::new(".")).unwrap_err());
        assert!(!error.contains("alice-secret"), "{error}");
        assert!(error.contains("line 7"), "{error}");
    }

    #[test]
    fn refuses_bad_entries_with_clear_errors() {
        let check = |text: &str, expected: &str| {
            let error = CredentialStore::parse(text, Path::new(".")).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} lacks {expected}");
        };
        let entry = |extra: &str| {
            format!("[[principal]]\nname = \"bob\"\naccess_key_id = \"AKIABOB\"\nsecret_access_key = \"s\"\n{extra}")
        };
        check(&entry("arn = \"arn:aws:iam::12:user/bob\""), "is not an IAM principal ARN");
        check(&entry("session_token_expires = \"2030-01-01\""), "without a session_token");
        check(&entry("policies = ['{\"Statement\": []}']"), "policy #1");
        check(&entry("policy_files = [\"/nonexistent/policy.json\"]"), "policy file /nonexistent/policy.json");
        check(&entry("colour = \"blue\""), "unknown field `colour`");
        check(&format!("{}\n{}", entry(""), entry("")), "access key id AKIABOB is used by an earlier principal too");
        check(
            "[[principal]]\nname = \"bob\"\naccess_key_id = \"AK/IA\"\nsecret_access_key = \"s\"",
            "access_key_id must be",
        );
        check(&entry("").replace("AKIABOB", "SLUICEMEMBER1"), "may not start with SLUICEMEMBER");
        check(
            "[[principal]]\nname = \"bob\"\naccess_key_id = \"AKIA\"\nsecret_access_key = \"\"",
            "secret_access_key is empty",
        );
        check("account_id = \"1\"", "must be 12 digits");
    }

    #[test]
    fn reads_policy_files_relative_to_the_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("reader.json"),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:GetRecords","Resource":"*"}]}"#,
        )
        .unwrap();
        let file = dir.path().join("credentials.toml");
        std::fs::write(
            &file,
            "[[principal]]\nname = \"r\"\naccess_key_id = \"AKIAR\"\nsecret_access_key = \"s\"\npolicy_files = [\"reader.json\"]\n",
        )
        .unwrap();
        let store = CredentialStore::load(&file).unwrap();
        assert_eq!(store.principal("AKIAR").unwrap().policies.len(), 1);
        assert_eq!(store.principal("AKIAR").unwrap().arn, "arn:aws:iam::000000000000:user/r");
    }

    #[test]
    fn a_reload_swaps_the_store_and_a_bad_file_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials.toml");
        std::fs::write(&file, FILE).unwrap();
        let credentials = ReloadableCredentials::load(&file).unwrap();
        let before = credentials.current();
        assert!(before.principal("AKIAALICE0000000001").is_some());

        // Alice's key is replaced by Bob's: new lookups see Bob only; the store a request
        // took before the reload is unchanged.
        std::fs::write(
            &file,
            "[[principal]]\nname = \"bob\"\naccess_key_id = \"AKIABOB\"\nsecret_access_key = \"b\"\n",
        )
        .unwrap();
        assert_eq!(credentials.reload().unwrap(), 1);
        assert!(credentials.current().principal("AKIAALICE0000000001").is_none());
        assert!(credentials.current().principal("AKIABOB").is_some());
        assert!(before.principal("AKIAALICE0000000001").is_some());

        // Garbage, an empty file, a missing file: errors, and Bob keeps serving.
        for bad in [Some("[[principal]\nname ="), Some(""), None] {
            match bad {
                Some(text) => std::fs::write(&file, text).unwrap(),
                None => std::fs::remove_file(&file).unwrap(),
            }
            assert!(credentials.reload().is_err(), "{bad:?} was accepted");
            assert!(credentials.current().principal("AKIABOB").is_some());
        }
    }
}
