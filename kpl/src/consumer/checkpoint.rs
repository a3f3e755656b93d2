//! Checkpoints: positions in a shard, and what may be checkpointed while records are in flight.
//!
//! A checkpoint at position `p` says "every user record up to and including `p` is processed".
//! Positions are KCL's extended sequence numbers: the Kinesis record's sequence number, then
//! the user record's sub-sequence number inside an aggregate (0 for a plain record). A worker
//! resuming from `p` reads from `AT_SEQUENCE_NUMBER p.sequence_number` and skips the user
//! records at or before `p` (the KCL does the same), so a half-processed aggregate is resumed
//! at the right user record.

use crate::types::SequenceNumber;

/// A user record's place in its shard, ordered by sequence number, then sub-sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub sequence_number: SequenceNumber,
    pub sub_sequence_number: u64,
}

/// What a lease's checkpoint can hold (the KCL's sentinels, and a position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checkpoint {
    /// Nothing processed yet: start at the oldest record.
    TrimHorizon,
    /// Nothing processed yet: start at the newest.
    Latest,
    /// Nothing processed yet: start at the first record at or after this time (epoch ms).
    AtTimestamp(u64),
    /// Processed up to and including this user record.
    At(Position),
    /// The shard is closed and every record in it was processed: its children may start.
    ShardEnd,
}

/// Where to start reading a shard whose lease holds a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtTimestamp(u64),
    /// `AT_SEQUENCE_NUMBER`, skipping user records at or before `skip_through`.
    AtSequenceNumber {
        sequence_number: SequenceNumber,
        skip_through: Position,
    },
    /// Nothing left to read.
    ShardEnd,
}

impl Checkpoint {
    pub fn starting_position(&self) -> StartingPosition {
        match *self {
            Checkpoint::TrimHorizon => StartingPosition::TrimHorizon,
            Checkpoint::Latest => StartingPosition::Latest,
            Checkpoint::AtTimestamp(ms) => StartingPosition::AtTimestamp(ms),
            Checkpoint::At(position) => {
                StartingPosition::AtSequenceNumber { sequence_number: position.sequence_number, skip_through: position }
            }
            Checkpoint::ShardEnd => StartingPosition::ShardEnd,
        }
    }
}

impl StartingPosition {
    /// Whether a record read from this starting position was already processed.
    pub fn skips(&self, position: Position) -> bool {
        match self {
            StartingPosition::AtSequenceNumber { skip_through, .. } => position <= *skip_through,
            _ => false,
        }
    }
}

/// A checkpoint the processor asked for that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {requested:?} is not after the last checkpoint {last:?}")]
    NotAfterLastCheckpoint { requested: Position, last: Position },
    #[error("checkpoint {requested:?} is after the last record delivered ({last_delivered:?})")]
    AfterLastDelivered { requested: Position, last_delivered: Option<Position> },
    #[error("SHARD_END may be checkpointed only once the shard's end was reached and every record processed")]
    ShardEndNotReached,
    #[error("the shard ended: only SHARD_END may be checkpointed now")]
    ShardEndRequired,
    #[error("{requested:?} is a starting point, not a position a worker checkpoints")]
    NotAPosition { requested: Checkpoint },
    #[error("no checkpoint may be taken after the lease was lost")]
    LeaseLost,
}

/// Positions never go backwards: records are delivered in shard order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {position:?} delivered after {last:?}: deliveries must be in shard order")]
pub struct OutOfOrderDelivery {
    pub position: Position,
    pub last: Position,
}

/// Per shard: what was delivered, what is processed, what may be checkpointed.
#[derive(Debug, Clone, Default)]
pub struct CheckpointTracker {
    /// The last checkpoint the lease store confirmed (or the one the lease started from).
    checkpointed: Option<Checkpoint>,
    /// Delivered to the processor and not yet processed.
    in_flight: std::collections::BTreeSet<Position>,
    /// Processed positions at or above the smallest in-flight one, and the highest below it.
    processed: std::collections::BTreeSet<Position>,
    last_delivered: Option<Position>,
    /// The shard's end was read (no more records will come).
    end_reached: bool,
}

impl CheckpointTracker {
    /// A tracker for a shard whose lease holds `checkpoint`.
    pub fn new(checkpoint: Checkpoint) -> CheckpointTracker {
        CheckpointTracker { checkpointed: Some(checkpoint), ..CheckpointTracker::default() }
    }

    pub fn checkpointed(&self) -> Option<Checkpoint> {
        self.checkpointed
    }

    pub fn last_delivered(&self) -> Option<Position> {
        self.last_delivered
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn last_checkpointed_position(&self) -> Option<Position> {
        match self.checkpointed {
            Some(Checkpoint::At(position)) => Some(position),
            _ => None,
        }
    }

    /// Records handed to the processor, in shard order.
    pub fn delivered(&mut self, position: Position) -> Result<(), OutOfOrderDelivery> {
        if let Some(last) = self.last_delivered {
            if position <= last {
                return Err(OutOfOrderDelivery { position, last });
            }
        }
        self.last_delivered = Some(position);
        self.in_flight.insert(position);
        Ok(())
    }

    /// A delivered record is processed. Unknown positions are ignored (processed twice, or
    /// delivered before the tracker was reset): a checkpoint never moves past a record that
    /// is in flight either way.
    pub fn processed(&mut self, position: Position) {
        if self.in_flight.remove(&position) {
            self.processed.insert(position);
            // Keep only the highest processed position below the smallest in flight, and those above.
            let floor = self.in_flight.first().copied();
            let below: Vec<Position> = match floor {
                Some(floor) => self.processed.range(..floor).copied().collect(),
                None => self.processed.iter().copied().collect(),
            };
            for position in below.iter().rev().skip(1) {
                self.processed.remove(position);
            }
        }
    }

    /// The shard's end was read: after the records in flight, nothing more comes.
    pub fn end_reached(&mut self) {
        self.end_reached = true;
    }

    /// The furthest position that may be checkpointed now: the highest processed record with
    /// nothing in flight before it, if that is after the last checkpoint.
    pub fn checkpointable(&self) -> Option<Checkpoint> {
        if self.end_reached && self.in_flight.is_empty() {
            return (self.checkpointed != Some(Checkpoint::ShardEnd)).then_some(Checkpoint::ShardEnd);
        }
        let candidate = match self.in_flight.first() {
            Some(floor) => self.processed.range(..floor).next_back().copied(),
            None => self.processed.last().copied(),
        }?;
        match self.last_checkpointed_position() {
            Some(last) if candidate <= last => None,
            _ => Some(Checkpoint::At(candidate)),
        }
    }

    /// Checks a checkpoint the processor asked for (the KCL's rules: after the last
    /// checkpoint, not after the last record delivered; SHARD_END only at the end).
    pub fn validate(&self, requested: Checkpoint) -> Result<(), CheckpointError> {
        match requested {
            Checkpoint::ShardEnd => {
                if self.end_reached {
                    Ok(())
                } else {
                    Err(CheckpointError::ShardEndNotReached)
                }
            }
            Checkpoint::At(position) => {
                if self.last_delivered.is_none_or(|last| position > last) {
                    return Err(CheckpointError::AfterLastDelivered {
                        requested: position,
                        last_delivered: self.last_delivered,
                    });
                }
                match self.last_checkpointed_position() {
                    Some(last) if position <= last => {
                        Err(CheckpointError::NotAfterLastCheckpoint { requested: position, last })
                    }
                    _ => Ok(()),
                }
            }
            // Sentinels other than SHARD_END are starting points, never written by a worker.
            Checkpoint::TrimHorizon | Checkpoint::Latest | Checkpoint::AtTimestamp(_) => {
                Err(CheckpointError::NotAPosition { requested })
            }
        }
    }

    /// The lease store confirmed a checkpoint.
    pub fn confirmed(&mut self, checkpoint: Checkpoint) {
        self.checkpointed = Some(checkpoint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sequence: u128, sub: u64) -> Position {
        Position { sequence_number: SequenceNumber(sequence), sub_sequence_number: sub }
    }

    #[test]
    fn positions_order_by_sequence_then_sub_sequence() {
        assert!(at(1, 5) < at(2, 0));
        assert!(at(2, 0) < at(2, 1));
    }

    #[test]
    fn only_records_with_nothing_in_flight_before_them_are_checkpointable() {
        let mut tracker = CheckpointTracker::new(Checkpoint::TrimHorizon);
        for position in [at(1, 0), at(2, 0), at(2, 1), at(3, 0)] {
            tracker.delivered(position).unwrap();
        }
        assert_eq!(tracker.checkpointable(), None);
        tracker.processed(at(2, 0));
        tracker.processed(at(3, 0));
        assert_eq!(tracker.checkpointable(), None, "1 is still in flight");
        tracker.processed(at(1, 0));
        assert_eq!(tracker.checkpointable(), Some(Checkpoint::At(at(2, 0))), "2.1 is in flight");
        tracker.processed(at(2, 1));
        assert_eq!(tracker.checkpointable(), Some(Checkpoint::At(at(3, 0))));
        tracker.confirmed(Checkpoint::At(at(3, 0)));
        assert_eq!(tracker.checkpointable(), None);
        tracker.end_reached();
        assert_eq!(tracker.checkpointable(), Some(Checkpoint::ShardEnd));
        tracker.confirmed(Checkpoint::ShardEnd);
        assert_eq!(tracker.checkpointable(), None);
    }

    #[test]
    fn deliveries_must_go_forward() {
        let mut tracker = CheckpointTracker::default();
        tracker.delivered(at(5, 0)).unwrap();
        assert_eq!(tracker.delivered(at(5, 0)), Err(OutOfOrderDelivery { position: at(5, 0), last: at(5, 0) }));
        assert!(tracker.delivered(at(4, 9)).is_err());
    }

    #[test]
    fn requested_checkpoints_follow_the_kcl_rules() {
        let mut tracker = CheckpointTracker::new(Checkpoint::At(at(3, 0)));
        tracker.delivered(at(4, 0)).unwrap();
        tracker.delivered(at(4, 1)).unwrap();
        assert_eq!(tracker.validate(Checkpoint::At(at(4, 1))), Ok(()));
        assert!(matches!(tracker.validate(Checkpoint::At(at(5, 0))), Err(CheckpointError::AfterLastDelivered { .. })));
        assert!(matches!(
            tracker.validate(Checkpoint::At(at(3, 0))),
            Err(CheckpointError::NotAfterLastCheckpoint { .. })
        ));
        assert_eq!(tracker.validate(Checkpoint::ShardEnd), Err(CheckpointError::ShardEndNotReached));
        tracker.end_reached();
        assert_eq!(tracker.validate(Checkpoint::ShardEnd), Ok(()));
    }

    #[test]
    fn resuming_skips_what_the_checkpoint_covers() {
        let start = Checkpoint::At(at(7, 2)).starting_position();
        assert_eq!(
            start,
            StartingPosition::AtSequenceNumber { sequence_number: SequenceNumber(7), skip_through: at(7, 2) }
        );
        assert!(start.skips(at(7, 0)) && start.skips(at(7, 2)));
        assert!(!start.skips(at(7, 3)) && !start.skips(at(8, 0)));
        assert!(!Checkpoint::TrimHorizon.starting_position().skips(at(0, 0)));
    }
}
