//! The log machinery shared by both state machines: writing snapshots as log entries, and
//! rebuilding the state from a log by replay.
//!
//! A core appends entries to its internal shard and applies each once it is durable, in log
//! order. Every [`SNAPSHOT_INTERVAL_ENTRIES`](crate::limits::SNAPSHOT_INTERVAL_ENTRIES) it
//! appends a snapshot of its state ([`snapshot_entries`]): the state as of the last entry
//! applied, in parts of at most [`SNAPSHOT_PART_BYTES_MAX`] bytes. Recovery ([`replay`]) finds
//! the latest snapshot whose parts are all in the log, restores it, and applies every other
//! entry after its `as_of`; everything before `as_of + 1` may be trimmed once a later snapshot
//! is complete and durable ([`Replayed::trim_before`]).

use crate::codec::{self, DecodeError};
use crate::ids::LogIndex;
use crate::limits::SNAPSHOT_PART_BYTES_MAX;
use crate::machine::{encoded_bytes, RestoreError};
use crate::state::{Command, Entry, SnapshotItem, SnapshotPart, State};
use std::collections::BTreeMap;

/// The entries that write a snapshot of `state` (as of its last applied entry). Append them
/// in order; they may interleave with other entries.
pub fn snapshot_entries(state: &State) -> Vec<Entry> {
    let as_of = state.applied().expect("a snapshot is of a state that applied at least one entry");
    let mut parts: Vec<Vec<SnapshotItem>> = vec![Vec::new()];
    let mut part_bytes = 0;
    for item in state.snapshot_items() {
        let item_bytes = encoded_bytes(&item);
        assert!(item_bytes <= SNAPSHOT_PART_BYTES_MAX, "a snapshot item of {item_bytes} bytes breaks the item limits");
        if part_bytes + item_bytes > SNAPSHOT_PART_BYTES_MAX {
            parts.push(Vec::new());
            part_bytes = 0;
        }
        part_bytes += item_bytes;
        parts.last_mut().expect("one part at least").push(item);
    }
    let part_count = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(part, items)| Entry {
            now_ms: state.clock_ms(),
            command: Command::SnapshotPart(SnapshotPart { as_of, part: part as u32, part_count, items }),
        })
        .collect()
}

/// Which snapshot a replay starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The latest complete snapshot, or the beginning if there is none (what recovery does).
    LatestSnapshot,
    /// The complete snapshot as of this index.
    Snapshot(LogIndex),
    /// The beginning of the log, ignoring snapshots (the log must start with `Init`).
    Beginning,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("log entry {index}: {source}")]
    Decode { index: LogIndex, source: DecodeError },
    #[error("the log jumps from entry {expected} to {found}: entries are missing")]
    Gap { expected: LogIndex, found: LogIndex },
    #[error(
        "the log starts at entry {first} with no complete snapshot before it and no Init: its beginning was trimmed"
    )]
    NoStart { first: LogIndex },
    #[error("no complete snapshot as of entry {0}")]
    SnapshotNotFound(LogIndex),
    #[error("snapshot as of entry {as_of}: part {part} says {part_count} parts, another part said otherwise")]
    PartCount { as_of: LogIndex, part: u32, part_count: u32 },
    #[error("snapshot as of entry {as_of}: {source}")]
    Restore { as_of: LogIndex, source: RestoreError },
}

/// A state rebuilt from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub state: State,
    /// The snapshot it started from.
    pub snapshot: Option<LogIndex>,
    /// Every entry before this one may be trimmed (the snapshot covers it).
    pub trim_before: Option<LogIndex>,
    /// The index the next entry gets.
    pub next_index: Option<LogIndex>,
    /// Entries applied after the snapshot.
    pub replayed_count: u64,
}

/// The complete snapshots of a decoded log, by `as_of`, each with its parts in order.
fn complete_snapshots(log: &[(LogIndex, Entry)]) -> Result<BTreeMap<LogIndex, Vec<&SnapshotPart>>, ReplayError> {
    let mut found: BTreeMap<LogIndex, BTreeMap<u32, &SnapshotPart>> = BTreeMap::new();
    let mut counts: BTreeMap<LogIndex, u32> = BTreeMap::new();
    for (_, entry) in log {
        if let Command::SnapshotPart(part) = &entry.command {
            let count = *counts.entry(part.as_of).or_insert(part.part_count);
            if count != part.part_count {
                return Err(ReplayError::PartCount { as_of: part.as_of, part: part.part, part_count: part.part_count });
            }
            // The same part written twice (a snapshot rewritten after a restart) is the same
            // bytes, because the state as of one index is one state: either copy will do.
            found.entry(part.as_of).or_default().entry(part.part).or_insert(part);
        }
    }
    Ok(found
        .into_iter()
        .filter(|(as_of, parts)| parts.len() as u32 == counts[as_of])
        .map(|(as_of, parts)| (as_of, parts.into_values().collect()))
        .collect())
}

/// The complete snapshots in a log, by `as_of` (for tests and tools).
pub fn snapshots_in(log: &[(LogIndex, Entry)]) -> Result<Vec<LogIndex>, ReplayError> {
    Ok(complete_snapshots(log)?.into_keys().collect())
}

/// Decodes a log read from the internal shard: `(index, bytes)` in index order.
pub fn decode_log<'a>(
    records: impl IntoIterator<Item = (LogIndex, &'a [u8])>,
) -> Result<Vec<(LogIndex, Entry)>, ReplayError> {
    records
        .into_iter()
        .map(|(index, bytes)| {
            codec::decode(bytes).map(|entry| (index, entry)).map_err(|source| ReplayError::Decode { index, source })
        })
        .collect()
}

/// Rebuilds the state from a decoded log (consecutive indexes, as the journal keeps them).
pub fn replay(log: &[(LogIndex, Entry)], from: StartFrom) -> Result<Replayed, ReplayError> {
    for pair in log.windows(2) {
        let expected = LogIndex(pair[0].0 .0 + 1);
        if pair[1].0 != expected {
            return Err(ReplayError::Gap { expected, found: pair[1].0 });
        }
    }
    let snapshots = complete_snapshots(log)?;
    let chosen = match from {
        StartFrom::LatestSnapshot => snapshots.last_key_value().map(|(as_of, _)| *as_of),
        StartFrom::Snapshot(as_of) => {
            if !snapshots.contains_key(&as_of) {
                return Err(ReplayError::SnapshotNotFound(as_of));
            }
            Some(as_of)
        }
        StartFrom::Beginning => None,
    };
    let next_index = log.last().map(|(index, _)| LogIndex(index.0 + 1));
    let mut state = match chosen {
        Some(as_of) => {
            let items = snapshots[&as_of].iter().flat_map(|part| part.items.iter().cloned());
            State::restore(as_of, items).map_err(|source| ReplayError::Restore { as_of, source })?
        }
        None => State::default(),
    };
    let first_needed = chosen.map(|as_of| LogIndex(as_of.0 + 1));
    match (log.first(), first_needed) {
        (Some(&(first, _)), Some(needed)) if first > needed => {
            return Err(ReplayError::Gap { expected: needed, found: first })
        }
        (Some((first, entry)), None) if !matches!(entry.command, Command::Init { .. }) => {
            return Err(ReplayError::NoStart { first: *first })
        }
        _ => {}
    }
    let mut replayed_count = 0;
    for (index, entry) in log {
        if first_needed.is_some_and(|needed| *index < needed) {
            continue;
        }
        // Snapshot parts apply as no-ops, as they did live: the state's last applied index
        // must come out the same.
        state.apply(*index, entry);
        replayed_count += 1;
    }
    Ok(Replayed { state, snapshot: chosen, trim_before: first_needed, next_index, replayed_count })
}
