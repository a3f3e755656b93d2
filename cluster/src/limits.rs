//! Limits of the replication layer, each with the reason for its value.

/// Largest Raft entry payload (data plus context), bytes. An entry is one group commit of a
/// shard: at most one PutRecords request (5 MiB, the Kinesis quota) plus framing, rounded up.
/// The log decoder treats a longer length as the end of the valid log (a torn or garbage tail).
pub const ENTRY_PAYLOAD_BYTES_MAX: usize = 6 << 20;

/// Inputs (ticks, messages, proposals) a replica's inbox holds. A full inbox drops the
/// message (Raft retransmits: it is a lossy network's loss), so a slow disk cannot make a
/// peer's memory grow. 1024 covers a burst of appends and heartbeats from two peers.
pub const INBOX_INPUTS_MAX: usize = 1024;

/// Ticks without a heartbeat after which a follower campaigns (raft-rs `election_tick`). The
/// simulation draws each boot's value in `ELECTION_TICKS..2 * ELECTION_TICKS` so elections
/// do not split forever (raft-rs randomises with a thread-local RNG, which a seeded
/// simulation cannot replay; the replica pins raft-rs' range to one value instead).
pub const ELECTION_TICKS: usize = 10;

/// Ticks between a leader's heartbeats: well under the election timeout, as Raft requires.
pub const HEARTBEAT_TICKS: usize = 2;
const _: () = assert!(HEARTBEAT_TICKS * 3 <= ELECTION_TICKS);

/// Most bytes of entries in one append message (raft-rs `max_size_per_msg`): a follower far
/// behind catches up in steps this size instead of one message as large as the log.
pub const APPEND_MESSAGE_BYTES_MAX: u64 = 1 << 20;

/// Append messages a leader has in flight to one follower (raft-rs `max_inflight_msgs`).
pub const APPEND_MESSAGES_IN_FLIGHT_MAX: usize = 256;
