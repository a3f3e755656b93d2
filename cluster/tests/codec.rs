//! The Raft files' byte layout (`sluice_cluster::codec`): round trips, a cut at every byte,
//! overwritten suffixes, and garbage, which must never make a decoder panic.

use bytes::Bytes;
use proptest::prelude::*;
use raft::eraftpb::ConfState;
use sluice_cluster::codec::{
    decode_conf, decode_hard_state, decode_log, decode_restore, encode_conf, encode_entry, encode_hard_state,
    encode_restore, HardStateRecord, LogDefect, LogEntry, RestoreRecord,
};

fn entry(index: u64, term: u64, data: &[u8]) -> LogEntry {
    LogEntry { index, term, data: Bytes::copy_from_slice(data), ..LogEntry::default() }
}

fn encode(entries: &[LogEntry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in entries {
        encode_entry(entry, &mut bytes);
    }
    bytes
}

fn check(bytes: &[u8], expected: &[LogEntry], stop: LogDefect) {
    let decoded = decode_log(bytes);
    assert_eq!(decoded.entries, expected);
    assert_eq!(decoded.stop, stop);
}

#[test]
fn a_log_decodes_to_its_entries_and_stops_at_the_zero_padding() {
    let entries = vec![entry(1, 1, b"a"), entry(2, 1, b""), entry(3, 2, &[7; 600])];
    let mut bytes = encode(&entries);
    let length = bytes.len();
    check(&bytes, &entries, LogDefect::End);
    bytes.resize(length.next_multiple_of(512), 0);
    let decoded = decode_log(&bytes);
    assert_eq!((decoded.entries, decoded.valid_bytes, decoded.stop), (entries, length, LogDefect::End));
}

#[test]
fn a_log_cut_at_any_byte_keeps_exactly_the_whole_frames_before_the_cut() {
    let entries: Vec<LogEntry> =
        (1..=5).map(|index| entry(index, index / 2 + 1, &vec![index as u8; 37 * index as usize])).collect();
    let mut ends = Vec::new();
    let mut bytes = Vec::new();
    for entry in &entries {
        encode_entry(entry, &mut bytes);
        ends.push(bytes.len());
    }
    for cut in 0..=bytes.len() {
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        let decoded = decode_log(&bytes[..cut]);
        assert_eq!(decoded.entries, entries[..whole], "cut at {cut}");
        assert_eq!(decoded.valid_bytes, if whole == 0 { 0 } else { ends[whole - 1] }, "cut at {cut}");
    }
}

#[test]
fn a_later_frame_replaces_the_suffix_from_its_index_and_a_gap_stops_the_log() {
    let bytes = encode(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c"), entry(2, 2, b"B")]);
    check(&bytes, &[entry(1, 1, b"a"), entry(2, 2, b"B")], LogDefect::End);
    let bytes = encode(&[entry(1, 1, b"a"), entry(3, 1, b"c")]);
    check(&bytes, &[entry(1, 1, b"a")], LogDefect::Gap { expected_max: 2, actual: 3 });
    check(&encode(&[entry(0, 1, b"a")]), &[], LogDefect::Gap { expected_max: 1, actual: 0 });
}

#[test]
fn every_flipped_bit_of_a_frame_ends_the_log_there() {
    let entries = vec![entry(1, 1, b"first"), entry(2, 3, b"second entry")];
    let clean = encode(&entries);
    let first_frame = encode(&entries[..1]).len();
    for bit in first_frame * 8..clean.len() * 8 {
        let mut bytes = clean.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let decoded = decode_log(&bytes);
        assert_eq!(decoded.entries, entries[..1], "bit {bit}");
        assert_eq!(decoded.valid_bytes, first_frame, "bit {bit}");
    }
}

#[test]
fn the_hard_state_round_trips_and_any_damage_is_reported() {
    let state = HardStateRecord { term: 7, vote: 2, commit: 40 };
    let bytes = encode_hard_state(&state);
    assert_eq!(decode_hard_state(&bytes), Ok(state));
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes;
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(decode_hard_state(&damaged).is_err(), "bit {bit}");
    }
    assert!(decode_hard_state(&bytes[..39]).is_err());
    assert!(decode_hard_state(&[]).is_err());
}

#[test]
fn the_restore_record_round_trips_and_any_damage_is_reported() {
    let restore = RestoreRecord { index: 81, term: 3, start: 57, gap: true, fence: 90 };
    let bytes = encode_restore(&restore);
    assert_eq!(decode_restore(&bytes), Ok(restore));
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes;
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(decode_restore(&damaged).is_err(), "bit {bit}");
    }
    assert!(decode_restore(&bytes[..bytes.len() - 1]).is_err());
    // Another record's bytes are not a restore's, nor is a hard state of the same words.
    let state = encode_hard_state(&HardStateRecord { term: 81, vote: 3, commit: 57 });
    assert!(decode_restore(&state).is_err());
    assert!(decode_hard_state(&bytes).is_err());
}

#[test]
fn the_membership_round_trips_and_any_damage_is_reported() {
    let mut joint = ConfState::from((vec![1, 2, 4], vec![5]));
    joint.voters_outgoing = vec![1, 2, 3];
    joint.auto_leave = true;
    for conf_state in [ConfState::from((vec![1, 2, 3], vec![])), joint, ConfState::default()] {
        let bytes = encode_conf(73, &conf_state);
        assert_eq!(decode_conf(&bytes), Ok((73, conf_state.clone())));
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_conf(&damaged).is_err(), "bit {bit}");
        }
        for cut in 0..bytes.len() {
            assert!(decode_conf(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}

proptest! {
    #[test]
    fn membership_records_survive_garbage(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = decode_conf(&bytes);
    }

    #[test]
    fn logs_round_trip(
        shapes in prop::collection::vec((0u64..4, any::<u8>(), prop::collection::vec(any::<u8>(), 0..300), prop::collection::vec(any::<u8>(), 0..20)), 0..20)
    ) {
        let mut term = 1;
        let entries: Vec<LogEntry> = shapes
            .into_iter()
            .enumerate()
            .map(|(at, (step, kind, data, context))| {
                term += step;
                LogEntry {
                    index: at as u64 + 1,
                    term,
                    entry_type: kind % 3,
                    data: Bytes::from(data),
                    context: Bytes::from(context),
                    after_sync: kind & 0x10 != 0,
                }
            })
            .collect();
        let bytes = encode(&entries);
        let decoded = decode_log(&bytes);
        prop_assert_eq!(decoded.valid_bytes, bytes.len());
        prop_assert_eq!(decoded.stop, LogDefect::End);
        prop_assert_eq!(decoded.entries, entries);
    }

    #[test]
    fn garbage_never_panics_and_decodes_to_a_contiguous_log(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let decoded = decode_log(&bytes);
        prop_assert!(decoded.valid_bytes <= bytes.len());
        for (at, entry) in decoded.entries.iter().enumerate() {
            prop_assert_eq!(entry.index, at as u64 + 1);
        }
        let _ = decode_hard_state(&bytes);
        let _ = decode_restore(&bytes);
    }

    #[test]
    fn garbage_after_a_valid_log_is_cut_off(tail in prop::collection::vec(any::<u8>(), 1..512)) {
        let entries = vec![entry(1, 1, b"kept"), entry(2, 1, b"also kept")];
        let mut bytes = encode(&entries);
        let length = bytes.len();
        bytes.extend_from_slice(&tail);
        let decoded = decode_log(&bytes);
        // Random bytes pass a 64-bit checksum with negligible probability.
        prop_assert_eq!(decoded.entries, entries);
        prop_assert_eq!(decoded.valid_bytes, length);
    }
}
