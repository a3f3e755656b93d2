//! The log entry codec: its bytes are the ones docs/format.md specifies, and any other input
//! gets a typed error, never a panic.

mod sim;

use proptest::prelude::*;
use sluice_state::codec::{self, DecodeError, Malformed, LOG_FORMAT_VERSION};
use sluice_state::limits::LOG_ENTRY_BYTES_MAX;
use sluice_state::machine::InvalidCommand;

fn seed(name: &str) -> Vec<u8> {
    let (_, entry) = sim::seed_entries().into_iter().find(|(n, _)| *n == name).expect("a seed of that name");
    codec::encode(&entry).unwrap()
}

#[test]
fn the_documented_examples_are_byte_exact() {
    // docs/format.md, "Delivery state log": version, zigzag varint time, tags, fields.
    let time = [0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62]; // 1_700_000_000_000 ms
    let mut take = vec![0x01];
    take.extend(time);
    take.extend([0x02, 0x02, 0x03, 0x02, 0x02, b'w', b'1', 0x05]);
    assert_eq!(seed("take_lease"), take);
    let mut init = vec![0x01];
    init.extend(time);
    init.push(0x00);
    init.extend([0x5a; 32]);
    assert_eq!(seed("init"), init);
    let mut ack = vec![0x01];
    ack.extend(time);
    ack.extend([0x03, 0x04, 0x07, 0x00, 0x01, 0x02, 0x11, 0x01, 0x00]);
    assert_eq!(seed("acknowledge"), ack);
}

#[test]
fn bad_input_gets_a_typed_error() {
    let take = seed("take_lease");
    let check = |bytes: &[u8], expected: DecodeError| assert_eq!(codec::decode(bytes), Err(expected), "{bytes:02x?}");
    check(&[], DecodeError::Empty);
    check(&[2, 0], DecodeError::UnsupportedVersion { found: 2 });
    check(&[LOG_FORMAT_VERSION], DecodeError::Malformed(Malformed::UnexpectedEnd));
    check(&take[..take.len() - 1], DecodeError::Malformed(Malformed::UnexpectedEnd));
    check(&[take.as_slice(), &[0]].concat(), DecodeError::TrailingBytes { bytes: 1 });
    // An unknown command tag.
    check(&[1, 0, 9], DecodeError::Malformed(Malformed::BadValue));
    // A varint that does not end.
    check(
        &[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        DecodeError::Malformed(Malformed::BadVarint),
    );
    // An empty worker id (its length byte is 0): the type's rule.
    let mut empty_worker = take.clone();
    empty_worker.splice(11..14, [0x00]);
    check(&empty_worker, DecodeError::Malformed(Malformed::BadValue));
    // A worker id that is not UTF-8.
    let mut not_utf8 = take.clone();
    not_utf8[12] = 0xff;
    check(&not_utf8, DecodeError::Malformed(Malformed::BadUtf8));
    // Well-formed, but a rule of the model is broken: a visibility timeout above 12 hours.
    let mut update = seed("update_queue");
    let at = update.len() - 4; // Some(0) seconds, then Some(DeadLetter::None): 01 00 01 01
    assert_eq!(&update[at..at + 2], &[0x01, 0x00]);
    update.splice(at + 1..at + 2, [0xd1, 0xd1, 0x02]); // 43_217 s
    check(&update, DecodeError::Invalid(InvalidCommand::VisibilityTimeout(43_217)));
    check(&vec![1; LOG_ENTRY_BYTES_MAX + 1], DecodeError::TooLarge { bytes: LOG_ENTRY_BYTES_MAX + 1 });
}

#[test]
fn every_prefix_and_every_bit_flip_of_every_seed_is_handled() {
    for (name, entry) in sim::seed_entries() {
        let bytes = codec::encode(&entry).unwrap();
        for end in 0..bytes.len() {
            assert!(codec::decode(&bytes[..end]).is_err(), "{name}: the prefix of {end} bytes decoded");
        }
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(decoded) = codec::decode(&flipped) {
                // A flip can make another valid entry; it then round-trips like any.
                let again = codec::encode(&decoded).unwrap();
                assert_eq!(codec::decode(&again), Ok(decoded), "{name}, bit {bit}");
            }
        }
    }
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(entry) = codec::decode(&bytes) {
            let again = codec::encode(&entry).unwrap();
            prop_assert_eq!(codec::decode(&again), Ok(entry));
        }
    }

    #[test]
    fn spliced_seeds_never_panic(a in 0usize..64, b in 0usize..64, cut in any::<prop::sample::Index>(), tail in any::<prop::sample::Index>()) {
        let seeds = sim::seed_entries();
        let first = codec::encode(&seeds[a % seeds.len()].1).unwrap();
        let second = codec::encode(&seeds[b % seeds.len()].1).unwrap();
        let spliced = [&first[..cut.index(first.len() + 1)], &second[tail.index(second.len() + 1)..]].concat();
        let _ = codec::decode(&spliced);
    }
}
