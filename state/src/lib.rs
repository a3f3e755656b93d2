//! Sluice's delivery state: the leases and checkpoints of consumer groups (issue 14) and the
//! per-record delivery state of Kinesis queues (issue 18), as one deterministic state machine
//! over one command log. Runtime-free and I/O-free: the daemon appends the commands to an
//! internal shard of the owning core's journal and applies them once durable; this crate
//! decides what they do.
//!
//! - [`state`]: the [`State`] of one core and the [`Command`]s of its log.
//! - [`machine`]: the [`Machine`] trait both state machines implement.
//! - [`lease`]: applications and leases (take, renew, release, steal, checkpoint), fenced by
//!   the lease counter.
//! - [`queue`]: queues: receive selection, visibility timeouts, acknowledgement,
//!   dead-letter handling, bounded windows.
//! - [`handle`]: receipt handles, HMAC-signed.
//! - [`codec`]: the byte form of a log entry; [`log`]: snapshots and replay.
//! - [`stream`]: shards and the stream events both machines follow.
//!
//! How the daemon wires it (which core owns what, how a command reaches the journal, replay,
//! cross-core reads for queues, deletion) is in `docs/state.md`.

pub mod codec;
pub mod handle;
pub mod ids;
pub mod lease;
pub mod limits;
pub mod log;
pub mod machine;
pub mod queue;
pub mod state;
pub mod stream;

pub use machine::Machine;
pub use state::{Command, Entry, Outcome, State};
