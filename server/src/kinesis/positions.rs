//! Where a read starts: an iterator type and its arguments as an engine position, for
//! GetShardIterator and SubscribeToShard alike.

use sluice_engine::sequence::{SequenceNumber as EngineSequence, ShardSeqPrefix};
use sluice_engine::shard_index::FIRST_RECORD_INDEX;
use sluice_engine::StartPosition;
use sluice_model::{KinesisError, SequenceNumber, ShardId, ShardIteratorType, Timestamp};

/// The engine position of `kind` on the shard numbered `shard_number` with `prefix`. A
/// sequence number must be one Sluice issued, for this shard. `operation` names the call in
/// messages.
pub fn start_position(
    kind: &ShardIteratorType,
    sequence_number: Option<&SequenceNumber>,
    timestamp: Option<Timestamp>,
    prefix: ShardSeqPrefix,
    shard_number: u32,
    operation: &str,
) -> Result<StartPosition, KinesisError> {
    let index = || -> Result<u64, KinesisError> {
        let number = sequence_number.ok_or_else(|| {
            KinesisError::invalid_argument(
                "StartingSequenceNumber is required for AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER",
            )
        })?;
        let ours = own_sequence_number(number).ok_or_else(|| {
            KinesisError::invalid_argument(format!(
                "StartingSequenceNumber {number} used in {operation} on shard {} is not valid",
                ShardId::from_number(shard_number)
            ))
        })?;
        if ours.shard_prefix() != prefix {
            return Err(KinesisError::invalid_argument(format!(
                "Invalid StartingSequenceNumber. It encodes a different shard than {}",
                ShardId::from_number(shard_number)
            )));
        }
        Ok(ours.record_index())
    };
    Ok(match kind {
        ShardIteratorType::TrimHorizon => StartPosition::TrimHorizon,
        ShardIteratorType::Latest => StartPosition::Latest,
        ShardIteratorType::AtSequenceNumber => StartPosition::AtIndex(index()?.max(FIRST_RECORD_INDEX)),
        ShardIteratorType::AfterSequenceNumber => StartPosition::AfterIndex(index()?),
        ShardIteratorType::AtTimestamp => StartPosition::AtTimestamp(
            timestamp
                .ok_or_else(|| KinesisError::invalid_argument("Timestamp is required for AT_TIMESTAMP"))?
                .epoch_ms(),
        ),
        // Refused by validation already; kept an error rather than a panic.
        ShardIteratorType::Unknown(_) => return Err(KinesisError::not_in_enum(kind, "shardIteratorType")),
    })
}

/// The engine's reading of a sequence number, if it is one Sluice issued (any shard).
pub fn own_sequence_number(number: &SequenceNumber) -> Option<EngineSequence> {
    EngineSequence::parse(&number.as_u128()?.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::ErrorKind;

    #[test]
    fn sequence_numbers_must_be_this_shards() {
        let prefix = ShardSeqPrefix::new(1_795_000_000, 3);
        let ours = SequenceNumber::new(prefix.sequence_number(7).as_u128());
        let at = |number: &SequenceNumber, shard| {
            start_position(&ShardIteratorType::AtSequenceNumber, Some(number), None, prefix, shard, "GetShardIterator")
        };
        assert_eq!(at(&ours, 3).unwrap(), StartPosition::AtIndex(7));
        let other = SequenceNumber::new(ShardSeqPrefix::new(1_795_000_000, 4).sequence_number(7).as_u128());
        assert_eq!(at(&other, 3).unwrap_err().kind, ErrorKind::InvalidArgument);
        let aws: SequenceNumber = "49590338271490256608559692538361571095921575989136588898".parse().unwrap();
        assert_eq!(at(&aws, 3).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(at(&SequenceNumber::new(12), 3).unwrap_err().kind, ErrorKind::InvalidArgument);
        let latest = start_position(&ShardIteratorType::Latest, None, None, prefix, 3, "GetShardIterator");
        assert_eq!(latest.unwrap(), StartPosition::Latest);
    }
}
