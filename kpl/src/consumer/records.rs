//! Received Kinesis records to user records: KPL aggregates split, plain records passed through.

use crate::aggregation::{all_in_range, deaggregate, AggregateError, Deaggregated};
use crate::consumer::checkpoint::Position;
use crate::types::{HashKey, HashKeyRange, SequenceNumber};
use bytes::Bytes;

/// A record as GetRecords or SubscribeToShard returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRecord {
    pub sequence_number: SequenceNumber,
    pub partition_key: String,
    pub data: Bytes,
    /// `ApproximateArrivalTimestamp`, in epoch milliseconds.
    pub approximate_arrival_ms: Option<u64>,
}

/// A user record handed to a record processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub sequence_number: SequenceNumber,
    /// Its place in its aggregate; 0 for a plain record.
    pub sub_sequence_number: u64,
    /// Whether it came out of a KPL aggregate.
    pub aggregated: bool,
    pub partition_key: String,
    /// The explicit hash key the producer gave (aggregated records only: Kinesis does not
    /// return a plain record's).
    pub explicit_hash_key: Option<HashKey>,
    pub data: Bytes,
    pub approximate_arrival_ms: Option<u64>,
}

impl ConsumerRecord {
    /// Where it sits in its shard, for checkpoints.
    pub fn position(&self) -> Position {
        Position { sequence_number: self.sequence_number, sub_sequence_number: self.sub_sequence_number }
    }
}

/// Something deaggregation did not deliver whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeaggregationIssue {
    /// An authentic aggregate with an unreadable sub-record: the sub-records before it were
    /// delivered (as the KCL does), the rest dropped.
    Corrupt { sequence_number: SequenceNumber, error: AggregateError, delivered: usize },
    /// An aggregate with a user record outside the shard's hash-key range: dropped whole, as
    /// the KCL does (a producer with a stale shard map sent it, and retries those records).
    OutsideShard { sequence_number: SequenceNumber, user_records: usize },
}

/// The user records of a batch, and what could not be delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deaggregation {
    pub records: Vec<ConsumerRecord>,
    pub issues: Vec<DeaggregationIssue>,
}

/// Splits a batch of received records into user records, as the KCL's
/// `AggregatorUtil.deaggregate` does. With `shard_range` (the shard's hash-key range), an
/// aggregate holding a user record outside it is dropped whole.
pub fn deaggregate_records(
    records: impl IntoIterator<Item = ReceivedRecord>,
    shard_range: Option<HashKeyRange>,
) -> Deaggregation {
    let mut out = Deaggregation::default();
    for record in records {
        let ReceivedRecord { sequence_number, partition_key, data, approximate_arrival_ms } = record;
        let user = |sub: crate::aggregation::SubRecord| ConsumerRecord {
            sequence_number,
            sub_sequence_number: sub.sub_sequence_number,
            aggregated: true,
            partition_key: sub.partition_key,
            explicit_hash_key: sub.explicit_hash_key,
            data: sub.data,
            approximate_arrival_ms,
        };
        let (subs, corrupt) = match deaggregate(&data) {
            Ok(Deaggregated::Plain(_)) => {
                out.records.push(ConsumerRecord {
                    sequence_number,
                    sub_sequence_number: 0,
                    aggregated: false,
                    partition_key,
                    explicit_hash_key: None,
                    data,
                    approximate_arrival_ms,
                });
                continue;
            }
            Ok(Deaggregated::Aggregated(subs)) => (subs, None),
            Err(corrupt) => (corrupt.records_before, Some(corrupt.error)),
        };
        if shard_range.is_some_and(|range| !all_in_range(&subs, range)) {
            out.issues.push(DeaggregationIssue::OutsideShard { sequence_number, user_records: subs.len() });
            continue;
        }
        if let Some(error) = corrupt {
            out.issues.push(DeaggregationIssue::Corrupt { sequence_number, error, delivered: subs.len() });
        }
        out.records.extend(subs.into_iter().map(user));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::encode_aggregate;

    fn received(sequence: u128, data: Bytes) -> ReceivedRecord {
        ReceivedRecord {
            sequence_number: SequenceNumber(sequence),
            partition_key: "outer".into(),
            data,
            approximate_arrival_ms: Some(5),
        }
    }

    #[test]
    fn aggregates_split_and_plain_records_pass_through() {
        let aggregate = encode_aggregate([
            ("a", None, Bytes::from_static(b"1")),
            ("b", Some(HashKey(9)), Bytes::from_static(b"2")),
        ]);
        let out = deaggregate_records([received(1, Bytes::from_static(b"plain")), received(2, aggregate)], None);
        assert!(out.issues.is_empty());
        let summary: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.sequence_number.0, r.sub_sequence_number, r.aggregated, r.partition_key.as_str(), &r.data[..]))
            .collect();
        assert_eq!(
            summary,
            vec![(1, 0, false, "outer", &b"plain"[..]), (2, 0, true, "a", &b"1"[..]), (2, 1, true, "b", &b"2"[..])]
        );
        assert_eq!(out.records[2].explicit_hash_key, Some(HashKey(9)));
        assert_eq!(out.records[2].position(), Position { sequence_number: SequenceNumber(2), sub_sequence_number: 1 });
    }

    #[test]
    fn an_aggregate_reaching_outside_the_shard_is_dropped_whole() {
        let aggregate = encode_aggregate([
            ("a", Some(HashKey(10)), Bytes::from_static(b"in")),
            ("b", Some(HashKey(500)), Bytes::from_static(b"out")),
        ]);
        let range = HashKeyRange { start: HashKey(0), end: HashKey(100) };
        let out = deaggregate_records([received(3, aggregate.clone())], Some(range));
        assert!(out.records.is_empty());
        assert_eq!(
            out.issues,
            vec![DeaggregationIssue::OutsideShard { sequence_number: SequenceNumber(3), user_records: 2 }]
        );
        let wide = HashKeyRange { start: HashKey(0), end: HashKey(1_000) };
        assert_eq!(deaggregate_records([received(3, aggregate)], Some(wide)).records.len(), 2);
    }
}
