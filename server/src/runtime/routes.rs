//! The routes snapshot: the catalog as the data plane reads it, replaced whole on every change
//! (an `ArcSwap`, so readers on every core take no lock).

use crate::kinesis::shard_iterator::IteratorKey;
use arc_swap::ArcSwap;
use sluice_engine::catalog::{Catalog, ShardMeta, StreamMeta};
use sluice_engine::routing::{find_range, HashKey, HashKeyRange};
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::ShardSpec;
use sluice_security::policy::{Policy, PolicyKind};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Where a shard lives and how its sequence numbers look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardRoute {
    pub uid: u64,
    pub number: u32,
    pub core: usize,
    pub seq_prefix: ShardSeqPrefix,
    pub retention_ms: i64,
    /// Takes new records (not closed or closing by a reshard).
    pub open: bool,
    /// Where a closed shard's records end, once known.
    pub ending_index: Option<u64>,
}

impl ShardRoute {
    fn new(shard: &ShardMeta, retention_ms: i64) -> ShardRoute {
        ShardRoute {
            uid: shard.uid,
            number: shard.number,
            core: shard.core as usize,
            seq_prefix: shard.seq_prefix,
            retention_ms,
            open: shard.is_open(),
            ending_index: shard.ending_index,
        }
    }

    pub fn spec(&self) -> ShardSpec {
        ShardSpec { uid: self.uid, seq_prefix: self.seq_prefix, retention_ms: self.retention_ms }
    }
}

/// One stream as the data plane sees it.
#[derive(Debug, Clone)]
pub struct StreamRoute {
    pub meta: StreamMeta,
    /// The stream's resource policy, parsed once here rather than on every authorization.
    pub policy: Option<Arc<Policy>>,
    /// Each consumer's resource policy, by consumer name.
    pub consumer_policies: HashMap<String, Arc<Policy>>,
    /// Open shards sorted by the start of their hash-key range.
    open_ranges: Vec<HashKeyRange>,
    open_shards: Vec<ShardRoute>,
    by_number: HashMap<u32, ShardRoute>,
}

impl StreamRoute {
    fn new(meta: &StreamMeta) -> StreamRoute {
        let retention_ms = meta.retention_ms();
        let mut open: Vec<_> = meta.shards.iter().filter(|shard| shard.is_open()).collect();
        open.sort_by_key(|shard| shard.hash_key_start);
        StreamRoute {
            meta: meta.clone(),
            policy: meta.resource_policy.as_deref().map(parse_policy),
            consumer_policies: meta
                .consumers
                .iter()
                .filter_map(|consumer| {
                    Some((consumer.name.clone(), parse_policy(consumer.resource_policy.as_deref()?)))
                })
                .collect(),
            open_ranges: open.iter().map(|shard| shard.hash_key_range()).collect(),
            open_shards: open.iter().map(|shard| ShardRoute::new(shard, retention_ms)).collect(),
            by_number: meta.shards.iter().map(|shard| (shard.number, ShardRoute::new(shard, retention_ms))).collect(),
        }
    }

    /// The open shard whose range holds `key`.
    pub fn shard_for(&self, key: HashKey) -> Option<ShardRoute> {
        find_range(&self.open_ranges, key).map(|index| self.open_shards[index])
    }

    /// The open shards with their hash-key ranges, by the ranges' starts.
    pub fn open_shards(&self) -> impl ExactSizeIterator<Item = (HashKeyRange, ShardRoute)> + '_ {
        self.open_ranges.iter().copied().zip(self.open_shards.iter().copied())
    }

    pub fn shard(&self, number: u32) -> Option<ShardRoute> {
        self.by_number.get(&number).copied()
    }

    /// Every shard of the stream, open or closed.
    pub fn shards(&self) -> impl Iterator<Item = ShardRoute> + '_ {
        self.meta.shards.iter().filter_map(|shard| self.shard(shard.number))
    }
}

/// A stored resource policy, parsed. PutResourcePolicy stores only documents that parse, so
/// this fails only if the parser grew stricter since: then the policy denies everything (a
/// `Deny` it held must not be lost by reading it as no policy), and the log says so.
fn parse_policy(text: &str) -> Arc<Policy> {
    let parsed = Policy::parse(text, PolicyKind::Resource).unwrap_or_else(|error| {
        tracing::error!(%error, "a stored resource policy no longer parses: it denies every request until replaced");
        Policy::parse(DENY_EVERYTHING, PolicyKind::Resource).expect("the deny-everything policy parses")
    });
    Arc::new(parsed)
}

const DENY_EVERYTHING: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}"#;

fn members_of(catalog: &Catalog) -> Option<Arc<BTreeMap<u64, sluice_engine::catalog::CatalogMember>>> {
    catalog.members.clone().map(Arc::new)
}

/// The data plane's read-only view of the catalog.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub streams: HashMap<String, Arc<StreamRoute>>,
    /// The account's settings (UpdateAccountSettings), for the descriptions every core answers.
    pub account: sluice_engine::catalog::AccountSettings,
    /// A replicated node's members once an admin call changed them (`ops::cluster::members`).
    pub members: Option<Arc<BTreeMap<u64, sluice_engine::catalog::CatalogMember>>>,
    /// A replicated node's iterator key, the cluster's (`Catalog::iterator_key`).
    pub iterator_key: Option<IteratorKey>,
}

impl Routes {
    pub fn from_catalog(catalog: &Catalog) -> Routes {
        let streams = catalog.streams.iter().map(|(name, meta)| (name.clone(), Arc::new(StreamRoute::new(meta))));
        Routes {
            streams: streams.collect(),
            account: catalog.account.clone(),
            members: members_of(catalog),
            iterator_key: catalog.iterator_key.map(IteratorKey::from_bytes),
        }
    }

    /// The routes of `catalog`, sharing `previous`'s route of every stream whose metadata
    /// did not change: a catalog change touches one stream or a few, and rebuilding every
    /// stream's route (a clone of its metadata, its shard maps, its policies parsed again) made
    /// each CreateStream cost in proportion to every shard of the node (issue 19).
    pub fn updated(previous: &Routes, catalog: &Catalog) -> Routes {
        let streams = catalog.streams.iter().map(|(name, meta)| {
            let route = match previous.streams.get(name) {
                Some(route) if route.meta == *meta => route.clone(),
                _ => Arc::new(StreamRoute::new(meta)),
            };
            (name.clone(), route)
        });
        let members = match (&previous.members, &catalog.members) {
            (Some(previous), Some(members)) if **previous == *members => Some(previous.clone()),
            _ => members_of(catalog),
        };
        Routes {
            streams: streams.collect(),
            account: catalog.account.clone(),
            members,
            iterator_key: catalog.iterator_key.map(IteratorKey::from_bytes),
        }
    }

    /// Every shard, by the core that owns it, in uid order: two snapshots with the same
    /// shards give equal lists, so a catalog change can tell which cores it changed.
    pub fn shards_by_core(&self) -> BTreeMap<usize, Vec<ShardRoute>> {
        let mut by_core: BTreeMap<usize, Vec<ShardRoute>> = BTreeMap::new();
        for stream in self.streams.values() {
            for shard in stream.shards() {
                by_core.entry(shard.core).or_default().push(shard);
            }
        }
        for shards in by_core.values_mut() {
            shards.sort_unstable_by_key(|shard| shard.uid);
        }
        by_core
    }
}

/// The current routes, shared by every core.
pub struct RouteTable(ArcSwap<Routes>);

impl RouteTable {
    pub fn new(routes: Routes) -> RouteTable {
        RouteTable(ArcSwap::from_pointee(routes))
    }

    pub fn load(&self) -> Arc<Routes> {
        self.0.load_full()
    }

    /// Makes `routes` the current routes; returns the previous ones.
    pub fn publish(&self, routes: Arc<Routes>) -> Arc<Routes> {
        self.0.swap(routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::catalog::CapacityMode;

    fn catalog(streams: &[&str]) -> Catalog {
        let mut catalog = Catalog::new(2);
        for name in streams {
            catalog.create_stream(name, 3, CapacityMode::Provisioned, 1_000).unwrap();
        }
        catalog
    }

    #[test]
    fn an_update_keeps_the_routes_of_unchanged_streams() {
        let mut catalog = catalog(&["a", "b"]);
        let before = Routes::from_catalog(&catalog);
        catalog.create_stream("c", 2, CapacityMode::Provisioned, 2_000).unwrap();
        catalog.streams.get_mut("b").unwrap().retention_hours = 48;
        let after = Routes::updated(&before, &catalog);
        assert!(Arc::ptr_eq(&before.streams["a"], &after.streams["a"]), "unchanged: shared");
        assert!(!Arc::ptr_eq(&before.streams["b"], &after.streams["b"]), "changed: rebuilt");
        assert_eq!(after.streams["b"].meta.retention_hours, 48);
        assert_eq!(after.streams["c"].shards().count(), 2);
        assert_eq!(after.shards_by_core(), Routes::from_catalog(&catalog).shards_by_core());
    }

    #[test]
    fn snapshots_of_one_catalog_list_the_same_shards_per_core() {
        // Each `HashMap` iterates in its own order: the lists must not depend on it.
        let catalog = catalog(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        let first = Routes::from_catalog(&catalog).shards_by_core();
        for _ in 0..8 {
            assert_eq!(Routes::from_catalog(&catalog).shards_by_core(), first);
        }
        assert_eq!(first.values().map(Vec::len).sum::<usize>(), 24);
    }
}
