//! The Firehose request bodies and the resource-naming members of channel bodies on arbitrary
//! bytes: each decoder and its checks answer a request or AWS's error, never a panic; an
//! accepted record batch keeps AWS's bounds, on raw records too (the native protocol's
//! `checked_batch`, which must also accept whatever the JSON decoder accepted); and a
//! CreateDeliveryStream input the decoder accepts serializes and reads back equal, as sluiced
//! persists it (`delivery-streams.json`) and reads it at its next start. The first byte picks
//! the decoder, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Compiled in from the server's and the delivery engine's sources rather than through their
// crates, which would pull glommio, hyper, arrow and object_store into the sanitizer build.
#[path = "../../server/src/limits.rs"]
#[allow(dead_code, reason = "only the Firehose limits are used here")]
mod limits;
#[path = "../../server/src/ops/firehose_bodies.rs"]
#[allow(dead_code, reason = "what sluiced reads of a decoded request is not read here")]
mod firehose_bodies;
#[path = "../../firehose/src/config.rs"]
#[allow(dead_code, reason = "the shapes' helpers are the engine's")]
mod config;

use firehose_bodies::BodyError;
use limits::{
    FIREHOSE_LIST_TAGS_MAX, FIREHOSE_PUT_BATCH_BYTES_MAX, FIREHOSE_PUT_BATCH_RECORDS_MAX, FIREHOSE_RECORD_BYTES_MAX,
    FIREHOSE_TAGS_MAX, FIREHOSE_TAG_KEY_CHARS_MAX, FIREHOSE_TAG_VALUE_CHARS_MAX,
};

/// An accepted tag key keeps the model's bounds: 1–128 characters, never `aws:`.
fn check_key(key: &str) {
    assert!((1..=FIREHOSE_TAG_KEY_CHARS_MAX).contains(&key.chars().count()), "{key:?}");
    assert!(!key.starts_with("aws:"), "{key:?}");
}

/// Every refusal is one of the exceptions AWS answers a bad body with.
fn check_refusal(error: &BodyError) {
    assert!(
        matches!(error.exception, "ValidationException" | "SerializationException" | "InvalidArgumentException"),
        "{error:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 11 {
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
            Ok((name, records)) => {
                assert!((1..=FIREHOSE_PUT_BATCH_RECORDS_MAX).contains(&records.len()));
                assert!(records.iter().map(|record| record.len()).sum::<usize>() <= FIREHOSE_PUT_BATCH_BYTES_MAX);
                // The native protocol's check of the same values accepts them too.
                let checked = firehose_bodies::checked_batch(name.clone(), records.clone());
                assert_eq!(checked, Ok((name, records)));
            }
            Err(error) => {
                check_refusal(&error);
                // The native protocol's checks on raw records (the body split at newlines).
                let records: Vec<bytes::Bytes> = body.split(|&b| b == b'\n').map(bytes::Bytes::copy_from_slice).collect();
                match firehose_bodies::checked_batch("s".to_owned(), records) {
                    Ok((_, records)) => {
                        assert!((1..=FIREHOSE_PUT_BATCH_RECORDS_MAX).contains(&records.len()));
                        assert!(records.iter().all(|record| record.len() <= FIREHOSE_RECORD_BYTES_MAX));
                    }
                    Err(error) => check_refusal(&error),
                }
            }
        },
        4 => {
            let _ = firehose_bodies::channel_peek(body);
        }
        5 => match firehose_bodies::update_destination(body) {
            Ok(update) => assert!((1..=64).contains(&update.delivery_stream_name.len())),
            Err(error) => check_refusal(&error),
        },
        6 => match firehose_bodies::tag_delivery_stream(body) {
            Ok(request) => {
                assert!((1..=FIREHOSE_TAGS_MAX).contains(&request.tags.len()));
                for (key, value) in &request.tags {
                    check_key(key);
                    assert!(value.as_ref().is_none_or(|value| value.chars().count() <= FIREHOSE_TAG_VALUE_CHARS_MAX));
                }
            }
            Err(error) => check_refusal(&error),
        },
        7 => match firehose_bodies::untag_delivery_stream(body) {
            Ok((_, keys)) => {
                assert!((1..=FIREHOSE_TAGS_MAX).contains(&keys.len()));
                keys.iter().for_each(|key| check_key(key));
            }
            Err(error) => check_refusal(&error),
        },
        8 => match firehose_bodies::list_tags(body) {
            Ok(request) => assert!((1..=FIREHOSE_LIST_TAGS_MAX).contains(&request.limit)),
            Err(error) => check_refusal(&error),
        },
        9 => match firehose_bodies::start_encryption(body) {
            Ok(request) => assert_eq!(
                request.key_arn.is_some(),
                request.key_type == firehose_bodies::KeyType::CustomerManagedCmk,
                "a customer managed key comes with its ARN, an AWS-owned one without"
            ),
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
