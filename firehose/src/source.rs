//! What the delivery engine reads and reports: records of a source in lanes (a stream's
//! shards), their opaque positions, and the progress the engine has made through them. The
//! engine and the Iceberg writer (which keeps positions in its snapshots) both use these.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Where a record is in its source, opaque to the engine (a sequence number, a journal offset).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position(pub Bytes);

/// One ordered sequence of records in the source (a shard); positions are per lane.
pub type Lane = u32;

/// A record to deliver.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub lane: Lane,
    pub position: Position,
    /// Approximate arrival time, milliseconds since the epoch.
    pub arrival_ms: i64,
    pub data: Bytes,
}

/// What is done: per lane, the position of the last record up to which every record is
/// delivered or in the error output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub lanes: BTreeMap<Lane, Position>,
    /// Records done so far in this run.
    pub records_done: u64,
}
