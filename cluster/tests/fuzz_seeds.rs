//! The seed corpus of the `raft_log` fuzz target (fuzz/corpus/raft_log): Raft log files as the
//! replica writes them, whole, torn, overwritten and corrupted, and hard states. This test
//! checks that the committed seeds are what the current format writes and that the decoders
//! still judge each as expected; `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p sluice-cluster --test
//! fuzz_seeds` rewrites them after a format change.
//!
//! A seed is the target's input: a mode byte (bit 0: the target fixes up frame checksums; bit 1:
//! the hard state decoder; bit 2: the network formats instead, bit 3 their client side), then
//! the file or the stream.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft::eraftpb::{Entry, Message, MessageType};
use sluice_cluster::codec::{
    decode_hard_state, decode_log, encode_entry, encode_hard_state, HardStateRecord, LogDefect, LogEntry,
};
use sluice_cluster::journal_log::{encode_peer_runs, PeerRuns};
use sluice_cluster::limits::{CLIENT_FRAME_BYTES_MAX, PEER_FRAME_BYTES_MAX};
use sluice_cluster::wire::{
    decode_any_peer_frame, decode_hello, decode_peer_frame, encode_copy_frame, encode_hello, encode_peer_frame,
    split_frame, validate_peer_message, ClientRequest, ClientResponse, CopyFrame, FailReason, GroupId, Hello,
    NodeStatus, PeerFrame, HELLO_BYTES,
};
use sluice_engine::format::RaftPosition;
use sluice_engine::journal::RaftEntryRun;

fn entry(index: u64, term: u64, entry_type: u8, data: &[u8]) -> LogEntry {
    LogEntry { index, term, entry_type, data: Bytes::copy_from_slice(data), context: Bytes::new(), after_sync: false }
}

fn log(entries: &[LogEntry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in entries {
        encode_entry(entry, &mut bytes);
    }
    bytes
}

fn with_mode(mode: u8, file: &[u8]) -> Vec<u8> {
    let mut seed = vec![mode];
    seed.extend_from_slice(file);
    seed
}

/// (name, seed, entries the log decoder keeps, why it stops), for the log seeds.
fn log_seeds() -> Vec<(&'static str, Vec<u8>, usize, LogDefect)> {
    let entries = [entry(1, 1, 0, b"first"), entry(2, 1, 0, &[7; 300]), entry(3, 2, 1, b"conf"), entry(4, 2, 0, b"")];
    let mut clean = log(&entries);
    let clean_len = clean.len();
    clean.resize(clean_len.next_multiple_of(512), 0);
    let torn = clean[..clean_len - 3].to_vec();
    let mut flipped = clean.clone();
    flipped[clean_len - 2] ^= 0x10;
    let overwritten = log(&[entry(1, 1, 0, b"a"), entry(2, 1, 0, b"b"), entry(3, 1, 0, b"c"), entry(2, 3, 0, b"B")]);
    let gap = log(&[entry(1, 1, 0, b"a"), entry(3, 1, 0, b"c")]);
    vec![
        ("log_clean", with_mode(0, &clean), 4, LogDefect::End),
        ("log_torn", with_mode(0, &torn), 3, LogDefect::Truncated),
        ("log_flipped", with_mode(0, &flipped), 3, LogDefect::Checksum),
        ("log_overwritten", with_mode(0, &overwritten), 2, LogDefect::End),
        ("log_gap", with_mode(1, &gap), 1, LogDefect::Gap { expected_max: 2, actual: 3 }),
    ]
}

fn check_seed(dir: &Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    if std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(dir).expect("corpus directory");
        std::fs::write(&path, content).expect("seed written");
    } else {
        let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(committed, content, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
    }
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/raft_log")
}

#[test]
fn the_raft_log_seeds_are_current_and_decode_as_expected() {
    for (name, seed, kept, stop) in log_seeds() {
        let decoded = decode_log(&seed[1..]);
        assert_eq!((decoded.entries.len(), decoded.stop), (kept, stop), "{name}");
        check_seed(&corpus(), name, &seed);
    }
    let state = encode_hard_state(&HardStateRecord { term: 5, vote: 2, commit: 3 });
    assert!(decode_hard_state(&state).is_ok());
    check_seed(&corpus(), "state_valid", &with_mode(2, &state));
    let mut damaged = state;
    damaged[20] ^= 1;
    assert!(decode_hard_state(&damaged).is_err());
    check_seed(&corpus(), "state_damaged", &with_mode(2, &damaged));
}

/// A peer connection to node 1 as node 2 opens it: the hello, an append with two entries, a
/// heartbeat, a vote request.
fn peer_stream() -> Vec<u8> {
    let mut stream = encode_hello(Hello { from: 2, to: 1, authenticated: false }).to_vec();
    let mut append = Message {
        msg_type: MessageType::MsgAppend,
        from: 2,
        to: 1,
        term: 2,
        index: 4,
        log_term: 1,
        commit: 3,
        ..Default::default()
    };
    for (at, data) in [&b"first"[..], &[9; 40][..]].into_iter().enumerate() {
        append.entries.push(Entry {
            index: 5 + at as u64,
            term: 2,
            data: Bytes::copy_from_slice(data),
            ..Default::default()
        });
    }
    let heartbeat =
        Message { msg_type: MessageType::MsgHeartbeat, from: 2, to: 1, term: 2, commit: 5, ..Default::default() };
    let vote = Message {
        msg_type: MessageType::MsgRequestVote,
        from: 2,
        to: 1,
        term: 3,
        index: 6,
        log_term: 2,
        ..Default::default()
    };
    for message in [append, heartbeat, vote] {
        stream.extend(encode_peer_frame(GroupId(1), &message).unwrap());
    }
    stream
}

/// A peer connection's copy frames as node 2 sends them to node 1 while both restore: a request
/// for a piece of the group's state, one for a page of its log kept in the journal, and an
/// answer holding such a page.
fn copy_stream() -> Vec<u8> {
    let mut stream = encode_hello(Hello { from: 2, to: 1, authenticated: false }).to_vec();
    let page = PeerRuns {
        position: RaftPosition { index: 40, term: 3 },
        end: 90,
        runs: vec![RaftEntryRun { position: RaftPosition { index: 7, term: 2 }, first_index: 10, end_index: 13 }],
        through: 7,
    };
    let copies = [
        CopyFrame::Request { id: 1, from: 1_000, bytes_max: 1 << 20 },
        CopyFrame::Runs { id: 2, from: 7, count: 32, until_index: 40, until_term: 3 },
        CopyFrame::Answer { id: 2, from: 7, data: encode_peer_runs(Some(&page)) },
    ];
    for copy in copies {
        stream.extend(encode_copy_frame(GroupId(1), &copy).unwrap());
    }
    stream
}

/// A client connection's requests, then a node's responses, as one stream of frames.
fn client_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    for request in [
        ClientRequest::Append(Bytes::from_static(b"data")),
        ClientRequest::Read { from: 1, count_max: 10 },
        ClientRequest::Status,
    ] {
        stream.extend(request.encode());
    }
    let responses = [
        ClientResponse::Appended { index: 7, term: 2 },
        ClientResponse::NotLeader { leader: 3 },
        ClientResponse::Entries { first: 1, commit: 2, entries: vec![Bytes::new(), Bytes::from_static(b"data")] },
        ClientResponse::Status(NodeStatus { node: 1, term: 2, leader: 1, commit: 2 }),
        ClientResponse::Failed { reason: FailReason::Timeout, message: "not committed".to_owned() },
    ];
    for response in responses {
        stream.extend(response.encode());
    }
    stream
}

#[test]
fn the_network_seeds_are_current_and_decode_as_expected() {
    let peer = peer_stream();
    assert!(decode_hello(peer[..HELLO_BYTES].try_into().unwrap()).is_ok());
    let (mut rest, mut frames) = (&peer[HELLO_BYTES..], 0);
    while let Some((body, after)) = split_frame(rest, PEER_FRAME_BYTES_MAX).unwrap() {
        let (_, message) = decode_peer_frame(body).unwrap();
        validate_peer_message(&message, 1, &[1, 2, 3]).unwrap();
        (rest, frames) = (after, frames + 1);
    }
    assert_eq!((frames, rest.len()), (3, 0));
    check_seed(&corpus(), "wire_peer", &with_mode(4, &peer));
    let copy = copy_stream();
    let (mut rest, mut frames) = (&copy[HELLO_BYTES..], 0);
    while let Some((body, after)) = split_frame(rest, PEER_FRAME_BYTES_MAX).unwrap() {
        assert!(matches!(decode_any_peer_frame(body).unwrap(), (_, PeerFrame::Copy(_))));
        (rest, frames) = (after, frames + 1);
    }
    assert_eq!((frames, rest.len()), (3, 0));
    check_seed(&corpus(), "wire_copy", &with_mode(4, &copy));
    let client = client_stream();
    let (mut rest, mut frames) = (&client[..], 0);
    while let Some((body, after)) = split_frame(rest, CLIENT_FRAME_BYTES_MAX).unwrap() {
        assert!(ClientRequest::decode(body).is_ok() || ClientResponse::decode(body).is_ok());
        (rest, frames) = (after, frames + 1);
    }
    assert_eq!((frames, rest.len()), (8, 0));
    check_seed(&corpus(), "wire_client", &with_mode(12, &client));
}
