//! Where a [`crate::replica::Replica`] keeps its log and hard state durably: the seam between
//! the Raft layer and the files.
//!
//! Two implement it: [`crate::durable_log::DurableLog`] (a log of its own per group, with its
//! own segments and syncs), which `sluiced` runs, and [`crate::journal_log::JournalLog`] (a
//! shard group's log as a view of the core's journal, whose runs carry their entries' Raft
//! positions and whose reads stop at what the group published, so that each record is written
//! and synced once: slice C in `docs/replication.md`), which the cluster simulation runs and
//! `sluiced` does not yet.
//!
//! What the replica relies on, whatever keeps the log:
//! - an entry appended is durable only once [`LogStorage::sync`] returns, and the replica
//!   tells Raft (and its peers) that it holds it only after;
//! - an append whose first index is already in the log replaces the log from that index on,
//!   durably once synced, and a restart never finds the replaced entries after the replacement
//!   is durable;
//! - each entry appended gets a *place* (a number that orders the log: a file offset, or the
//!   first record index of the entry's run), which [`crate::log_store::LogStore`] keeps in
//!   memory so that [`LogStorage::read`] can find an entry it no longer holds;
//! - the hard state and the membership are replaced atomically and durably.

use raft::eraftpb::{ConfState, Entry, HardState};

use crate::error::Result;
use crate::log_store::LogStore;

// The replica runs on a single-threaded executor (glommio's, or the simulation's), so the
// futures these methods return need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait LogStorage {
    /// Writes `entries` (consecutive indexes) at the log's end, or from their first index on
    /// if it is in the log already (a suffix replaced): not durable until
    /// [`LogStorage::sync`]. Returns each entry's place.
    async fn append(&mut self, entries: &[Entry]) -> Result<Vec<u64>>;

    /// Makes every entry appended so far durable.
    async fn sync(&mut self) -> Result<()>;

    /// Reads entries `from` to `to` (inclusive, all in the log) back from where `store` says
    /// each is: at most `bytes_max` bytes of data, but at least one entry. It stops before the
    /// first entry found gone ([`LogStorage::gone_through`]), which may be the first.
    async fn read(&self, from: u64, to: u64, bytes_max: usize, store: &LogStore) -> Result<Vec<Entry>>;

    /// The newest entry a read found gone although the log was not compacted past it (a log
    /// kept in the journal, whose retention deletes committed entries' records by age), 0 if
    /// none: the replica compacts past it, so that a member that needs it gets a snapshot
    /// instead.
    fn gone_through(&self) -> u64 {
        0
    }

    /// Bytes of storage the log's entries from place `from` to place `to` keep: a member that
    /// far behind holds them back on the others (`ReplicaConfig::laggard_held_bytes_max`).
    /// Only whether they pass `bytes_max` matters: past it, the count may stop. Places that
    /// are byte offsets measure it themselves.
    fn held_bytes(&self, from: u64, to: u64, bytes_max: u64) -> u64 {
        let _ = bytes_max;
        to.saturating_sub(from)
    }

    /// How many units of storage (segments) a compaction at `index` would free: the replica
    /// compacts only once it is worth it (`limits::COMPACT_SEGMENTS_MIN`).
    fn freed_by_compaction(&self, index: u64) -> usize;

    /// Records durably that the entries up to `index` (of `term`) are gone, and frees what
    /// held only them; returns how many units it freed. The caller keeps the hard state's
    /// commit at or past `index` on disk first, and has `store` compacted (it still holds the
    /// places of the entries after `index`).
    async fn compact(&mut self, index: u64, term: u64, store: &LogStore) -> Result<usize>;

    /// The host's state machine holds every entry up to `index` (of `term`), restored from a
    /// peer: the log continues at `index + 1`, whatever it held. The caller saves a hard state
    /// whose commit is at least `index` next.
    async fn install_snapshot(&mut self, index: u64, term: u64) -> Result<()>;

    /// Replaces the stored membership with `conf_state`, as of entry (or snapshot) `index`.
    async fn save_conf(&self, index: u64, conf_state: &ConfState) -> Result<()>;

    /// The group committed every entry up to `commit` (in the log, and durable here): a log
    /// that serves its entries' records to readers may serve these now. Called after every
    /// `Ready`, whether the commit moved or not.
    fn committed(&mut self, commit: u64, store: &LogStore) -> Result<()> {
        let _ = (commit, store);
        Ok(())
    }

    /// Replaces the stored hard state (the vote must be durable before the vote message
    /// leaves). Called after [`LogStorage::sync`] of the entries its commit covers.
    async fn save_hard_state(&self, hard_state: &HardState) -> Result<()>;
}
