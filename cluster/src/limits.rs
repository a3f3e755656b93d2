//! Limits of the replication layer, each with the reason for its value.

/// Largest Raft entry payload (data plus context), bytes. An entry is one group commit of a
/// shard: at most one PutRecords request (5 MiB, the Kinesis quota) plus framing, rounded up.
/// The log decoder treats a longer length as the end of the valid log (a torn or garbage tail).
pub const ENTRY_PAYLOAD_BYTES_MAX: usize = 6 << 20;

/// Inputs (ticks, messages, proposals) a replica's inbox holds. A full inbox drops the
/// message (Raft retransmits: it is a lossy network's loss), so a slow disk cannot make a
/// peer's memory grow. 1024 covers a burst of appends and heartbeats from two peers.
pub const INBOX_INPUTS_MAX: usize = 1024;

/// Ticks without a heartbeat after which a follower campaigns (raft-rs `election_tick`), and
/// the leader's lease. Nodes draw each election's timeout in `ELECTION_TICKS..2 *
/// ELECTION_TICKS` (raft-rs' randomised timeout) so elections do not split forever; the
/// simulation draws one value per boot from its seed instead (raft-rs randomises with a
/// thread-local RNG, which a seeded simulation cannot replay).
pub const ELECTION_TICKS: usize = 10;

/// Ticks at which a new group's chosen founder campaigns while no leader is known
/// (`ReplicaConfig::campaigns_when_new`), before leaving it to the election timeout: half the
/// shortest timeout, enough for peers a few milliseconds late to start the group, and over
/// before any other member's timeout could split the vote.
pub const FIRST_CAMPAIGN_TICKS: usize = ELECTION_TICKS / 2;

/// Ticks between a leader's heartbeats: well under the election timeout, as Raft requires.
pub const HEARTBEAT_TICKS: usize = 2;
const _: () = assert!(HEARTBEAT_TICKS * 3 <= ELECTION_TICKS);

/// Most bytes of entries in one append message (raft-rs `max_size_per_msg`): a follower far
/// behind catches up in steps this size instead of one message as large as the log.
pub const APPEND_MESSAGE_BYTES_MAX: u64 = 1 << 20;

/// Append messages a leader has in flight to one follower (raft-rs `max_inflight_msgs`).
pub const APPEND_MESSAGES_IN_FLIGHT_MAX: usize = 256;

/// Real time per Raft tick on a node, milliseconds. With [`ELECTION_TICKS`] and
/// [`HEARTBEAT_TICKS`] this gives heartbeats every 100 ms and an election timeout of 0.5 to
/// 1 s (each election draws its value in `ELECTION_TICKS..2 * ELECTION_TICKS`), etcd's defaults
/// halved: a leader's death is noticed within a second, well inside the 2 s failover
/// budget, while a 4 ms fdatasync stall (this machine's p99) costs no election.
pub const TICK_INTERVAL_MS: u64 = 50;

/// Largest frame between two nodes (a group id and one raft-rs message), bytes. An append
/// message holds up to [`APPEND_MESSAGE_BYTES_MAX`] of entries, but always at least one entry,
/// which may be [`ENTRY_PAYLOAD_BYTES_MAX`] on its own; protobuf adds a few bytes per entry.
/// A longer length prefix is a protocol error: the connection is closed, nothing allocated.
pub const PEER_FRAME_BYTES_MAX: usize = ENTRY_PAYLOAD_BYTES_MAX + APPEND_MESSAGE_BYTES_MAX as usize + (64 << 10);
const _: () = assert!(PEER_FRAME_BYTES_MAX < u32::MAX as usize);

/// Messages waiting to leave for one peer. A full queue drops the new message instead of
/// growing: Raft retransmits whatever a lossy network loses, and a peer that is down or slow
/// must not make this node's memory grow. 1024 is four times what a leader keeps in flight
/// to one follower ([`APPEND_MESSAGES_IN_FLIGHT_MAX`]).
pub const PEER_QUEUE_MESSAGES_MAX: usize = 1024;
const _: () = assert!(PEER_QUEUE_MESSAGES_MAX >= 2 * APPEND_MESSAGES_IN_FLIGHT_MAX);

/// Bytes of queued frames written to a peer's socket in one write: frames that piled up while
/// the previous write was under way leave together, without one write per heartbeat.
pub const PEER_WRITE_BATCH_BYTES_MAX: usize = 256 << 10;

/// First wait before dialing a peer again after a failed connection, milliseconds; doubled
/// after each failure up to [`RECONNECT_BACKOFF_MS_MAX`]. Short, so a restarted peer is
/// reached within a few ticks.
pub const RECONNECT_BACKOFF_MS_MIN: u64 = 10;

/// Longest wait between two dials of a peer, milliseconds: a peer that is down costs one
/// connection attempt per half second, and is reached within half a second once it is back
/// (an election timeout at most, so it catches up before it could campaign).
pub const RECONNECT_BACKOFF_MS_MAX: u64 = 500;
const _: () = assert!(RECONNECT_BACKOFF_MS_MIN < RECONNECT_BACKOFF_MS_MAX);

/// A peer connection that ended sooner than this after it opened (milliseconds) counts as a
/// failed one for the backoff: a listener that refuses this node (it is not, or no longer, a
/// member there) closes each connection at once, and was dialed again every few milliseconds.
pub const PEER_CONNECTION_STABLE_MS: u64 = 1_000;

/// At most one warning of refused peer connections per this many milliseconds, per core (the
/// others are counted in it and in `connections_rejected`).
pub const PEER_REFUSAL_WARN_INTERVAL_MS: u64 = 10_000;

/// Longest a dial of a peer may take, milliseconds (a peer behind a dropped route would
/// otherwise hold its queue's task for the kernel's SYN retries, about two minutes). Nodes of
/// a cluster share a network where a connection takes a millisecond or two; a SYN that was
/// lost is retransmitted by the kernel only after a second, so a dial started while a
/// partition lasted is abandoned and started afresh instead: once the partition heals, the
/// peer is reached within this plus [`RECONNECT_BACKOFF_MS_MAX`].
pub const CONNECT_TIMEOUT_MS: u64 = 250;

/// Longest a peer connection's opening may take, milliseconds: the listener's wait for the
/// hello (and, with a peer key, the proof), the dialer's for the challenge. A connection that
/// opens and then says nothing holds one of [`PEER_CONNECTIONS_MAX`] no longer than this.
/// Members answer within a round trip; a second leaves room for a loaded host.
pub const PEER_HANDSHAKE_TIMEOUT_MS: u64 = 1_000;

/// Longest data written to a peer may stay unacknowledged by the peer's kernel before the
/// connection is dropped (`TCP_USER_TIMEOUT`) and dialed again, milliseconds; and, through
/// keepalive probes every [`PEER_KEEPALIVE_SECS`], how soon a silent incoming connection is
/// found dead. Without it a connection that lost packets in a partition waits out TCP's
/// exponential retransmission backoff after the network heals: the partition test saw votes
/// and heartbeats queued behind one for 2 to 8 s, and failovers that long. An election timeout
/// (heartbeats every 100 ms, so five went unacknowledged): a peer's kernel acknowledges
/// within a round trip even when its process is stalled, so only a lost network or a dead
/// host drops a connection.
pub const PEER_UNACKNOWLEDGED_MS_MAX: u64 = ELECTION_TICKS as u64 * TICK_INTERVAL_MS;

/// Idle time before a keepalive probe on a peer connection, and between probes, seconds: an
/// incoming connection only reads, so the probes are what finds its sender gone when the
/// sender's end vanished without a word reaching this node (its data timed out in a partition,
/// and its close was lost). Whole seconds, at least one: Linux takes `TCP_KEEPIDLE` and
/// `TCP_KEEPINTVL` in seconds and refuses 0. (This was 250 ms once, which became 0: the kernel
/// refused it, the error went unseen, and probes waited two hours. Each partition then left a
/// dead incoming connection or two open until [`PEER_CONNECTIONS_MAX`] refused every new one,
/// and a member cut off could no longer be reached: the two-core partition test found it.)
pub const PEER_KEEPALIVE_SECS: u64 = 1;

/// Peer connections a node serves at once, on each core. A cluster of N nodes needs N - 1: a
/// member that opens a new connection (its old one died, or it restarted) has its older ones
/// closed once it said hello. More are closed at once (a misbehaving or hostile client cannot
/// use up the node's memory with connections).
pub const PEER_CONNECTIONS_MAX: usize = 64;

/// Largest client request or response frame of the node's client interface, bytes: one entry
/// plus its small header.
pub const CLIENT_FRAME_BYTES_MAX: usize = ENTRY_PAYLOAD_BYTES_MAX + 64;

/// Bytes of entries one read answers with (at least one entry, whatever its size): a reader
/// far behind pages through the log instead of asking for it in one frame.
pub const READ_RESPONSE_BYTES_MAX: usize = 1 << 20;
const _: () = assert!(READ_RESPONSE_BYTES_MAX + 64 <= CLIENT_FRAME_BYTES_MAX);

/// Client connections a node serves at once; more are closed at once.
pub const CLIENT_CONNECTIONS_MAX: usize = 64;

/// Appends waiting for their commit on one group. More are refused (busy) instead of queued:
/// each holds a client's request, and the replica's inbox is bounded anyway.
pub const PROPOSALS_PENDING_MAX: usize = 512;
const _: () = assert!(PROPOSALS_PENDING_MAX < INBOX_INPUTS_MAX);

/// Longest an append waits for its commit, milliseconds. Past it the client hears "timed
/// out" (the entry may still commit later: the outcome is unknown, as after any lost reply)
/// and retries: two election timeouts, so a proposal caught by a leader's death or a
/// partition gets its answer after the next leader is elected.
pub const APPEND_COMMIT_WAIT_MS: u64 = 2_000;

/// Read-index requests waiting for their answer on one replica (`Input::ReadIndex`). More are
/// refused: each holds a client's request; one whose caller gave up is dropped at the next.
pub const READ_INDEXES_PENDING_MAX: usize = 256;

/// Longest a read index waits for the leader to confirm it still leads, milliseconds: a
/// heartbeat round normally; past it (no leader, a partition) the caller hears "timed out".
pub const READ_INDEX_WAIT_MS: u64 = 1_000;

/// Bytes of a group's newest log entries kept in memory (`log_store`), beyond those not yet
/// applied (always kept). A follower a little behind is sent entries from here; one further
/// behind, from disk. Four of the largest PutRecords entries (5 MiB of data each would not
/// fit: those are served from disk once applied), or about 8 entries of 500 × 1 KiB records.
pub const ENTRY_CACHE_BYTES: usize = 4 << 20;

/// Bytes of a group's newest committed entries its host keeps for the applier; an applier
/// further behind (after a restart, or slow) reads them from disk through the replica.
pub const COMMITTED_KEPT_BYTES: usize = 4 << 20;

/// Bytes one read of committed entries from disk answers with (at least one entry): an
/// applier replaying the log after a restart pages through it.
pub const COMMITTED_READ_BYTES_MAX: usize = 4 << 20;

/// Bytes of a Raft log segment before the next one begins. Compaction deletes whole
/// segments (`COMPACT_SEGMENTS_MIN` at a time), so a group's log on disk is about two to three
/// of these while every member is up (one frame may take a segment past it). Small enough for thousands of groups per node,
/// large enough that starting one (two syncs) is rare.
pub const LOG_SEGMENT_BYTES: usize = 8 << 20;

/// Entries of a log kept in the journal (`journal_log`) that count as one unit of
/// compaction: such a log frees no storage of its own when compacted (the journal's retention
/// deletes the runs), only the 8-byte place of each entry in memory, so it compacts once
/// `COMPACT_SEGMENTS_MIN` times this many entries are behind every member.
pub const JOURNAL_LOG_COMPACT_ENTRIES: u64 = 4096;

/// Entries one read of a log kept in the journal returns at most (besides the byte bound the
/// caller gives): each is a read of the journal, a `pread` of its own where the journal's
/// tail cache does not hold it, and a leader reads entries back for a member behind while its
/// group waits (no tick, no heartbeat meanwhile). A million bytes of single-record entries
/// would be thousands of reads; 64 cost at most milliseconds. (The cluster simulation's
/// journal seeds, 300 of them: with only the bound below, reads of about a hundred entries
/// held their leader for up to 11 rounds, near the shortest election timeout of 13; with
/// both, up to 10, and 8 but for one read.)
pub const JOURNAL_LOG_READ_ENTRIES_MAX: usize = 64;

/// Entries without records (each a small file beside the journal: `journal_log`) one read of
/// a log kept in the journal returns at most (one at the least). A leader reads entries back
/// for a member behind while its group waits (no tick, no heartbeat meanwhile), and each such
/// entry is a file to open and read. The cluster simulation's seed 7928: leaders reading some
/// 300 entries of a log past a fence (where every entry is one) held their group for about 60
/// rounds each, and lost their leadership before the member behind got any.
pub const JOURNAL_LOG_READ_SIDE_FILES_MAX: usize = 16;

/// Segments a compaction deletes at the least: each writes the compaction record (a temporary
/// file, two syncs, a rename), so doing it for two segments at once halves that cost (5 pairs
/// of `bench/cluster/cost.sh` measured compaction at one segment costing 10% of a cluster's
/// throughput), and a group's log on disk is two to three segments while every member is up.
pub const COMPACT_SEGMENTS_MIN: usize = 2;

/// Bytes one read of the Raft log asks the disk for while recovering or paging (a frame longer
/// than this is read on its own). Larger than the largest frame, so that recovery always
/// holds a whole frame.
pub const LOG_READ_CHUNK_BYTES: usize = 8 << 20;
const _: () = assert!(LOG_READ_CHUNK_BYTES > ENTRY_PAYLOAD_BYTES_MAX + 64);

/// Bytes of entries appended between two writes of a replica's hard state when only its
/// commit index changed (a term or a vote is written at once). A restarted replica keeps in
/// memory the entries after the commit it finds on disk (raft-rs reads those synchronously),
/// so this bounds them at about the entry cache's size, plus what was in flight.
pub const COMMIT_SAVED_EVERY_BYTES: usize = ENTRY_CACHE_BYTES;

/// Ticks after which a commit that moved is written even if fewer than
/// [`COMMIT_SAVED_EVERY_BYTES`] of entries came since the last write (one minute). A quiet
/// group's stored commit would otherwise lag its log for as long as the group stays quiet,
/// and a log kept in the journal ([`crate::journal_log::JournalLog`]) whose entries past the
/// stored commit expired cannot reopen: it cannot tell whether they were committed. A minute
/// is a small fraction of any retention period (24 hours at the least, as in Kinesis), and
/// costs one small file write per group whose commit moved in it.
pub const COMMIT_SAVED_EVERY_TICKS: usize = (60_000 / TICK_INTERVAL_MS) as usize;
const _: () = assert!(
    (COMMIT_SAVED_EVERY_TICKS as u64 * TICK_INTERVAL_MS) * 100
        < sluice_engine::limits::RETENTION_HOURS_MIN as u64 * 3_600_000
);

/// Copy requests from peers (a member restoring a snapshot) waiting for the host to answer;
/// more are dropped (the restoring member asks again after [`COPY_ANSWER_WAIT_MS`]).
pub const COPY_REQUESTS_QUEUED_MAX: usize = 16;

/// How long a member restoring a snapshot waits for a peer's answer to one copy request
/// before it gives up on that snapshot (its leader sends another, and the next restore goes on
/// from what this one copied). A piece is at most a few MiB read from the peer's disk, which
/// takes milliseconds. The shortest election timeout: a replica takes no other input while it
/// restores, its vote included, which the other survivor needs when the snapshot's sender was
/// the leader and died or was cut off. At 5 s, one leader partition in 50 under the loadgen
/// took 3.7 s to fail over (the budget is 2 s): a follower just healed was restoring from it.
pub const COPY_ANSWER_WAIT_MS: u64 = ELECTION_TICKS as u64 * TICK_INTERVAL_MS;

/// Ticks a replica drops the snapshots it is sent after one it could not restore, instead of
/// restoring again at once (a peer that lacks the records would be asked again at every
/// probe); everything else it takes meanwhile, votes included.
pub const SNAPSHOT_RETRY_TICKS: usize = ELECTION_TICKS;

/// Copy requests of this member waiting for an answer at once (each restoring group has one).
pub const COPIES_PENDING_MAX: usize = 64;
