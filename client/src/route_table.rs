//! A stream's routing table as a client keeps it (DescribeStreamRoutes' answer, checked), and
//! the decisions made from it: which member a record goes to, how a PutRecords splits by
//! member, and how the parts' answers go back together in the request's order. Pure: no I/O,
//! no clock; [`crate::routed`] drives it.
//!
//! A record's hash key is computed by the engine's own routing function (MD5 of the partition
//! key unless an explicit hash key is given), so the client predicts exactly what the server
//! decides. A prediction can only be stale, never harmful: every node takes every write.

use std::collections::BTreeMap;

use sluice_engine::routing::{find_range, HashKey, HashKeyRange};
use sluice_model::{
    DescribeStreamRoutesOutput, ErrorKind, PutRecordsOutput, PutRecordsRequestEntry, PutRecordsResultEntry, StreamArn,
    Timestamp,
};

/// The most open shards a table may list: sluiced's own bound on a stream's shards
/// (`SHARDS_PER_STREAM_MAX`, 10,000), so a table never holds more than a real stream has.
pub const ROUTE_TABLE_SHARDS_MAX: usize = 10_000;

/// The most members a table may list. Far above any cluster sluiced runs (replication factor
/// 3, a handful of nodes): the client keeps a connection per member, so this bounds them.
pub const ROUTE_TABLE_MEMBERS_MAX: usize = 64;

/// Where a record (or a part of a PutRecords) is sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Straight to this member (its node id and native address), which leads the shard.
    Member { node_id: u64, address: String },
    /// To whichever node the client talks to anyway: the leader is unknown or has no address
    /// (or the node is alone), and that node forwards or serves it.
    Any,
}

/// Why an answer cannot be used as a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteTableError {
    #[error("the routing table lists {count} shards, more than the {ROUTE_TABLE_SHARDS_MAX} a stream can have")]
    TooManyShards { count: usize },
    #[error(
        "the routing table lists {count} members, more than the {ROUTE_TABLE_MEMBERS_MAX} this client connects to"
    )]
    TooManyMembers { count: usize },
    #[error("the routing table's shard {shard_id} has a range that ends before it starts")]
    InvertedRange { shard_id: String },
    #[error("the routing table's shards {first} and {second} overlap or are out of order")]
    Overlap { first: String, second: String },
    #[error("the routing table names member {node_id} twice")]
    DuplicateMember { node_id: u64 },
}

/// One stream's routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub stream_arn: StreamArn,
    /// Tells a stream created again under the same name from the one this table describes.
    pub stream_creation_timestamp: Timestamp,
    /// The node whose view this is.
    pub answered_by: u64,
    /// Every member's native address (`None`: none configured, or a node alone).
    members: BTreeMap<u64, Option<String>>,
    /// The open shards' ranges, sorted by start, and each one's leader.
    ranges: Vec<HashKeyRange>,
    leaders: Vec<Option<u64>>,
}

impl RouteTable {
    /// The table of a DescribeStreamRoutes answer, checked: bounded, ranges in order and
    /// apart. A leader that is not among the members is kept as unknown.
    pub fn new(output: DescribeStreamRoutesOutput) -> Result<RouteTable, RouteTableError> {
        if output.shards.len() > ROUTE_TABLE_SHARDS_MAX {
            return Err(RouteTableError::TooManyShards { count: output.shards.len() });
        }
        if output.members.len() > ROUTE_TABLE_MEMBERS_MAX {
            return Err(RouteTableError::TooManyMembers { count: output.members.len() });
        }
        let mut members = BTreeMap::new();
        for member in output.members {
            if members.insert(member.node_id, member.native_address).is_some() {
                return Err(RouteTableError::DuplicateMember { node_id: member.node_id });
            }
        }
        let mut shards = output.shards;
        shards.sort_by_key(|shard| shard.hash_key_range.starting_hash_key);
        for shard in &shards {
            if shard.hash_key_range.ending_hash_key < shard.hash_key_range.starting_hash_key {
                return Err(RouteTableError::InvertedRange { shard_id: shard.shard_id.to_string() });
            }
        }
        for pair in shards.windows(2) {
            if pair[1].hash_key_range.starting_hash_key <= pair[0].hash_key_range.ending_hash_key {
                return Err(RouteTableError::Overlap {
                    first: pair[0].shard_id.to_string(),
                    second: pair[1].shard_id.to_string(),
                });
            }
        }
        let ranges = shards
            .iter()
            .map(|shard| HashKeyRange {
                start: HashKey(shard.hash_key_range.starting_hash_key.0),
                end: HashKey(shard.hash_key_range.ending_hash_key.0),
            })
            .collect();
        let leaders =
            shards.iter().map(|shard| shard.leader_node_id.filter(|leader| members.contains_key(leader))).collect();
        Ok(RouteTable {
            stream_arn: output.stream_arn,
            stream_creation_timestamp: output.stream_creation_timestamp,
            answered_by: output.node_id,
            members,
            ranges,
            leaders,
        })
    }

    /// Every member with a native address: the nodes a client can reach directly.
    pub fn addresses(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.members.iter().filter_map(|(&node_id, address)| Some((node_id, address.as_deref()?)))
    }

    /// Each open shard's leader (`None`: unknown), by the start of its range.
    pub fn leaders(&self) -> &[Option<u64>] {
        &self.leaders
    }

    /// How many open shards the table lists.
    pub fn shard_count(&self) -> usize {
        self.ranges.len()
    }

    /// Where a record with this partition key and explicit hash key goes.
    pub fn target(&self, partition_key: Option<&str>, explicit_hash_key: Option<sluice_model::HashKey>) -> Target {
        let key = match explicit_hash_key {
            Some(key) => HashKey(key.0),
            None => HashKey::from_partition_key(partition_key.unwrap_or_default()),
        };
        let leader = find_range(&self.ranges, key).and_then(|index| self.leaders[index]);
        match leader.and_then(|node_id| Some((node_id, self.members.get(&node_id)?.as_deref()?))) {
            Some((node_id, address)) => Target::Member { node_id, address: address.to_owned() },
            None => Target::Any,
        }
    }

    /// The records of a PutRecords grouped by target: each group's record indexes, in the
    /// request's order (a shard has one leader, so its records stay together and in order).
    pub fn split(&self, records: &[PutRecordsRequestEntry]) -> Vec<(Target, Vec<usize>)> {
        let mut parts: Vec<(Target, Vec<usize>)> = Vec::new();
        for (index, entry) in records.iter().enumerate() {
            let target = self.target(entry.partition_key.as_deref(), entry.explicit_hash_key);
            match parts.iter_mut().find(|(known, _)| *known == target) {
                Some((_, indexes)) => indexes.push(index),
                None => parts.push((target, vec![index])),
            }
        }
        parts
    }
}

/// A part of a PutRecords that got no answer at all: why, for each of its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFailure {
    /// Throttling stays throttling; anything else is the retriable InternalFailure.
    pub kind: ErrorKind,
    pub message: String,
}

/// The answer to a PutRecords sent in parts, in the request's order: each part's records
/// (`indexes`) with its answer. A part that failed whole fails each of its records, as
/// Kinesis fails records it could not store.
///
/// Panics if the parts do not cover `record_count` records exactly once, or an answer has
/// another number of records than its part: callers pass what [`RouteTable::split`] made and
/// answers already checked by [`part_answer`].
pub fn merge(record_count: usize, parts: Vec<(Vec<usize>, Result<PutRecordsOutput, PartFailure>)>) -> PutRecordsOutput {
    let mut records: Vec<Option<PutRecordsResultEntry>> = vec![None; record_count];
    let mut encryption_type = None;
    for (indexes, answer) in parts {
        match answer {
            Ok(output) => {
                assert_eq!(output.records.len(), indexes.len(), "an answer per record of the part");
                encryption_type = encryption_type.or(output.encryption_type);
                for (index, entry) in indexes.into_iter().zip(output.records) {
                    assert!(records[index].replace(entry).is_none(), "record {index} is in two parts");
                }
            }
            Err(failure) => {
                for index in indexes {
                    let entry = PutRecordsResultEntry {
                        sequence_number: None,
                        shard_id: None,
                        error_code: Some(failure.kind),
                        error_message: Some(failure.message.clone()),
                    };
                    assert!(records[index].replace(entry).is_none(), "record {index} is in two parts");
                }
            }
        }
    }
    let records: Vec<PutRecordsResultEntry> = records
        .into_iter()
        .enumerate()
        .map(|(index, entry)| entry.unwrap_or_else(|| panic!("record {index} is in no part")))
        .collect();
    let failed = records.iter().filter(|entry| entry.error_code.is_some()).count();
    PutRecordsOutput { failed_record_count: Some(failed as i32), records, encryption_type }
}

/// A part's answer as [`merge`] takes it: an answer with one entry per record, or why not.
pub fn part_answer(
    record_count: usize,
    answer: Result<PutRecordsOutput, (Option<ErrorKind>, String)>,
) -> Result<PutRecordsOutput, PartFailure> {
    match answer {
        Ok(output) if output.records.len() == record_count => Ok(output),
        Ok(output) => Err(PartFailure {
            kind: ErrorKind::InternalFailure,
            message: format!("the server answered {} entries for {record_count} records", output.records.len()),
        }),
        Err((Some(ErrorKind::ProvisionedThroughputExceeded), message)) => {
            Err(PartFailure { kind: ErrorKind::ProvisionedThroughputExceeded, message })
        }
        Err((_, message)) => Err(PartFailure { kind: ErrorKind::InternalFailure, message }),
    }
}

/// Whether a failure may be a stale route: the leader moved (a node that does not lead
/// answers the retriable InternalFailure naming the leader when it cannot forward) or is
/// gone. Worth a fresh table and one more try through any node.
pub fn may_be_stale_route(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::InternalFailure | ErrorKind::ServiceUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sluice_model::{RouteMember, ShardId, ShardRoute};

    fn range(start: u128, end: u128) -> sluice_model::HashKeyRange {
        sluice_model::HashKeyRange {
            starting_hash_key: sluice_model::HashKey(start),
            ending_hash_key: sluice_model::HashKey(end),
        }
    }

    /// Three members (3 without an address), four shards led by 1, 2, 3 and nobody.
    fn output() -> DescribeStreamRoutesOutput {
        let quarter = u128::MAX / 4;
        let shard = |number: u32, start: u128, end: u128, leader| ShardRoute {
            shard_id: ShardId::from_number(number),
            hash_key_range: range(start, end),
            leader_node_id: leader,
        };
        DescribeStreamRoutesOutput {
            stream_arn: StreamArn::from("arn:aws:kinesis:us-east-1:000000000000:stream/s"),
            stream_creation_timestamp: Timestamp::from_epoch_ms(1),
            node_id: 1,
            members: vec![
                RouteMember { node_id: 1, native_address: Some("127.0.0.1:1001".into()) },
                RouteMember { node_id: 2, native_address: Some("127.0.0.1:1002".into()) },
                RouteMember { node_id: 3, native_address: None },
            ],
            // Out of order on purpose: the table sorts them.
            shards: vec![
                shard(2, 2 * quarter + 1, 3 * quarter, Some(3)),
                shard(0, 0, quarter, Some(1)),
                shard(1, quarter + 1, 2 * quarter, Some(2)),
                shard(3, 3 * quarter + 1, u128::MAX, None),
            ],
        }
    }

    fn member(node_id: u64) -> Target {
        Target::Member { node_id, address: format!("127.0.0.1:{}", 1000 + node_id) }
    }

    fn hash(key: u128) -> Option<sluice_model::HashKey> {
        Some(sluice_model::HashKey(key))
    }

    #[test]
    fn records_go_to_their_shards_leader_or_anywhere() {
        let table = RouteTable::new(output()).unwrap();
        let quarter = u128::MAX / 4;
        let check = |key: u128, expected: Target| assert_eq!(table.target(None, hash(key)), expected, "key {key}");
        check(0, member(1));
        check(quarter, member(1));
        check(quarter + 1, member(2));
        check(2 * quarter + 1, Target::Any); // led by 3, which has no address
        check(u128::MAX, Target::Any); // no leader known
        assert_eq!(table.addresses().collect::<Vec<_>>(), vec![(1, "127.0.0.1:1001"), (2, "127.0.0.1:1002")]);
        assert_eq!(table.shard_count(), 4);
    }

    #[test]
    fn partition_keys_route_by_the_engines_md5() {
        let table = RouteTable::new(output()).unwrap();
        for key in ["", "a", "customer-17", "ü"] {
            let by_engine = sluice_engine::routing::HashKey::from_partition_key(key).0;
            assert_eq!(table.target(Some(key), None), table.target(None, hash(by_engine)), "{key}");
        }
        // An explicit hash key wins over the partition key.
        assert_eq!(table.target(Some("a"), hash(0)), member(1));
    }

    #[test]
    fn a_leader_that_is_no_member_is_unknown() {
        let mut output = output();
        output.shards[1].leader_node_id = Some(9);
        let table = RouteTable::new(output).unwrap();
        assert_eq!(table.target(None, hash(0)), Target::Any);
    }

    #[test]
    fn a_node_alone_routes_everything_to_itself() {
        let output = DescribeStreamRoutesOutput {
            node_id: 0,
            members: vec![RouteMember { node_id: 0, native_address: None }],
            shards: vec![ShardRoute {
                shard_id: ShardId::from_number(0),
                hash_key_range: range(0, u128::MAX),
                leader_node_id: Some(0),
            }],
            ..output()
        };
        let table = RouteTable::new(output).unwrap();
        assert_eq!(table.target(Some("k"), None), Target::Any);
        assert_eq!(table.addresses().count(), 0);
    }

    #[test]
    fn bad_tables_are_refused() {
        let check = |change: fn(&mut DescribeStreamRoutesOutput), expected: RouteTableError| {
            let mut output = output();
            change(&mut output);
            assert_eq!(RouteTable::new(output), Err(expected));
        };
        check(
            |o| o.shards[0].hash_key_range = range(5, 4),
            RouteTableError::InvertedRange { shard_id: "shardId-000000000002".into() },
        );
        check(
            |o| o.shards[1].hash_key_range = range(0, u128::MAX / 4 + 1),
            RouteTableError::Overlap { first: "shardId-000000000000".into(), second: "shardId-000000000001".into() },
        );
        check(|o| o.members.push(o.members[0].clone()), RouteTableError::DuplicateMember { node_id: 1 });
        check(
            |o| o.members = (0..65).map(|node_id| RouteMember { node_id, native_address: None }).collect(),
            RouteTableError::TooManyMembers { count: 65 },
        );
        check(
            |o| {
                let template = o.shards[0].clone();
                o.shards = vec![template; ROUTE_TABLE_SHARDS_MAX + 1];
            },
            RouteTableError::TooManyShards { count: ROUTE_TABLE_SHARDS_MAX + 1 },
        );
    }

    fn entry(key: u128) -> PutRecordsRequestEntry {
        PutRecordsRequestEntry {
            data: Bytes::from_static(b"x"),
            partition_key: Some("k".into()),
            explicit_hash_key: hash(key),
        }
    }

    fn stored(sequence: u128) -> PutRecordsResultEntry {
        PutRecordsResultEntry {
            sequence_number: Some(sluice_model::SequenceNumber::new(sequence)),
            shard_id: Some(ShardId::from_number(0)),
            error_code: None,
            error_message: None,
        }
    }

    #[test]
    fn a_put_records_splits_by_leader_and_merges_back_in_order() {
        let table = RouteTable::new(output()).unwrap();
        let quarter = u128::MAX / 4;
        let records =
            [entry(0), entry(quarter + 1), entry(1), entry(u128::MAX), entry(quarter + 2), entry(2 * quarter + 1)];
        let parts = table.split(&records);
        assert_eq!(parts, vec![(member(1), vec![0, 2]), (member(2), vec![1, 4]), (Target::Any, vec![3, 5])]);

        let answers = parts
            .into_iter()
            .map(|(target, indexes)| {
                let answer = match target {
                    Target::Any => Err(PartFailure { kind: ErrorKind::InternalFailure, message: "gone".into() }),
                    _ => {
                        let records = indexes.iter().map(|&index| stored(index as u128)).collect();
                        Ok(PutRecordsOutput { failed_record_count: Some(0), records, encryption_type: None })
                    }
                };
                (indexes, answer)
            })
            .collect();
        let merged = merge(records.len(), answers);
        assert_eq!(merged.failed_record_count, Some(2));
        for (index, entry) in merged.records.iter().enumerate() {
            match index {
                3 | 5 => assert_eq!(entry.error_code, Some(ErrorKind::InternalFailure)),
                _ => assert_eq!(entry.sequence_number, Some(sluice_model::SequenceNumber::new(index as u128))),
            }
        }
    }

    #[test]
    fn a_part_answer_of_the_wrong_length_fails_its_records() {
        let short = PutRecordsOutput { failed_record_count: Some(0), records: vec![stored(1)], encryption_type: None };
        assert_eq!(part_answer(2, Ok(short)).unwrap_err().kind, ErrorKind::InternalFailure);
        let throttled = part_answer(2, Err((Some(ErrorKind::ProvisionedThroughputExceeded), "slow".into())));
        assert_eq!(throttled.unwrap_err().kind, ErrorKind::ProvisionedThroughputExceeded);
        let other = part_answer(2, Err((Some(ErrorKind::ResourceNotFound), "no".into())));
        assert_eq!(other.unwrap_err().kind, ErrorKind::InternalFailure);
        assert!(may_be_stale_route(ErrorKind::InternalFailure) && !may_be_stale_route(ErrorKind::ResourceNotFound));
    }
}
