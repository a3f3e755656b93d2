//! The catalog: every stream and shard, persisted atomically as one JSON document.
//!
//! It is small (metadata only) and changes rarely (control-plane calls), so it is rewritten
//! whole on every change: write `catalog.json.tmp`, fsync it, rename it over `catalog.json`,
//! fsync the directory. A crash leaves either the old or the new catalog, never a mix.
//!
//! Unlike the journal, the catalog is written with `std::fs`, not through the storage seam
//! (`crate::storage`), so the simulator does not cover it: the server writes it synchronously
//! from any core, and putting it behind the seam means making its persistence async with a
//! storage handle in the server. Unfinished: left for the server's restructuring (issue 11).

use crate::limits::{RETENTION_HOURS_MAX, RETENTION_HOURS_MIN, STREAM_NAME_CHARS_MAX};
use crate::routing::{split_evenly, HashKey, HashKeyRange};
use crate::sequence::ShardSeqPrefix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CATALOG_FILE: &str = "catalog.json";
const CATALOG_VERSION: u32 = 1;

/// Bytes of a shard-iterator key (the server's HMAC-SHA256 key: the hash's output size, as
/// RFC 2104 recommends).
pub const ITERATOR_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CapacityMode {
    Provisioned,
    OnDemand,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMeta {
    /// Unique over the life of the data directory, never reused: names the shard in journals.
    pub uid: u64,
    /// The `N` of `shardId-N`, unique within the stream.
    pub number: u32,
    #[serde(with = "decimal")]
    pub hash_key_start: u128,
    #[serde(with = "decimal")]
    pub hash_key_end: u128,
    pub parent_shard_number: Option<u32>,
    pub adjacent_parent_shard_number: Option<u32>,
    pub seq_prefix: ShardSeqPrefix,
    /// The core whose journal holds this shard.
    pub core: u32,
    pub created_ms: i64,
    /// Set when the shard is closed by a reshard: its records end before this index.
    pub ending_index: Option<u64>,
    /// A reshard is closing this shard: it takes no new records, and its ending index is set
    /// once every record it accepted is durable. A restart finishes the close.
    #[serde(default)]
    pub closing: bool,
    /// When the shard stopped taking records, epoch ms.
    #[serde(default)]
    pub closed_ms: Option<i64>,
}

impl ShardMeta {
    pub fn shard_id(&self) -> String {
        shard_id(self.number)
    }

    pub fn hash_key_range(&self) -> HashKeyRange {
        HashKeyRange { start: HashKey(self.hash_key_start), end: HashKey(self.hash_key_end) }
    }

    /// Takes new records: not closed, and not being closed.
    pub fn is_open(&self) -> bool {
        self.ending_index.is_none() && !self.closing
    }

    /// Whether the shard took records at some moment in `[from_ms, to_ms]`.
    pub fn open_during(&self, from_ms: i64, to_ms: i64) -> bool {
        self.created_ms <= to_ms && self.closed_ms.is_none_or(|closed| closed >= from_ms)
    }
}

pub fn shard_id(number: u32) -> String {
    format!("shardId-{number:012}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMeta {
    pub name: String,
    pub created_ms: i64,
    pub status: StreamStatus,
    /// Tags set by RegisterStreamConsumer or TagResource on the consumer's ARN.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The resource policy PutResourcePolicy attached, as the JSON text it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    pub status: StreamStatus,
    pub retention_hours: u32,
    pub mode: CapacityMode,
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub consumers: Vec<ConsumerMeta>,
    pub shards: Vec<ShardMeta>,
    /// Shard-level metrics enabled by EnableEnhancedMonitoring (Kinesis `MetricsName`s,
    /// never `ALL`: that is expanded), reported by DescribeStream's `EnhancedMonitoring`.
    #[serde(default)]
    pub shard_level_metrics: std::collections::BTreeSet<String>,
    /// When UpdateStreamMode changed the capacity mode, epoch ms, oldest first: Kinesis allows
    /// two changes per rolling 24 hours. Only the last day's entries are kept.
    #[serde(default)]
    pub mode_changes_ms: Vec<i64>,
    /// When UpdateShardCount ran, epoch ms: Kinesis allows ten per rolling 24 hours.
    #[serde(default)]
    pub scalings_ms: Vec<i64>,
    /// The open-shard count an UpdateShardCount in progress is heading for; the stream stays
    /// UPDATING until it is reached (a restart resumes it).
    #[serde(default)]
    pub scaling_target: Option<u32>,
    /// The resource policy PutResourcePolicy attached, as the JSON text it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
    /// The largest record (data plus partition key) the stream takes, KiB: Kinesis'
    /// `MaxRecordSizeInKiB`, 1,024 unless CreateStream or UpdateMaxRecordSize set it (up to
    /// [`crate::limits::RECORD_BYTES_MAX`]).
    #[serde(default = "default_max_record_size_kib")]
    pub max_record_size_kib: u32,
    /// UpdateStreamWarmThroughput's target, MiB/s (ON_DEMAND streams only).
    #[serde(default)]
    pub warm_throughput_target_mibps: Option<u32>,
    /// How records are spread over the shards (UpdateStreamRecordDistributionStrategy).
    #[serde(default)]
    pub distribution: RecordDistribution,
    /// Server-side encryption set by StartStreamEncryption: records appended from then on are
    /// sealed under this key; `None` (StopStreamEncryption, or never started) appends plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<StreamEncryption>,
    /// An encryption change in progress: the stream is UPDATING until this time, epoch ms, as
    /// Kinesis keeps a stream UPDATING for a moment after StartStreamEncryption. A restart past
    /// it finds the stream ACTIVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_updating_until_ms: Option<i64>,
}

fn default_max_record_size_kib() -> u32 {
    crate::limits::STREAM_RECORD_KIB_DEFAULT
}

/// How a stream spreads records over its shards: Kinesis' `RecordDistributionStrategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordDistribution {
    /// By the partition key's MD5 (or the explicit hash key): records of a key stay in order.
    #[default]
    UserPartitionKey,
    /// Evenly, ignoring keys (ON_DEMAND streams only).
    Auto,
}

/// The account's MinimumThroughputBillingCommitment (UpdateAccountSettings), epoch ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingCommitment {
    pub started_ms: i64,
    /// Before this the commitment cannot end: a disable asked earlier takes effect then.
    pub earliest_end_ms: i64,
    /// A disable asked before `earliest_end_ms`, pending until then (enabling again cancels
    /// it).
    pub disable_requested: bool,
    /// When it ended; `None` while it runs.
    pub ended_ms: Option<i64>,
}

/// Account-level settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    /// The latest commitment, running or ended; `None` if there never was one.
    #[serde(default)]
    pub billing_commitment: Option<BillingCommitment>,
}

/// A stream's encryption as the catalog keeps it: the key the caller named and the master key
/// it resolved to. Only key ids, never key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEncryption {
    /// `KeyId` exactly as StartStreamEncryption was given it (DescribeStream reports it so).
    pub key_id: String,
    /// The master key's id (a UUID), which sealed records name in their headers.
    pub master_key_id: String,
}

impl StreamMeta {
    pub fn retention_ms(&self) -> i64 {
        i64::from(self.retention_hours) * 3_600_000
    }

    pub fn shard(&self, number: u32) -> Option<&ShardMeta> {
        self.shards.iter().find(|shard| shard.number == number)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub version: u32,
    /// How many cores the data directory was laid out for: each core has its own journal.
    pub core_count: u32,
    pub next_shard_uid: u64,
    pub streams: BTreeMap<String, StreamMeta>,
    #[serde(default)]
    pub account: AccountSettings,
    /// A replicated node's members, once an admin call changed them (the server's
    /// `ReplaceClusterMember`); `None` while they are the ones `--peers` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<BTreeMap<u64, CatalogMember>>,
    /// A replicated node's shard-iterator key, the same on every member, so that an iterator
    /// one member hands out reads at any other (a client behind a load balancer moves between
    /// them). Set by the catalog's first command; `None` on a node alone, which keeps its key
    /// in its data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterator_key: Option<[u8; ITERATOR_KEY_BYTES]>,
}

/// One member of a replicated node's cluster, as the catalog keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogMember {
    /// Its core 0's peer (Raft) address.
    pub peer: std::net::SocketAddr,
    pub native: Option<std::net::SocketAddr>,
    pub http: Option<std::net::SocketAddr>,
    /// The first shard uid whose group it founded: the groups of older shards it joined
    /// (from a snapshot), those of later ones it starts with the others.
    pub first_shard_uid: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid catalog: {source}")]
    Decode { path: PathBuf, source: serde_json::Error },
    #[error("{path} has catalog version {found}, this build reads version {CATALOG_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("the data directory was laid out for {stored} cores, not {requested}; start with --cores {stored}")]
    CoreCount { stored: u32, requested: u32 },
    #[error("stream name {0:?} must be 1 to {STREAM_NAME_CHARS_MAX} characters of [a-zA-Z0-9_.-]")]
    InvalidName(String),
    #[error("retention of {0} hours is outside [{RETENTION_HOURS_MIN}, {RETENTION_HOURS_MAX}]")]
    InvalidRetention(u32),
    #[error("shard count must be at least 1")]
    InvalidShardCount,
    #[error("stream {0} already exists")]
    StreamExists(String),
    #[error("stream {0} not found")]
    StreamNotFound(String),
    #[error("shard {shard} of stream {stream} does not exist")]
    ShardNotFound { stream: String, shard: String },
    #[error("shard {shard} of stream {stream} is not open")]
    ShardNotOpen { stream: String, shard: String },
    #[error("NewStartingHashKey {key} is not inside the range of {shard} ({start}..={end}) above its start")]
    SplitKeyOutside { shard: String, key: u128, start: u128, end: u128 },
    #[error("shards {a} and {b} do not have adjacent hash-key ranges")]
    NotAdjacent { a: String, b: String },
}

pub fn is_valid_name(name: &str) -> bool {
    (1..=STREAM_NAME_CHARS_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Catalog {
    pub fn new(core_count: u32) -> Catalog {
        assert!(core_count > 0);
        Catalog {
            version: CATALOG_VERSION,
            core_count,
            next_shard_uid: 1,
            streams: BTreeMap::new(),
            account: AccountSettings::default(),
            members: None,
            iterator_key: None,
        }
    }

    /// Loads `dir/catalog.json`, or starts an empty catalog if there is none.
    pub fn load_or_new(dir: &Path, core_count: u32) -> Result<Catalog, CatalogError> {
        let path = dir.join(CATALOG_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::new(core_count)),
            Err(source) => return Err(CatalogError::Io { path, source }),
        };
        let catalog: Catalog =
            serde_json::from_slice(&bytes).map_err(|source| CatalogError::Decode { path: path.clone(), source })?;
        if catalog.version != CATALOG_VERSION {
            return Err(CatalogError::Version { path, found: catalog.version });
        }
        if catalog.core_count != core_count {
            return Err(CatalogError::CoreCount { stored: catalog.core_count, requested: core_count });
        }
        Ok(catalog)
    }

    /// Persists the catalog atomically. Blocking: call it off the executor's hot path.
    ///
    /// Compact JSON, not pretty: the whole catalog is written on every change, and at 10,000
    /// shards the indentation made it 5.9 MB (issue 19). `jq .` shows it indented.
    pub fn save(&self, dir: &Path) -> Result<(), CatalogError> {
        let bytes = serde_json::to_vec(self).expect("catalog serializes");
        write_atomic(&dir.join(CATALOG_FILE), &bytes)
    }

    /// Adds a stream of `shard_count` shards splitting the hash-key space evenly, placing each
    /// shard on the core with the fewest open shards.
    pub fn create_stream(
        &mut self,
        name: &str,
        shard_count: u32,
        mode: CapacityMode,
        now_ms: i64,
    ) -> Result<&StreamMeta, CatalogError> {
        if !is_valid_name(name) {
            return Err(CatalogError::InvalidName(name.to_string()));
        }
        if shard_count == 0 {
            return Err(CatalogError::InvalidShardCount);
        }
        if self.streams.contains_key(name) {
            return Err(CatalogError::StreamExists(name.to_string()));
        }
        let mut load = self.open_shards_per_core();
        let epoch_s = u64::try_from(now_ms / 1000).unwrap_or(0);
        let shards = split_evenly(shard_count)
            .into_iter()
            .zip(0u32..)
            .map(|(range, number)| {
                let core = (0..self.core_count).min_by_key(|&core| (load[core as usize], core)).unwrap();
                load[core as usize] += 1;
                let uid = self.next_shard_uid;
                self.next_shard_uid += 1;
                ShardMeta {
                    uid,
                    number,
                    hash_key_start: range.start.0,
                    hash_key_end: range.end.0,
                    parent_shard_number: None,
                    adjacent_parent_shard_number: None,
                    seq_prefix: ShardSeqPrefix::new(epoch_s, number),
                    core,
                    created_ms: now_ms,
                    ending_index: None,
                    closing: false,
                    closed_ms: None,
                }
            })
            .collect();
        let stream = StreamMeta {
            name: name.to_string(),
            status: StreamStatus::Active,
            retention_hours: crate::limits::RETENTION_HOURS_DEFAULT,
            mode,
            tags: BTreeMap::new(),
            created_ms: now_ms,
            consumers: Vec::new(),
            shards,
            scalings_ms: Vec::new(),
            scaling_target: None,
            shard_level_metrics: Default::default(),
            mode_changes_ms: Vec::new(),
            resource_policy: None,
            max_record_size_kib: crate::limits::STREAM_RECORD_KIB_DEFAULT,
            warm_throughput_target_mibps: None,
            distribution: RecordDistribution::UserPartitionKey,
            encryption: None,
            encryption_updating_until_ms: None,
        };
        Ok(self.streams.entry(name.to_string()).or_insert(stream))
    }

    pub fn delete_stream(&mut self, name: &str) -> Result<StreamMeta, CatalogError> {
        self.streams.remove(name).ok_or_else(|| CatalogError::StreamNotFound(name.to_string()))
    }

    pub fn set_retention(&mut self, name: &str, hours: u32) -> Result<(), CatalogError> {
        if !(RETENTION_HOURS_MIN..=RETENTION_HOURS_MAX).contains(&hours) {
            return Err(CatalogError::InvalidRetention(hours));
        }
        let stream = self.streams.get_mut(name).ok_or_else(|| CatalogError::StreamNotFound(name.to_string()))?;
        stream.retention_hours = hours;
        Ok(())
    }

    /// Splits open shard `number` at `new_starting_hash_key`: the parent starts closing (it
    /// takes no new records) and two children take `[start, key - 1]` and `[key, end]`, as
    /// Kinesis' SplitShard does. Returns the children's numbers.
    pub fn split_shard(
        &mut self,
        stream: &str,
        number: u32,
        new_starting_hash_key: u128,
        now_ms: i64,
    ) -> Result<[u32; 2], CatalogError> {
        let parent = self.open_shard(stream, number)?.clone();
        if new_starting_hash_key <= parent.hash_key_start || new_starting_hash_key > parent.hash_key_end {
            return Err(CatalogError::SplitKeyOutside {
                shard: parent.shard_id(),
                key: new_starting_hash_key,
                start: parent.hash_key_start,
                end: parent.hash_key_end,
            });
        }
        let lower = self.add_child(stream, (parent.hash_key_start, new_starting_hash_key - 1), &[&parent], now_ms);
        let upper = self.add_child(stream, (new_starting_hash_key, parent.hash_key_end), &[&parent], now_ms);
        self.begin_close(stream, &[number], now_ms);
        Ok([lower, upper])
    }

    /// Merges open shards `number` and `adjacent` (contiguous ranges) into one child whose
    /// ParentShardId is `number` and AdjacentParentShardId is `adjacent`, as MergeShards does.
    pub fn merge_shards(&mut self, stream: &str, number: u32, adjacent: u32, now_ms: i64) -> Result<u32, CatalogError> {
        let first = self.open_shard(stream, number)?.clone();
        let second = self.open_shard(stream, adjacent)?.clone();
        let contiguous = first.hash_key_end.checked_add(1) == Some(second.hash_key_start)
            || second.hash_key_end.checked_add(1) == Some(first.hash_key_start);
        if !contiguous {
            return Err(CatalogError::NotAdjacent { a: first.shard_id(), b: second.shard_id() });
        }
        let range = (first.hash_key_start.min(second.hash_key_start), first.hash_key_end.max(second.hash_key_end));
        let child = self.add_child(stream, range, &[&first, &second], now_ms);
        self.begin_close(stream, &[number, adjacent], now_ms);
        Ok(child)
    }

    /// Records that closing shard `number` ended at `ending_index` (its records are the
    /// indexes below it); the stream is ACTIVE again once no shard is closing.
    pub fn finish_close(&mut self, stream: &str, number: u32, ending_index: u64) -> Result<(), CatalogError> {
        let meta = self.streams.get_mut(stream).ok_or_else(|| CatalogError::StreamNotFound(stream.to_string()))?;
        let shard = meta
            .shards
            .iter_mut()
            .find(|shard| shard.number == number)
            .ok_or_else(|| CatalogError::ShardNotFound { stream: stream.to_string(), shard: shard_id(number) })?;
        shard.closing = false;
        shard.ending_index = Some(ending_index);
        let settled = !meta.shards.iter().any(|shard| shard.closing) && meta.scaling_target.is_none();
        if settled && meta.status == StreamStatus::Updating {
            meta.status = StreamStatus::Active;
        }
        Ok(())
    }

    fn open_shard(&self, stream: &str, number: u32) -> Result<&ShardMeta, CatalogError> {
        let meta = self.streams.get(stream).ok_or_else(|| CatalogError::StreamNotFound(stream.to_string()))?;
        let shard = meta
            .shards
            .iter()
            .find(|shard| shard.number == number)
            .ok_or_else(|| CatalogError::ShardNotFound { stream: stream.to_string(), shard: shard_id(number) })?;
        if !shard.is_open() {
            return Err(CatalogError::ShardNotOpen { stream: stream.to_string(), shard: shard.shard_id() });
        }
        Ok(shard)
    }

    fn begin_close(&mut self, stream: &str, numbers: &[u32], now_ms: i64) {
        let meta = self.streams.get_mut(stream).expect("checked by the caller");
        meta.status = StreamStatus::Updating;
        for shard in meta.shards.iter_mut().filter(|shard| numbers.contains(&shard.number)) {
            shard.closing = true;
            shard.closed_ms = Some(now_ms);
        }
    }

    /// Adds an open shard covering `range` whose parents are `parents` (one for a split, two
    /// for a merge), on the core with the fewest open shards. Its sequence numbers sort
    /// after every parent's: its epoch is later than theirs.
    fn add_child(&mut self, stream: &str, range: (u128, u128), parents: &[&ShardMeta], now_ms: i64) -> u32 {
        let load = self.open_shards_per_core();
        let core = (0..self.core_count).min_by_key(|&core| (load[core as usize], core)).expect("at least one core");
        let uid = self.next_shard_uid;
        self.next_shard_uid += 1;
        let meta = self.streams.get_mut(stream).expect("checked by the caller");
        let number = meta.shards.iter().map(|shard| shard.number).max().map_or(0, |max| max + 1);
        let parent_epoch = parents.iter().map(|parent| parent.seq_prefix.epoch_s).max().unwrap_or(0);
        let epoch_s = u64::try_from(now_ms / 1000).unwrap_or(0).max(parent_epoch + 1);
        meta.shards.push(ShardMeta {
            uid,
            number,
            hash_key_start: range.0,
            hash_key_end: range.1,
            parent_shard_number: parents.first().map(|parent| parent.number),
            adjacent_parent_shard_number: parents.get(1).map(|parent| parent.number),
            seq_prefix: ShardSeqPrefix::new(epoch_s, number),
            core,
            created_ms: now_ms,
            ending_index: None,
            closing: false,
            closed_ms: None,
        });
        number
    }

    fn open_shards_per_core(&self) -> Vec<u32> {
        let mut load = vec![0u32; self.core_count as usize];
        for shard in self.streams.values().flat_map(|stream| &stream.shards) {
            if shard.is_open() {
                load[shard.core as usize] += 1;
            }
        }
        load
    }
}

/// One step of UpdateShardCount's UNIFORM_SCALING.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalingStep {
    Split { shard: u32, new_starting_hash_key: u128 },
    Merge { shard: u32, adjacent: u32 },
}

/// How far apart two hash keys may be and still be one boundary between shards for
/// UNIFORM_SCALING. Even ranges of two shard counts put one fraction of the key space at keys
/// that differ by the rounding of `2^128 / count` (less than the counts): 10 even shards end
/// the first at `floor(2^128 / 10) - 1`, 20 end their second one key earlier. Taken exactly,
/// 10 to 20 split each shard in half, then split the upper half again one key before its end,
/// and merged that one-key shard back: three steps per shard instead of one, and a reshard
/// three times as long. 2^64 keys is 2^-64 of the key space.
const SCALING_BOUNDARY_SLACK: u128 = 1 << 64;

/// The next split or merge that brings `stream`'s open shards toward `target` shards of
/// equal ranges, or `None` once they are there. Each boundary of the even ranges is kept
/// where an open shard starts within [`SCALING_BOUNDARY_SLACK`] of it (the nearest such
/// start); first every boundary kept nowhere splits the open shard it falls in, then
/// neighbours whose shared boundary is not kept merge, two at a time. So doubling splits each
/// shard once, and halving merges each pair once. Every step is an ordinary SplitShard or
/// MergeShards, so every child has at most two parents and lineage stays exact, as with
/// Kinesis (which also passes through intermediate shards).
pub fn uniform_scaling_step(stream: &StreamMeta, target: u32) -> Option<ScalingStep> {
    let mut open: Vec<&ShardMeta> = stream.shards.iter().filter(|shard| shard.is_open()).collect();
    open.sort_by_key(|shard| shard.hash_key_start);
    let mut kept = Vec::new();
    for range in &split_evenly(target)[1..] {
        let boundary = range.start.0;
        let nearest = open.iter().map(|shard| shard.hash_key_start).min_by_key(|start| start.abs_diff(boundary));
        match nearest {
            Some(start) if start.abs_diff(boundary) <= SCALING_BOUNDARY_SLACK => kept.push(start),
            _ => {
                let holder = open.iter().find(|s| s.hash_key_start < boundary && boundary <= s.hash_key_end);
                if let Some(shard) = holder {
                    return Some(ScalingStep::Split { shard: shard.number, new_starting_hash_key: boundary });
                }
            }
        }
    }
    let pair = open.windows(2).find(|pair| !kept.contains(&pair[1].hash_key_start))?;
    Some(ScalingStep::Merge { shard: pair[0].number, adjacent: pair[1].number })
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content: write a
/// temporary file, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CatalogError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CatalogError::Io { path, source }
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|dir| dir.sync_all()).map_err(io(dir))
}

/// u128 as a decimal string: JSON numbers lose precision past 2^53 in most readers.
mod decimal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_persist_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::new(2);
        catalog.create_stream("orders", 3, CapacityMode::Provisioned, 1_700_000_000_000).unwrap();
        catalog.create_stream("clicks", 1, CapacityMode::OnDemand, 1_700_000_000_000).unwrap();
        catalog.save(dir.path()).unwrap();
        let loaded = Catalog::load_or_new(dir.path(), 2).unwrap();
        assert_eq!(loaded, catalog);
        let orders = &loaded.streams["orders"];
        assert_eq!(orders.shards[2].shard_id(), "shardId-000000000002");
        assert_eq!(orders.shards[2].hash_key_end, u128::MAX);
        // Placement balances open shards: 3 + 1 shards over 2 cores.
        let on_core_0 = loaded.streams.values().flat_map(|s| &s.shards).filter(|s| s.core == 0).count();
        assert_eq!(on_core_0, 2);
        let uids: std::collections::BTreeSet<_> =
            loaded.streams.values().flat_map(|s| &s.shards).map(|s| s.uid).collect();
        assert_eq!(uids.len(), 4);
        assert!(matches!(
            Catalog::load_or_new(dir.path(), 3),
            Err(CatalogError::CoreCount { stored: 2, requested: 3 })
        ));
    }

    #[test]
    fn validates_like_kinesis() {
        let mut catalog = Catalog::new(1);
        for bad in ["", "has space", "slash/", &"x".repeat(129)] {
            assert!(matches!(
                catalog.create_stream(bad, 1, CapacityMode::Provisioned, 0),
                Err(CatalogError::InvalidName(_))
            ));
        }
        catalog.create_stream("a.b-c_D9", 1, CapacityMode::Provisioned, 0).unwrap();
        assert!(matches!(
            catalog.create_stream("a.b-c_D9", 1, CapacityMode::Provisioned, 0),
            Err(CatalogError::StreamExists(_))
        ));
        assert!(matches!(catalog.set_retention("a.b-c_D9", 23), Err(CatalogError::InvalidRetention(23))));
        catalog.set_retention("a.b-c_D9", 8760).unwrap();
        assert!(matches!(catalog.delete_stream("nope"), Err(CatalogError::StreamNotFound(_))));
    }

    #[test]
    fn split_and_merge_keep_the_space_covered_and_lineage_exact() {
        let mut catalog = Catalog::new(2);
        catalog.create_stream("s", 2, CapacityMode::Provisioned, 1_700_000_000_000).unwrap();
        let middle = 1u128 << 126;
        assert!(matches!(catalog.split_shard("s", 0, 0, 0), Err(CatalogError::SplitKeyOutside { .. })));
        let [low, high] = catalog.split_shard("s", 0, middle, 1_700_000_001_000).unwrap();
        assert!(matches!(catalog.split_shard("s", 0, middle, 0), Err(CatalogError::ShardNotOpen { .. })));
        let stream = &catalog.streams["s"];
        assert_eq!(stream.status, StreamStatus::Updating);
        let (parent, lower) = (stream.shard(0).unwrap(), stream.shard(low).unwrap());
        assert_eq!((lower.hash_key_start, lower.hash_key_end), (0, middle - 1));
        assert_eq!(stream.shard(high).unwrap().hash_key_start, middle);
        assert_eq!(lower.parent_shard_number, Some(0));
        assert!(
            lower.seq_prefix.sequence_number(1) > parent.seq_prefix.sequence_number(crate::limits::RECORD_INDEX_MAX)
        );
        catalog.finish_close("s", 0, 42).unwrap();
        assert_eq!(catalog.streams["s"].status, StreamStatus::Active);
        assert!(matches!(catalog.merge_shards("s", low, 1, 0), Err(CatalogError::NotAdjacent { .. })));
        let merged = catalog.merge_shards("s", high, 1, 1_700_000_002_000).unwrap();
        let child = catalog.streams["s"].shard(merged).unwrap();
        assert_eq!((child.parent_shard_number, child.adjacent_parent_shard_number), (Some(high), Some(1)));
        assert_eq!((child.hash_key_start, child.hash_key_end), (middle, u128::MAX));
    }

    /// Runs UNIFORM_SCALING of a new stream of `current` shards to `target`, each step's
    /// parents closed before the next; returns the steps taken and the open ranges at the end.
    fn scale(current: u32, target: u32) -> (Vec<ScalingStep>, Vec<HashKeyRange>) {
        let mut catalog = Catalog::new(2);
        catalog.create_stream("s", current, CapacityMode::Provisioned, 0).unwrap();
        let mut steps = Vec::new();
        while let Some(step) = uniform_scaling_step(&catalog.streams["s"], target) {
            let closing: Vec<u32> = match step {
                ScalingStep::Split { shard, new_starting_hash_key } => {
                    catalog.split_shard("s", shard, new_starting_hash_key, 0).unwrap();
                    vec![shard]
                }
                ScalingStep::Merge { shard, adjacent } => {
                    catalog.merge_shards("s", shard, adjacent, 0).unwrap();
                    vec![shard, adjacent]
                }
            };
            for shard in closing {
                catalog.finish_close("s", shard, 1).unwrap();
            }
            steps.push(step);
            assert!(steps.len() <= 2 * (current + target) as usize, "no convergence");
        }
        let mut open: Vec<_> =
            catalog.streams["s"].shards.iter().filter(|s| s.is_open()).map(|s| s.hash_key_range()).collect();
        open.sort_by_key(|range| range.start);
        (steps, open)
    }

    /// Doubling splits each shard in half once and halving merges each pair once, although
    /// the even ranges of 10 and of 20 shards put their common boundaries one key apart (10 to
    /// 20 took 30 steps, each shard's upper half split again one key before its end and that
    /// one-key shard merged back).
    #[test]
    fn doubling_splits_each_shard_once_and_halving_merges_each_pair_once() {
        for count in [10, 250] {
            let (steps, open) = scale(count, 2 * count);
            assert_eq!(steps.len(), count as usize, "{count} to {}: {steps:?}", 2 * count);
            assert!(steps.iter().all(|step| matches!(step, ScalingStep::Split { .. })));
            let half = split_evenly(count)[0].end.0 / 2;
            assert!(
                open.iter().all(|range| range.end.0 - range.start.0 >= half - SCALING_BOUNDARY_SLACK),
                "a narrow shard: {open:?}"
            );
            let (steps, open) = scale(2 * count, count);
            assert_eq!(steps.len(), count as usize, "{} to {count}: {steps:?}", 2 * count);
            assert!(steps.iter().all(|step| matches!(step, ScalingStep::Merge { .. })));
            assert_eq!(open.len(), count as usize);
        }
    }

    proptest::proptest! {
        /// Any scaling ends with `target` shards whose boundaries are the even ranges' (each
        /// within the slack), in as many steps as there are boundaries to add and to remove.
        #[test]
        fn uniform_scaling_reaches_even_ranges_through_valid_steps(current in 1u32..40, factor in 0.5f64..=2.0) {
            let target = ((f64::from(current) * factor).round() as u32).max(1);
            let (steps, open) = scale(current, target);
            let even = split_evenly(target);
            proptest::prop_assert_eq!(open.len(), even.len());
            for (range, wanted) in open.iter().zip(&even) {
                proptest::prop_assert!(range.start.0.abs_diff(wanted.start.0) <= SCALING_BOUNDARY_SLACK, "{:?} for {:?}", range, wanted);
            }
            let boundaries = |count: u32| -> Vec<u128> { split_evenly(count)[1..].iter().map(|range| range.start.0).collect() };
            let missing_from = |these: &[u128], those: &[u128]| {
                these.iter().filter(|&&key| !those.iter().any(|&other| key.abs_diff(other) <= SCALING_BOUNDARY_SLACK)).count()
            };
            let (before, after) = (boundaries(current), boundaries(target));
            proptest::prop_assert_eq!(steps.len(), missing_from(&after, &before) + missing_from(&before, &after));
        }
    }

    #[test]
    fn a_garbage_catalog_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CATALOG_FILE), b"{not json").unwrap();
        let error = Catalog::load_or_new(dir.path(), 1).unwrap_err().to_string();
        assert!(error.contains("catalog.json"), "{error}");
    }
}
