//! The network formats (`cluster/src/wire.rs`): raft-rs messages in group-tagged frames round
//! trip; the validation refuses what raft-rs must not see; the client protocol round trips;
//! and every decoder returns an error, never a panic, on arbitrary bytes.

use bytes::Bytes;
use proptest::prelude::*;
use raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata};
use sluice_cluster::limits::{CLIENT_FRAME_BYTES_MAX, ENTRY_PAYLOAD_BYTES_MAX, PEER_FRAME_BYTES_MAX};
use sluice_cluster::wire::{
    decode_any_peer_frame, decode_hello, decode_peer_frame, encode_copy_frame, encode_hello, encode_peer_frame,
    split_frame, validate_peer_message, ClientRequest, ClientResponse, CopyFrame, FailReason, GroupId, Hello,
    NodeStatus, PeerFrame, WireError, COPY_DATA_BYTES_MAX, HELLO_BYTES, READ_CONTEXT_BYTES, SNAPSHOT_STATE_BYTES_MAX,
};

fn append(from: u64, to: u64, index: u64, terms: &[u64]) -> Message {
    let mut message =
        Message { msg_type: MessageType::MsgAppend, from, to, term: 3, index, log_term: 1, ..Default::default() };
    for (at, &term) in terms.iter().enumerate() {
        let data = Bytes::from(vec![at as u8; 10 + at]);
        message.entries.push(Entry { index: index + 1 + at as u64, term, data, ..Default::default() });
    }
    message
}

#[test]
fn peer_frames_round_trip() {
    let message = append(2, 1, 7, &[1, 2, 3]);
    let frame = encode_peer_frame(GroupId(42), &message).unwrap();
    let (body, rest) = split_frame(&frame, PEER_FRAME_BYTES_MAX).unwrap().unwrap();
    assert!(rest.is_empty());
    let (group, decoded) = decode_peer_frame(body).unwrap();
    assert_eq!((group, &decoded), (GroupId(42), &message));
    // A frame cut anywhere is not whole yet.
    for cut in 0..frame.len() {
        assert_eq!(split_frame(&frame[..cut], PEER_FRAME_BYTES_MAX).unwrap(), None, "cut at {cut}");
    }
    // Copy frames: a zero byte where a protobuf message would start.
    let copies = [
        CopyFrame::Request { id: 7, from: 1_000, bytes_max: 1 << 20 },
        CopyFrame::Answer { id: 7, from: 1_000, data: Bytes::from_static(b"records") },
        CopyFrame::Answer { id: 8, from: 0, data: Bytes::new() },
        CopyFrame::Runs { id: 9, from: 3, count: 32, until_index: 120, until_term: 4 },
    ];
    for copy in copies {
        let frame = encode_copy_frame(GroupId(42), &copy).unwrap();
        let (body, _) = split_frame(&frame, PEER_FRAME_BYTES_MAX).unwrap().unwrap();
        assert_eq!(decode_any_peer_frame(body).unwrap(), (GroupId(42), PeerFrame::Copy(copy)));
        assert!(decode_peer_frame(body).is_err(), "a copy frame read as a Raft message");
    }
    let request = encode_copy_frame(GroupId(1), &CopyFrame::Request { id: 1, from: 2, bytes_max: 3 }).unwrap();
    for cut in [request.len() - 1, 13] {
        assert!(decode_any_peer_frame(&request[4..cut]).is_err(), "a request cut at {cut}");
    }
    let mut unknown_kind = request.clone();
    unknown_kind[13] = 9;
    assert!(decode_any_peer_frame(&unknown_kind[4..]).is_err());
    let oversized = CopyFrame::Answer { id: 1, from: 2, data: Bytes::from(vec![0; COPY_DATA_BYTES_MAX + 1]) };
    assert!(matches!(encode_copy_frame(GroupId(1), &oversized), Err(WireError::FrameTooLarge { .. })));
    for authenticated in [false, true] {
        let hello = Hello { from: 3, to: 1, authenticated };
        assert_eq!(decode_hello(&encode_hello(hello)).unwrap(), hello);
    }
    let hello = Hello { from: 3, to: 1, authenticated: false };
    let mut flag = encode_hello(hello);
    flag[6] = 2;
    assert!(decode_hello(&flag).is_err());
    let mut bad = encode_hello(hello);
    bad[0] ^= 1;
    assert!(decode_hello(&bad).is_err());
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_read() {
    let mut bytes = ((PEER_FRAME_BYTES_MAX + 1) as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 16]);
    assert!(matches!(split_frame(&bytes, PEER_FRAME_BYTES_MAX), Err(WireError::FrameTooLarge { .. })));
    let mut message = append(2, 1, 0, &[1]);
    message.entries[0].data = Bytes::from(vec![0; PEER_FRAME_BYTES_MAX]);
    assert!(matches!(encode_peer_frame(GroupId(1), &message), Err(WireError::FrameTooLarge { .. })));
}

#[test]
fn validation_refuses_what_raft_rs_must_not_see() {
    let voters = [1, 2, 3];
    let valid = append(2, 1, 7, &[1, 2, 3]);
    assert_eq!(validate_peer_message(&valid, 1, &voters), Ok(()));
    let heartbeat = Message { msg_type: MessageType::MsgHeartbeat, from: 3, to: 1, term: 5, ..Default::default() };
    assert_eq!(validate_peer_message(&heartbeat, 1, &voters), Ok(()));

    let check = |why: &str, change: &dyn Fn(&mut Message)| {
        let mut message = valid.clone();
        change(&mut message);
        assert!(validate_peer_message(&message, 1, &voters).is_err(), "accepted: {why}");
    };
    check("to another node", &|message| message.to = 2);
    check("from itself", &|message| message.from = 1);
    check("from a non-member", &|message| message.from = 9);
    check("term 0", &|message| message.term = 0);
    check("a local type", &|message| message.msg_type = MessageType::MsgHup);
    check("a proposal", &|message| message.msg_type = MessageType::MsgPropose);
    check("a snapshot message", &|message| message.msg_type = MessageType::MsgSnapshot);
    check("a snapshot inside", &|message| {
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(SnapshotMetadata { index: 5, term: 1, ..Default::default() });
        message.set_snapshot(snapshot);
    });
    check("an index skipped", &|message| message.entries[1].index += 1);
    check("a term going back", &|message| message.entries[2].term = 1);
    check("a term past the message's", &|message| message.entries[2].term = 4);
    check("a conf change of the first form", &|message| message.entries[0].entry_type = EntryType::EntryConfChange);
    check("a read index with entries", &|message| message.msg_type = MessageType::MsgReadIndex);

    // A follower's read index goes to its leader with term 0 (raft-rs forwards it like a
    // proposal); it and the answer carry one entry: the request's context, nothing else.
    let context = Entry { data: vec![7u8; READ_CONTEXT_BYTES].into(), ..Default::default() };
    let read = Message {
        msg_type: MessageType::MsgReadIndex,
        from: 2,
        to: 1,
        entries: vec![context].into(),
        ..Default::default()
    };
    assert_eq!(validate_peer_message(&read, 1, &voters), Ok(()));
    let answer = Message { msg_type: MessageType::MsgReadIndexResp, term: 5, index: 40, ..read.clone() };
    assert_eq!(validate_peer_message(&answer, 1, &voters), Ok(()));
    let check_read = |why: &str, change: &dyn Fn(&mut Message)| {
        for message in [&read, &answer] {
            let mut message = message.clone();
            change(&mut message);
            assert!(validate_peer_message(&message, 1, &voters).is_err(), "accepted a read index with {why}");
        }
    };
    check_read("no entry", &|message| message.entries.clear());
    check_read("two entries", &|message| message.entries.push(message.entries[0].clone()));
    check_read("a short context", &|message| message.entries[0].data.truncate(8));
    check_read("an entry context", &|message| message.entries[0].context = vec![1u8].into());
    check_read("a membership change", &|message| message.entries[0].entry_type = EntryType::EntryConfChangeV2);
    check_read("a snapshot", &|message| {
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(SnapshotMetadata { index: 5, term: 1, ..Default::default() });
        message.set_snapshot(snapshot);
    });
    check_read("another sender", &|message| message.from = 9);
    let mut answer_of_term_0 = answer.clone();
    answer_of_term_0.term = 0;
    assert!(validate_peer_message(&answer_of_term_0, 1, &voters).is_err(), "accepted a read answer of term 0");

    let mut membership_change = valid.clone();
    membership_change.entries[0].entry_type = EntryType::EntryConfChangeV2;
    assert_eq!(validate_peer_message(&membership_change, 1, &voters), Ok(()));
    check("an oversized entry", &|message| message.entries[0].data = Bytes::from(vec![0; ENTRY_PAYLOAD_BYTES_MAX]));
    check("entries on a heartbeat", &|message| message.msg_type = MessageType::MsgHeartbeat);
    check("an index overflowing", &|message| message.index = u64::MAX);

    // A snapshot of the group's own membership, no later than the message's term, with a
    // small state: raft-rs may restore it. Anything else is dropped before raft-rs sees it.
    let snapshot_message = |index: u64, term: u64, members: Vec<u64>, state_bytes: usize| {
        let mut snapshot = Snapshot::default();
        let metadata = SnapshotMetadata { index, term, ..Default::default() };
        snapshot.set_metadata(metadata);
        snapshot.mut_metadata().set_conf_state(ConfState::from((members, vec![])));
        snapshot.data = Bytes::from(vec![7; state_bytes]);
        let mut message = Message { msg_type: MessageType::MsgSnapshot, from: 2, to: 1, term: 5, ..Default::default() };
        message.set_snapshot(snapshot);
        message
    };
    assert_eq!(validate_peer_message(&snapshot_message(90, 4, vec![3, 1, 2], 16), 1, &voters), Ok(()));
    for (why, message) in [
        ("index 0", snapshot_message(0, 4, vec![1, 2, 3], 16)),
        ("term 0", snapshot_message(90, 0, vec![1, 2, 3], 16)),
        ("a term past the message's", snapshot_message(90, 6, vec![1, 2, 3], 16)),
        ("no voters", snapshot_message(90, 4, vec![], 16)),
        ("a voter that is no member", snapshot_message(90, 4, vec![1, 2, 3, 4], 16)),
        ("an oversized state", snapshot_message(90, 4, vec![1, 2, 3], SNAPSHOT_STATE_BYTES_MAX + 1)),
    ] {
        assert!(validate_peer_message(&message, 1, &voters).is_err(), "accepted a snapshot with {why}");
    }
    let mut with_learner = snapshot_message(90, 4, vec![1, 2, 3], 16);
    with_learner.mut_snapshot().mut_metadata().mut_conf_state().learners = vec![4];
    assert!(validate_peer_message(&with_learner, 1, &voters).is_err(), "accepted a learner that is no member");
    // A membership being changed: a learner, or a joint one, of members.
    with_learner.mut_snapshot().mut_metadata().mut_conf_state().learners = vec![3];
    with_learner.mut_snapshot().mut_metadata().mut_conf_state().voters = vec![1, 2];
    assert_eq!(validate_peer_message(&with_learner, 1, &voters), Ok(()));
    let mut joint = snapshot_message(90, 4, vec![1, 2, 3], 16);
    joint.mut_snapshot().mut_metadata().mut_conf_state().voters_outgoing = vec![1, 2, 9];
    assert!(validate_peer_message(&joint, 1, &voters).is_err(), "accepted an outgoing voter that is no member");
}

#[test]
fn client_messages_round_trip() {
    let requests = [
        ClientRequest::Append(Bytes::from_static(b"data")),
        ClientRequest::Read { from: 9, count_max: 100 },
        ClientRequest::Status,
    ];
    for request in requests {
        let frame = request.encode();
        let (body, _) = split_frame(&frame, CLIENT_FRAME_BYTES_MAX).unwrap().unwrap();
        assert_eq!(ClientRequest::decode(body).unwrap(), request);
    }
    let responses = [
        ClientResponse::Appended { index: 5, term: 2 },
        ClientResponse::NotLeader { leader: 3 },
        ClientResponse::Entries {
            first: 4,
            commit: 6,
            entries: vec![Bytes::from_static(b"a"), Bytes::new(), Bytes::from_static(b"ccc")],
        },
        ClientResponse::Status(NodeStatus { node: 1, term: 4, leader: 2, commit: 10 }),
        ClientResponse::Failed { reason: FailReason::Timeout, message: "not yet".to_owned() },
    ];
    for response in responses {
        let frame = response.encode();
        let (body, _) = split_frame(&frame, CLIENT_FRAME_BYTES_MAX).unwrap().unwrap();
        assert_eq!(ClientResponse::decode(body).unwrap(), response);
    }
    // An empty append, an unknown kind, trailing bytes: errors.
    assert!(ClientRequest::decode(&[1]).is_err());
    assert!(ClientRequest::decode(&[9]).is_err());
    assert!(ClientRequest::decode(&[3, 0]).is_err());
    assert!(ClientResponse::decode(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]).is_err());
}

proptest! {
    #[test]
    fn decoders_survive_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = split_frame(&bytes, PEER_FRAME_BYTES_MAX);
        if let Ok((group, message)) = decode_peer_frame(&bytes) {
            let _ = validate_peer_message(&message, 1, &[1, 2, 3]);
            let _ = encode_peer_frame(group, &message);
        }
        if let Ok((group, PeerFrame::Copy(copy))) = decode_any_peer_frame(&bytes) {
            prop_assert_eq!(&encode_copy_frame(group, &copy).unwrap()[4..], &bytes[..]);
        }
        if let Ok(hello) = <&[u8; HELLO_BYTES]>::try_from(bytes.get(..HELLO_BYTES).unwrap_or(&[])) {
            let _ = decode_hello(hello);
        }
        if let Ok(request) = ClientRequest::decode(&bytes) {
            prop_assert_eq!(&request.encode()[4..], &bytes[..]);
        }
        if let Ok(response) = ClientResponse::decode(&bytes) {
            prop_assert_eq!(&response.encode()[4..], &bytes[..]);
        }
    }
}
