//! The aggregation format's size accounting and round trip, on arbitrary records.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_kpl::aggregation::{deaggregate, AggregateBuilder, Deaggregated, SubRecord, AGGREGATE_OVERHEAD_BYTES};
use sluice_kpl::types::HashKey;

fn record() -> impl Strategy<Value = (String, Option<HashKey>, Vec<u8>)> {
    (
        // Few distinct keys, so tables are shared; any Unicode, up to 256 characters.
        prop_oneof![3 => "[a-c]{1,2}", 1 => "\\PC{1,40}"],
        proptest::option::of(prop_oneof![Just(HashKey(0)), Just(HashKey::MAX), any::<u128>().prop_map(HashKey)]),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The size predicted before each push is the size after it, the encoding is exactly that
    /// long, and it deaggregates to the records in order with sub-sequence numbers 0, 1, 2...
    #[test]
    fn sizes_are_exact_and_records_round_trip(records in proptest::collection::vec(record(), 1..30)) {
        let mut builder = AggregateBuilder::new();
        for (partition_key, explicit_hash_key, data) in &records {
            let predicted = builder.data_bytes_with(partition_key, *explicit_hash_key, data.len());
            builder.push(partition_key, *explicit_hash_key, Bytes::from(data.clone()));
            prop_assert_eq!(builder.data_bytes(), predicted);
        }
        let first = &records[0];
        prop_assert_eq!(builder.hash_key(), Some(HashKey::effective(&first.0, first.1)));
        let size = builder.data_bytes();
        prop_assert!(size > AGGREGATE_OVERHEAD_BYTES);
        let encoded = builder.finish();
        prop_assert_eq!(encoded.len(), size);
        let expected: Vec<SubRecord> = records
            .into_iter()
            .enumerate()
            .map(|(i, (partition_key, explicit_hash_key, data))| SubRecord {
                partition_key,
                explicit_hash_key,
                data: Bytes::from(data),
                sub_sequence_number: i as u64,
            })
            .collect();
        prop_assert_eq!(deaggregate(&encoded), Ok(Deaggregated::Aggregated(expected)));
    }

    /// Any single flipped bit makes an aggregate "not an aggregate" (the digest catches it) or,
    /// in the magic, a plain record: never a wrong set of user records.
    #[test]
    fn a_flipped_bit_never_yields_other_records(records in proptest::collection::vec(record(), 1..5), bit in any::<prop::sample::Index>()) {
        let mut builder = AggregateBuilder::new();
        for (partition_key, explicit_hash_key, data) in &records {
            builder.push(partition_key, *explicit_hash_key, Bytes::from(data.clone()));
        }
        let mut damaged = builder.finish().to_vec();
        let bit = bit.index(damaged.len() * 8);
        damaged[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(matches!(deaggregate(&Bytes::from(damaged)), Ok(Deaggregated::Plain(_))));
    }
}
