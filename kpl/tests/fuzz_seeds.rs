//! The seed corpus of the `kpl_deaggregate` fuzz target (fuzz/corpus/kpl_deaggregate): KPL
//! aggregates as this crate encodes them, whole and damaged, and a plain record. This test
//! checks that the committed seeds are what the current encoder writes and that deaggregation
//! still judges each as expected; `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p sluice-kpl --test
//! fuzz_seeds` rewrites them after a format change.

use bytes::Bytes;
use md5::{Digest, Md5};
use sluice_kpl::aggregation::{deaggregate, encode_aggregate, Deaggregated, NotAggregated};
use sluice_kpl::types::HashKey;
use std::path::PathBuf;

fn seeds() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let aggregate = encode_aggregate([
        ("customer-17", None, Bytes::from_static(b"first")),
        ("customer-17", None, Bytes::from_static(b"")),
        ("orders", Some(HashKey(u128::MAX)), Bytes::from(vec![0xAB; 300])),
        ("ключ", Some(HashKey(42)), Bytes::from_static(b"four")),
    ])
    .to_vec();
    let mut bad_digest = aggregate.clone();
    *bad_digest.last_mut().unwrap() ^= 0x01;
    // The second record's partition key index rewritten from 0 to 5 (and the digest redone):
    // an authentic aggregate pointing outside its key table.
    let mut bad_index =
        encode_aggregate([("k", None, Bytes::from_static(b"d")), ("k", None, Bytes::from_static(b"e"))]).to_vec();
    let body_end = bad_index.len() - 16;
    let second_index = bad_index[..body_end].iter().rposition(|&b| b == 0x08).unwrap() + 1;
    bad_index[second_index] = 5;
    let digest: [u8; 16] = Md5::digest(&bad_index[4..body_end]).into();
    bad_index[body_end..].copy_from_slice(&digest);
    vec![
        ("aggregate", aggregate, "aggregated"),
        ("bad_digest", bad_digest, "plain"),
        ("bad_index", bad_index, "corrupt"),
        ("plain", b"a plain record, not an aggregate".to_vec(), "plain"),
    ]
}

#[test]
fn the_committed_seed_corpus_matches_the_format() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/kpl_deaggregate");
    let write = std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some();
    for (name, data, expected) in seeds() {
        let judged = match deaggregate(&Bytes::from(data.clone())) {
            Ok(Deaggregated::Aggregated(records)) => {
                assert_eq!(records.len(), 4, "{name}");
                "aggregated"
            }
            Ok(Deaggregated::Plain(NotAggregated::DigestMismatch | NotAggregated::WrongMagic)) => "plain",
            Ok(Deaggregated::Plain(other)) => panic!("{name}: {other:?}"),
            Err(corrupt) => {
                assert_eq!(corrupt.records_before.len(), 1, "{name}");
                "corrupt"
            }
        };
        assert_eq!(judged, expected, "{name}");
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &data).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(committed, data, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
        }
    }
}
