//! SigV4 both ways: requests signed by [`Signer`] verify; each way a request can be wrong gets
//! AWS's exception and text; any change to a signed request is caught.

use proptest::prelude::*;
use sluice_security::credentials::{CredentialStore, Principal};
use sluice_security::sigv4::{
    AuthErrorKind, HttpRequest, Payload, SignedRequest, Signer, SigningCredentials, Verifier, VerifyOptions,
    SIGNATURE_MISMATCH,
};
use sluice_security::Secret;

/// 2026-12-01T10:00:00Z.
const NOW: i64 = 1_796_119_200_000;
const BODY: &[u8] = br#"{"StreamName":"orders"}"#;

fn store() -> CredentialStore {
    CredentialStore::new(vec![
        Principal::new("alice", "123456789012", "AKIAALICE", Secret::new("alice-secret"), vec![]),
        Principal::new("temp", "123456789012", "ASIATEMP", Secret::new("temp-secret"), vec![])
            .with_session_token(Secret::new("token/with+odd=chars"), Some(NOW + 3_600_000)),
    ])
    .unwrap()
}

fn signer(access_key_id: &str, secret: &str, token: Option<&str>) -> Signer {
    Signer::new(
        SigningCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret),
            session_token: token.map(Secret::new),
        },
        "us-east-1",
        "kinesis",
    )
}

fn alice() -> Signer {
    signer("AKIAALICE", "alice-secret", None)
}

/// A Kinesis call as botocore sends it, before signing.
fn base_headers() -> Vec<(String, String)> {
    vec![
        ("Host".into(), "127.0.0.1:4567".into()),
        ("Content-Type".into(), "application/x-amz-json-1.1".into()),
        ("X-Amz-Target".into(), "Kinesis_20131202.DescribeStream".into()),
        ("User-Agent".into(), "Boto3/1.44.5".into()),
    ]
}

fn request<'a>(headers: &'a [(String, String)], path: &'a str, query: &'a str) -> HttpRequest<'a> {
    HttpRequest {
        method: "POST",
        path,
        query,
        headers: headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes())).collect(),
    }
}

/// The headers after signing: the originals with the signer's added (replacing same names).
fn signed_headers(
    signer: &Signer,
    headers: &[(String, String)],
    path: &str,
    query: &str,
    payload: Payload<'_>,
    now_ms: i64,
) -> Vec<(String, String)> {
    let added = signer.sign(&request(headers, path, query), payload, now_ms).unwrap();
    let mut all: Vec<(String, String)> =
        headers.iter().filter(|(name, _)| !added.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))).cloned().collect();
    all.extend(added);
    all
}

fn options(now_ms: i64) -> VerifyOptions {
    VerifyOptions { now_ms, secure_transport: false }
}

fn verify(
    headers: &[(String, String)],
    path: &str,
    query: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<String, (AuthErrorKind, String)> {
    let store = store();
    let verifier = Verifier::new("us-east-1", "kinesis");
    verifier
        .authenticate(&request(headers, path, query), body, &store, options(now_ms))
        .map(|principal| principal.name.clone())
        .map_err(|error| (error.kind, error.message))
}

#[test]
fn signed_requests_verify() {
    let headers = signed_headers(&alice(), &base_headers(), "/", "", Payload::Bytes(BODY), NOW);
    assert_eq!(verify(&headers, "/", "", BODY, NOW + 1_000), Ok("alice".to_string()));
    // Within the skew window either way.
    assert!(verify(&headers, "/", "", BODY, NOW + 299_000).is_ok());
    assert!(verify(&headers, "/", "", BODY, NOW - 299_000).is_ok());
    let temp = signer("ASIATEMP", "temp-secret", Some("token/with+odd=chars"));
    let headers = signed_headers(&temp, &base_headers(), "/", "", Payload::Bytes(BODY), NOW);
    assert_eq!(verify(&headers, "/", "", BODY, NOW), Ok("temp".to_string()));
}

#[test]
fn unsigned_payloads_verify_only_over_tls() {
    let headers = signed_headers(&alice(), &base_headers(), "/", "", Payload::Unsigned, NOW);
    let store = store();
    let verifier = Verifier::new("us-east-1", "kinesis");
    let request = request(&headers, "/", "");
    let tls = VerifyOptions { now_ms: NOW, secure_transport: true };
    assert!(verifier.authenticate(&request, b"any body at all", &store, tls).is_ok());
    let error = verifier.authenticate(&request, BODY, &store, options(NOW)).unwrap_err();
    assert_eq!(error.kind, AuthErrorKind::InvalidSignature);
}

#[test]
fn a_declared_payload_hash_must_match_the_body() {
    let mut headers = base_headers();
    headers.push(("x-amz-content-sha256".into(), sluice_security::sigv4::payload_hash(BODY)));
    let headers = signed_headers(&alice(), &headers, "/", "", Payload::Bytes(BODY), NOW);
    assert!(verify(&headers, "/", "", BODY, NOW).is_ok());
    let error = verify(&headers, "/", "", b"{}", NOW).unwrap_err();
    assert_eq!(
        error,
        (
            AuthErrorKind::InvalidSignature,
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into()
        )
    );
}

#[test]
fn every_bad_credential_case_gets_awss_answer() {
    let good = signed_headers(&alice(), &base_headers(), "/", "", Payload::Bytes(BODY), NOW);
    let mismatch = (AuthErrorKind::InvalidSignature, SIGNATURE_MISMATCH.to_string());

    // No signature at all.
    assert_eq!(
        verify(&base_headers(), "/", "", BODY, NOW),
        Err((AuthErrorKind::MissingAuthenticationToken, "Missing Authentication Token".into()))
    );
    // An unknown access key.
    let stranger =
        signed_headers(&signer("AKIASTRANGER", "whatever", None), &base_headers(), "/", "", Payload::Bytes(BODY), NOW);
    assert_eq!(
        verify(&stranger, "/", "", BODY, NOW),
        Err((AuthErrorKind::UnrecognizedClient, "The security token included in the request is invalid.".into()))
    );
    // The right key id with the wrong secret.
    let wrong =
        signed_headers(&signer("AKIAALICE", "not-alices", None), &base_headers(), "/", "", Payload::Bytes(BODY), NOW);
    assert_eq!(verify(&wrong, "/", "", BODY, NOW), Err(mismatch.clone()));
    // A body changed after signing.
    assert_eq!(verify(&good, "/", "", br#"{"StreamName":"audit"}"#, NOW), Err(mismatch.clone()));
    // Too old, too new.
    assert_eq!(
        verify(&good, "/", "", BODY, NOW + 301_000),
        Err((
            AuthErrorKind::InvalidSignature,
            "Signature expired: 20261201T100000Z is now earlier than 20261201T100001Z (20261201T100501Z - 5 min.)"
                .into()
        ))
    );
    assert_eq!(
        verify(&good, "/", "", BODY, NOW - 301_000),
        Err((AuthErrorKind::InvalidSignature, "Signature not yet current: 20261201T100000Z is still later than 20261201T095959Z (20261201T095459Z + 5 min.)".into()))
    );
    // Session tokens: missing, wrong, expired.
    let temp = |token: Option<&str>| {
        signed_headers(&signer("ASIATEMP", "temp-secret", token), &base_headers(), "/", "", Payload::Bytes(BODY), NOW)
    };
    assert_eq!(verify(&temp(None), "/", "", BODY, NOW).unwrap_err().0, AuthErrorKind::UnrecognizedClient);
    assert_eq!(verify(&temp(Some("other")), "/", "", BODY, NOW).unwrap_err().0, AuthErrorKind::UnrecognizedClient);
    let late = signed_headers(
        &signer("ASIATEMP", "temp-secret", Some("token/with+odd=chars")),
        &base_headers(),
        "/",
        "",
        Payload::Bytes(BODY),
        NOW + 3_600_000,
    );
    assert_eq!(
        verify(&late, "/", "", BODY, NOW + 3_600_000),
        Err((AuthErrorKind::ExpiredToken, "The security token included in the request is expired".into()))
    );
    // A token sent for credentials that have none.
    let with_token = signed_headers(
        &signer("AKIAALICE", "alice-secret", Some("t")),
        &base_headers(),
        "/",
        "",
        Payload::Bytes(BODY),
        NOW,
    );
    assert_eq!(verify(&with_token, "/", "", BODY, NOW).unwrap_err().0, AuthErrorKind::UnrecognizedClient);
}

/// Replaces the `authorization` header's value.
fn with_authorization(headers: &[(String, String)], edit: impl Fn(&str) -> String) -> Vec<(String, String)> {
    headers
        .iter()
        .map(
            |(name, value)| {
                if name == "authorization" {
                    (name.clone(), edit(value))
                } else {
                    (name.clone(), value.clone())
                }
            },
        )
        .collect()
}

#[test]
fn malformed_and_misscoped_headers_get_awss_texts() {
    let good = signed_headers(&alice(), &base_headers(), "/", "", Payload::Bytes(BODY), NOW);
    let check = |edit: &dyn Fn(&str) -> String, kind: AuthErrorKind, message: &str| {
        let headers = with_authorization(&good, edit);
        assert_eq!(verify(&headers, "/", "", BODY, NOW), Err((kind, message.to_string())));
    };
    check(
        &|h| h.replace("/us-east-1/", "/eu-west-1/"),
        AuthErrorKind::InvalidSignature,
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    );
    check(
        &|h| h.replace("/kinesis/", "/firehose/"),
        AuthErrorKind::InvalidSignature,
        "Credential should be scoped to correct service: 'kinesis'. ",
    );
    check(
        &|h| h.replace("/aws4_request", "/aws5_request"),
        AuthErrorKind::InvalidSignature,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
    );
    check(
        &|h| h.replace("/20261201/", "/20261130/"),
        AuthErrorKind::InvalidSignature,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261130' != '20261201', from '20261201T100000Z'.",
    );
    check(
        &|h| h.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;"),
        AuthErrorKind::InvalidSignature,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
    check(
        &|h| h.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
        AuthErrorKind::IncompleteSignature,
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'",
    );
    check(&|h| h.replace("Credential=AKIAALICE/", "Credential="), AuthErrorKind::IncompleteSignature, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '20261201/us-east-1/kinesis/aws4_request'");
    // A signed header removed from the list but still sent: the signature no longer matches.
    check(&|h| h.replace("x-amz-target", "x-amz-date"), AuthErrorKind::InvalidSignature, SIGNATURE_MISMATCH);

    let bad_date: Vec<(String, String)> = good
        .iter()
        .map(
            |(n, v)| {
                if n == "x-amz-date" {
                    (n.clone(), "2026-12-01T10:00:00Z".into())
                } else {
                    (n.clone(), v.clone())
                }
            },
        )
        .collect();
    assert_eq!(
        verify(&bad_date, "/", "", BODY, NOW),
        Err((AuthErrorKind::IncompleteSignature, "Date must be in ISO-8601 'basic format'. Got '2026-12-01T10:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601".into()))
    );
    let no_date: Vec<(String, String)> = good.iter().filter(|(n, _)| n != "x-amz-date").cloned().collect();
    let (kind, message) = verify(&no_date, "/", "", BODY, NOW).unwrap_err();
    assert_eq!(kind, AuthErrorKind::IncompleteSignature);
    assert!(message.starts_with("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 "), "{message}");
    let both = verify(&good, "/", "X-Amz-Algorithm=AWS4-HMAC-SHA256", BODY, NOW);
    assert_eq!(
        both,
        Err((
            AuthErrorKind::InvalidSignature,
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into()
        ))
    );
}

#[test]
fn a_date_header_stands_in_for_x_amz_date() {
    // botocore signs with a Date header when the request has one; the signature still covers
    // the ISO basic time.
    let mut headers = base_headers();
    headers.push(("Date".into(), "Tue, 01 Dec 2026 10:00:00 GMT".into()));
    let mut signed = signed_headers(&alice(), &headers, "/", "", Payload::Bytes(BODY), NOW);
    // Rebuild as botocore does: the Date header signed, no X-Amz-Date.
    signed.retain(|(name, _)| name != "x-amz-date" && name != "authorization");
    let names = "content-type;date;host;x-amz-target";
    let canonical = sluice_security::sigv4::canonical_request(
        &request(&signed, "/", ""),
        "",
        &names.split(';').collect::<Vec<_>>(),
        &sluice_security::sigv4::payload_hash(BODY),
    );
    let scope = "20261201/us-east-1/kinesis/aws4_request";
    let key = sluice_security::sigv4::signing_key("alice-secret", "20261201", "us-east-1", "kinesis");
    let signature = sluice_security::sigv4::signature(
        &key,
        &sluice_security::sigv4::string_to_sign("20261201T100000Z", scope, &canonical),
    );
    signed.push((
        "Authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential=AKIAALICE/{scope}, SignedHeaders={names}, Signature={signature}"),
    ));
    assert_eq!(verify(&signed, "/", "", BODY, NOW), Ok("alice".into()));
}

#[test]
fn presigned_urls_verify_until_they_expire() {
    let headers = vec![("host".to_string(), "127.0.0.1:4567".to_string())];
    let query =
        alice().presign(&request(&headers, "/", "Action=ListStreams&Limit=10"), Payload::Bytes(b""), 60, NOW).unwrap();
    assert!(query.starts_with("Action=ListStreams&Limit=10&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAALICE%2F20261201%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=20261201T100000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature="), "{query}");
    assert_eq!(verify(&headers, "/", &query, b"", NOW + 59_000), Ok("alice".into()));
    assert_eq!(
        verify(&headers, "/", &query, b"", NOW + 61_000),
        Err((
            AuthErrorKind::InvalidSignature,
            "Signature expired: 20261201T100000Z is now earlier than 20261201T100001Z (20261201T100101Z - 60 sec.)"
                .into()
        ))
    );
    assert_eq!(
        verify(&headers, "/", &query.replace("Limit=10", "Limit=11"), b"", NOW).unwrap_err().1,
        SIGNATURE_MISMATCH
    );
    assert_eq!(
        verify(&headers, "/", &query.replace("X-Amz-Expires=60", "X-Amz-Expires=6000"), b"", NOW + 61_000)
            .unwrap_err()
            .1,
        SIGNATURE_MISMATCH
    );
    let temp = signer("ASIATEMP", "temp-secret", Some("token/with+odd=chars"));
    let query = temp.presign(&request(&headers, "/", ""), Payload::Bytes(b""), 300, NOW).unwrap();
    assert!(query.contains("X-Amz-Security-Token=token%2Fwith%2Bodd%3Dchars"), "{query}");
    assert_eq!(verify(&headers, "/", &query, b"", NOW), Ok("temp".into()));
    // Missing parts, in AWS's words.
    let stripped: String =
        query.split('&').filter(|pair| !pair.starts_with("X-Amz-Credential=")).collect::<Vec<_>>().join("&");
    assert_eq!(
        verify(&headers, "/", &stripped, b"", NOW),
        Err((
            AuthErrorKind::IncompleteSignature,
            "AWS query-string parameters must include 'X-Amz-Credential'. Re-examine the query-string parameters."
                .into()
        ))
    );
}

#[test]
fn parse_then_check_before_the_body_then_verify() {
    let headers = signed_headers(&alice(), &base_headers(), "/", "", Payload::Bytes(BODY), NOW);
    let request = request(&headers, "/", "");
    let store = store();
    let verifier = Verifier::new("us-east-1", "kinesis");
    let signed = SignedRequest::parse(&request).unwrap();
    assert_eq!(signed.access_key_id(), "AKIAALICE");
    assert!(!signed.is_presigned());
    assert_eq!(verifier.check_before_body(&signed, &store, NOW).unwrap().name, "alice");
    assert_eq!(verifier.cached_keys(), 0, "no key is derived before the body");
    verifier.verify(&signed, &request, BODY, &store, options(NOW)).unwrap();
    verifier.verify(&signed, &request, BODY, &store, options(NOW)).unwrap();
    assert_eq!(verifier.cached_keys(), 1, "one derived key per access key and day");
}

#[test]
fn a_reloaded_secret_is_not_served_from_the_key_cache() {
    let verifier = Verifier::new("us-east-1", "kinesis");
    let headers = signed_headers(&alice(), &base_headers(), "/", "", Payload::Bytes(BODY), NOW);
    let old = store();
    verifier.authenticate(&request(&headers, "/", ""), BODY, &old, options(NOW)).unwrap();
    let rotated = CredentialStore::new(vec![Principal::new(
        "alice",
        "123456789012",
        "AKIAALICE",
        Secret::new("rotated"),
        vec![],
    )])
    .unwrap();
    let error = verifier.authenticate(&request(&headers, "/", ""), BODY, &rotated, options(NOW)).unwrap_err();
    assert_eq!(error.message, SIGNATURE_MISMATCH);
}

#[test]
fn http_requests_from_hyper_are_read_as_sent() {
    let http_request = http::Request::builder()
        .method("POST")
        .uri("https://127.0.0.1:4567/a%20b/?b=2&a=1")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .body(())
        .unwrap();
    let request = HttpRequest::from_http(&http_request);
    assert_eq!((request.method, request.path, request.query), ("POST", "/a%20b/", "b=2&a=1"));
    // HTTP/2 carries the host in :authority, which `http` keeps in the URI.
    assert_eq!(request.header("host"), Some("127.0.0.1:4567"));
}

fn header_name() -> impl Strategy<Value = String> {
    "x-[a-z]{1,6}"
}

proptest! {
    /// Whatever the request, what the signer signs the verifier accepts, and changing any
    /// signed part (method, path, query, a header, the body) is caught.
    #[test]
    fn sign_then_verify_and_catch_any_change(
        path in "(/[a-zA-Z0-9._~%-]{0,6}){1,4}",
        query in prop::collection::vec(("[a-zA-Z0-9_.-]{1,5}", "[a-zA-Z0-9 /+=_.~-]{0,6}"), 0..4),
        extra in prop::collection::vec((header_name(), "[ -~]{0,12}"), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
        skew_s in -290i64..290,
        change in 0usize..5,
    ) {
        let query: String = query
            .iter()
            .map(|(k, v)| format!("{}={}", sluice_security::sigv4::uri_encode(k), sluice_security::sigv4::uri_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut headers = base_headers();
        headers.extend(extra.iter().cloned());
        let signed = signed_headers(&alice(), &headers, &path, &query, Payload::Bytes(&body), NOW);
        prop_assert_eq!(verify(&signed, &path, &query, &body, NOW + skew_s * 1000), Ok("alice".to_string()));

        let mut changed_headers = signed.clone();
        let (mut changed_path, mut changed_query, mut changed_body) = (path.clone(), query.clone(), body.clone());
        match change {
            0 => changed_path.push('x'),
            1 => changed_query.push_str(if changed_query.is_empty() { "z=1" } else { "&z=1" }),
            2 => changed_body.push(b'!'),
            3 => changed_headers.iter_mut().find(|(n, _)| n == "X-Amz-Target").unwrap().1.push('s'),
            _ => changed_headers.push(("Content-Type".into(), "text/plain".into())),
        }
        let result = verify(&changed_headers, &changed_path, &changed_query, &changed_body, NOW);
        prop_assert_eq!(result, Err((AuthErrorKind::InvalidSignature, SIGNATURE_MISMATCH.to_string())));
    }
}
