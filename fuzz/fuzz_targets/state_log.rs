//! The delivery state's log entry decoder on arbitrary bytes (an internal-shard record after any
//! corruption the journal's checksum missed, or a log from another version), and the receipt
//! handle verifier on the same bytes as a string (handles come from clients). Decoding must
//! never panic; what decodes must round-trip and apply to a state holding an application and
//! a queue without panicking (apply is total over valid commands); no input may pass as a
//! handle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_state::codec;
use sluice_state::handle::HandleKey;
use sluice_state::ids::{ApplicationId, LogIndex, QueueId, RecordIndex, ShardNumber, ShardUid, StreamUid};
use sluice_state::lease::{InitialPosition, LeaseCommand, NewShard};
use sluice_state::state::{Command, Entry, State};
use sluice_state::queue::{QueueAttributes, QueueCommand, QueueShardStart, StartingPosition};
use sluice_state::stream::ShardInfo;

fn shard(uid: u64) -> ShardInfo {
    ShardInfo { uid: ShardUid(uid), number: ShardNumber(uid as u32), parents: vec![], hash_key_start: 0, hash_key_end: u128::MAX }
}

/// A state with an application (id 3) and a queue (id 7) on stream 1, shards 1 and 2.
fn seeded() -> State {
    let mut state = State::default();
    let commands = [
        Command::Init { handle_key: HandleKey([0x5a; 32]) },
        Command::Lease(LeaseCommand::CreateApplication {
            application: ApplicationId(3),
            name: "app".into(),
            stream: StreamUid(1),
            initial_position: InitialPosition::TrimHorizon,
            lease_duration_ms: 10_000,
            shards: vec![NewShard { info: shard(1), closed: false }, NewShard { info: shard(2), closed: false }],
        }),
        Command::Queue(QueueCommand::CreateQueue {
            queue: QueueId(7),
            name: "jobs".into(),
            stream: StreamUid(1),
            retention_ms: 86_400_000,
            starting_position: StartingPosition::TrimHorizon,
            effective_start_ms: 0,
            attributes: QueueAttributes::default(),
            shards: vec![
                QueueShardStart { info: shard(1), start: RecordIndex(0), ending: None },
                QueueShardStart { info: shard(2), start: RecordIndex(0), ending: None },
            ],
        }),
    ];
    for (index, command) in commands.into_iter().enumerate() {
        state.apply(LogIndex(index as u64 + 1), &Entry { now_ms: 1_700_000_000_000, command });
    }
    state
}

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = codec::decode(data) {
        let again = codec::encode(&entry).expect("a decoded entry encodes");
        assert_eq!(codec::decode(&again).as_ref(), Ok(&entry));
        let mut state = seeded();
        state.apply(LogIndex(4), &entry);
        // Twice: the second sees the first's effects (a second receive, a repeated ack).
        state.apply(LogIndex(5), &entry);
    }
    let text = String::from_utf8_lossy(data);
    assert!(HandleKey([0x5a; 32]).verify(QueueId(7), &text).is_err(), "a forged receipt handle passed");
});
