//! TLS on the native listener, end to end: a real `sluiced` with `--tls-cert` / `--tls-key`
//! (and `--credentials`), certificates from a test CA made here with rcgen, the real client
//! crate and the real `sluice` CLI with `--ca-bundle`; SIGHUP swaps the certificate for new
//! connections while open ones go on.

mod common;

use common::{run, Daemon};
use sluice_client::auth::SigningCredentials;
use sluice_client::tls::TlsOptions;
use sluice_client::{Client, ClientError, ConnectOptions, ErrorKind, ListStreamsInput};
use sluice_security::Secret;
use sluice_testkit::TestCa;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn admin(tls: Option<TlsOptions>) -> ConnectOptions {
    ConnectOptions {
        credentials: Some(SigningCredentials {
            access_key_id: "AKIAADMIN00000000001".into(),
            secret_access_key: Secret::new("admin-secret"),
            session_token: None,
        }),
        region: "us-east-1".into(),
        tls,
    }
}

#[test]
fn native_tls_with_authentication_a_ca_bundle_and_reload_on_sighup() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (first, second) = (TestCa::new("Sluice test CA 1"), TestCa::new("Sluice test CA 2"));
    first.install(dir.path());
    let credentials = dir.path().join("credentials.toml");
    std::fs::write(
        &credentials,
        "account_id = \"000000000000\"\n\n[[principal]]\nname = \"admin\"\naccess_key_id = \"AKIAADMIN00000000001\"\n\
         secret_access_key = \"admin-secret\"\npolicies = ['''{\"Version\": \"2012-10-17\", \"Statement\": \
         [{\"Effect\": \"Allow\", \"Action\": \"kinesis:*\", \"Resource\": \"*\"}]}''']\n",
    )
    .unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let daemon = Daemon::start_with(
        "unlimited",
        1,
        &[
            "--credentials",
            credentials.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let endpoint = daemon.endpoint();
    let pid = daemon.pid();
    let (first_ca, second_ca) = (first.ca_pem.clone(), second.ca_pem.clone());
    let second_for_reload = (second.cert_pem.clone(), second.key_pem.clone(), dir.path().to_path_buf());
    run(move || async move {
        let trusting = |pem: &str| Some(TlsOptions::from_ca_pem(pem.as_bytes()).unwrap());
        // TLS and the right credentials: served, with the proof bound to the TLS session.
        let client = Client::connect_with(&endpoint, &admin(trusting(&first_ca))).await.unwrap();
        client.call(&ListStreamsInput::default()).await.unwrap();
        // A client that does not trust the daemon's CA refuses the handshake.
        let untrusting = Client::connect_with(&endpoint, &admin(trusting(&second_ca))).await;
        assert!(matches!(untrusting, Err(ClientError::Connect { .. })), "{:?}", untrusting.err());
        // Plain TCP to a TLS listener gets no answer it can read.
        assert!(Client::connect_with(&endpoint, &admin(None)).await.is_err());
        // TLS without credentials still needs authentication.
        let anonymous =
            Client::connect_with(&endpoint, &ConnectOptions { tls: trusting(&first_ca), ..ConnectOptions::default() })
                .await
                .unwrap();
        let refused = anonymous.call(&ListStreamsInput::default()).await.unwrap_err();
        assert_eq!(refused.code(), Some(ErrorKind::MissingAuthenticationToken));

        // SIGHUP with the second CA's certificate: new connections get it, the open one goes on.
        let (cert_pem, key_pem, dir) = second_for_reload;
        std::fs::write(dir.join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), key_pem).unwrap();
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(pid as i32, libc::SIGHUP) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Client::connect_with(&endpoint, &admin(trusting(&second_ca))).await.is_err() {
            assert!(Instant::now() < deadline, "the reloaded certificate never served");
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        assert!(Client::connect_with(&endpoint, &admin(trusting(&first_ca))).await.is_err());
        client.call(&ListStreamsInput::default()).await.unwrap();
    });

    // The CLI: --ca-bundle with the CA that issued the certificate now served.
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, &second.ca_pem).unwrap();
    let cli = Path::new(env!("CARGO_BIN_EXE_sluiced")).with_file_name("sluice");
    assert!(cli.exists(), "{} is missing: build the workspace first (cargo build --workspace)", cli.display());
    let sluice = |ca: &Path| {
        Command::new(&cli)
            .args(["--endpoint", &daemon.endpoint(), "--ca-bundle", ca.to_str().unwrap(), "list-streams"])
            .env("AWS_ACCESS_KEY_ID", "AKIAADMIN00000000001")
            .env("AWS_SECRET_ACCESS_KEY", "admin-secret")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    let ok = sluice(&bundle);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, &first.ca_pem).unwrap();
    let refused = sluice(&wrong);
    assert_eq!(refused.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("could not connect"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
