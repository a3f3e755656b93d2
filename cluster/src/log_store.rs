//! What raft-rs reads a replica's log through ([`raft::Storage`]), with memory bounded: the
//! newest entries in a cache of at most `ReplicaConfig::entry_cache_bytes`, and for every
//! entry only its place in `raft.log` (8 bytes) and its term (one pair per run of a term).
//!
//! raft-rs reads entries in two ways. Entries to apply, and those a campaign or a vote checks
//! for configuration changes, it needs at once: they all follow the applied index, and the
//! cache never gives up an entry that is not applied yet ([`LogStore::evict`]). Entries to
//! send to a follower that is behind may come later: for those the store answers
//! `LogTemporarilyUnavailable` and records the request; the replica reads the entries from
//! disk ([`LogStore::take_wanted`], then [`LogStore::add_fetched`]) and tells raft-rs to ask
//! again (`RawNode::on_entries_fetched`), as raft-rs' `Storage::entries` docs describe.
//!
//! The log's oldest entries go once every member has them and this node's state machine has
//! applied them durably ([`LogStore::compact`]): raft-rs then sees a log that starts later
//! (`first_index`), and knows only the term of the entry before it.
//!
//! Snapshots: the host offers, with each report of what its state machine holds durably
//! ([`LogStore::offer_snapshot`]), the bytes a member needs to restore its state machine to
//! that index from a peer; raft-rs sends them when a follower needs entries the log no longer
//! has, and a follower that installs one starts its log after it ([`LogStore::restore`]).

use std::cell::RefCell;
use std::collections::VecDeque;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

/// Requests for entries kept for the replica to fetch; more are refused (raft-rs asks again at
/// the follower's next response).
const WANTED_MAX: usize = 8;

/// Batches read from disk and not yet taken by raft-rs; the oldest is dropped beyond this.
const FETCHED_MAX: usize = 8;

/// A read raft-rs asked for that the cache could not serve: entries from `low` (below the
/// cache), before `high`, at most `max_size` bytes.
pub struct Wanted {
    pub low: u64,
    pub high: u64,
    pub max_size: Option<u64>,
    pub context: GetEntriesContext,
}

pub struct LogStore {
    core: RefCell<Core>,
}

struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    /// The entry (or snapshot) that made `conf_state` (0: the group started with it).
    conf_index: u64,
    /// The first entry the log holds; those before it were compacted.
    first: u64,
    /// The term of entry `first - 1` (0 if none).
    compacted_term: u64,
    /// Where entry `i`'s frame starts in the log's segments (`durable_log`), at
    /// `offsets[i - first]`.
    offsets: VecDeque<u64>,
    /// `(first index, term)` of each run of entries of one term, in index order.
    terms: Vec<(u64, u64)>,
    /// The newest entries, contiguous and ending at the last index (empty: none cached).
    cache: VecDeque<Entry>,
    cache_bytes: usize,
    cache_bytes_max: usize,
    wanted: Vec<Wanted>,
    /// Entries read from disk for a request, each batch contiguous.
    fetched: VecDeque<Vec<Entry>>,
    /// The newest snapshot the host offered: an index its state machine holds durably, and
    /// what a member needs to restore its own to that index.
    offered: Option<(u64, bytes::Bytes)>,
}

fn entry_bytes(entry: &Entry) -> usize {
    entry.data.len() + entry.context.len() + 32
}

impl LogStore {
    /// An empty store over a log compacted up to `compacted` (index and term; 0 and 0 for a
    /// log that starts at entry 1): its entries come with [`LogStore::append`].
    pub fn new(
        hard_state: HardState,
        conf_state: ConfState,
        compacted: (u64, u64),
        cache_bytes_max: usize,
    ) -> LogStore {
        let core = Core {
            hard_state,
            conf_state,
            conf_index: 0,
            first: compacted.0 + 1,
            compacted_term: compacted.1,
            offsets: VecDeque::new(),
            terms: Vec::new(),
            cache: VecDeque::new(),
            cache_bytes: 0,
            cache_bytes_max,
            wanted: Vec::new(),
            fetched: VecDeque::new(),
            offered: None,
        };
        LogStore { core: RefCell::new(core) }
    }

    pub fn hard_state(&self) -> HardState {
        self.core.borrow().hard_state.clone()
    }

    pub fn set_hard_state(&self, hard_state: HardState) {
        self.core.borrow_mut().hard_state = hard_state;
    }

    /// The group's membership, as of entry (or snapshot) `index`.
    pub fn set_conf_state(&self, index: u64, conf_state: ConfState) {
        let mut core = self.core.borrow_mut();
        core.conf_index = index;
        core.conf_state = conf_state;
    }

    pub fn conf_state(&self) -> ConfState {
        self.core.borrow().conf_state.clone()
    }

    /// The entry (or snapshot) that made the membership (0: the group started with it).
    pub fn conf_index(&self) -> u64 {
        self.core.borrow().conf_index
    }

    pub fn set_commit(&self, commit: u64) {
        self.core.borrow_mut().hard_state.commit = commit;
    }

    /// Entries just made durable at `offsets` in the log (one per entry). An entry whose
    /// index is in the log already replaces it and every entry after it, as in Raft.
    pub fn append(&self, entries: &[Entry], offsets: &[u64]) {
        let Some(first) = entries.first() else { return };
        debug_assert_eq!(entries.len(), offsets.len());
        let mut core = self.core.borrow_mut();
        let first_index = first.index;
        let last = core.last_index();
        assert!(
            first_index >= core.first && first_index <= last + 1,
            "entries from {first_index} appended to a log of entries {} to {last}",
            core.first
        );
        let keep = (first_index - core.first) as usize;
        core.offsets.truncate(keep);
        while core.terms.last().is_some_and(|&(run_first, _)| run_first >= first_index) {
            core.terms.pop();
        }
        while core.cache.back().is_some_and(|entry| entry.index >= first_index) {
            let dropped = core.cache.pop_back().expect("just seen");
            core.cache_bytes -= entry_bytes(&dropped);
        }
        if core.cache.back().is_none_or(|entry| entry.index + 1 != first_index) {
            // The cache must end at the last entry: older cached entries no longer join.
            core.cache.clear();
            core.cache_bytes = 0;
        }
        for (entry, &offset) in entries.iter().zip(offsets) {
            core.offsets.push_back(offset);
            if core.terms.last().is_none_or(|&(_, term)| term != entry.term) {
                core.terms.push((entry.index, entry.term));
            }
            core.cache_bytes += entry_bytes(entry);
            core.cache.push_back(entry.clone());
        }
        // Batches fetched before this append may hold entries it replaced.
        core.fetched.clear();
    }

    /// Forgets entries up to `index` (applied and durable in the state machine, and held by
    /// every member): the log starts at `index + 1` from now on. An index not past the start,
    /// or past the last entry, changes nothing.
    pub fn compact(&self, index: u64) {
        let mut core = self.core.borrow_mut();
        if index < core.first || index > core.last_index() {
            return;
        }
        let term = core.term_of(index).expect("within the log");
        let dropped = (index + 1 - core.first) as usize;
        core.offsets.drain(..dropped);
        core.first = index + 1;
        core.compacted_term = term;
        // Term runs wholly before the new start go; the one it falls in starts there.
        let runs_before = core.terms.partition_point(|&(run_first, _)| run_first <= index + 1);
        if runs_before > 0 {
            core.terms.drain(..runs_before - 1);
            if let Some(run) = core.terms.first_mut() {
                run.0 = run.0.max(index + 1);
            }
        }
        if core.offsets.is_empty() {
            core.terms.clear();
        }
        while core.cache.front().is_some_and(|entry| entry.index <= index) {
            let gone = core.cache.pop_front().expect("just seen");
            core.cache_bytes -= entry_bytes(&gone);
        }
        core.fetched.clear();
        core.wanted.retain(|wanted| wanted.low > index);
    }

    /// The host's state machine holds every entry up to `index` durably, and `state` is what a
    /// member needs to restore its own to that index: a follower behind the log's start is sent
    /// the newest such offer (only one at or after the log's start can be sent).
    pub fn offer_snapshot(&self, index: u64, state: bytes::Bytes) {
        let mut core = self.core.borrow_mut();
        if core.offered.as_ref().is_none_or(|(offered, _)| index >= *offered) {
            core.offered = Some((index, state));
        }
    }

    /// A snapshot of entries up to `index` (of `term`) is installed: the state machine holds
    /// them, and the log starts after it, empty (whatever it held is gone, as raft-rs' own
    /// log forgot it when it took the snapshot). The commit is at least `index`.
    pub fn restore(&self, index: u64, term: u64) {
        let mut core = self.core.borrow_mut();
        core.first = index + 1;
        core.compacted_term = term;
        core.hard_state.commit = core.hard_state.commit.max(index);
        core.offsets.clear();
        core.terms.clear();
        core.cache.clear();
        core.cache_bytes = 0;
        core.fetched.clear();
        core.wanted.clear();
    }

    /// Forgets every entry after the compaction point (recovery, reading a frame that
    /// replaced them).
    pub fn discard_all(&self) {
        let mut core = self.core.borrow_mut();
        core.offsets.clear();
        core.terms.clear();
        core.cache.clear();
        core.cache_bytes = 0;
        core.fetched.clear();
    }

    /// The first entry the log holds (those before it were compacted).
    pub fn first_index(&self) -> u64 {
        self.core.borrow().first
    }

    /// Drops the oldest cached entries beyond the cache's size, never one after `applied`
    /// (raft-rs reads unapplied entries synchronously).
    pub fn evict(&self, applied: u64) {
        let mut core = self.core.borrow_mut();
        while core.cache_bytes > core.cache_bytes_max {
            match core.cache.front() {
                Some(entry) if entry.index <= applied => {
                    let dropped = core.cache.pop_front().expect("just seen");
                    core.cache_bytes -= entry_bytes(&dropped);
                }
                _ => break,
            }
        }
    }

    /// The reads raft-rs asked for that need the disk.
    pub fn take_wanted(&self) -> Vec<Wanted> {
        std::mem::take(&mut self.core.borrow_mut().wanted)
    }

    /// Entries read from disk for a [`Wanted`] read, from its `low`.
    pub fn add_fetched(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut core = self.core.borrow_mut();
        if core.fetched.len() >= FETCHED_MAX {
            core.fetched.pop_front();
        }
        core.fetched.push_back(entries);
    }

    /// Where entry `index`'s frame is in the log, if the log has it.
    pub fn offset(&self, index: u64) -> Option<u64> {
        let core = self.core.borrow();
        core.offsets.get(usize::try_from(index.checked_sub(core.first)?).ok()?).copied()
    }

    /// The log's entries from `index` to its end that are cached (none if `index` is older).
    pub fn cached_from(&self, index: u64, bytes_max: usize) -> Option<Vec<Entry>> {
        let core = self.core.borrow();
        let first = core.cache.front()?.index;
        if index < first || index > core.last_index() {
            return None;
        }
        let mut entries = Vec::new();
        let mut bytes = 0;
        for entry in core.cache.iter().skip((index - first) as usize) {
            bytes += entry_bytes(entry);
            if bytes > bytes_max && !entries.is_empty() {
                break;
            }
            entries.push(entry.clone());
        }
        Some(entries)
    }

    pub fn last_index(&self) -> u64 {
        self.core.borrow().last_index()
    }

    /// The term of entry `index` (0 for index 0), if the log has it.
    pub fn term_of(&self, index: u64) -> Option<u64> {
        self.core.borrow().term_of(index)
    }

    /// Bytes the cache holds (for tests and metrics).
    pub fn cache_bytes(&self) -> usize {
        self.core.borrow().cache_bytes
    }
}

impl Core {
    fn last_index(&self) -> u64 {
        self.first + self.offsets.len() as u64 - 1
    }

    /// The term of entry `index`, from the entry before the first on (0 for index 0).
    fn term_of(&self, index: u64) -> Option<u64> {
        if index + 1 == self.first {
            return Some(self.compacted_term);
        }
        if index < self.first || index > self.last_index() {
            return None;
        }
        let run = self.terms.partition_point(|&(first, _)| first <= index);
        Some(self.terms[run.checked_sub(1)?].1)
    }
}

fn limited(entries: impl Iterator<Item = Entry>, max_size: Option<u64>) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut bytes: u64 = 0;
    for entry in entries {
        bytes += entry_bytes(&entry) as u64;
        if max_size.is_some_and(|max| bytes > max) && !out.is_empty() {
            break;
        }
        out.push(entry);
    }
    out
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.core.borrow();
        Ok(RaftState::new(core.hard_state.clone(), core.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max_size = max_size.into();
        let mut core = self.core.borrow_mut();
        let last = core.last_index();
        if low < core.first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > last + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if low == high {
            return Ok(Vec::new());
        }
        let cache_first = core.cache.front().map_or(last + 1, |entry| entry.index);
        if low >= cache_first {
            let skip = (low - cache_first) as usize;
            let take = (high - low) as usize;
            return Ok(limited(core.cache.iter().skip(skip).take(take).cloned(), max_size));
        }
        if let Some(at) = core.fetched.iter().position(|batch| batch[0].index == low) {
            let batch = core.fetched.remove(at).expect("just found");
            let take = (high - low) as usize;
            return Ok(limited(batch.into_iter().take(take), max_size));
        }
        if context.can_async() {
            if core.wanted.len() < WANTED_MAX && !core.wanted.iter().any(|wanted| wanted.low == low) {
                core.wanted.push(Wanted { low, high: high.min(cache_first), max_size, context });
            }
            return Err(raft::Error::Store(StorageError::LogTemporarilyUnavailable));
        }
        // Never: what raft-rs needs at once follows the applied index, and stays cached.
        Err(raft::Error::Store(StorageError::Unavailable))
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let core = self.core.borrow();
        if index + 1 < core.first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        core.term_of(index).ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.core.borrow().first)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.core.borrow().last_index())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The newest offer, if the log still knows its term (it is at or after the entry
        // before the first): the follower then gets every entry after it from the log. None
        // yet (a host that restores from no snapshot, or a replica just started): raft-rs asks
        // again at the follower's next answer.
        // The snapshot carries the membership as of its index: the current one, if it changed
        // at or before the offer (else wait for an offer past the change).
        let core = self.core.borrow();
        let unavailable = raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable);
        let offer = core.offered.as_ref().filter(|(index, _)| *index > 0 && *index >= core.conf_index);
        let Some((index, state)) = offer else { return Err(unavailable) };
        let Some(term) = core.term_of(*index) else { return Err(unavailable) };
        let mut snapshot = Snapshot { data: state.clone(), ..Snapshot::default() };
        let metadata = snapshot.mut_metadata();
        metadata.index = *index;
        metadata.term = term;
        metadata.set_conf_state(core.conf_state.clone());
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage;

    fn entry(index: u64, term: u64, bytes: usize) -> Entry {
        Entry { index, term, data: vec![index as u8; bytes].into(), ..Entry::default() }
    }

    fn store(cache_bytes_max: usize) -> LogStore {
        LogStore::new(HardState::default(), ConfState::from((vec![1, 2, 3], vec![])), (0, 0), cache_bytes_max)
    }

    fn append(store: &LogStore, entries: &[Entry]) {
        let offsets: Vec<u64> = entries.iter().map(|entry| entry.index * 1000).collect();
        store.append(entries, &offsets);
    }

    #[test]
    fn terms_follow_appends_and_the_suffixes_they_replace() {
        let store = store(1 << 20);
        append(&store, &[entry(1, 1, 10), entry(2, 1, 10), entry(3, 2, 10), entry(4, 2, 10)]);
        assert_eq!((1..=4).map(|index| store.term(index).unwrap()).collect::<Vec<_>>(), [1, 1, 2, 2]);
        assert_eq!(store.term(0).unwrap(), 0);
        assert!(store.term(5).is_err());
        // A new leader of term 3 replaces entries 3 and 4.
        append(&store, &[entry(3, 3, 10)]);
        assert_eq!(store.last_index(), 3);
        assert_eq!((1..=3).map(|index| store.term(index).unwrap()).collect::<Vec<_>>(), [1, 1, 3]);
        let entries = store.entries(1, 4, None, GetEntriesContext::empty(false)).unwrap();
        assert_eq!(entries.iter().map(|entry| (entry.index, entry.term)).collect::<Vec<_>>(), [(1, 1), (2, 1), (3, 3)]);
        assert_eq!(store.offset(3), Some(3000));
    }

    #[test]
    fn eviction_keeps_unapplied_entries_and_old_ones_come_from_fetches() {
        let store = store(100);
        let entries: Vec<Entry> = (1..=10).map(|index| entry(index, 1, 40)).collect();
        append(&store, &entries);
        // Nothing applied: everything stays, over the bound.
        store.evict(0);
        assert_eq!(store.cached_from(1, usize::MAX).unwrap().len(), 10);
        store.evict(8);
        let cached = store.cached_from(9, usize::MAX).unwrap();
        assert_eq!(cached.len(), 2);
        assert!(store.cache_bytes() <= 2 * 72);
        assert!(store.cached_from(8, usize::MAX).is_none());
        // A send to a follower at 3 must wait for the disk; a read that cannot wait fails.
        let sending = GetEntriesContext::empty(true);
        let waiting = store.entries(3, 11, None, sending);
        assert!(matches!(waiting, Err(raft::Error::Store(StorageError::LogTemporarilyUnavailable))));
        assert!(store.entries(3, 11, None, GetEntriesContext::empty(false)).is_err());
        let wanted = store.take_wanted();
        assert_eq!(wanted.iter().map(|wanted| (wanted.low, wanted.high)).collect::<Vec<_>>(), [(3, 9)]);
        store.add_fetched(entries[2..8].to_vec());
        let served = store.entries(3, 11, Some(150), GetEntriesContext::empty(true)).unwrap();
        assert_eq!(served.iter().map(|entry| entry.index).collect::<Vec<_>>(), [3, 4]);
        // Served once: the next ask goes to the disk again.
        assert!(store.entries(3, 11, None, GetEntriesContext::empty(true)).is_err());
        // The newest entries are still served from the cache.
        let newest = store.entries(9, 11, None, GetEntriesContext::empty(false)).unwrap();
        assert_eq!(newest.iter().map(|entry| entry.index).collect::<Vec<_>>(), [9, 10]);
    }

    #[test]
    fn an_append_below_the_cache_restarts_it_at_the_new_entries() {
        let store = store(50);
        append(&store, &(1..=6).map(|index| entry(index, 1, 40)).collect::<Vec<_>>());
        store.evict(6);
        assert!(store.cached_from(5, usize::MAX).is_none());
        append(&store, &[entry(4, 2, 40)]);
        assert_eq!(store.last_index(), 4);
        let cached = store.cached_from(4, usize::MAX).unwrap();
        assert_eq!(cached.iter().map(|entry| (entry.index, entry.term)).collect::<Vec<_>>(), [(4, 2)]);
        assert_eq!(store.term(3).unwrap(), 1);
    }

    #[test]
    fn compaction_moves_the_start_and_keeps_the_term_before_it() {
        let store = store(1 << 20);
        let entries: Vec<Entry> = (1..=8).map(|index| entry(index, if index < 4 { 1 } else { 2 }, 10)).collect();
        append(&store, &entries);
        store.compact(5);
        assert_eq!(store.first_index(), 6);
        assert_eq!(raft::Storage::first_index(&store).unwrap(), 6);
        assert_eq!(store.last_index(), 8);
        assert_eq!(store.term(5).unwrap(), 2);
        assert!(matches!(store.term(4), Err(raft::Error::Store(StorageError::Compacted))));
        assert!(matches!(
            store.entries(5, 9, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        let held = store.entries(6, 9, None, GetEntriesContext::empty(false)).unwrap();
        assert_eq!(held.iter().map(|entry| entry.index).collect::<Vec<_>>(), [6, 7, 8]);
        assert_eq!(store.offset(5), None);
        assert_eq!(store.offset(6), Some(6000));
        // A replaced suffix after the start still works; one before it is a bug.
        append(&store, &[entry(7, 3, 10)]);
        assert_eq!((5..=7).map(|index| store.term(index).unwrap()).collect::<Vec<_>>(), [2, 2, 3]);
        // Compacting everything leaves an empty log after the last entry.
        store.compact(7);
        assert_eq!((store.first_index(), store.last_index()), (8, 7));
        assert_eq!(store.term(7).unwrap(), 3);
        assert!(store.entries(8, 8, None, GetEntriesContext::empty(false)).unwrap().is_empty());
        append(&store, &[entry(8, 3, 10)]);
        assert_eq!(store.term(8).unwrap(), 3);
        // Compacting at or before the start changes nothing.
        store.compact(6);
        assert_eq!(store.first_index(), 8);
    }
}
