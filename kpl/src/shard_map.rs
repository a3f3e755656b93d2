//! The producer's view of a stream's open shards: which shard owns a hash key.

use crate::types::{HashKey, HashKeyRange, ShardId};

/// Open shards by hash-key range, sorted by start, ranges disjoint (gaps allowed: a key in a
/// gap has no predicted shard).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardMap {
    shards: Vec<(HashKeyRange, ShardId)>,
}

/// A shard list that cannot be a stream's open shards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardMapError {
    #[error("{shard_id} has range start {start} above its end {end}")]
    EmptyRange { shard_id: ShardId, start: HashKey, end: HashKey },
    #[error("{first} and {second} overlap: open shards own disjoint hash-key ranges")]
    Overlap { first: ShardId, second: ShardId },
    #[error("{shard_id} is listed twice")]
    Duplicate { shard_id: ShardId },
}

impl ShardMap {
    /// A map of the given open shards (as ListShards reports them, parents already closed left out).
    pub fn new(shards: impl IntoIterator<Item = (ShardId, HashKeyRange)>) -> Result<ShardMap, ShardMapError> {
        let mut shards: Vec<(HashKeyRange, ShardId)> = shards.into_iter().map(|(id, range)| (range, id)).collect();
        for &(range, shard_id) in &shards {
            if range.start > range.end {
                return Err(ShardMapError::EmptyRange { shard_id, start: range.start, end: range.end });
            }
        }
        let mut ids: Vec<ShardId> = shards.iter().map(|&(_, id)| id).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ShardMapError::Duplicate { shard_id: pair[0] });
        }
        shards.sort_by_key(|&(range, id)| (range.start, id));
        if let Some(pair) = shards.windows(2).find(|pair| pair[0].0.end >= pair[1].0.start) {
            return Err(ShardMapError::Overlap { first: pair[0].1, second: pair[1].1 });
        }
        Ok(ShardMap { shards })
    }

    /// The open shard owning `key`, if any.
    pub fn shard_for(&self, key: HashKey) -> Option<ShardId> {
        let after = self.shards.partition_point(|(range, _)| range.start <= key);
        let (range, id) = self.shards.get(after.checked_sub(1)?)?;
        range.contains(key).then_some(*id)
    }

    /// The range of `shard_id`, if it is in the map.
    pub fn range_of(&self, shard_id: ShardId) -> Option<HashKeyRange> {
        self.shards.iter().find(|&&(_, id)| id == shard_id).map(|&(range, _)| range)
    }

    pub fn len(&self) -> usize {
        self.shards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    pub fn shards(&self) -> impl Iterator<Item = (ShardId, HashKeyRange)> + '_ {
        self.shards.iter().map(|&(range, id)| (id, range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u128, end: u128) -> HashKeyRange {
        HashKeyRange { start: HashKey(start), end: HashKey(end) }
    }

    #[test]
    fn lookups_find_the_owner_or_nothing_in_a_gap() {
        let map = ShardMap::new([(ShardId(2), range(100, u128::MAX)), (ShardId(1), range(0, 49))]).unwrap();
        assert_eq!(map.shard_for(HashKey(0)), Some(ShardId(1)));
        assert_eq!(map.shard_for(HashKey(49)), Some(ShardId(1)));
        assert_eq!(map.shard_for(HashKey(50)), None);
        assert_eq!(map.shard_for(HashKey(100)), Some(ShardId(2)));
        assert_eq!(map.shard_for(HashKey::MAX), Some(ShardId(2)));
        assert_eq!(ShardMap::default().shard_for(HashKey(5)), None);
        assert_eq!(map.range_of(ShardId(2)), Some(range(100, u128::MAX)));
    }

    #[test]
    fn bad_maps_are_refused() {
        assert!(matches!(ShardMap::new([(ShardId(1), range(5, 4))]), Err(ShardMapError::EmptyRange { .. })));
        assert!(matches!(
            ShardMap::new([(ShardId(1), range(0, 10)), (ShardId(2), range(10, 20))]),
            Err(ShardMapError::Overlap { .. })
        ));
        assert!(matches!(
            ShardMap::new([(ShardId(1), range(0, 10)), (ShardId(1), range(11, 20))]),
            Err(ShardMapError::Duplicate { .. })
        ));
    }
}
