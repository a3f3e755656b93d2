//! TLS to the daemon's native listener (`sluiced --tls-cert`): rustls, trusting the CA bundle
//! the caller names (`sluice --ca-bundle FILE`, as `aws --ca-bundle`), with ALPN `sluice/1`;
//! and HTTPS to any endpoint (AWS itself) trusting the operating system's roots
//! ([`TlsOptions::system_roots`]: `rustls-native-certs`, which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` as OpenSSL does) plus an optional CA bundle.
//! Over TLS the authentication handshake binds its proofs to the TLS session (the RFC 5705
//! exporter, `sluice_security::challenge`), so they cannot be relayed through another one.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use rustls::pki_types::ServerName;
use sluice_security::challenge::CHANNEL_BINDING_LABEL;
use sluice_security::tls::{client_config, client_config_from_file, parse_certificates, TlsError, ALPN_NATIVE};

use crate::errors::{ClientError, ConnectionError};

/// Bytes of keying material the handshake binds to (the daemon exports as many).
const CHANNEL_BINDING_BYTES: usize = 32;

/// Bytes of an extra CA bundle read: Mozilla's whole root list as PEM is about 220 KB.
const CA_BUNDLE_BYTES_MAX: u64 = 4 << 20;

/// Why the trusted roots for HTTPS could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The extra CA bundle could not be read or parsed.
    #[error(transparent)]
    Bundle(#[from] TlsError),
    /// Neither the system's store nor a bundle gave a single usable root.
    #[error(
        "no trusted root certificates: the system store gave none{problems} (install the OS's CA \
         certificates, or name a PEM bundle with SSL_CERT_FILE or a CA bundle)"
    )]
    NoRoots { problems: String },
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// How to reach a TLS native listener.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    config: Arc<rustls::ClientConfig>,
    /// The name the certificate must carry; default: the host of the address connected to.
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// Trusts the certificates of a PEM CA bundle file.
    pub fn from_ca_bundle(path: &Path) -> Result<TlsOptions, TlsError> {
        Ok(TlsOptions { config: Arc::new(client_config_from_file(path, &ALPN_NATIVE)?), server_name: None })
    }

    /// Trusts the certificates of a PEM CA bundle.
    pub fn from_ca_pem(pem: &[u8]) -> Result<TlsOptions, TlsError> {
        Ok(TlsOptions { config: Arc::new(client_config(pem, &ALPN_NATIVE)?), server_name: None })
    }

    /// HTTPS (ALPN `http/1.1`) trusting the operating system's root certificates, as
    /// `rustls-native-certs` reads them (`SSL_CERT_FILE` / `SSL_CERT_DIR` replace the system
    /// store when set), plus the certificates of `extra_bundle` if given (a PEM file: a private
    /// CA, as `AWS_CA_BUNDLE`). Roots the system store holds that rustls cannot parse are
    /// skipped; none usable at all is an error.
    pub fn system_roots(extra_bundle: Option<&Path>) -> Result<TlsOptions, TrustError> {
        let loaded = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (_added, _skipped) = roots.add_parsable_certificates(loaded.certs);
        if let Some(path) = extra_bundle {
            let io = |source| TlsError::Io { path: path.to_path_buf(), source };
            let mut pem = Vec::new();
            let file = std::fs::File::open(path).map_err(io)?;
            std::io::Read::read_to_end(&mut std::io::Read::take(file, CA_BUNDLE_BYTES_MAX + 1), &mut pem)
                .map_err(io)?;
            if pem.len() as u64 > CA_BUNDLE_BYTES_MAX {
                let detail = format!("larger than {CA_BUNDLE_BYTES_MAX} bytes");
                return Err(TlsError::BadPem { path: path.to_path_buf(), detail }.into());
            }
            for certificate in parse_certificates(&pem, path)? {
                roots.add(certificate)?;
            }
        }
        if roots.is_empty() {
            let problems = if loaded.errors.is_empty() {
                String::new()
            } else {
                let all: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
                format!(" ({})", all.join("; "))
            };
            return Err(TrustError::NoRoots { problems });
        }
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsOptions { config: Arc::new(config), server_name: None })
    }

    /// The same trust for an HTTP/1.1 endpoint (sluiced's `--http-listen`): ALPN `http/1.1`.
    pub(crate) fn for_http(&self) -> TlsOptions {
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsOptions { config: Arc::new(config), server_name: self.server_name.clone() }
    }

    /// The TLS handshake over a connected socket to `addr` (`host:port`).
    pub(crate) async fn connect(&self, addr: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, ClientError> {
        let host = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
                host.trim_start_matches('[').trim_end_matches(']').to_owned()
            }
        };
        let connect_error = |error| ClientError::Connect { addr: addr.to_owned(), error };
        let name = ServerName::try_from(host).map_err(|error| {
            connect_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("TLS server name: {error}")))
        })?;
        TlsConnector::from(self.config.clone()).connect(name, tcp).await.map_err(connect_error)
    }
}

/// The session's exporter output both ends put into the authentication proofs.
pub(crate) fn channel_binding(stream: &TlsStream<TcpStream>) -> Result<Vec<u8>, ClientError> {
    stream.get_ref().1.export_keying_material(vec![0u8; CHANNEL_BINDING_BYTES], CHANNEL_BINDING_LABEL, None).map_err(
        |error| {
            ClientError::Connection(ConnectionError::Io(Arc::new(std::io::Error::other(format!(
                "TLS keying material export failed: {error}"
            )))))
        },
    )
}
