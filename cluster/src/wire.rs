//! The bytes on the network (specified in `docs/replication.md`): between nodes, raft-rs'
//! messages in raft-rs' own protobuf encoding, one per length-prefixed frame tagged with its
//! group; between a node and its clients, a small request/response protocol on the same
//! framing. Pure functions, no I/O: every decoder here reads bytes from a socket, which may be
//! garbage, and must return an error rather than panic or allocate past the frame's limit
//! (`tests/wire.rs`, and the fuzz target `raft_log` with mode bit 2).
//!
//! A peer connection carries one direction only (the dialer sends, the acceptor reads), as
//! etcd's streams do: nothing ever waits for an answer on it, so a slow peer only fills its
//! bounded queue. It opens with a fixed hello:
//!
//! | bytes  | field   | meaning                                           |
//! |--------|---------|---------------------------------------------------|
//! | 0..4   | magic   | `SLRT`                                            |
//! | 4..6   | version | [`WIRE_VERSION`], little endian                   |
//! | 6..8   | zero    | reserved                                          |
//! | 8..16  | from    | the dialer's node id                              |
//! | 16..24 | to      | the node id the dialer meant to reach             |
//!
//! then frames: `body_len u32 | group u64 | message`, little endian, where `message` is an
//! `eraftpb.Message` in protobuf and `body_len` counts the group and the message, at most
//! [`PEER_FRAME_BYTES_MAX`]. TCP's checksum and protobuf's structure guard the bytes; what a
//! message *says* is checked by [`validate_peer_message`] before raft-rs sees it.
//!
//! A frame whose message starts with a zero byte (never a protobuf message's first byte:
//! field number 0 does not exist) is a copy frame instead, how a member restoring a snapshot
//! fetches the group's state from a peer ([`CopyFrame`]): `group u64 | 0 u8 | kind u8 | fields`.
//!
//! Client frames are `body_len u32 | kind u8 | fields`, at most [`CLIENT_FRAME_BYTES_MAX`]:
//! see [`ClientRequest`] and [`ClientResponse`] for each kind's fields.

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{EntryType, Message, MessageType};

use crate::codec::PAYLOAD_FIXED_BYTES;
use crate::limits::{CLIENT_FRAME_BYTES_MAX, ENTRY_PAYLOAD_BYTES_MAX, PEER_FRAME_BYTES_MAX};
/// raft-rs' message types, for users of the frames that do not depend on raft-rs themselves
/// (the fuzz target).
pub use raft::eraftpb;

pub const HELLO_MAGIC: [u8; 4] = *b"SLRT";
pub const WIRE_VERSION: u16 = 1;
pub const HELLO_BYTES: usize = 4 + 2 + 2 + 8 + 8;
pub const LENGTH_PREFIX_BYTES: usize = 4;
pub const GROUP_ID_BYTES: usize = 8;

/// Bytes of an entry's data a client may append: the log's payload limit, less the fixed
/// fields and the 16 bytes of context the group host tags proposals with.
pub const APPEND_DATA_BYTES_MAX: usize = ENTRY_PAYLOAD_BYTES_MAX - PAYLOAD_FIXED_BYTES - PROPOSAL_CONTEXT_BYTES;
/// The context of a proposal: the proposing host's boot nonce and its proposal number.
pub const PROPOSAL_CONTEXT_BYTES: usize = 16;
const _: () = assert!(APPEND_DATA_BYTES_MAX < CLIENT_FRAME_BYTES_MAX);
/// The context of a read-index request (`Input::ReadIndex`), which travels to the leader, in
/// its heartbeats and back: the requesting member's id, its host's boot nonce and the
/// request's number, so that no two members' requests (which the leader keys by context)
/// ever share one.
pub const READ_CONTEXT_BYTES: usize = 24;

/// One Raft group of a node (today one per node; one per shard when it is wired into
/// `sluiced`, as `docs/replication.md` designs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame of {length_bytes} bytes is over the limit of {max_bytes}")]
    FrameTooLarge { length_bytes: usize, max_bytes: usize },
    #[error("frame of {length_bytes} bytes is shorter than its fixed fields ({min_bytes} bytes)")]
    FrameTooShort { length_bytes: usize, min_bytes: usize },
    #[error("not a Sluice raft connection: {0}")]
    Hello(&'static str),
    #[error("raft message does not decode: {0}")]
    Protobuf(String),
    #[error("raft message rejected: {0}")]
    Invalid(String),
    #[error("client message: {0}")]
    Client(String),
}

/// The start of a peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub from: u64,
    pub to: u64,
    /// The dialer will prove it holds the cluster's peer key (`peer_auth`): the listener
    /// answers with a challenge before any frame. Byte 6 of the hello, 0 or 1.
    pub authenticated: bool,
}

pub fn encode_hello(hello: Hello) -> [u8; HELLO_BYTES] {
    let mut bytes = [0; HELLO_BYTES];
    bytes[0..4].copy_from_slice(&HELLO_MAGIC);
    bytes[4..6].copy_from_slice(&WIRE_VERSION.to_le_bytes());
    bytes[6] = u8::from(hello.authenticated);
    bytes[8..16].copy_from_slice(&hello.from.to_le_bytes());
    bytes[16..24].copy_from_slice(&hello.to.to_le_bytes());
    bytes
}

pub fn decode_hello(bytes: &[u8; HELLO_BYTES]) -> Result<Hello, WireError> {
    if bytes[0..4] != HELLO_MAGIC {
        return Err(WireError::Hello("bad magic"));
    }
    if u16::from_le_bytes([bytes[4], bytes[5]]) != WIRE_VERSION {
        return Err(WireError::Hello("unknown version"));
    }
    let authenticated = match bytes[6] {
        0 => false,
        1 => true,
        _ => return Err(WireError::Hello("the authentication flag is neither 0 nor 1")),
    };
    if bytes[7] != 0 {
        return Err(WireError::Hello("reserved byte is not zero"));
    }
    Ok(Hello { from: u64_at(bytes, 8), to: u64_at(bytes, 16), authenticated })
}

/// The body length a frame's prefix announces, checked against `max_bytes` before anything
/// is read or allocated for it.
pub fn frame_body_bytes(prefix: [u8; LENGTH_PREFIX_BYTES], max_bytes: usize) -> Result<usize, WireError> {
    let length_bytes = u32::from_le_bytes(prefix) as usize;
    if length_bytes > max_bytes {
        return Err(WireError::FrameTooLarge { length_bytes, max_bytes });
    }
    Ok(length_bytes)
}

/// A frame's body, and the bytes after the frame.
pub type SplitFrame<'a> = (&'a [u8], &'a [u8]);

/// Splits the first frame off `bytes`: its body and what follows, or `None` if `bytes` does
/// not hold a whole frame yet.
pub fn split_frame(bytes: &[u8], max_bytes: usize) -> Result<Option<SplitFrame<'_>>, WireError> {
    let Some(prefix) = bytes.get(..LENGTH_PREFIX_BYTES) else { return Ok(None) };
    let body_bytes = frame_body_bytes(prefix.try_into().expect("four bytes"), max_bytes)?;
    let rest = &bytes[LENGTH_PREFIX_BYTES..];
    Ok(rest.get(..body_bytes).map(|body| (body, &rest[body_bytes..])))
}

/// One frame for a peer: the length prefix, the group, the message. An error if the message
/// is over the frame limit (the replica never proposes an entry that would make one).
pub fn encode_peer_frame(group: GroupId, message: &Message) -> Result<Vec<u8>, WireError> {
    let message_bytes = message.compute_size() as usize;
    let body_bytes = GROUP_ID_BYTES + message_bytes;
    if body_bytes > PEER_FRAME_BYTES_MAX {
        return Err(WireError::FrameTooLarge { length_bytes: body_bytes, max_bytes: PEER_FRAME_BYTES_MAX });
    }
    let mut frame = Vec::with_capacity(LENGTH_PREFIX_BYTES + body_bytes);
    frame.extend_from_slice(&(body_bytes as u32).to_le_bytes());
    frame.extend_from_slice(&group.0.to_le_bytes());
    message.write_to_vec(&mut frame).map_err(|error| WireError::Protobuf(error.to_string()))?;
    assert_eq!(frame.len(), LENGTH_PREFIX_BYTES + body_bytes, "protobuf wrote other than it sized");
    Ok(frame)
}

/// Decodes a peer frame's body (after the length prefix) that carries a Raft message.
pub fn decode_peer_frame(body: &[u8]) -> Result<(GroupId, Message), WireError> {
    match decode_any_peer_frame(body)? {
        (group, PeerFrame::Raft(message)) => Ok((group, *message)),
        (_, PeerFrame::Copy(_)) => Err(WireError::Invalid("a copy frame where a Raft message belongs".to_owned())),
    }
}

/// What a peer frame carries.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerFrame {
    Raft(Box<Message>),
    Copy(CopyFrame),
}

/// A member restoring a snapshot asks a peer for the group's state piece by piece: what the
/// pieces hold is the host's business (`sluiced`: a shard's records from a record index on).
/// The answer goes back on the answering member's own connection, so it names the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFrame {
    /// kind 1, `id u64 | from u64 | bytes_max u32`: the state from position `from` on, at
    /// most `bytes_max` bytes of it.
    Request { id: u64, from: u64, bytes_max: u32 },
    /// kind 2, `id u64 | from u64 | data`: the answer to request `id` (for position `from`).
    Answer { id: u64, from: u64, data: Bytes },
    /// kind 3, `id u64 | from u64 | count u32 | until_index u64 | until_term u64`: a page of
    /// the group's log from entry `from` on, at most `count` entries, up to the snapshot's
    /// entry `until_index` of `until_term` (for a log kept in the journal: which entries the
    /// peer holds and where their records are, `journal_log::peer_runs`). Answered as kind 2.
    Runs { id: u64, from: u64, count: u32, until_index: u64, until_term: u64 },
}

const COPY_MARK: u8 = 0;
const COPY_REQUEST: u8 = 1;
const COPY_ANSWER: u8 = 2;
const COPY_RUNS: u8 = 3;
const COPY_REQUEST_BYTES: usize = 2 + 8 + 8 + 4;
const COPY_RUNS_BYTES: usize = COPY_REQUEST_BYTES + 8 + 8;
const COPY_ANSWER_FIXED_BYTES: usize = 2 + 8 + 8;

/// Bytes of data a copy answer may carry: a frame's worth, less its fixed fields.
pub const COPY_DATA_BYTES_MAX: usize = PEER_FRAME_BYTES_MAX - GROUP_ID_BYTES - COPY_ANSWER_FIXED_BYTES;

/// One frame for a peer carrying `copy`; an error if its data is over [`COPY_DATA_BYTES_MAX`].
pub fn encode_copy_frame(group: GroupId, copy: &CopyFrame) -> Result<Vec<u8>, WireError> {
    let mut body = group.0.to_le_bytes().to_vec();
    match copy {
        CopyFrame::Request { id, from, bytes_max } => {
            body.extend_from_slice(&[COPY_MARK, COPY_REQUEST]);
            body.extend_from_slice(&id.to_le_bytes());
            body.extend_from_slice(&from.to_le_bytes());
            body.extend_from_slice(&bytes_max.to_le_bytes());
        }
        CopyFrame::Answer { id, from, data } => {
            if data.len() > COPY_DATA_BYTES_MAX {
                let length_bytes = GROUP_ID_BYTES + COPY_ANSWER_FIXED_BYTES + data.len();
                return Err(WireError::FrameTooLarge { length_bytes, max_bytes: PEER_FRAME_BYTES_MAX });
            }
            body.extend_from_slice(&[COPY_MARK, COPY_ANSWER]);
            body.extend_from_slice(&id.to_le_bytes());
            body.extend_from_slice(&from.to_le_bytes());
            body.extend_from_slice(data);
        }
        CopyFrame::Runs { id, from, count, until_index, until_term } => {
            body.extend_from_slice(&[COPY_MARK, COPY_RUNS]);
            body.extend_from_slice(&id.to_le_bytes());
            body.extend_from_slice(&from.to_le_bytes());
            body.extend_from_slice(&count.to_le_bytes());
            body.extend_from_slice(&until_index.to_le_bytes());
            body.extend_from_slice(&until_term.to_le_bytes());
        }
    }
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decodes a peer frame's body (after the length prefix): a Raft message or a copy frame.
pub fn decode_any_peer_frame(body: &[u8]) -> Result<(GroupId, PeerFrame), WireError> {
    if body.len() < GROUP_ID_BYTES {
        return Err(WireError::FrameTooShort { length_bytes: body.len(), min_bytes: GROUP_ID_BYTES });
    }
    let group = GroupId(u64_at(body, 0));
    let rest = &body[GROUP_ID_BYTES..];
    if rest.first() == Some(&COPY_MARK) {
        let copy = match (rest.get(1), rest.len()) {
            (Some(&COPY_REQUEST), COPY_REQUEST_BYTES) => CopyFrame::Request {
                id: u64_at(rest, 2),
                from: u64_at(rest, 10),
                bytes_max: u32::from_le_bytes(rest[18..22].try_into().expect("four bytes")),
            },
            (Some(&COPY_RUNS), COPY_RUNS_BYTES) => CopyFrame::Runs {
                id: u64_at(rest, 2),
                from: u64_at(rest, 10),
                count: u32::from_le_bytes(rest[18..22].try_into().expect("four bytes")),
                until_index: u64_at(rest, 22),
                until_term: u64_at(rest, 30),
            },
            (Some(&COPY_ANSWER), length) if length >= COPY_ANSWER_FIXED_BYTES => CopyFrame::Answer {
                id: u64_at(rest, 2),
                from: u64_at(rest, 10),
                data: Bytes::copy_from_slice(&rest[COPY_ANSWER_FIXED_BYTES..]),
            },
            (kind, length) => {
                return Err(WireError::Invalid(format!("a copy frame of kind {kind:?} and {length} bytes")));
            }
        };
        return Ok((group, PeerFrame::Copy(copy)));
    }
    let mut message = Message::default();
    message.merge_from_bytes(rest).map_err(|error| WireError::Protobuf(error.to_string()))?;
    Ok((group, PeerFrame::Raft(Box::new(message))))
}

/// Checks that a message from the network is one a live member of this group could have
/// sent to `own_id`, before raft-rs steps it: raft-rs trusts its peers and asserts on some
/// impossible messages (entries that skip an index; a local message type). `members`: every
/// node that may send the group messages (its members now, and those it may add). What no structural check can catch is a well-formed message that
/// lies (a peer that breaks Raft): Raft does not tolerate Byzantine members, and neither does
/// this.
pub fn validate_peer_message(message: &Message, own_id: u64, members: &[u64]) -> Result<(), WireError> {
    let invalid = |why: String| Err(WireError::Invalid(why));
    use MessageType::*;
    let networked = matches!(
        message.msg_type,
        MsgAppend
            | MsgAppendResponse
            | MsgRequestVote
            | MsgRequestVoteResponse
            | MsgHeartbeat
            | MsgHeartbeatResponse
            | MsgTimeoutNow
            | MsgRequestPreVote
            | MsgRequestPreVoteResponse
            | MsgSnapshot
            | MsgReadIndex
            | MsgReadIndexResp
    );
    if !networked {
        // Local types, and the forwarding types (proposals, leader transfer) this cluster does
        // not send between nodes.
        return invalid(format!("type {:?} does not travel between nodes here", message.msg_type));
    }
    if message.to != own_id {
        return invalid(format!("addressed to node {}, this is node {own_id}", message.to));
    }
    if message.from == own_id || !members.contains(&message.from) {
        return invalid(format!("from node {}, not another member of the group", message.from));
    }
    // raft-rs reads term 0 as a local message and takes it without a term check: only a
    // follower's forwarded read index is sent so (raft-rs forwards it like a proposal), and
    // whichever term it is answered in, the answer is a commit index confirmed at that moment.
    if message.term == 0 && message.msg_type != MsgReadIndex {
        return invalid("term 0".to_owned());
    }
    if matches!(message.msg_type, MsgReadIndex | MsgReadIndexResp) {
        // One entry: the request's context, which is all raft-rs reads of it.
        let context_only = |entry: &eraftpb::Entry| {
            entry.entry_type == EntryType::EntryNormal
                && entry.context.is_empty()
                && entry.data.len() == READ_CONTEXT_BYTES
        };
        if message.entries.len() != 1 || !context_only(&message.entries[0]) || message.has_snapshot() {
            return invalid(format!("a {:?} that is not one read context", message.msg_type));
        }
        return Ok(());
    }
    let snapshot = message.has_snapshot().then(|| message.get_snapshot()).filter(|snapshot| !snapshot.is_empty());
    match (message.msg_type, snapshot) {
        (MsgSnapshot, Some(snapshot)) => validate_snapshot(snapshot, message.term, members)?,
        (MsgSnapshot, None) => return invalid("a snapshot message without a snapshot".to_owned()),
        (_, Some(_)) => return invalid(format!("{:?} carries a snapshot", message.msg_type)),
        (_, None) => {}
    }
    if message.msg_type != MsgAppend && !message.entries.is_empty() {
        return invalid(format!("{:?} with entries", message.msg_type));
    }
    let mut previous_term = message.log_term;
    for (at, entry) in message.entries.iter().enumerate() {
        let expected = message.index.checked_add(at as u64 + 1);
        if expected != Some(entry.index) {
            return invalid(format!("entry {} where {expected:?} belongs", entry.index));
        }
        if entry.entry_type == EntryType::EntryConfChange {
            // Membership changes are proposed in raft-rs' second form only.
            return invalid(format!("entry {} is a {:?}", entry.index, entry.entry_type));
        }
        if entry.term < previous_term || entry.term > message.term {
            return invalid(format!("entry {} of term {} out of order", entry.index, entry.term));
        }
        previous_term = entry.term;
        if PAYLOAD_FIXED_BYTES + entry.context.len() + entry.data.len() > ENTRY_PAYLOAD_BYTES_MAX {
            return invalid(format!("entry {} over the entry limit", entry.index));
        }
    }
    Ok(())
}

/// A snapshot's metadata, before raft-rs restores from it (it asserts on some of it): an entry
/// of a term no later than the message's, a membership with voters, all of them nodes that
/// may be members (raft-rs checks that it holds this one), and at most
/// [`SNAPSHOT_STATE_BYTES_MAX`] of the host's state.
fn validate_snapshot(snapshot: &eraftpb::Snapshot, message_term: u64, members: &[u64]) -> Result<(), WireError> {
    let invalid = |why: String| Err(WireError::Invalid(why));
    let metadata = snapshot.get_metadata();
    if metadata.index == 0 || metadata.term == 0 || metadata.term > message_term {
        return invalid(format!("a snapshot at index {} of term {}", metadata.index, metadata.term));
    }
    let conf_state = metadata.get_conf_state();
    let ids = || {
        let conf = conf_state;
        conf.voters.iter().chain(&conf.learners).chain(&conf.voters_outgoing).chain(&conf.learners_next)
    };
    if conf_state.voters.is_empty() || ids().any(|id| !members.contains(id)) {
        return invalid(format!("a snapshot of a membership of other nodes ({conf_state:?})"));
    }
    if snapshot.data.len() > SNAPSHOT_STATE_BYTES_MAX {
        return invalid(format!("a snapshot's state of {} bytes", snapshot.data.len()));
    }
    Ok(())
}

/// Bytes of the state a host sends in a snapshot (what a member needs to restore its state
/// machine from a peer, not the state itself).
pub const SNAPSHOT_STATE_BYTES_MAX: usize = 64 << 10;

/// What a client asks a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRequest {
    /// kind 1, then the data (the rest of the frame; not empty). Answered once the entry is
    /// committed (durable on a quorum, and on this node), or with why not.
    Append(Bytes),
    /// kind 2, `from u64 | count_max u32`: committed entries from index `from` on.
    Read { from: u64, count_max: u32 },
    /// kind 3: the node's view of the group.
    Status,
}

/// Why a request did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FailReason {
    /// The entry was not committed within the wait: it may still be (outcome unknown).
    Timeout = 1,
    /// Too many appends are waiting: try again.
    Busy = 2,
    /// The request is malformed or too large.
    Invalid = 3,
    /// This node stopped leading while the entry waited: it may still be committed.
    LeadershipLost = 4,
}

/// The node's view of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStatus {
    pub node: u64,
    pub term: u64,
    /// The leader this node knows of (0: none).
    pub leader: u64,
    /// Index of the last entry committed here.
    pub commit: u64,
}

/// What a node answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientResponse {
    /// kind 1, `index u64 | term u64`: the entry is committed at `index`.
    Appended { index: u64, term: u64 },
    /// kind 2, `leader u64`: only the leader appends; `leader` is the one this node knows (0:
    /// none yet).
    NotLeader { leader: u64 },
    /// kind 3, `first u64 | commit u64 | count u32 | (len u32 | data) * count`: the committed
    /// entries from `first` on (empty data: an entry Raft made, such as a new leader's), and
    /// the node's commit index. Fewer than asked for when the log or the response's byte
    /// limit ends.
    Entries { first: u64, commit: u64, entries: Vec<Bytes> },
    /// kind 4, `node u64 | term u64 | leader u64 | commit u64`.
    Status(NodeStatus),
    /// kind 5, `reason u8 | message` (UTF-8, the rest).
    Failed { reason: FailReason, message: String },
}

fn framed(kind: u8, fields: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = vec![0, 0, 0, 0, kind];
    fields(&mut frame);
    let body_bytes = frame.len() - LENGTH_PREFIX_BYTES;
    assert!(body_bytes <= CLIENT_FRAME_BYTES_MAX, "a client frame of {body_bytes} bytes");
    frame[..4].copy_from_slice(&(body_bytes as u32).to_le_bytes());
    frame
}

impl ClientRequest {
    /// The request as a frame. Panics on an append over [`APPEND_DATA_BYTES_MAX`].
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ClientRequest::Append(data) => {
                assert!(data.len() <= APPEND_DATA_BYTES_MAX, "an append of {} bytes", data.len());
                framed(1, |out| out.extend_from_slice(data))
            }
            ClientRequest::Read { from, count_max } => framed(2, |out| {
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&count_max.to_le_bytes());
            }),
            ClientRequest::Status => framed(3, |_| {}),
        }
    }

    /// Decodes a frame's body (after the length prefix).
    pub fn decode(body: &[u8]) -> Result<ClientRequest, WireError> {
        let mut reader = Reader::new(body);
        let request = match reader.u8()? {
            1 => {
                let data = reader.rest();
                if data.is_empty() || data.len() > APPEND_DATA_BYTES_MAX {
                    return Err(WireError::Client(format!(
                        "an append of {} bytes (1 to {APPEND_DATA_BYTES_MAX})",
                        data.len()
                    )));
                }
                ClientRequest::Append(Bytes::copy_from_slice(data))
            }
            2 => ClientRequest::Read { from: reader.u64()?, count_max: reader.u32()? },
            3 => ClientRequest::Status,
            kind => return Err(WireError::Client(format!("unknown request kind {kind}"))),
        };
        reader.end()?;
        Ok(request)
    }
}

impl ClientResponse {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ClientResponse::Appended { index, term } => framed(1, |out| {
                out.extend_from_slice(&index.to_le_bytes());
                out.extend_from_slice(&term.to_le_bytes());
            }),
            ClientResponse::NotLeader { leader } => framed(2, |out| out.extend_from_slice(&leader.to_le_bytes())),
            ClientResponse::Entries { first, commit, entries } => framed(3, |out| {
                out.extend_from_slice(&first.to_le_bytes());
                out.extend_from_slice(&commit.to_le_bytes());
                out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
                for entry in entries {
                    out.extend_from_slice(&(entry.len() as u32).to_le_bytes());
                    out.extend_from_slice(entry);
                }
            }),
            ClientResponse::Status(status) => framed(4, |out| {
                for word in [status.node, status.term, status.leader, status.commit] {
                    out.extend_from_slice(&word.to_le_bytes());
                }
            }),
            ClientResponse::Failed { reason, message } => framed(5, |out| {
                out.push(*reason as u8);
                out.extend_from_slice(message.as_bytes());
            }),
        }
    }

    pub fn decode(body: &[u8]) -> Result<ClientResponse, WireError> {
        let mut reader = Reader::new(body);
        let response = match reader.u8()? {
            1 => ClientResponse::Appended { index: reader.u64()?, term: reader.u64()? },
            2 => ClientResponse::NotLeader { leader: reader.u64()? },
            3 => {
                let (first, commit, count) = (reader.u64()?, reader.u64()?, reader.u32()?);
                // Each entry takes at least its length: a count the body cannot hold is
                // refused before anything is allocated for it.
                if count as usize > reader.remaining() / 4 {
                    return Err(WireError::Client(format!("{count} entries in {} bytes", reader.remaining())));
                }
                let mut entries = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let length = reader.u32()? as usize;
                    entries.push(Bytes::copy_from_slice(reader.take(length)?));
                }
                ClientResponse::Entries { first, commit, entries }
            }
            4 => ClientResponse::Status(NodeStatus {
                node: reader.u64()?,
                term: reader.u64()?,
                leader: reader.u64()?,
                commit: reader.u64()?,
            }),
            5 => {
                let reason = match reader.u8()? {
                    1 => FailReason::Timeout,
                    2 => FailReason::Busy,
                    3 => FailReason::Invalid,
                    4 => FailReason::LeadershipLost,
                    other => return Err(WireError::Client(format!("unknown failure reason {other}"))),
                };
                let message = std::str::from_utf8(reader.rest())
                    .map_err(|_| WireError::Client("a failure message that is not UTF-8".to_owned()))?;
                ClientResponse::Failed { reason, message: message.to_owned() }
            }
            kind => return Err(WireError::Client(format!("unknown response kind {kind}"))),
        };
        reader.end()?;
        Ok(response)
    }
}

/// Reads fixed fields off a client frame's body, each short read an error.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], WireError> {
        if length > self.bytes.len() {
            return Err(WireError::Client(format!("{length} bytes wanted, {} left", self.bytes.len())));
        }
        let (taken, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }

    fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn end(&self) -> Result<(), WireError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(WireError::Client(format!("{} bytes after the last field", self.bytes.len())))
        }
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}
