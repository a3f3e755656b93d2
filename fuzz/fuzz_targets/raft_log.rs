//! The decoders of a replica's Raft files (cluster/src/codec.rs, docs/replication.md): the log
//! (`raft.log`, checksummed frames) and the hard state (`raft.state`), on arbitrary bytes, what a
//! crash or a bad disk may leave. They must never panic; what the log decoder keeps must be a
//! contiguous log that encodes back to frames decoding to the same entries, and a hard state
//! it accepts must encode back to exactly the same bytes.
//!
//! Input: one mode byte, then the file. Random bytes almost never pass a frame's XXH3, so when
//! bit 0 of the mode is set the target writes a valid checksum into every frame header it
//! walks over: the structural checks behind the checksum (lengths, entry type, index gaps) are
//! fuzzed too. Bit 1 picks the hard state decoder.
//!
//! Bit 2 picks the network formats instead (cluster/src/wire.rs), on what a socket may carry:
//! the rest is a stream of length-prefixed frames, read as a peer connection (a hello, then
//! raft-rs protobuf messages tagged with their group, each validated as a replica would, or
//! copy frames, which must encode back to the same bytes) or,
//! with bit 3, as client requests and responses. Nothing may panic; what decodes must encode
//! back to the same bytes (client frames) or to a message that decodes the same (protobuf).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_cluster::codec::{
    decode_hard_state, decode_log, decode_restore, encode_entry, encode_hard_state, encode_restore, FRAME_HEADER_BYTES, FRAME_SEED,
};
use sluice_cluster::limits::{CLIENT_FRAME_BYTES_MAX, PEER_FRAME_BYTES_MAX};
use sluice_cluster::wire::eraftpb::Message;
use sluice_cluster::wire::{
    decode_any_peer_frame, decode_hello, decode_peer_frame, encode_copy_frame, encode_peer_frame, split_frame,
    validate_peer_message, ClientRequest, ClientResponse, PeerFrame, HELLO_BYTES,
};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// What raft-rs reads of a message. Not the whole `Message`: rust-protobuf keeps unknown
/// fields, and an empty set of them decoded compares unequal to none at all, which says nothing
/// about our encoding.
fn known_fields(message: &Message) -> impl PartialEq + std::fmt::Debug {
    let entries: Vec<_> = message
        .entries
        .iter()
        .map(|entry| (entry.entry_type, entry.term, entry.index, entry.data.clone(), entry.context.clone()))
        .collect();
    let snapshot = message.get_snapshot();
    (
        (message.msg_type, message.to, message.from, message.term, message.log_term, message.index),
        (message.commit, message.commit_term, message.reject, message.reject_hint, message.request_snapshot),
        (message.context.clone(), message.priority, entries),
        (snapshot.get_metadata().index, snapshot.get_metadata().term, snapshot.data.clone()),
    )
}

fn network(mode: u8, stream: &[u8]) {
    let client = mode & 8 == 8;
    let mut rest = stream;
    if !client {
        let Some(hello) = rest.get(..HELLO_BYTES) else { return };
        let _ = decode_hello(hello.try_into().expect("hello bytes"));
        rest = &rest[HELLO_BYTES..];
    }
    let max_bytes = if client { CLIENT_FRAME_BYTES_MAX } else { PEER_FRAME_BYTES_MAX };
    while let Ok(Some((body, after))) = split_frame(rest, max_bytes) {
        rest = after;
        if client {
            if let Ok(request) = ClientRequest::decode(body) {
                assert_eq!(&request.encode()[4..], body);
            }
            if let Ok(response) = ClientResponse::decode(body) {
                assert_eq!(&response.encode()[4..], body);
            }
        } else if let Ok((group, frame)) = decode_any_peer_frame(body) {
            match frame {
                PeerFrame::Raft(message) => {
                    let _ = validate_peer_message(&message, 1, &[1, 2, 3]);
                    if let Ok(frame) = encode_peer_frame(group, &message) {
                        let (again_group, again) = decode_peer_frame(&frame[4..]).expect("an encoded frame decodes");
                        assert_eq!((again_group, known_fields(&again)), (group, known_fields(&message)));
                    }
                }
                PeerFrame::Copy(copy) => {
                    let frame = encode_copy_frame(group, &copy).expect("a decoded copy frame encodes");
                    assert_eq!(&frame[4..], body);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else { return };
    if mode & 4 == 4 {
        network(mode, file);
        return;
    }
    let mut bytes = file.to_vec();
    if mode & 2 == 2 {
        if let Ok(state) = decode_hard_state(&bytes) {
            assert_eq!(encode_hard_state(&state)[..], bytes[..]);
        }
        if let Ok(restore) = decode_restore(&bytes) {
            assert_eq!(encode_restore(&restore)[..], bytes[..]);
        }
        return;
    }
    if mode & 1 == 1 {
        let mut at = 0;
        while at + FRAME_HEADER_BYTES <= bytes.len() {
            let payload_len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let start = at + FRAME_HEADER_BYTES;
            let Some(payload) = bytes.get(start..start + payload_len) else { break };
            if payload_len == 0 {
                break;
            }
            let checksum = xxh3_64_with_seed(payload, FRAME_SEED ^ payload_len as u64);
            bytes[at + 4..at + 12].copy_from_slice(&checksum.to_le_bytes());
            at = start + payload_len;
        }
    }
    let decoded = decode_log(&bytes);
    assert!(decoded.valid_bytes <= bytes.len());
    for (at, entry) in decoded.entries.iter().enumerate() {
        assert_eq!(entry.index, at as u64 + 1);
    }
    let mut encoded = Vec::new();
    for entry in &decoded.entries {
        encode_entry(entry, &mut encoded);
    }
    let again = decode_log(&encoded);
    assert_eq!(again.entries, decoded.entries);
    assert_eq!(again.valid_bytes, encoded.len());
});
