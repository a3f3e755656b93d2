//! A shard group's entries ([`entry`]'s layout) as the core's journal keeps them when the
//! group's Raft log is the journal itself (`sluice_cluster::journal_log`, the switch-over in
//! `docs/replication.md`, "What is left"). Unfinished: `sluiced`'s groups keep `DurableLog`
//! and their applier, so nothing opens a log with this codec yet.
//!
//! A records entry is one run of the shard's records (their sealed flags and keys as
//! admitted) with the entry's arrival time; read back, the entry is made again from the
//! records, with the arrival time the journal gave them (the leader's, or the shard's previous
//! one if that was later: the same on every member). A seal is the group's fence: no entry
//! after it stores records. Anything else (an entry of another version, bytes that do not
//! decode) stores none, and is kept whole beside the journal: the proposer's member refuses it
//! when it reads it, as the applier does today.

use crate::ops::cluster::entry::{self, EntryRecord, ShardEntry};
use bytes::Bytes;
use sluice_cluster::journal_log::EntryCodec;
use sluice_engine::{AppendRecord, StoredRecord};

/// [`EntryCodec`] of a shard group's entries.
pub struct ShardEntries;

impl EntryCodec for ShardEntries {
    fn records(&self, shard_uid: u64, data: &Bytes) -> Option<(i64, Vec<AppendRecord>)> {
        let Ok(ShardEntry::Records(entry)) = entry::decode_shard_entry(data) else { return None };
        let records = entry
            .records
            .into_iter()
            .map(|record| AppendRecord {
                shard_uid,
                partition_key: record.partition_key,
                data: record.data,
                sealed: record.sealed,
            })
            .collect();
        Some((entry.arrival_ms, records))
    }

    fn entry(&self, records: &[StoredRecord]) -> Bytes {
        let arrival_ms = records.first().map_or(0, |record| record.timestamp_ms);
        let records: Vec<EntryRecord> = records
            .iter()
            .map(|record| EntryRecord {
                partition_key: record.partition_key.clone(),
                data: record.data.clone(),
                sealed: record.sealed,
            })
            .collect();
        entry::encode(arrival_ms, &records)
    }

    fn fences(&self, data: &Bytes) -> bool {
        matches!(entry::decode_shard_entry(data), Ok(ShardEntry::Seal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sluice_engine::sequence::ShardSeqPrefix;

    /// The records as a journal returns them: at consecutive indexes, with the entry's time.
    fn stored(arrival_ms: i64, records: &[AppendRecord]) -> Vec<StoredRecord> {
        let prefix = ShardSeqPrefix::new(1_700_000_000, 0);
        records
            .iter()
            .enumerate()
            .map(|(at, record)| StoredRecord {
                sequence_number: prefix.sequence_number(40 + at as u64),
                timestamp_ms: arrival_ms,
                partition_key: record.partition_key.clone(),
                data: record.data.clone(),
                sealed: record.sealed,
                raft: None,
            })
            .collect()
    }

    #[test]
    fn a_seal_fences_and_stores_no_records_and_garbage_stores_none() {
        let codec = ShardEntries;
        assert!(codec.fences(&entry::encode_seal()));
        assert!(codec.records(9, &entry::encode_seal()).is_none());
        let records = [EntryRecord { partition_key: Bytes::from("k"), data: Bytes::from("d"), sealed: false }];
        let bytes = entry::encode(5, &records);
        assert!(!codec.fences(&bytes));
        for garbage in [Bytes::new(), Bytes::from_static(&[9, 9, 9]), bytes.slice(..bytes.len() - 1)] {
            assert!(codec.records(9, &garbage).is_none());
            assert!(!codec.fences(&garbage));
        }
    }

    proptest! {
        #[test]
        fn an_entry_made_again_from_its_stored_records_decodes_as_it_was(
            arrival_ms in 0..i64::MAX / 2,
            records in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 1..20), proptest::collection::vec(any::<u8>(), 0..50), any::<bool>()),
                1..8,
            ),
        ) {
            let records: Vec<EntryRecord> = records
                .into_iter()
                .map(|(key, data, sealed)| EntryRecord { partition_key: key.into(), data: data.into(), sealed })
                .collect();
            let bytes = entry::encode(arrival_ms, &records);
            let (arrival, appended) = ShardEntries.records(3, &bytes).expect("a records entry stores records");
            prop_assert_eq!(arrival, arrival_ms);
            prop_assert!(appended.iter().all(|record| record.shard_uid == 3));
            let again = ShardEntries.entry(&stored(arrival, &appended));
            prop_assert_eq!(&again[..], &bytes[..]);
        }
    }
}
