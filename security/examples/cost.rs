//! What the security machinery costs per request and per byte, measured in one run so the
//! figures compare with the same machine's memory bandwidth:
//!
//!   cargo run --release -p sluice-security --example cost
//!
//! Rounds alternate the measured operation with its baseline (A B A B …, 7 pairs) and the
//! median of the paired ratios is reported, as the project's benchmarks do on this noisy
//! shared machine. Not a test: it asserts nothing.

use sluice_security::credentials::{CredentialStore, Principal};
use sluice_security::kms::{BatchSealer, DataKey};
use sluice_security::sigv4::{payload_hash, HttpRequest, Payload, Signer, SigningCredentials, Verifier, VerifyOptions};
use sluice_security::Secret;
use std::hint::black_box;
use std::time::Instant;

const PAIRS: usize = 7;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn request(headers: &[(String, String)]) -> HttpRequest<'_> {
    HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect(),
    }
}

fn time_per_op(iterations: usize, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        op();
    }
    start.elapsed().as_nanos() as f64 / iterations as f64
}

fn main() {
    let now_ms = 1_796_119_200_000;
    let store = CredentialStore::new(vec![Principal::new("w", "123456789012", "AKIAW", Secret::new("secret"), vec![])])
        .unwrap();
    let signer = Signer::new(
        SigningCredentials {
            access_key_id: "AKIAW".into(),
            secret_access_key: Secret::new("secret"),
            session_token: None,
        },
        "us-east-1",
        "kinesis",
    );
    let verifier = Verifier::new("us-east-1", "kinesis");
    for body_bytes in [1024usize, 1 << 20] {
        // A PutRecord-shaped request with a body of this size (base64 JSON in reality).
        let body = vec![b'a'; body_bytes];
        let base: Vec<(String, String)> = vec![
            ("host".into(), "127.0.0.1:4567".into()),
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amz-target".into(), "Kinesis_20131202.PutRecord".into()),
        ];
        let mut headers = base.clone();
        headers.extend(signer.sign(&request(&base), Payload::Bytes(&body), now_ms).unwrap());
        let options = VerifyOptions { now_ms, secure_transport: false };
        let iterations = if body_bytes > 4096 { 200 } else { 20_000 };
        let mut verify_ns = Vec::new();
        let mut hash_ns = Vec::new();
        for _ in 0..PAIRS {
            verify_ns.push(time_per_op(iterations, || {
                black_box(verifier.authenticate(&request(&headers), &body, &store, options).unwrap());
            }));
            hash_ns.push(time_per_op(iterations, || {
                black_box(payload_hash(&body));
            }));
        }
        let (verify, hash) = (median(verify_ns.clone()), median(hash_ns));
        println!(
            "SigV4 verify, {body_bytes}-byte body: {:.1} us per request (of which SHA-256 of the body {:.1} us)",
            verify / 1000.0,
            hash / 1000.0
        );
    }

    // Sealing a 2 MiB batch (the engine's batch size) against copying it.
    let batch = vec![0x42u8; 2 << 20];
    let mut sealer = BatchSealer::new(uuid::Uuid::new_v4(), 1, DataKey::from_bytes([7; 32]));
    let mut ratios = Vec::new();
    let mut seal_gbps = Vec::new();
    let mut copy_gbps = Vec::new();
    let mut frame = vec![0u8; batch.len() + 60];
    let mut copy = vec![0u8; batch.len()];
    for _ in 0..PAIRS {
        let seal = time_per_op(20, || {
            frame[44..44 + batch.len()].copy_from_slice(&batch);
            sealer.seal_in_place(b"stream 1 shard 2 index 3", &mut frame).unwrap();
            black_box(&frame);
        });
        let baseline = time_per_op(20, || {
            copy.copy_from_slice(&batch);
            black_box(&copy);
        });
        ratios.push(seal / baseline);
        seal_gbps.push(batch.len() as f64 / seal);
        copy_gbps.push(batch.len() as f64 / baseline);
    }
    println!(
        "AES-256-GCM seal of 2 MiB batches: {:.2} GB/s; memcpy of the same {:.2} GB/s; seal/memcpy time ratio {:.1} (median of {PAIRS} pairs)",
        median(seal_gbps),
        median(copy_gbps),
        median(ratios)
    );
}
