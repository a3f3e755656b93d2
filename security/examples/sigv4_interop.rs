//! The Rust side of the botocore interop test (`security/tests/interop/`): reads one JSON
//! command per line on stdin and answers one JSON line on stdout.
//!
//! - `{"op": "verify", "method", "path", "query", "headers": [[name, value], …], "body": base64, "now_ms", "secure"}`
//!   verifies against the fixed test credentials below; answers `{"ok": true, "principal": name}`
//!   or `{"ok": false, "exception": …, "message": …}`.
//! - `{"op": "sign", …request…, "now_ms", "access_key_id", "secret", "token", "unsigned"}`
//!   answers `{"headers": [[name, value], …]}` (the headers the signer adds).
//! - `{"op": "presign", …request…, "now_ms", "access_key_id", "secret", "token", "expires"}`
//!   answers `{"query": …}`.
//!
//! A test tool, not part of Sluice: it exists so a Python test can drive the real verifier
//! and signer with requests botocore built.

use base64::Engine;
use serde_json::{json, Value};
use sluice_security::credentials::{CredentialStore, Principal};
use sluice_security::sigv4::{HttpRequest, Payload, Signer, SigningCredentials, Verifier, VerifyOptions};
use sluice_security::Secret;
use std::io::{BufRead, Write};

fn text(command: &Value, key: &str) -> String {
    command[key].as_str().unwrap_or_default().to_string()
}

fn main() {
    let store = CredentialStore::new(vec![
        Principal::new("interop", "123456789012", "AKIDINTEROP", Secret::new("interop/secret+key"), vec![]),
        Principal::new("session", "123456789012", "ASIASESSION", Secret::new("session-secret"), vec![])
            .with_session_token(Secret::new("FwoGZXIvYXdzE//token+with/odd=chars"), None),
    ])
    .expect("distinct keys");
    let verifier = Verifier::new("us-east-1", "kinesis");
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.expect("stdin");
        let command: Value = serde_json::from_str(&line).expect("one JSON command per line");
        let headers: Vec<(String, String)> = command["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|pair| {
                (pair[0].as_str().unwrap_or_default().to_string(), pair[1].as_str().unwrap_or_default().to_string())
            })
            .collect();
        let body = base64::engine::general_purpose::STANDARD.decode(text(&command, "body")).expect("base64 body");
        let (method, path, query) = (text(&command, "method"), text(&command, "path"), text(&command, "query"));
        let request = HttpRequest {
            method: &method,
            path: &path,
            query: &query,
            headers: headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes())).collect(),
        };
        let now_ms = command["now_ms"].as_i64().expect("now_ms");
        let signer = || {
            Signer::new(
                SigningCredentials {
                    access_key_id: text(&command, "access_key_id"),
                    secret_access_key: Secret::new(text(&command, "secret")),
                    session_token: command["token"].as_str().map(Secret::new),
                },
                "us-east-1",
                "kinesis",
            )
        };
        let answer = match command["op"].as_str() {
            Some("verify") => {
                let options = VerifyOptions { now_ms, secure_transport: command["secure"].as_bool().unwrap_or(false) };
                match verifier.authenticate(&request, &body, &store, options) {
                    Ok(principal) => json!({"ok": true, "principal": principal.name}),
                    Err(error) => json!({"ok": false, "exception": error.exception_name(), "message": error.message}),
                }
            }
            Some("sign") => {
                let payload = if command["unsigned"].as_bool().unwrap_or(false) {
                    Payload::Unsigned
                } else {
                    Payload::Bytes(&body)
                };
                match signer().sign(&request, payload, now_ms) {
                    Ok(added) => json!({"headers": added}),
                    Err(error) => json!({"error": error.to_string()}),
                }
            }
            Some("presign") => {
                let expires = command["expires"].as_i64().unwrap_or(3600);
                match signer().presign(&request, Payload::Bytes(&body), expires, now_ms) {
                    Ok(query) => json!({"query": query}),
                    Err(error) => json!({"error": error.to_string()}),
                }
            }
            other => json!({"error": format!("unknown op {other:?}")}),
        };
        writeln!(stdout, "{answer}").expect("stdout");
        stdout.flush().expect("stdout");
    }
}
