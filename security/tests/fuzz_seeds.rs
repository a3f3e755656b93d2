//! The seed corpora of the security crate's fuzz targets (fuzz/corpus/sigv4_auth,
//! sealed_batch, policy_document): real inputs as the signer, the sealer and policy authors
//! write them, whole and broken. This test checks that the committed seeds still mean what
//! they were made to mean; `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p sluice-security --test
//! fuzz_seeds` rewrites them after a format change.

use sluice_security::kms::{BatchSealer, DataKey, DataKeyRing, OpenError, SealedHeader};
use sluice_security::policy::{Policy, PolicyKind};
use sluice_security::sigv4::{AuthorizationHeader, HttpRequest, Payload, PresignedQuery, Signer, SigningCredentials};
use sluice_security::Secret;
use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

fn writing() -> bool {
    std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some()
}

/// Writes `bytes` as seed `name` in write mode; otherwise returns the committed seed,
/// checking it equals `bytes` when `exact`.
fn seed(target: &str, name: &str, bytes: &[u8], exact: bool) -> Vec<u8> {
    let path = corpus(target).join(name);
    if writing() {
        std::fs::create_dir_all(corpus(target)).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return bytes.to_vec();
    }
    let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    if exact {
        assert_eq!(committed, bytes, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
    }
    committed
}

#[test]
fn sigv4_auth_seeds() {
    let signer = Signer::new(
        SigningCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::new("session/token+value=")),
        },
        "us-east-1",
        "kinesis",
    );
    let now_ms = 1_796_119_200_000;
    let request = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: vec![("host", b"127.0.0.1:4567"), ("x-amz-target", b"Kinesis_20131202.ListStreams")],
    };
    let added = signer.sign(&request, Payload::Bytes(b"{}"), now_ms).unwrap();
    let header = added.iter().find(|(name, _)| name == "authorization").unwrap().1.clone();
    let presigned_request = HttpRequest { query: "Action=ListStreams", ..request.clone() };
    let query = signer.presign(&presigned_request, Payload::Bytes(b""), 300, now_ms).unwrap();
    let seeds: Vec<(&str, String, bool, bool)> = vec![
        // name, text, parses as a header, parses as a presigned query
        ("header", header.clone(), true, false),
        (
            "header_incomplete",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/us-east-1/kinesis/aws4_request".into(),
            false,
            false,
        ),
        ("header_bad_scope", header.replace("/aws4_request", ""), false, false),
        ("query", query.clone(), false, true),
        ("query_incomplete", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261201T100000Z".into(), false, false),
        ("query_bad_expires", query.replace("X-Amz-Expires=300", "X-Amz-Expires=999999999"), false, false),
        // The fuzz target splits this at the newline; whole, each parser finds its parts.
        ("header_and_query", format!("{header}\n{query}"), true, true),
    ];
    for (name, text, header_ok, query_ok) in seeds {
        let committed = seed("sigv4_auth", name, text.as_bytes(), true);
        let committed = String::from_utf8(committed).unwrap();
        assert_eq!(AuthorizationHeader::parse(&committed, true).is_ok(), header_ok, "{name}");
        assert_eq!(PresignedQuery::parse(&committed).is_ok(), query_ok, "{name}");
    }
}

#[test]
fn sealed_batch_seeds() {
    // The fuzz target opens with this key (fuzz/fuzz_targets/sealed_batch.rs); sealing draws
    // a random sealer id, so seeds are checked by what they do, not byte for byte.
    let key = [0x5A; 32];
    let master_key_id = uuid::Uuid::from_u128(0x1234abcd_12ab_34cd_56ef_1234567890ab);
    let mut sealer = BatchSealer::new(master_key_id, 3, DataKey::from_bytes(key));
    let clean = sealer.seal(b"fuzz context", b"one record\0another record").unwrap();
    let empty = sealer.seal(b"fuzz context", b"").unwrap();
    let mut corrupt = clean.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x40;
    let truncated = clean[..clean.len() - 5].to_vec();
    let mut ring = DataKeyRing::default();
    ring.insert(master_key_id, 3, DataKey::from_bytes(key));
    for (name, bytes, expected) in [
        ("clean", clean, Ok(b"one record\0another record".to_vec())),
        ("empty", empty, Ok(Vec::new())),
        ("corrupt", corrupt, Err(OpenError::Authentication)),
        ("truncated", truncated, Err(OpenError::LengthMismatch { declared: 25, actual: 20 })),
    ] {
        let committed = seed("sealed_batch", name, &bytes, false);
        assert_eq!(ring.open(b"fuzz context", &committed), expected, "{name}");
        if let Ok(header) = SealedHeader::parse(&committed) {
            assert_eq!((header.master_key_id, header.data_key_version), (master_key_id, 3), "{name}");
        }
    }
}

#[test]
fn policy_document_seeds() {
    let seeds = [
        (
            "reader",
            r#"{"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": ["kinesis:Get*", "kinesis:DescribeStream*", "kinesis:ListShards"], "Resource": "arn:aws:kinesis:us-east-1:123456789012:stream/orders"}]}"#,
            true,
        ),
        (
            "conditions",
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "NotAction": "kinesis:List*", "NotResource": "arn:aws:kinesis:*:*:stream/public*", "Condition": {"Bool": {"aws:SecureTransport": "false"}, "NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}, "ForAnyValue:StringLike": {"aws:TagKeys": "sec*"}, "DateGreaterThanIfExists": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}, "Null": {"aws:ResourceTag/team": "true"}}}}"#,
            true,
        ),
        (
            "resource",
            r#"{"Version": "2012-10-17", "Id": "stream-policy", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:user/alice", "123456789012"]}, "Action": "kinesis:PutRecord*"}, {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:role/admin"}, "Action": "kinesis:DeleteStream", "Resource": "*"}]}"#,
            true,
        ),
        ("bad_effect", r#"{"Statement": {"Effect": "Permit", "Action": "kinesis:*", "Resource": "*"}}"#, false),
        ("bad_json", r#"{"Statement": [{"Effect": "Allow", "Action": "kinesis:*""#, false),
    ];
    for (name, text, valid) in seeds {
        let committed = String::from_utf8(seed("policy_document", name, text.as_bytes(), true)).unwrap();
        let parsed = Policy::parse(&committed, PolicyKind::Identity).is_ok()
            || Policy::parse(&committed, PolicyKind::Resource).is_ok();
        assert_eq!(parsed, valid, "{name}");
    }
}
