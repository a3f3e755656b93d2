//! rustls driven over glommio's `TcpStream` through futures-rustls, on a real glommio
//! executor: a TLS echo over loopback with ALPN negotiated, a certificate reload that leaves
//! the open connection on its old session while new connections get the new certificate, and
//! the TLS exporter both ends use for the native protocol's channel binding.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::{TlsAcceptor, TlsConnector};
use glommio::net::{TcpListener, TcpStream};
use rustls::pki_types::ServerName;
use sluice_security::challenge::CHANNEL_BINDING_LABEL;
use sluice_security::tls::{client_config, ReloadableServerConfig, ALPN_HTTP};
use sluice_testkit::TestCa;
use std::rc::Rc;
use std::sync::Arc;

fn run<F: std::future::Future<Output = ()> + 'static>(work: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(work)
        .expect("an executor")
        .join()
        .expect("the executor thread");
}

/// Serves TLS echo connections: each accepted connection takes the configuration current
/// at its accept, as the daemon's listeners will.
async fn serve(listener: TcpListener, config: Arc<ReloadableServerConfig>) {
    loop {
        let Ok(stream) = listener.accept().await else { return };
        let acceptor: TlsAcceptor = config.acceptor();
        glommio::spawn_local(async move {
            let Ok(mut tls) = acceptor.accept(stream).await else { return };
            let mut buffer = [0u8; 1024];
            loop {
                match tls.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => {
                        if tls.write_all(&buffer[..read]).await.is_err() || tls.flush().await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .detach();
    }
}

async fn connect(
    address: std::net::SocketAddr,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> std::io::Result<futures_rustls::client::TlsStream<TcpStream>> {
    let config = client_config(ca_pem.as_bytes(), alpn).unwrap();
    let stream = TcpStream::connect(address).await?;
    TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("localhost").unwrap(), stream).await
}

async fn echo(tls: &mut futures_rustls::client::TlsStream<TcpStream>, message: &[u8]) -> Vec<u8> {
    tls.write_all(message).await.unwrap();
    tls.flush().await.unwrap();
    let mut back = vec![0u8; message.len()];
    tls.read_exact(&mut back).await.unwrap();
    back
}

#[test]
fn tls_echo_over_glommio_with_alpn_and_reload() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (TestCa::new("Sluice test CA 1"), TestCa::new("Sluice test CA 2"));
        first.install(dir.path());
        let config = Arc::new(
            ReloadableServerConfig::load(&dir.path().join("cert.pem"), &dir.path().join("key.pem"), &ALPN_HTTP)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = glommio::spawn_local(serve(listener, config.clone()));

        // HTTP/2 preferred when the client offers it; HTTP/1.1 when that is all it speaks.
        let mut h2 = connect(address, &first.ca_pem, &ALPN_HTTP).await.unwrap();
        assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(echo(&mut h2, b"hello over TLS on glommio").await, b"hello over TLS on glommio");
        let mut h1 = connect(address, &first.ca_pem, &[b"http/1.1"]).await.unwrap();
        assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let large = vec![0x5Au8; 100_000];
        let mut back = Vec::new();
        h1.write_all(&large).await.unwrap();
        h1.flush().await.unwrap();
        while back.len() < large.len() {
            let mut chunk = [0u8; 16_384];
            let read = h1.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the echo stopped early");
            back.extend_from_slice(&chunk[..read]);
        }
        assert_eq!(back, large);

        // A client that does not trust the server's CA refuses the handshake.
        assert!(connect(address, &second.ca_pem, &ALPN_HTTP).await.is_err());

        // Reload (what SIGHUP will do) with a certificate from the second CA.
        second.install(dir.path());
        config.reload().unwrap();
        assert_eq!(echo(&mut h2, b"still on the old session").await, b"still on the old session");
        assert!(connect(address, &first.ca_pem, &ALPN_HTTP).await.is_err(), "a new connection got the old certificate");
        let mut renewed = connect(address, &second.ca_pem, &ALPN_HTTP).await.unwrap();
        assert_eq!(echo(&mut renewed, b"new certificate").await, b"new certificate");
        drop(server);
    });
}

#[test]
fn both_ends_export_the_same_channel_binding() {
    run(|| async {
        let ca = TestCa::new("Sluice test CA");
        let server_config =
            sluice_security::tls::server_config(ca.cert_pem.as_bytes(), ca.key_pem.as_bytes(), &ALPN_HTTP).unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(server_config));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server_binding = Rc::new(std::cell::RefCell::new(None));
        let seen = server_binding.clone();
        let server = glommio::spawn_local(async move {
            let stream = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(stream).await.unwrap();
            let binding = tls.get_ref().1.export_keying_material([0u8; 32], CHANNEL_BINDING_LABEL, None).unwrap();
            *seen.borrow_mut() = Some(binding);
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.unwrap();
            tls.write_all(&byte).await.unwrap();
            tls.flush().await.unwrap();
        });
        let mut client = connect(address, &ca.ca_pem, &ALPN_HTTP).await.unwrap();
        assert_eq!(echo(&mut client, b"x").await, b"x");
        let client_binding = client.get_ref().1.export_keying_material([0u8; 32], CHANNEL_BINDING_LABEL, None).unwrap();
        server.await;
        assert_eq!(server_binding.borrow().unwrap(), client_binding);
        assert_ne!(client_binding, [0u8; 32]);
    });
}
