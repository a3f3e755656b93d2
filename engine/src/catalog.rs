//! The catalog: every stream and shard, persisted atomically as one JSON document.
//!
//! It is small (metadata only) and changes rarely (control-plane calls), so it is rewritten
//! whole on every change: write `catalog.json.tmp`, fsync it, rename it over `catalog.json`,
//! fsync the directory. A crash leaves either the old or the new catalog, never a mix.

use crate::limits::{RETENTION_HOURS_MAX, RETENTION_HOURS_MIN, STREAM_NAME_CHARS_MAX};
use crate::routing::{split_evenly, HashKey, HashKeyRange};
use crate::sequence::ShardSeqPrefix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CATALOG_FILE: &str = "catalog.json";
const CATALOG_VERSION: u32 = 1;

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
}

impl ShardMeta {
    pub fn shard_id(&self) -> String {
        shard_id(self.number)
    }

    pub fn hash_key_range(&self) -> HashKeyRange {
        HashKeyRange { start: HashKey(self.hash_key_start), end: HashKey(self.hash_key_end) }
    }

    pub fn is_open(&self) -> bool {
        self.ending_index.is_none()
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
}

pub fn is_valid_name(name: &str) -> bool {
    (1..=STREAM_NAME_CHARS_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Catalog {
    pub fn new(core_count: u32) -> Catalog {
        assert!(core_count > 0);
        Catalog { version: CATALOG_VERSION, core_count, next_shard_uid: 1, streams: BTreeMap::new() }
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
    pub fn save(&self, dir: &Path) -> Result<(), CatalogError> {
        let bytes = serde_json::to_vec_pretty(self).expect("catalog serializes");
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
            shard_level_metrics: Default::default(),
            mode_changes_ms: Vec::new(),
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
    fn a_garbage_catalog_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CATALOG_FILE), b"{not json").unwrap();
        let error = Catalog::load_or_new(dir.path(), 1).unwrap_err().to_string();
        assert!(error.contains("catalog.json"), "{error}");
    }
}
