//! The native protocol's authentication, end to end: a real `sluiced` with `--credentials` and
//! `--audit-dir`, the real client crate and the real `sluice` CLI. Unauthenticated and wrongly
//! signed connections get AWS's errors and are audited; an authenticated connection is
//! authorized per operation by its principal's policies, as over HTTP.

mod common;

use bytes::Bytes;
use common::{run, Daemon};
use sluice_client::auth::SigningCredentials;
use sluice_client::{
    Client, ClientError, ConnectOptions, CreateApplicationInput, CreateStreamInput, ErrorKind, GetRecordsInput,
    GetShardIteratorInput, InitialPosition, InitialPositionType, ListLeasesInput, ListStreamsInput, PutRecordInput,
    ShardIteratorType, StealLeaseInput, TakeLeaseInput,
};
use sluice_security::Secret;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ACCOUNT: &str = "000000000000";
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// admin may do everything; reader may only read streams named `orders-*`.
fn credentials_file(dir: &Path) -> PathBuf {
    let path = dir.join("credentials.toml");
    let text = format!(
        r#"account_id = "{ACCOUNT}"

[[principal]]
name = "admin"
access_key_id = "AKIAADMIN00000000001"
secret_access_key = "admin/secret+key"
policies = ['''{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}}]}}''']

[[principal]]
name = "reader"
access_key_id = "AKIAREADER0000000001"
secret_access_key = "reader-secret"
policies = ['''{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator"], "Resource": "arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/orders-*"}}]}}''']
"#
    );
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&path).unwrap().permissions(), 0o600);
    path
}

struct Secured {
    daemon: Daemon,
    dir: tempfile::TempDir,
}

fn secured() -> Secured {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let credentials = credentials_file(dir.path());
    let audit = dir.path().join("audit");
    let daemon = Daemon::start_with(
        "unlimited",
        1,
        &["--credentials", credentials.to_str().unwrap(), "--audit-dir", audit.to_str().unwrap()],
    );
    Secured { daemon, dir }
}

fn options(access_key_id: &str, secret: &str, region: &str) -> ConnectOptions {
    ConnectOptions {
        credentials: Some(SigningCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret),
            session_token: None,
        }),
        region: region.into(),
        tls: None,
    }
}

fn service(result: Result<impl std::fmt::Debug, ClientError>) -> (ErrorKind, String) {
    match result {
        Err(ClientError::Service(error)) => (error.kind, error.message),
        // A refusal under correlation id 0 closes the connection with the server's error.
        Err(ClientError::Connection(sluice_client::ConnectionError::Rejected(error))) => (error.kind, error.message),
        other => panic!("expected a service error, got {other:?}"),
    }
}

/// The audit log's lines, once `count` of them match `predicate` (the writer thread appends
/// within moments of the call).
fn audit_lines(dir: &Path, predicate: impl Fn(&serde_json::Value) -> bool, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(dir.join("audit/audit.log")).unwrap_or_default();
        let matching: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .filter(|event: &serde_json::Value| predicate(event))
            .collect();
        if matching.len() >= count {
            return matching;
        }
        assert!(Instant::now() < deadline, "the audit log has {} of {count} events:\n{text}", matching.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unauthenticated_and_wrongly_signed_connections_are_refused_and_audited() {
    let secured = secured();
    let endpoint = secured.daemon.endpoint();
    run(move || async move {
        // No handshake at all: the first request is refused under its own correlation id.
        let anonymous = Client::connect(&endpoint).await.unwrap();
        let (kind, message) = service(anonymous.call(&ListStreamsInput::default()).await);
        assert_eq!((kind, message.as_str()), (ErrorKind::MissingAuthenticationToken, "Missing Authentication Token"));
        assert_eq!(kind.exception_name(), "MissingAuthenticationTokenException");

        let refused = |key: &'static str, secret: &'static str, region: &'static str| {
            let endpoint = endpoint.clone();
            async move { service(Client::connect_with(&endpoint, &options(key, secret, region)).await.map(|_| ())) }
        };
        assert_eq!(
            refused("AKIAADMIN00000000001", "wrong", "us-east-1").await,
            (ErrorKind::InvalidSignature, MISMATCH.to_string())
        );
        assert_eq!(
            refused("AKIANOBODY0000000001", "whatever", "us-east-1").await,
            (ErrorKind::UnrecognizedClient, "The security token included in the request is invalid.".to_string())
        );
        // The region is part of the derived key.
        assert_eq!(
            refused("AKIAADMIN00000000001", "admin/secret+key", "eu-west-1").await,
            (ErrorKind::InvalidSignature, MISMATCH.to_string())
        );

        // The right credentials: served, and the connection stays up for many calls.
        let admin = Client::connect_with(&endpoint, &options("AKIAADMIN00000000001", "admin/secret+key", "us-east-1"))
            .await
            .unwrap();
        admin
            .call(&CreateStreamInput { stream_name: "orders-1".into(), shard_count: Some(1), ..Default::default() })
            .await
            .unwrap();
        assert!(admin.call(&ListStreamsInput::default()).await.unwrap().stream_names.contains(&"orders-1".to_string()));
    });
    // Every refusal is in the audit log, with the key it claimed and AWS's error.
    let refusals = audit_lines(secured.dir.path(), |event| event["errorCode"].is_string(), 4);
    let codes: Vec<&str> = refusals.iter().map(|event| event["errorCode"].as_str().unwrap()).collect();
    assert!(codes.contains(&"MissingAuthenticationTokenException"), "{codes:?}");
    assert!(codes.contains(&"UnrecognizedClientException"), "{codes:?}");
    assert_eq!(codes.iter().filter(|code| **code == "InvalidSignatureException").count(), 2, "{codes:?}");
    let claimed: Vec<&str> =
        refusals.iter().filter_map(|event| event["userIdentity"]["accessKeyId"].as_str()).collect();
    assert!(claimed.contains(&"AKIANOBODY0000000001"), "{refusals:?}");
    // And the authenticated calls are audited as the principal.
    let created = audit_lines(secured.dir.path(), |event| event["eventName"] == "CreateStream", 1);
    assert_eq!(created[0]["userIdentity"]["arn"], format!("arn:aws:iam::{ACCOUNT}:user/admin"));
}

#[test]
fn an_authenticated_connection_is_authorized_per_operation() {
    let secured = secured();
    let endpoint = secured.daemon.endpoint();
    run(move || async move {
        let admin = Client::connect_with(&endpoint, &options("AKIAADMIN00000000001", "admin/secret+key", "us-east-1"))
            .await
            .unwrap();
        for stream in ["orders-1", "payroll"] {
            admin
                .call(&CreateStreamInput { stream_name: stream.into(), shard_count: Some(1), ..Default::default() })
                .await
                .unwrap();
        }
        let put = |stream: &str| PutRecordInput {
            stream_name: Some(stream.into()),
            data: Bytes::from_static(b"hello"),
            partition_key: Some("k".into()),
            ..Default::default()
        };
        // Wait for the streams to be ACTIVE: a put succeeds.
        for stream in ["orders-1", "payroll"] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while admin.call(&put(stream)).await.is_err() {
                assert!(Instant::now() < deadline, "{stream} never became writable");
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
        }

        let reader = Client::connect_with(&endpoint, &options("AKIAREADER0000000001", "reader-secret", "us-east-1"))
            .await
            .unwrap();
        // Allowed: exactly GetShardIterator and GetRecords on orders-*.
        let iterator = reader
            .call(&GetShardIteratorInput {
                stream_name: Some("orders-1".into()),
                shard_id: "shardId-000000000000".into(),
                shard_iterator_type: ShardIteratorType::TrimHorizon,
                starting_sequence_number: None,
                timestamp: None,
                stream_arn: None,
            })
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let records =
            reader.call(&GetRecordsInput { shard_iterator: iterator, ..Default::default() }).await.unwrap().records;
        assert_eq!(records[0].data, Bytes::from_static(b"hello"));
        // Denied, with AWS's message: a write, a read of another stream, a listing.
        let (kind, message) = service(reader.call(&put("orders-1")).await);
        assert_eq!(kind, ErrorKind::AccessDenied);
        assert_eq!(
            message,
            format!(
                "User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: kinesis:PutRecord on resource: \
                 arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/orders-1 because no identity-based policy allows the \
                 kinesis:PutRecord action"
            )
        );
        let other = GetShardIteratorInput {
            stream_name: Some("payroll".into()),
            shard_id: "shardId-000000000000".into(),
            shard_iterator_type: ShardIteratorType::TrimHorizon,
            starting_sequence_number: None,
            timestamp: None,
            stream_arn: None,
        };
        assert_eq!(service(reader.call(&other).await).0, ErrorKind::AccessDenied);
        assert_eq!(service(reader.call(&ListStreamsInput::default()).await).0, ErrorKind::AccessDenied);
        // The denials did not break the connection.
        assert!(reader.connection_error().is_none());
    });
    let denied = audit_lines(secured.dir.path(), |event| event["errorCode"] == "AccessDeniedException", 3);
    assert!(denied.iter().all(|event| event["userIdentity"]["arn"] == format!("arn:aws:iam::{ACCOUNT}:user/reader")));
}

#[test]
fn a_client_with_credentials_works_against_an_open_daemon() {
    let daemon = Daemon::start("unlimited", 1);
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect_with(&endpoint, &options("AKIAANY", "any", "us-east-1")).await.unwrap();
        client.call(&ListStreamsInput::default()).await.unwrap();
    });
}

/// The `sluice` CLI finds credentials where the AWS CLI does and prints AWS CLI errors.
#[test]
fn the_cli_authenticates_from_the_environment() {
    let secured = secured();
    let cli = Path::new(env!("CARGO_BIN_EXE_sluiced")).with_file_name("sluice");
    assert!(cli.exists(), "{} is missing: build the workspace first (cargo build --workspace)", cli.display());
    let sluice = |key: Option<&str>, secret: &str| {
        let mut command = Command::new(&cli);
        command
            .args(["--endpoint", &secured.daemon.endpoint(), "list-streams"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("AWS_SHARED_CREDENTIALS_FILE", secured.dir.path().join("no-such-file"))
            .env("AWS_REGION", "us-east-1");
        if let Some(key) = key {
            command.env("AWS_ACCESS_KEY_ID", key).env("AWS_SECRET_ACCESS_KEY", secret);
        }
        command.output().unwrap()
    };
    let ok = sluice(Some("AKIAADMIN00000000001"), "admin/secret+key");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("StreamNames"));
    let wrong = sluice(Some("AKIAADMIN00000000001"), "wrong");
    assert_eq!(wrong.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&wrong.stderr).trim(),
        format!("An error occurred (InvalidSignatureException) when calling the ListStreams operation: {MISMATCH}")
    );
    // A shared credentials file's profile works too.
    let file = secured.dir.path().join("aws-credentials");
    std::fs::write(
        &file,
        "[ops]\naws_access_key_id = AKIAADMIN00000000001\naws_secret_access_key = admin/secret+key\n",
    )
    .unwrap();
    let profile = Command::new(&cli)
        .args(["--endpoint", &secured.daemon.endpoint(), "list-streams"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", &file)
        .env("AWS_PROFILE", "ops")
        .output()
        .unwrap();
    assert!(profile.status.success(), "{}", String::from_utf8_lossy(&profile.stderr));
    let anonymous = sluice(None, "");
    assert_eq!(anonymous.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("(MissingAuthenticationTokenException)"));
}

/// The lease operations on the native protocol go through the same authorization and audit as
/// over HTTP: the admin runs a consumer group's calls, the reader (allowed only to read
/// `orders-*`) is refused each with AWS's message naming `kinesis:<Operation>`, and the
/// refusals are in the audit log under their operation's name.
#[test]
fn lease_operations_are_authorized_and_audited_on_the_native_protocol() {
    let secured = secured();
    let endpoint = secured.daemon.endpoint();
    run(move || async move {
        let admin = Client::connect_with(&endpoint, &options("AKIAADMIN00000000001", "admin/secret+key", "us-east-1"))
            .await
            .unwrap();
        admin
            .call(&CreateStreamInput { stream_name: "orders-1".into(), shard_count: Some(2), ..Default::default() })
            .await
            .unwrap();
        let create = CreateApplicationInput {
            stream_name: Some("orders-1".into()),
            application_name: "app".into(),
            initial_position: Some(InitialPosition { r#type: InitialPositionType::TrimHorizon, timestamp: None }),
            lease_duration_millis: Some(5_000),
            ..Default::default()
        };
        // The stream may still be CREATING: the application waits for it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let description = loop {
            match admin.call(&create).await {
                Ok(output) => break output.application_description,
                Err(error) => assert!(Instant::now() < deadline, "CreateApplication never succeeded: {error}"),
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(description.lease_duration_millis, 5_000);
        let list = ListLeasesInput {
            stream_name: Some("orders-1".into()),
            application_name: Some("app".into()),
            ..Default::default()
        };
        let leases = admin.call(&list).await.unwrap().leases;
        assert_eq!(leases.len(), 2);
        let take = TakeLeaseInput {
            stream_name: Some("orders-1".into()),
            application_name: Some("app".into()),
            lease_key: leases[0].lease_key.clone(),
            worker_id: "w".into(),
            lease_counter: leases[0].lease_counter,
            ..Default::default()
        };
        let taken = admin.call(&take).await.unwrap().lease;
        assert_eq!(taken.lease_owner.as_deref(), Some("w"));

        let reader = Client::connect_with(&endpoint, &options("AKIAREADER0000000001", "reader-secret", "us-east-1"))
            .await
            .unwrap();
        let (kind, message) = service(reader.call(&list).await);
        assert_eq!(kind, ErrorKind::AccessDenied);
        assert_eq!(
            message,
            format!(
                "User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: kinesis:ListLeases on resource: \
                 arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/orders-1 because no identity-based policy allows the \
                 kinesis:ListLeases action"
            )
        );
        let steal = StealLeaseInput {
            stream_name: Some("orders-1".into()),
            application_name: Some("app".into()),
            lease_key: taken.lease_key.clone(),
            worker_id: "thief".into(),
            lease_owner: "w".into(),
            lease_counter: taken.lease_counter,
            ..Default::default()
        };
        assert_eq!(service(reader.call(&steal).await).0, ErrorKind::AccessDenied);
        // The refused steal changed nothing.
        let after = admin.call(&list).await.unwrap().leases;
        assert_eq!(after.iter().find(|l| l.lease_key == taken.lease_key).unwrap().lease_owner.as_deref(), Some("w"));
    });
    let denied = audit_lines(
        secured.dir.path(),
        |event| {
            event["errorCode"] == "AccessDeniedException"
                && ["ListLeases", "StealLease"].contains(&event["eventName"].as_str().unwrap_or_default())
        },
        2,
    );
    assert!(denied.iter().all(|event| event["userIdentity"]["arn"] == format!("arn:aws:iam::{ACCOUNT}:user/reader")));
}
