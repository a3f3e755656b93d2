//! Snapshots of a shard's group: how a member whose log the others compacted past catches up
//! (issue 13, `docs/replication.md`, "Snapshots").
//!
//! A shard's logs are compacted without waiting for a member that lacks more than
//! [`LAGGARD_HELD_SEGMENTS`] segments of them (a member down for long would otherwise keep every
//! entry since on the others' disks). Such a member is sent a snapshot instead: the Raft index
//! and the shard's next record index there (the applier's saved [`Progress`], which it offers
//! with each report of what the journal holds durably). It then
//!
//! 1. waits until its applier has applied everything committed here (or, restarted, waits to
//!    confirm its journal's newest entry, which only the snapshot may commit here), so that its
//!    journal ends where its applied entries do;
//! 2. copies the records it lacks from the sender's journal ([`serve`] answers there), raw:
//!    sealed records stay sealed, with the arrival time each had, in pieces of at most
//!    [`COPY_PIECE_BYTES`] over the peer network (`PeerNetwork::fetch`), and appends them to its
//!    own journal at the same record indexes (`Journal::queue_at`), so that sequence numbers,
//!    times and bytes are the same on every member;
//! 3. saves the progress at the snapshot, and only then lets raft-rs install it (the log then
//!    starts after it); its applier continues there.
//!
//! A member that lacks records the sender's retention already dropped (a new member, or one
//! down for longer than the others kept them) starts its shard where the sender's records
//! start (`Journal::restart_shard_at`): the records it held before them, which the same
//! retention has dropped on the sender, go here too, as if its own retention had dropped them,
//! and the new start is in its watermarks before anything is appended there. A member that
//! fails (the sender does not answer) drops the snapshot; its leader sends another.
//! Unfinished: tested at the journal's level (`a_shard_restarts_at_a_peers_retention_and_keeps_
//! it_across_a_restart`) but not in a cluster, where retention would have
//! to drop records within a test (records are kept 24 hours at least, and no clock can be
//! moved).

use crate::ops::cluster::records::{Progress, ShardGroup};
use crate::ops::node::Node;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use sluice_cluster::host::Restorer;
use sluice_cluster::limits::TICK_INTERVAL_MS;
use sluice_cluster::replica::{Restored, SnapshotToRestore};
use sluice_cluster::transport::{CopyRequest, PeerNetwork};
use sluice_cluster::wire::{GroupId, COPY_DATA_BYTES_MAX};
use sluice_engine::format::RaftPosition;
use sluice_engine::AppendRecord;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Segments of a shard's log a member behind may hold back on the others (256 MiB with the
/// default 8 MiB segments): a member restarted within that catches up from the logs, entry by
/// entry; one further behind gets a snapshot and copies records instead.
pub const LAGGARD_HELD_SEGMENTS: u64 = 32;

/// Bytes of records a copy request asks for (and a peer answers with, at least one record).
pub const COPY_PIECE_BYTES: u32 = 1 << 20;
const _: () = assert!((COPY_PIECE_BYTES as usize) * 2 < COPY_DATA_BYTES_MAX);

/// Records one answer holds at most.
const COPY_PIECE_RECORDS_MAX: usize = 10_000;

/// How long a restoring member waits for its applier to finish what is committed here.
const APPLIER_IDLE_WAIT: Duration = Duration::from_secs(10);

/// What a core's shard groups' snapshots did since start-up (the metrics'
/// `sluice_raft_snapshots_*`).
#[derive(Default)]
pub struct SnapshotCounts {
    pub restored: Cell<u64>,
    pub failed: Cell<u64>,
    pub records_copied: Cell<u64>,
}

/// What a peer answers a copy request with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Records from the position asked on, at consecutive record indexes.
    Records(Vec<CopiedRecord>),
    /// The shard's oldest record here is at `first` (retention dropped those before).
    Trimmed { first: u64 },
    /// No such shard on this member's core.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CopiedRecord {
    arrival_ms: i64,
    sealed: bool,
    partition_key: Bytes,
    data: Bytes,
    /// The Raft entry the record came from, as the sender's journal says: the copy's runs
    /// carry it too.
    raft: Option<RaftPosition>,
}

const PIECE_RECORDS: u8 = 0;
const PIECE_TRIMMED: u8 = 1;
const PIECE_UNKNOWN: u8 = 2;
/// Records of which some carry a Raft position: each record starts with its term and index
/// (both 0 for none). Sent only then, so a piece of records without positions is what it was.
const PIECE_RECORDS_WITH_RAFT: u8 = 3;

/// `kind u8`, then for records `count u32` and per record (`raft_term u64 | raft_index u64`
/// in [`PIECE_RECORDS_WITH_RAFT`] only) `arrival_ms i64 | sealed u8 | key_len u32 | key |
/// data_len u32 | data`; for trimmed `first u64`. Little endian.
fn encode_piece(piece: &Piece) -> Bytes {
    let mut bytes = BytesMut::new();
    match piece {
        Piece::Records(records) => {
            let with_raft = records.iter().any(|record| record.raft.is_some());
            bytes.put_u8(if with_raft { PIECE_RECORDS_WITH_RAFT } else { PIECE_RECORDS });
            bytes.put_u32_le(records.len() as u32);
            for record in records {
                if with_raft {
                    let position = record.raft.unwrap_or(RaftPosition { term: 0, index: 0 });
                    bytes.put_u64_le(position.term);
                    bytes.put_u64_le(position.index);
                }
                bytes.put_i64_le(record.arrival_ms);
                bytes.put_u8(u8::from(record.sealed));
                bytes.put_u32_le(record.partition_key.len() as u32);
                bytes.put_slice(&record.partition_key);
                bytes.put_u32_le(record.data.len() as u32);
                bytes.put_slice(&record.data);
            }
        }
        Piece::Trimmed { first } => {
            bytes.put_u8(PIECE_TRIMMED);
            bytes.put_u64_le(*first);
        }
        Piece::Unknown => bytes.put_u8(PIECE_UNKNOWN),
    }
    bytes.freeze()
}

/// Decodes a peer's answer; an error (never a panic, nor an allocation past the answer's
/// own size) for anything else.
fn decode_piece(mut bytes: Bytes) -> Result<Piece, String> {
    let take = |bytes: &mut Bytes, length: usize, what: &str| {
        if bytes.remaining() < length {
            return Err(format!("{what}: {length} bytes wanted, {} left", bytes.remaining()));
        }
        Ok(bytes.split_to(length))
    };
    let kind = take(&mut bytes, 1, "kind")?[0];
    let piece = match kind {
        PIECE_RECORDS | PIECE_RECORDS_WITH_RAFT => {
            let count = take(&mut bytes, 4, "count")?.get_u32_le() as usize;
            if count > COPY_PIECE_RECORDS_MAX {
                return Err(format!("{count} records in one piece"));
            }
            let mut records = Vec::with_capacity(count);
            for _ in 0..count {
                let raft = if kind == PIECE_RECORDS_WITH_RAFT {
                    let term = take(&mut bytes, 8, "Raft term")?.get_u64_le();
                    let index = take(&mut bytes, 8, "Raft index")?.get_u64_le();
                    match (term, index) {
                        (0, 0) => None,
                        (_, 0) => return Err(format!("Raft term {term} without an index")),
                        (term, index) => Some(RaftPosition { term, index }),
                    }
                } else {
                    None
                };
                let arrival_ms = take(&mut bytes, 8, "arrival")?.get_i64_le();
                let sealed = match take(&mut bytes, 1, "sealed")?[0] {
                    0 => false,
                    1 => true,
                    other => return Err(format!("sealed flag {other}")),
                };
                let key_len = take(&mut bytes, 4, "key length")?.get_u32_le() as usize;
                let partition_key = take(&mut bytes, key_len, "key")?;
                let data_len = take(&mut bytes, 4, "data length")?.get_u32_le() as usize;
                let data = take(&mut bytes, data_len, "data")?;
                records.push(CopiedRecord { arrival_ms, sealed, partition_key, data, raft });
            }
            if kind == PIECE_RECORDS_WITH_RAFT && records.iter().all(|record| record.raft.is_none()) {
                return Err("records with Raft positions carry none".to_owned());
            }
            Piece::Records(records)
        }
        PIECE_TRIMMED => Piece::Trimmed { first: take(&mut bytes, 8, "first")?.get_u64_le() },
        PIECE_UNKNOWN => Piece::Unknown,
        other => return Err(format!("kind {other}")),
    };
    if bytes.has_remaining() {
        return Err(format!("{} bytes after the piece", bytes.remaining()));
    }
    Ok(piece)
}

/// On every core of a replicated node, for the executor's life: answers the peers' copy
/// requests from this core's journal, one at a time (restores are rare, and each piece is one
/// read of at most [`COPY_PIECE_BYTES`]).
pub async fn serve(node: Rc<Node>, network: PeerNetwork) {
    let requests = network.copy_requests();
    while let Ok(request) = requests.recv().await {
        if request.group == crate::ops::cluster::META_GROUP {
            // The catalog's group runs on core 0, which holds the catalog.
            if node.id == 0 {
                network.answer(&request, crate::ops::cluster::membership::catalog_piece(&node, &request));
            }
            continue;
        }
        if let Some(asked) = request.runs {
            // A page of the shard's log as the journal holds it, for a member restoring into
            // its journal (not asked yet: `sluiced`'s groups keep `DurableLog`).
            let page = sluice_cluster::journal_log::answer_runs(&node.journal, request.group.0, request.from, asked);
            network.answer(&request, page.await);
            continue;
        }
        let piece = read_piece(&node, &request).await;
        network.answer(&request, encode_piece(&piece));
    }
}

/// The records of shard `request.group` from record index `request.from` on, as stored.
async fn read_piece(node: &Node, request: &CopyRequest) -> Piece {
    let uid = request.group.0;
    let bytes_max = request.bytes_max.min(COPY_PIECE_BYTES) as usize;
    let batch = match node.journal.read(uid, request.from, COPY_PIECE_RECORDS_MAX, bytes_max).await {
        Ok(batch) => batch,
        Err(_) => return Piece::Unknown,
    };
    let mut records = Vec::with_capacity(batch.records.len());
    for (at, record) in batch.records.into_iter().enumerate() {
        let index = record.sequence_number.record_index();
        if index != request.from + at as u64 {
            // Reading starts at the trim horizon at the earliest.
            if at == 0 {
                return Piece::Trimmed { first: index };
            }
            break;
        }
        records.push(CopiedRecord {
            arrival_ms: record.timestamp_ms,
            sealed: record.sealed,
            partition_key: record.partition_key,
            data: record.data,
            raft: record.raft,
        });
    }
    Piece::Records(records)
}

/// What shard `uid`'s group restores a snapshot with (see the module doc).
pub fn restorer(node: Rc<Node>, uid: u64) -> Restorer {
    Rc::new(move |snapshot: SnapshotToRestore| {
        let node = node.clone();
        Box::pin(async move {
            let outcome = restore(&node, uid, &snapshot).await;
            if let Some(core) = crate::ops::cluster::core() {
                let counts = &core.snapshots;
                match &outcome {
                    Ok(records) => {
                        counts.restored.set(counts.restored.get() + 1);
                        counts.records_copied.set(counts.records_copied.get() + records);
                    }
                    Err(_) => counts.failed.set(counts.failed.get() + 1),
                }
            }
            match outcome {
                Ok(records) => {
                    tracing::info!(
                        shard = uid,
                        entry = snapshot.index,
                        from = snapshot.from,
                        records,
                        "replication: the shard caught up from a snapshot"
                    );
                    Restored::Done
                }
                Err(why) => {
                    // The replica takes the leader's next one a while later (not blocked
                    // meanwhile: it may have to vote).
                    tracing::warn!(shard = uid, entry = snapshot.index, from = snapshot.from, %why, "replication: a snapshot could not be restored; the leader sends another");
                    // The log is untouched: what was copied stays in the journal, and the
                    // next copy starts after it.
                    Restored::Dropped
                }
            }
        })
    })
}

/// Brings shard `uid`'s journal up to `snapshot` and saves the progress there; the number of
/// records copied, or why not.
async fn restore(node: &Node, uid: u64, snapshot: &SnapshotToRestore) -> Result<u64, String> {
    let target = Progress::decode(&snapshot.state).ok_or("the snapshot's state is not a shard's progress")?;
    if target.index != snapshot.index {
        return Err(format!("the snapshot's progress is at entry {}", target.index));
    }
    let core = crate::ops::cluster::core().ok_or("replication is not running on this core")?;
    let group = core.group(uid).ok_or("the shard has no group here")?;
    wait_for_idle_applier(&group).await?;
    let (trim, mut next) = node.journal.bounds(uid).await.map_err(|error| error.to_string())?;
    if next > target.next_record_index {
        return Err(format!(
            "the journal holds records to index {next}, past the snapshot's {}",
            target.next_record_index
        ));
    }
    let mut copied_from = next;
    while next < target.next_record_index {
        let answer = core.network.fetch(snapshot.from, GroupId(uid), next, COPY_PIECE_BYTES).await;
        let answer = answer.ok_or_else(|| format!("node {} did not answer for record {next}", snapshot.from))?;
        let records = match decode_piece(answer).map_err(|why| format!("a piece that does not decode: {why}"))? {
            Piece::Records(records) if !records.is_empty() => records,
            Piece::Records(_) => return Err(format!("node {} has no record {next}", snapshot.from)),
            Piece::Trimmed { first } if first > next => {
                // The sender's retention dropped the records before `first`, and this member
                // holds none from there (none at all, or only records before `next`, which the
                // same retention has dropped there): its shard starts at `first` too, its own
                // records before it gone (reads start there, as after retention here).
                let start = first.min(target.next_record_index);
                node.journal.restart_shard_at(uid, start).await.map_err(|error| error.to_string())?;
                tracing::info!(
                    shard = uid,
                    start,
                    dropped = next - trim,
                    "replication: the shard starts past the sender's retention here too"
                );
                (next, copied_from) = (start, start);
                continue;
            }
            Piece::Trimmed { first } => {
                return Err(format!("node {} answered that it holds records from index {first} only", snapshot.from))
            }
            Piece::Unknown => return Err(format!("node {} does not hold the shard", snapshot.from)),
        };
        let wanted = (target.next_record_index - next) as usize;
        let mut queued = Vec::new();
        let mut records = records.into_iter().take(wanted).peekable();
        // The records of one entry (one Raft position, or without positions one run of equal
        // arrival times) go in one append, as their entries did.
        while let Some(first) = records.next() {
            let (arrival_ms, raft) = (first.arrival_ms, first.raft);
            let mut run = vec![first];
            while let Some(record) = records.next_if(|record| record.arrival_ms == arrival_ms && record.raft == raft) {
                run.push(record);
            }
            let count = run.len() as u64;
            let run = run
                .into_iter()
                .map(|record| AppendRecord {
                    shard_uid: uid,
                    partition_key: record.partition_key,
                    data: record.data,
                    sealed: record.sealed,
                })
                .collect();
            let append = node.journal.queue_at(run, arrival_ms, next, raft).await.map_err(|error| error.to_string())?;
            queued.push(append);
            next += count;
        }
        for mut append in queued {
            append.durable().await.map_err(|error| error.to_string())?;
        }
    }
    group.restored_to(target).await?;
    Ok(next - copied_from)
}

/// Waits until the applier applies nothing more (no new entries commit while the replica
/// restores: it has applied every one committed here, or waits to confirm the journal's newest
/// entry, `ShardGroup::applier_idle`), so that the journal ends where the applied entries do.
async fn wait_for_idle_applier(group: &ShardGroup) -> Result<(), String> {
    let start = Instant::now();
    while !group.applier_idle() {
        if start.elapsed() > APPLIER_IDLE_WAIT {
            return Err(format!(
                "the applier stayed at entry {} of {} committed",
                group.applied_index(),
                group.host.status().commit
            ));
        }
        glommio::timer::sleep(Duration::from_millis(TICK_INTERVAL_MS)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pieces_round_trip() {
        let record = |arrival_ms, sealed, data: &'static str, raft| CopiedRecord {
            arrival_ms,
            sealed,
            partition_key: Bytes::from("key"),
            data: Bytes::from(data),
            raft,
        };
        let records = vec![record(5, false, "data", None), record(7, true, "", None)];
        let position = Some(RaftPosition { term: 3, index: 12 });
        let with_raft = vec![record(5, false, "data", position), record(7, true, "", None)];
        let pieces = [
            Piece::Records(records),
            Piece::Records(with_raft.clone()),
            Piece::Records(Vec::new()),
            Piece::Trimmed { first: 9 },
            Piece::Unknown,
        ];
        for piece in pieces {
            assert_eq!(decode_piece(encode_piece(&piece)), Ok(piece));
        }
        assert_eq!(encode_piece(&Piece::Records(with_raft))[0], PIECE_RECORDS_WITH_RAFT);
        assert!(decode_piece(Bytes::from_static(&[PIECE_UNKNOWN, 0])).is_err());
        assert!(decode_piece(Bytes::from_static(&[PIECE_RECORDS, 255, 255, 255, 255])).is_err());
    }

    proptest! {
        #[test]
        fn decoding_survives_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(piece) = decode_piece(Bytes::from(bytes.clone())) {
                prop_assert_eq!(&encode_piece(&piece)[..], &bytes[..]);
            }
        }
    }
}
