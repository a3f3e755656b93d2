//! A secured daemon set up as a user would, with the real `sluiced` and `sluice` binaries:
//! - safe defaults: a non-loopback listener without credentials or TLS is refused at start
//!   with the flags to add, `--insecure` serves it with a warning, credentials and TLS serve
//!   it quietly;
//! - SIGHUP rereads the credentials file without dropping connections (open native
//!   connections follow it at their next request), and a bad file keeps the old one;
//! - the client crate's HTTP client signs with SigV4 and speaks HTTPS, and `sluice produce` /
//!   `consume` reach a daemon with `--credentials` and TLS over both protocols with the AWS
//!   environment variables.

mod common;

use common::{forward_stderr, free_port, run, sluice_bin, Daemon};
use sluice_client::auth::SigningCredentials;
use sluice_client::aws::HttpClient;
use sluice_client::tls::TlsOptions;
use sluice_client::{
    Client, ClientError, ConnectOptions, CreateStreamInput, DescribeLimitsInput, Encoding, ErrorKind, ListStreamsInput,
};
use sluice_security::sigv4::TOKEN_INVALID;
use sluice_security::Secret;
use sluice_testkit::TestCa;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One principal of a credentials file, allowed `action` (e.g. `kinesis:*`) everywhere.
fn principal(name: &str, access_key_id: &str, secret: &str, action: &str) -> String {
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "{action}", "Resource": "*"}}}}"#
    );
    format!(
        "[[principal]]\nname = \"{name}\"\naccess_key_id = \"{access_key_id}\"\nsecret_access_key = \"{secret}\"\n\
         policies = ['''{policy}''']\n\n"
    )
}

/// A credentials file of one principal allowed everything.
fn write_credentials(path: &Path, access_key_id: &str, secret: &str) {
    std::fs::write(path, principal("admin", access_key_id, secret, "kinesis:*")).unwrap();
}

fn options(access_key_id: &str, secret: &str, tls: Option<TlsOptions>) -> ConnectOptions {
    ConnectOptions {
        credentials: Some(SigningCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret),
            session_token: None,
        }),
        region: "us-east-1".into(),
        tls,
    }
}

/// The Kinesis error a call was answered with.
fn refusal<T>(result: Result<T, ClientError>) -> (ErrorKind, String) {
    match result {
        Err(ClientError::Service(error)) => (error.kind, error.message),
        Err(other) => panic!("expected a service error, got {other:?}"),
        Ok(_) => panic!("expected a service error, got an answer"),
    }
}

/// `sluiced` on `native` (any address) and loopback HTTP and metrics ports, with `extra` flags.
fn sluiced(data_dir: &Path, native: &str, extra: &[&str]) -> Child {
    sluiced_on(data_dir, native, &format!("127.0.0.1:{}", free_port()), "warn", extra)
}

fn sluiced_on(data_dir: &Path, native: &str, http: &str, log_level: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", native])
        .args(["--http-listen", http])
        .args(["--metrics-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--cores", "1", "--log-level", log_level])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluiced")
}

/// Starts `sluiced` on every IPv4 address and waits until it answers on loopback; returns the
/// child and what it wrote to stderr up to then is collected when it exits.
fn start_exposed(data_dir: &Path, extra: &[&str]) -> (Child, std::thread::JoinHandle<String>) {
    let port = free_port();
    let mut child = sluiced(data_dir, &format!("0.0.0.0:{port}"), extra);
    let stderr = forward_stderr(&mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sluiced exited during start-up ({status}): {}", stderr.join().unwrap());
        }
        assert!(Instant::now() < deadline, "sluiced did not start listening on 0.0.0.0:{port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, stderr)
}

fn stop(mut child: Child) {
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_non_loopback_listener_needs_credentials_and_tls_or_insecure() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    TestCa::new("Sluice safe-defaults test CA").write(dir.path());
    let credentials = dir.path().join("credentials.toml");
    write_credentials(&credentials, "AKIAADMIN00000000001", "admin-secret");
    let credentials = credentials.to_str().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let tls = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];

    // Refused before anything is created or bound, with the flags that are missing.
    let refused = |extra: &[&str]| {
        let data_dir = dir.path().join("refused");
        let output = sluiced(&data_dir, "0.0.0.0:0", extra).wait_with_output().unwrap();
        assert!(!output.status.success());
        assert!(!data_dir.exists(), "a refused start created its data directory");
        String::from_utf8(output.stderr).unwrap()
    };
    let message = refused(&[]);
    assert!(message.contains("refusing to serve --listen 0.0.0.0:0 without credentials or TLS"), "{message}");
    assert!(message.contains("add --credentials FILE and --tls-cert FILE --tls-key FILE"), "{message}");
    assert!(message.contains("--insecure"), "{message}");
    let message = refused(&["--credentials", credentials]);
    assert!(message.contains("without TLS") && message.contains("add --tls-cert FILE --tls-key FILE ("), "{message}");
    let message = refused(&tls);
    assert!(message.contains("without credentials") && message.contains("add --credentials FILE ("), "{message}");

    // --insecure: served, with a warning naming what is exposed.
    let (child, stderr) = start_exposed(&dir.path().join("insecure"), &["--insecure"]);
    stop(child);
    let log = stderr.join().unwrap();
    assert!(log.contains("WARN") && log.contains("--insecure") && log.contains("0.0.0.0"), "{log}");

    // Credentials and TLS: served, and nothing to warn about.
    let mut extra = vec!["--credentials", credentials];
    extra.extend(tls);
    let (child, stderr) = start_exposed(&dir.path().join("protected"), &extra);
    stop(child);
    let log = stderr.join().unwrap();
    assert!(!log.contains("--insecure"), "{log}");
}

/// A daemon on loopback whose log lines the test can wait for.
struct Watched {
    child: Option<Child>,
    native: SocketAddr,
    http: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Watched {
    fn start(data_dir: &Path, extra: &[&str]) -> Watched {
        let native = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut child = sluiced_on(data_dir, &native.to_string(), &http.to_string(), "info", extra);
        let (sender, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let _ = sender.send(line);
            }
        });
        let watched = Watched { child: Some(child), native, http, lines };
        watched.wait_for_line("sluiced ready");
        watched
    }

    /// Waits for a log line containing `text` (lines before it are passed over).
    fn wait_for_line(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("sluiced never logged {text:?}"),
            }
        }
    }

    fn sighup(&self) {
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(self.child.as_ref().unwrap().id() as i32, libc::SIGHUP) };
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn sighup_rereads_the_credentials_without_dropping_connections() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let file = dir.path().join("credentials.toml");
    let alice = ("AKIAALICE0000000001", "alice-secret");
    let bob = ("AKIABOB00000000000001", "bob-secret");
    std::fs::write(&file, principal("alice", alice.0, alice.1, "kinesis:*")).unwrap();
    let daemon = Watched::start(&dir.path().join("data"), &["--credentials", file.to_str().unwrap()]);
    let (native, http) = (daemon.native.to_string(), daemon.http.to_string());
    let write = |text: String| std::fs::write(&file, text).unwrap();
    let sighup_and_wait = |text: &str| {
        daemon.sighup();
        daemon.wait_for_line(text)
    };
    let list = ListStreamsInput::default();
    let limits = DescribeLimitsInput::default();
    let connect = |key: (&'static str, &'static str)| {
        let native = native.clone();
        async move { Client::connect_with(&native, &options(key.0, key.1, None)).await }
    };
    let connect_http = |key: (&'static str, &'static str)| {
        let http = http.clone();
        async move { HttpClient::connect_with(&http, Encoding::Json, &options(key.0, key.1, None)).await.unwrap() }
    };
    // The clients live on one executor across the reloads, as a long-running application's do.
    let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
    executor.run(async {
        let alice_native = connect(alice).await.unwrap();
        alice_native.call(&list).await.unwrap();
        let alice_http = connect_http(alice).await;
        alice_http.call(&list).await.unwrap();
        // The native handshake refuses an unknown key.
        assert_eq!(refusal(connect(bob).await).0, ErrorKind::UnrecognizedClient);

        // Bob joins; alice may now only describe limits.
        write(
            principal("alice", alice.0, alice.1, "kinesis:DescribeLimits")
                + &principal("bob", bob.0, bob.1, "kinesis:*"),
        );
        sighup_and_wait("credentials reloaded");
        connect(bob).await.unwrap().call(&list).await.unwrap();
        connect_http(bob).await.call(&list).await.unwrap();
        // Alice's connection, opened before the reload, is still open, under her new policy.
        let (kind, message) = refusal(alice_native.call(&list).await);
        assert_eq!(kind, ErrorKind::AccessDenied, "{message}");
        assert!(message.contains("is not authorized to perform: kinesis:ListStreams"), "{message}");
        alice_native.call(&limits).await.unwrap();
        assert_eq!(refusal(alice_http.call(&list).await).0, ErrorKind::AccessDenied);

        // A bad file: logged, and the previous credentials keep serving.
        write("[[principal]]\nname = ".to_string());
        let line = sighup_and_wait("credentials reload failed");
        assert!(line.contains("keeping the previous credentials"), "{line}");
        connect(bob).await.unwrap().call(&list).await.unwrap();
        alice_native.call(&limits).await.unwrap();

        // Alice removed: her open native connection's next request is refused as an unknown key.
        write(principal("bob", bob.0, bob.1, "kinesis:*"));
        sighup_and_wait("credentials reloaded");
        let (kind, message) = refusal(alice_native.call(&limits).await);
        assert_eq!((kind, message.as_str()), (ErrorKind::UnrecognizedClient, TOKEN_INVALID));
        assert_eq!(refusal(alice_http.call(&list).await).0, ErrorKind::UnrecognizedClient);
    });
}

#[test]
fn clients_sign_and_use_tls_over_both_protocols() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    TestCa::new("Sluice safe-defaults test CA").write(dir.path());
    let credentials = dir.path().join("credentials.toml");
    let admin = ("AKIAADMIN00000000001", "admin-secret");
    write_credentials(&credentials, admin.0, admin.1);
    let (cert, key, ca) = (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("ca.pem"));
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
    let http = daemon.http_addr.to_string();
    let ca_pem = std::fs::read(&ca).unwrap();
    run(move || async move {
        let tls = || Some(TlsOptions::from_ca_pem(&ca_pem).unwrap());
        let client = HttpClient::connect_with(&http, Encoding::Json, &options(admin.0, admin.1, tls())).await.unwrap();
        let create = CreateStreamInput { stream_name: "signed".into(), shard_count: Some(2), ..Default::default() };
        client.call(&create).await.unwrap();
        assert!(client.call(&ListStreamsInput::default()).await.unwrap().stream_names.contains(&"signed".to_string()));
        // CBOR is signed the same way.
        let cbor = HttpClient::connect_with(&http, Encoding::Cbor, &options(admin.0, admin.1, tls())).await.unwrap();
        cbor.call(&ListStreamsInput::default()).await.unwrap();
        // The wrong secret, and no credentials at all, get AWS's errors.
        let wrong = HttpClient::connect_with(&http, Encoding::Json, &options(admin.0, "not-it", tls())).await.unwrap();
        let (kind, message) = refusal(wrong.call(&ListStreamsInput::default()).await);
        assert_eq!(kind, ErrorKind::InvalidSignature);
        assert!(message.starts_with("The request signature we calculated does not match"), "{message}");
        let unsigned = ConnectOptions { tls: tls(), ..ConnectOptions::default() };
        let anonymous = HttpClient::connect_with(&http, Encoding::Json, &unsigned).await.unwrap();
        assert_eq!(
            refusal(anonymous.call(&ListStreamsInput::default()).await).0,
            ErrorKind::MissingAuthenticationToken
        );
        // A CA that did not issue the daemon's certificate fails the handshake; plain HTTP to
        // the TLS listener gets no answer.
        let distrusting = Some(TlsOptions::from_ca_pem(TestCa::new("Some other CA").ca_pem.as_bytes()).unwrap());
        let refused = HttpClient::connect_with(&http, Encoding::Json, &options(admin.0, admin.1, distrusting)).await;
        assert!(matches!(refused, Err(ClientError::Connect { .. })), "{:?}", refused.err());
        let plain = HttpClient::connect(&http, Encoding::Json).await.unwrap();
        assert!(plain.call(&ListStreamsInput::default()).await.is_err());
    });

    // The CLI: produce and consume over each protocol, with the keys in the environment.
    let sluice = |http: bool, command: &str, stdin: &str| {
        let endpoint = if http { daemon.http_addr.to_string() } else { daemon.endpoint() };
        let mut child = Command::new(sluice_bin())
            .args(["--ca-bundle", ca.to_str().unwrap(), "--endpoint", &endpoint])
            .args([command, "--stream-name", "signed"])
            .args(if http { &["--http"][..] } else { &[][..] })
            .args(if command == "consume" { &["--exit-at-tip"][..] } else { &[][..] })
            .env("AWS_ACCESS_KEY_ID", admin.0)
            .env("AWS_SECRET_ACCESS_KEY", admin.1)
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "sluice {command} (http: {http}): {stderr}");
        String::from_utf8(output.stdout).unwrap()
    };
    sluice(true, "produce", "over-https-1\nover-https-2\n");
    sluice(false, "produce", "over-native-tls\n");
    for http in [true, false] {
        let read = sluice(http, "consume", "");
        assert_eq!(read.lines().count(), 3, "http: {http}: {read}");
        // The three records' data, base64 (over-https-1, over-https-2, over-native-tls).
        for data in ["b3Zlci1odHRwcy0x", "b3Zlci1odHRwcy0y", "b3Zlci1uYXRpdmUtdGxz"] {
            assert!(read.contains(&format!("\"Data\":\"{data}\"")), "http: {http}: {data} was not read: {read}");
        }
    }
}
