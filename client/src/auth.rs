//! Authenticating a native connection, and finding the credentials to do it with.
//!
//! [`ConnectOptions`] carry AWS credentials (access key id, secret, optional session token) and
//! the region; [`crate::Client::connect_with`] then opens the connection with the native
//! handshake (docs/protocol.md section 7): Hello, the server's challenge, the proof, and the
//! server's proof back. The secret never crosses the wire, and the client checks that the
//! server knows it too. [`ConnectOptions::from_environment`] finds credentials where the AWS
//! SDKs and CLI do: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else
//! the profile `AWS_PROFILE` (or `default`) of the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`), else of the config file
//! (`AWS_CONFIG_FILE`, or `~/.aws/config`, `[profile NAME]`); the region from `AWS_REGION`,
//! `AWS_DEFAULT_REGION`, or the profile's `region` in the config file. (Not read: SSO, role
//! and process profiles, which need calls to AWS; such a profile gives no credentials.)

use std::path::{Path, PathBuf};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::native::handshake::{self, AuthenticateFields, HandshakeResponse};
use sluice_security::challenge::{Challenge, ClientHandshake, ServerProof};
pub use sluice_security::sigv4::SigningCredentials;
pub use sluice_security::Secret;

use crate::errors::{ClientError, ConnectionError};

/// The region a client assumes when none is configured (the daemon's default too).
pub const REGION_DEFAULT: &str = "us-east-1";

/// Bytes of a handshake answer the client reads: the largest is a MAC and a principal's ARN.
const HANDSHAKE_ANSWER_BYTES_MAX: usize = 16 * 1024;

/// Bytes of the shared credentials file read (it holds a few profiles).
const CREDENTIALS_FILE_BYTES_MAX: u64 = 1 << 20;

/// How to open a native connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Credentials to authenticate with; `None` connects unauthenticated (a daemon with
    /// `--credentials` then refuses every request with MissingAuthenticationTokenException).
    pub credentials: Option<SigningCredentials>,
    /// The region the daemon runs in (`--region`): it is part of the derived key.
    pub region: String,
    /// TLS, for a daemon whose native listener has `--tls-cert` (`sluice --ca-bundle`).
    pub tls: Option<crate::tls::TlsOptions>,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions { credentials: None, region: REGION_DEFAULT.to_owned(), tls: None }
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{variable} is set but {missing} is not")]
    Incomplete { variable: &'static str, missing: &'static str },
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{path}: profile [{profile}] has no {missing}")]
    ProfileIncomplete { path: PathBuf, profile: String, missing: &'static str },
    #[error("{path}: no profile [{profile}] (AWS_PROFILE)")]
    NoProfile { path: PathBuf, profile: String },
}

impl ConnectOptions {
    /// Credentials and region from the environment, as the AWS SDKs find them; no
    /// credentials at all is not an error (the connection is then unauthenticated).
    pub fn from_environment() -> Result<ConnectOptions, CredentialsError> {
        ConnectOptions::from_environment_or_profile(None)
    }

    /// As [`ConnectOptions::from_environment`]; a `profile` given (`sluice --profile`, as
    /// `aws --profile`) is read from the shared files instead of the environment's keys, and
    /// must exist.
    pub fn from_environment_or_profile(profile: Option<&str>) -> Result<ConnectOptions, CredentialsError> {
        let files = SharedFiles::from_environment();
        let named = profile.map(str::to_owned).or_else(|| var("AWS_PROFILE"));
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| files.region(named.as_deref().unwrap_or("default")))
            .unwrap_or_else(|| REGION_DEFAULT.into());
        if let Some(profile) = profile {
            let credentials = files.credentials(profile, true)?;
            return Ok(ConnectOptions { credentials, region, tls: None });
        }
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret)) => Some(SigningCredentials {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
            }),
            (Some(_), None) => {
                return Err(CredentialsError::Incomplete {
                    variable: "AWS_ACCESS_KEY_ID",
                    missing: "AWS_SECRET_ACCESS_KEY",
                })
            }
            (None, Some(_)) => {
                return Err(CredentialsError::Incomplete {
                    variable: "AWS_SECRET_ACCESS_KEY",
                    missing: "AWS_ACCESS_KEY_ID",
                })
            }
            // No files, or no such profile, means no credentials, as for the AWS CLI, unless a
            // profile was asked for by name: then it is a mistake worth saying.
            (None, None) => files.credentials(named.as_deref().unwrap_or("default"), named.is_some())?,
        };
        Ok(ConnectOptions { credentials, region, tls: None })
    }
}

/// The region as the AWS SDKs find it: `AWS_REGION`, `AWS_DEFAULT_REGION`, or the `region` of
/// the profile `AWS_PROFILE` (or `default`) in the shared config file; `None` if none names one.
pub fn region_from_environment() -> Option<String> {
    let profile = var("AWS_PROFILE");
    var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .or_else(|| SharedFiles::from_environment().region(profile.as_deref().unwrap_or("default")))
}

/// An environment variable's value, if set and not empty.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The AWS shared files, where botocore looks for them: the credentials file
/// (`AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`, sections `[NAME]`) and the config
/// file (`AWS_CONFIG_FILE`, or `~/.aws/config`, sections `[default]` and `[profile NAME]`).
/// Keys are taken from the credentials file first, then from the config file.
struct SharedFiles {
    credentials: Option<PathBuf>,
    config: Option<PathBuf>,
}

impl SharedFiles {
    fn from_environment() -> SharedFiles {
        let home = |rest: &str| var("HOME").map(|home| Path::new(&home).join(rest));
        SharedFiles {
            credentials: var("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).or_else(|| home(".aws/credentials")),
            config: var("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| home(".aws/config")),
        }
    }

    /// The config file's section of `profile`.
    fn config_section(profile: &str) -> String {
        if profile == "default" {
            profile.to_owned()
        } else {
            format!("profile {profile}")
        }
    }

    /// The profile's keys from the credentials file, else from the config file; `required`
    /// makes a profile found in neither an error.
    fn credentials(&self, profile: &str, required: bool) -> Result<Option<SigningCredentials>, CredentialsError> {
        let existing = |path: &Option<PathBuf>| path.clone().filter(|path| path.exists());
        if let Some(path) = existing(&self.credentials) {
            if let Some(credentials) = from_shared_file(&path, profile, profile, false)? {
                return Ok(Some(credentials));
            }
        }
        if let Some(path) = existing(&self.config) {
            let section = SharedFiles::config_section(profile);
            if let Some(credentials) = from_shared_file(&path, &section, profile, false)? {
                return Ok(Some(credentials));
            }
        }
        if required {
            let path = self.credentials.clone().unwrap_or_else(|| PathBuf::from("~/.aws/credentials"));
            return Err(CredentialsError::NoProfile { path, profile: profile.to_owned() });
        }
        Ok(None)
    }

    /// The profile's `region` in the config file, if any.
    fn region(&self, profile: &str) -> Option<String> {
        let path = self.config.as_ref().filter(|path| path.exists())?;
        let text = read_shared_file(path).ok()?;
        let keys = profile_keys(&text, &SharedFiles::config_section(profile))?;
        keys.into_iter().find(|(name, _)| name == "region").map(|(_, value)| value).filter(|value| !value.is_empty())
    }
}

fn read_shared_file(path: &Path) -> Result<String, CredentialsError> {
    let read = |error| CredentialsError::Read { path: path.to_owned(), error };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, CREDENTIALS_FILE_BYTES_MAX), &mut text)
        .map_err(read)?;
    Ok(text)
}

/// The keys of section `[section]` (the profile `profile`) of an AWS shared file (INI:
/// `[section]`, `key = value`): `None` if there is no such section, or it has no access key
/// (a config-file profile may hold only settings); an access key without its secret is an
/// error.
fn from_shared_file(
    path: &Path,
    section: &str,
    profile: &str,
    required: bool,
) -> Result<Option<SigningCredentials>, CredentialsError> {
    let text = read_shared_file(path)?;
    let Some(keys) = profile_keys(&text, section) else {
        if required {
            return Err(CredentialsError::NoProfile { path: path.to_owned(), profile: profile.to_owned() });
        }
        return Ok(None);
    };
    let get = |key: &str| keys.iter().find(|(name, _)| name == key).map(|(_, value)| value.clone());
    let incomplete =
        |missing| CredentialsError::ProfileIncomplete { path: path.to_owned(), profile: profile.to_owned(), missing };
    let Some(access_key_id) = get("aws_access_key_id") else {
        if required || get("aws_secret_access_key").is_some() {
            return Err(incomplete("aws_access_key_id"));
        }
        return Ok(None);
    };
    Ok(Some(SigningCredentials {
        access_key_id,
        secret_access_key: Secret::new(
            get("aws_secret_access_key").ok_or_else(|| incomplete("aws_secret_access_key"))?,
        ),
        session_token: get("aws_session_token").map(Secret::new),
    }))
}

/// The `key = value` lines of `[profile]`, or `None` if there is no such section. Comments
/// (`#`, `;`) and other sections are skipped, as botocore's parser does.
fn profile_keys(text: &str, profile: &str) -> Option<Vec<(String, String)>> {
    let mut keys = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            if keys.is_some() {
                break;
            }
            if section.trim() == profile {
                keys = Some(Vec::new());
            }
            continue;
        }
        if let (Some(keys), Some((key, value))) = (keys.as_mut(), line.split_once('=')) {
            let keys: &mut Vec<(String, String)> = keys;
            keys.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    keys
}

/// Runs the handshake on a fresh connection. Returns the principal the server says the client
/// is, or `None` when the server does not require authentication (open mode).
pub(crate) async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    credentials: &SigningCredentials,
    region: &str,
    channel_binding: &[u8],
) -> Result<Option<String>, ClientError> {
    let mut fbb = FlatBufferBuilder::with_capacity(1024);
    let hello = handshake::encode_hello(&mut fbb, 1).expect("a Hello fits a frame").to_vec();
    write(stream, &hello).await?;
    let server_nonce = match read_answer(stream).await? {
        HandshakeResponse::Hello { authentication_required: false, .. } => return Ok(None),
        HandshakeResponse::Hello { server_nonce, authentication_required: true } => server_nonce,
        HandshakeResponse::Refused(error) => return Err(ClientError::Service(error)),
        HandshakeResponse::Authenticated { .. } => return Err(protocol("an Authenticate answer to Hello")),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
    let (proof, expected) =
        ClientHandshake::respond(&Challenge { server_nonce }, credentials, region, channel_binding, now_ms);
    let fields = AuthenticateFields {
        access_key_id: proof.access_key_id,
        timestamp_ms: proof.timestamp_ms,
        client_nonce: proof.client_nonce,
        session_token: proof.session_token,
        mac: proof.mac,
    };
    fbb.reset();
    let frame = handshake::encode_authenticate(&mut fbb, 2, &fields)
        .map_err(|error| ClientError::Connection(ConnectionError::Frame(error)))?
        .to_vec();
    write(stream, &frame).await?;
    match read_answer(stream).await? {
        HandshakeResponse::Authenticated { server_mac, principal_arn } => {
            if !expected.check_server(&ServerProof { mac: server_mac }) {
                return Err(protocol("a proof that does not show it knows the secret (is this the daemon you meant?)"));
            }
            Ok(Some(principal_arn))
        }
        HandshakeResponse::Refused(error) => Err(ClientError::Service(error)),
        HandshakeResponse::Hello { .. } => Err(protocol("a second challenge")),
    }
}

fn protocol(what: &str) -> ClientError {
    ClientError::Connection(ConnectionError::Protocol {
        correlation_id: 0,
        reason: format!("the server answered the authentication handshake with {what}"),
    })
}

fn io_error(error: std::io::Error) -> ClientError {
    ClientError::Connection(ConnectionError::Io(std::sync::Arc::new(error)))
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, frame: &[u8]) -> Result<(), ClientError> {
    stream.write_all(frame).await.map_err(io_error)?;
    stream.flush().await.map_err(io_error)
}

/// Reads exactly one frame (the server sends nothing else during the handshake).
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> Result<HandshakeResponse, ClientError> {
    let mut frame = vec![0u8; 4];
    read_exact(stream, &mut frame).await?;
    let len = match sluice_protocol::frame_len(&frame) {
        Ok(Some(len)) if len <= HANDSHAKE_ANSWER_BYTES_MAX => len,
        Ok(_) => return Err(protocol("a frame larger than any handshake answer")),
        Err(error) => return Err(ClientError::Connection(ConnectionError::Frame(error))),
    };
    frame.resize(len, 0);
    read_exact(stream, &mut frame[4..]).await?;
    match handshake::decode_handshake_response(&bytes::Bytes::from(frame)) {
        Ok(Some((_, answer))) => Ok(answer),
        Ok(None) => Err(protocol("a cut frame")),
        Err(handshake::HandshakeDecodeError::Frame(error)) => {
            Err(ClientError::Connection(ConnectionError::Frame(error)))
        }
        Err(handshake::HandshakeDecodeError::Unexpected(what)) => Err(protocol(&what)),
    }
}

async fn read_exact<S: AsyncRead + Unpin>(stream: &mut S, buffer: &mut [u8]) -> Result<(), ClientError> {
    match stream.read_exact(buffer).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ClientError::Connection(ConnectionError::Closed))
        }
        Err(error) => Err(io_error(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_as_botocore_reads_them() {
        let text = "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key=s1\n\n\
                    [other]\n; comment\nAWS_ACCESS_KEY_ID = AKIAOTHER\naws_secret_access_key = s2\naws_session_token = t\n";
        let default = profile_keys(text, "default").unwrap();
        assert_eq!(
            default,
            vec![("aws_access_key_id".into(), "AKIADEFAULT".into()), ("aws_secret_access_key".into(), "s1".into())]
        );
        let other = profile_keys(text, "other").unwrap();
        assert_eq!(other.len(), 3);
        assert_eq!(other[0], ("aws_access_key_id".into(), "AKIAOTHER".into()));
        assert!(profile_keys(text, "missing").is_none());
    }

    #[test]
    fn shared_files_give_credentials_or_say_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("sluice-credentials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n[half]\naws_access_key_id = AKIA2\n",
        )
        .unwrap();
        let credentials = from_shared_file(&path, "default", "default", false).unwrap().unwrap();
        assert_eq!(credentials.access_key_id, "AKIA1");
        assert_eq!(credentials.secret_access_key.expose(), "s");
        let error = from_shared_file(&path, "half", "half", true).unwrap_err();
        assert!(error.to_string().ends_with("profile [half] has no aws_secret_access_key"), "{error}");
        assert!(matches!(from_shared_file(&path, "none", "none", true), Err(CredentialsError::NoProfile { .. })));
        assert!(from_shared_file(&path, "none", "none", false).unwrap().is_none());
        // The config file: `[profile NAME]` sections, keys or only settings.
        let config = dir.join("config");
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile ci]\nregion = us-west-2\naws_access_key_id = AKIA3\n\
             aws_secret_access_key = s3\n",
        )
        .unwrap();
        let files = SharedFiles { credentials: Some(path.clone()), config: Some(config) };
        assert_eq!(files.credentials("default", true).unwrap().unwrap().access_key_id, "AKIA1");
        assert_eq!(files.credentials("ci", true).unwrap().unwrap().access_key_id, "AKIA3");
        assert!(files.credentials("other", false).unwrap().is_none());
        assert!(matches!(files.credentials("other", true), Err(CredentialsError::NoProfile { .. })));
        assert_eq!(files.region("default").as_deref(), Some("eu-west-1"));
        assert_eq!(files.region("ci").as_deref(), Some("us-west-2"));
        assert_eq!(files.region("other"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
