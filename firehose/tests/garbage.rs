//! Every decoder of untrusted bytes in the crate survives garbage: configuration bodies (API
//! input), prefix expressions, records fed to the Parquet converter and the jq key query.
//! (cargo-fuzz targets for these are Unfinished: see docs/firehose.md, "Tests".)

use proptest::prelude::*;
use sluice_firehose::config::{Column, CreateDeliveryStreamInput};
use sluice_firehose::convert::ParquetConverter;
use sluice_firehose::partition::KeyQuery;
use sluice_firehose::prefix::{PrefixContext, PrefixKind, PrefixTemplate};

fn converter() -> ParquetConverter {
    let columns = [
        ("a", "int"),
        ("b", "string"),
        ("c", "timestamp"),
        ("d", "double"),
        ("e", "boolean"),
        ("f", "date"),
        ("g", "tinyint"),
    ];
    let columns: Vec<Column> = columns
        .iter()
        .map(|(n, t)| Column { name: n.to_string(), column_type: t.to_string(), comment: None })
        .collect();
    ParquetConverter::from_columns(&columns).unwrap()
}

/// JSON-ish garbage: bytes biased towards JSON's alphabet, so the decoders get past the first
/// byte often.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b'{'),
            Just(b'}'),
            Just(b'"'),
            Just(b':'),
            Just(b','),
            Just(b'['),
            Just(b']'),
            Just(b'a'),
            Just(b'1'),
            Just(b'-'),
            Just(b'e'),
            Just(b'.'),
            any::<u8>()
        ],
        0..200,
    )
}

proptest! {
    // Debug builds run these on every `cargo test`: 64 cases each keeps the file under a few
    // seconds; `PROPTEST_CASES` raises it for a longer search.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn configuration_bodies(body in jsonish()) {
        if let Ok(input) = serde_json::from_slice::<CreateDeliveryStreamInput>(&body) {
            let _ = sluice_firehose::validate::create_delivery_stream(&input);
        }
        if let Ok(input) = serde_json::from_slice::<sluice_firehose::channel::CreateChannelInput>(&body) {
            let _ = sluice_firehose::channel::validate_create(&input);
        }
    }

    #[test]
    fn prefixes(text in "(!\\{|\\}|:|timestamp|firehose|partitionKeyFromQuery|'|y|M|d|H|/|[a-z]|\\PC){0,40}") {
        for kind in [PrefixKind::Prefix, PrefixKind::ErrorOutputPrefix] {
            if let Ok(t) = PrefixTemplate::parse(&text, kind) {
                let _ = t.evaluate(&PrefixContext::default());
                let _ = t.partition_of(&PrefixContext::default());
            }
        }
    }

    #[test]
    fn records_into_parquet(records in prop::collection::vec(jsonish(), 1..8)) {
        let c = converter();
        let out = c.convert(records.iter().map(|r| &r[..])).unwrap();
        prop_assert_eq!(out.record_count + out.failed.len(), records.len());
    }

    #[test]
    fn records_through_jq(record in jsonish()) {
        let q = KeyQuery::compile("{a: .a, b: (.b | tostring)}").unwrap();
        let _ = q.keys(&record);
    }
}

#[test]
fn well_formed_records_with_odd_values() {
    let c = converter();
    let records: Vec<&[u8]> = vec![
        br#"{"a": 1e400}"#,
        br#"{"a": -2147483649}"#,
        br#"{"g": 128}"#,
        br#"{"c": "not a time"}"#,
        br#"{"f": "2026-02-30"}"#,
        br#"{"d": "NaN"}"#,
        br#"{"b": {"nested": [1, 2]}}"#,
        br#"{"a": 2147483647, "g": -128, "f": 19000, "c": -1}"#,
    ];
    let out = c.convert(records).unwrap();
    assert_eq!(out.failed.iter().map(|f| f.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(out.record_count, 3);
}
