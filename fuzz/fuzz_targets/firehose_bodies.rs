//! The Firehose request bodies and the resource-naming members of channel bodies on arbitrary
//! bytes: each decoder and its checks answer a request or AWS's error, never a panic; an
//! accepted record batch keeps AWS's bounds; and a CreateDeliveryStream input the decoder
//! accepts serializes and reads back equal, as sluiced persists it (`delivery-streams.json`)
//! and reads it at its next start. The first byte picks the decoder, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Compiled in from the server's and the delivery engine's sources rather than through their
// crates, which would pull glommio, hyper, arrow and object_store into the sanitizer build.
#[path = "../../server/src/limits.rs"]
#[allow(dead_code, reason = "only the Firehose limits are used here")]
mod limits;
#[path = "../../server/src/net/http/firehose_bodies.rs"]
#[allow(dead_code, reason = "what sluiced reads of a decoded request is not read here")]
mod firehose_bodies;
#[path = "../../firehose/src/config.rs"]
#[allow(dead_code, reason = "the shapes' helpers are the engine's")]
mod config;

use firehose_bodies::BodyError;
use limits::{FIREHOSE_PUT_BATCH_BYTES_MAX, FIREHOSE_PUT_BATCH_RECORDS_MAX, FIREHOSE_RECORD_BYTES_MAX};

/// Every refusal is one of the exceptions AWS answers a bad body with.
fn check_refusal(error: &BodyError) {
    assert!(
        matches!(error.exception, "ValidationException" | "SerializationException" | "InvalidArgumentException"),
        "{error:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 7 {
        0 => match firehose_bodies::name(body) {
            Ok(name) => assert!((1..=64).contains(&name.len())),
            Err(error) => check_refusal(&error),
        },
        1 => match firehose_bodies::list(body) {
            Ok(list) => assert!(list.limit >= 1),
            Err(error) => check_refusal(&error),
        },
        2 => match firehose_bodies::put_record(body) {
            Ok((_, data)) => assert!(data.len() <= FIREHOSE_RECORD_BYTES_MAX),
            Err(error) => check_refusal(&error),
        },
        3 => match firehose_bodies::put_record_batch(body) {
            Ok((_, records)) => {
                assert!((1..=FIREHOSE_PUT_BATCH_RECORDS_MAX).contains(&records.len()));
                assert!(records.iter().map(|record| record.len()).sum::<usize>() <= FIREHOSE_PUT_BATCH_BYTES_MAX);
            }
            Err(error) => check_refusal(&error),
        },
        4 => {
            let _ = firehose_bodies::channel_peek(body);
        }
        5 => match firehose_bodies::update_destination(body) {
            Ok(update) => assert!((1..=64).contains(&update.delivery_stream_name.len())),
            Err(error) => check_refusal(&error),
        },
        _ => match firehose_bodies::decode::<config::CreateDeliveryStreamInput>(body) {
            Ok(input) => {
                let persisted = serde_json::to_vec(&input).expect("a decoded input serializes");
                let read: config::CreateDeliveryStreamInput =
                    serde_json::from_slice(&persisted).expect("a persisted input reads back");
                assert_eq!(read, input, "a persisted input reads back equal");
            }
            Err(error) => check_refusal(&error),
        },
    }
});
