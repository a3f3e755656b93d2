//! TLS to the daemon's native listener (`sluiced --tls-cert`): rustls, trusting the CA bundle
//! the caller names (`sluice --ca-bundle FILE`, as `aws --ca-bundle`), with ALPN `sluice/1`.
//! Over TLS the authentication handshake binds its proofs to the TLS session (the RFC 5705
//! exporter, `sluice_security::challenge`), so they cannot be relayed through another one.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use rustls::pki_types::ServerName;
use sluice_security::challenge::CHANNEL_BINDING_LABEL;
use sluice_security::tls::{client_config, client_config_from_file, TlsError, ALPN_NATIVE};

use crate::errors::{ClientError, ConnectionError};

/// Bytes of keying material the handshake binds to (the daemon exports as many).
const CHANNEL_BINDING_BYTES: usize = 32;

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
