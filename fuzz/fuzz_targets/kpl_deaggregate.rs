//! KPL deaggregation (sluice-kpl) on arbitrary record data: it must pass the bytes through,
//! split them, or report a corrupt aggregate, never panic; and what it splits must encode
//! back into an aggregate that splits the same way.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_kpl::aggregation::{deaggregate, AggregateBuilder, Deaggregated};

fuzz_target!(|data: &[u8]| {
    let data = Bytes::copy_from_slice(data);
    match deaggregate(&data) {
        Ok(Deaggregated::Plain(_)) => {}
        Ok(Deaggregated::Aggregated(records)) => {
            if records.is_empty() {
                return;
            }
            let mut builder = AggregateBuilder::new();
            for record in &records {
                builder.push(&record.partition_key, record.explicit_hash_key, record.data.clone());
            }
            let again = builder.finish();
            assert_eq!(deaggregate(&again), Ok(Deaggregated::Aggregated(records)));
        }
        Err(corrupt) => {
            let _ = corrupt.to_string();
        }
    }
});
