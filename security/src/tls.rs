//! TLS configuration: rustls on the `ring` provider.
//!
//! - [`server_config`]: a server configuration from a PEM certificate chain and private key,
//!   with ALPN (`h2` and `http/1.1` on the HTTP port, [`ALPN_NATIVE`] on the native port).
//! - [`ReloadableServerConfig`]: the same, re-read from its files on demand (the daemon's
//!   SIGHUP handler calls [`ReloadableServerConfig::reload`]). It holds the configuration in an
//!   `ArcSwap`: each new connection takes the current one ([`ReloadableServerConfig::acceptor`]),
//!   connections already open keep the one they started with, and a reload that fails keeps
//!   the old configuration serving.
//! - [`client_config`]: a client configuration trusting a CA bundle (`--ca-bundle`).
//!
//! Driving TLS over glommio: glommio's `TcpStream` implements the `futures-io` traits
//! (`AsyncRead`/`AsyncWrite`), which is what `futures-rustls` wraps, so
//! `TlsAcceptor::accept(stream)` and `TlsConnector::connect(name, stream)` work on a glommio
//! executor unchanged. The aquatic BitTorrent tracker (aquatic_ws) serves TLS this way on
//! glommio, with its rustls configuration in an `ArcSwap` for reloads; `tests/tls_glommio.rs`
//! proves it here with an echo over loopback. The resulting stream is again `futures-io`, so
//! the HTTP stack's hyper adapter (`server/src/http/rt.rs`, generic over those traits) and the
//! native connection take it as they take a plain `TcpStream`.

use crate::credentials::{read_bounded, ReadError};
use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
pub use rustls::ClientConfig;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// ALPN of the AWS HTTP API: HTTP/2 first (the Java SDK's SubscribeToShard needs it), then
/// HTTP/1.1.
pub const ALPN_HTTP: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// ALPN of the native protocol.
pub const ALPN_NATIVE: [&[u8]; 1] = [b"sluice/1"];
/// ALPN of the Raft peer network between cluster members.
pub const ALPN_PEER: [&[u8]; 1] = [b"sluice-raft/1"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: no PEM certificate (-----BEGIN CERTIFICATE-----) found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key (PKCS#8, PKCS#1 or SEC1) found")]
    NoPrivateKey { path: PathBuf },
    #[error("{path}: malformed PEM: {detail}")]
    BadPem { path: PathBuf, detail: String },
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<zeroize::Zeroizing<String>, TlsError> {
    read_bounded(path).map_err(|error| match error {
        ReadError::Io(source) => TlsError::Io { path: path.to_path_buf(), source },
        ReadError::TooLarge => TlsError::BadPem { path: path.to_path_buf(), detail: "file too large".into() },
    })
}

/// The certificates of a PEM text (`path` only names it in errors).
pub fn parse_certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|error| TlsError::BadPem { path: path.to_path_buf(), detail: error.to_string() })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(certificates)
}

/// The private key of a PEM text. The error never quotes the key.
pub fn parse_private_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey { path: path.to_path_buf() },
        other => TlsError::BadPem { path: path.to_path_buf(), detail: other.to_string() },
    })
}

/// A server configuration from PEM texts; rustls checks that the key matches the certificate.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8], alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
    server_config_named(cert_pem, Path::new("<certificate>"), key_pem, Path::new("<key>"), alpn)
}

fn server_config_named(
    cert_pem: &[u8],
    cert_path: &Path,
    key_pem: &[u8],
    key_path: &Path,
    alpn: &[&[u8]],
) -> Result<ServerConfig, TlsError> {
    let certificates = parse_certificates(cert_pem, cert_path)?;
    let key = parse_private_key(key_pem, key_path)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)?;
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(config)
}

/// A server configuration read from its files, replaceable while serving.
#[derive(Debug)]
pub struct ReloadableServerConfig {
    cert_path: PathBuf,
    key_path: PathBuf,
    alpn: Vec<Vec<u8>>,
    current: ArcSwap<ServerConfig>,
}

impl ReloadableServerConfig {
    /// Reads the certificate chain and key (`--tls-cert`, `--tls-key`).
    pub fn load(cert_path: &Path, key_path: &Path, alpn: &[&[u8]]) -> Result<ReloadableServerConfig, TlsError> {
        let config = ReloadableServerConfig::read(cert_path, key_path, alpn)?;
        Ok(ReloadableServerConfig {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            alpn: alpn.iter().map(|protocol| protocol.to_vec()).collect(),
            current: ArcSwap::from_pointee(config),
        })
    }

    fn read(cert_path: &Path, key_path: &Path, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
        let cert = read(cert_path)?;
        let key = read(key_path)?;
        server_config_named(cert.as_bytes(), cert_path, key.as_bytes(), key_path, alpn)
    }

    /// Reads the files again and, if they make a valid configuration, makes it the one new
    /// connections get. On error the old configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let alpn: Vec<&[u8]> = self.alpn.iter().map(Vec::as_slice).collect();
        let config = ReloadableServerConfig::read(&self.cert_path, &self.key_path, &alpn)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// The configuration new connections use now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// An acceptor for one new connection.
    pub fn acceptor(&self) -> futures_rustls::TlsAcceptor {
        futures_rustls::TlsAcceptor::from(self.current())
    }
}

/// Bytes of a TLS session's channel binding ([`connect`], [`accept_bound`]): one SHA-256
/// output's worth, as tls-exporter channel bindings use (RFC 9266: 32 bytes).
pub const CHANNEL_BINDING_BYTES: usize = 32;

/// A TLS connection over `stream` to `server_name` (a DNS name or an IP address, checked
/// against the certificate), verified by `config`; with its channel binding, the RFC 5705
/// exporter's output under [`crate::challenge::CHANNEL_BINDING_LABEL`], which the native
/// handshake's proofs include.
pub async fn connect<S>(
    config: Arc<ClientConfig>,
    server_name: &str,
    stream: S,
) -> std::io::Result<(futures_rustls::client::TlsStream<S>, Vec<u8>)>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    connect_bound(config, server_name, stream, crate::challenge::CHANNEL_BINDING_LABEL).await
}

/// [`connect`], with the channel binding exported under `label` (each protocol that binds
/// proofs to its sessions has a label of its own).
pub async fn connect_bound<S>(
    config: Arc<ClientConfig>,
    server_name: &str,
    stream: S,
    label: &[u8],
) -> std::io::Result<(futures_rustls::client::TlsStream<S>, Vec<u8>)>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("TLS server name: {error}")))?;
    let stream = futures_rustls::TlsConnector::from(config).connect(name, stream).await?;
    let binding = channel_binding(stream.get_ref().1, label)?;
    Ok((stream, binding))
}

/// The server's side of [`connect_bound`]: the connection accepted over `stream` with
/// `acceptor`, and its channel binding under `label`.
pub async fn accept_bound<S>(
    acceptor: futures_rustls::TlsAcceptor,
    stream: S,
    label: &[u8],
) -> std::io::Result<(futures_rustls::server::TlsStream<S>, Vec<u8>)>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let stream = acceptor.accept(stream).await?;
    let binding = channel_binding(stream.get_ref().1, label)?;
    Ok((stream, binding))
}

/// [`CHANNEL_BINDING_BYTES`] of the RFC 5705 exporter under `label`: the same on both ends of
/// one TLS session, and unknown to anyone outside it.
fn channel_binding<Data>(connection: &rustls::ConnectionCommon<Data>, label: &[u8]) -> std::io::Result<Vec<u8>> {
    connection
        .export_keying_material(vec![0u8; CHANNEL_BINDING_BYTES], label, None)
        .map_err(|error| std::io::Error::other(format!("TLS keying material export failed: {error}")))
}

/// A client configuration trusting the certificates of a PEM CA bundle.
pub fn client_config(ca_bundle_pem: &[u8], alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
    client_config_named(ca_bundle_pem, Path::new("<ca bundle>"), alpn)
}

/// [`client_config`] from a CA bundle file (`--ca-bundle FILE`).
pub fn client_config_from_file(ca_bundle: &Path, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
    client_config_named(read(ca_bundle)?.as_bytes(), ca_bundle, alpn)
}

fn client_config_named(pem: &[u8], path: &Path, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in parse_certificates(pem, path)? {
        roots.add(certificate)?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn builds_server_and_client_configurations() {
        let (cert, key) = certificate("localhost");
        let server = server_config(cert.as_bytes(), key.as_bytes(), &ALPN_HTTP).unwrap();
        assert_eq!(server.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        let client = client_config(cert.as_bytes(), &ALPN_HTTP).unwrap();
        assert_eq!(client.alpn_protocols.len(), 2);
    }

    #[test]
    fn bad_pem_gets_clear_errors() {
        let (cert, key) = certificate("localhost");
        let (_, other_key) = certificate("other");
        let check = |cert: &str, key: &str, expected: &str| {
            let error = server_config(cert.as_bytes(), key.as_bytes(), &ALPN_HTTP).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} lacks {expected}");
            assert!(!error.contains("PRIVATE KEY-----\n"), "{error}");
        };
        check("", &key, "no PEM certificate");
        check(&key, &key, "no PEM certificate");
        check(&cert, "", "no PEM private key");
        check(&cert, &cert, "no PEM private key");
        check(&cert, &other_key, "TLS configuration refused");
        let truncated = cert.replace("-----END CERTIFICATE-----", "");
        check(&truncated, &key, "malformed PEM");
        assert!(client_config(b"not pem", &ALPN_HTTP).unwrap_err().to_string().contains("no PEM certificate"));
    }

    #[test]
    fn reload_keeps_the_old_configuration_when_the_new_files_are_bad() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (cert, key) = certificate("localhost");
        std::fs::write(&cert_path, &cert).unwrap();
        std::fs::write(&key_path, &key).unwrap();
        let reloadable = ReloadableServerConfig::load(&cert_path, &key_path, &ALPN_HTTP).unwrap();
        let before = reloadable.current();
        std::fs::write(&key_path, "garbage").unwrap();
        assert!(matches!(reloadable.reload(), Err(TlsError::NoPrivateKey { .. })));
        assert!(Arc::ptr_eq(&before, &reloadable.current()), "a failed reload replaced the configuration");
        let (cert, key) = certificate("localhost");
        std::fs::write(&cert_path, &cert).unwrap();
        std::fs::write(&key_path, &key).unwrap();
        reloadable.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &reloadable.current()));
        assert!(matches!(
            ReloadableServerConfig::load(&dir.path().join("missing.pem"), &key_path, &ALPN_HTTP),
            Err(TlsError::Io { .. })
        ));
    }
}
