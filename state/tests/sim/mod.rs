//! A simulated core for the tests: a fake stream (shards of records with arrival times, trimmed
//! by retention), a simulated clock, and the runtime's side of the protocol exactly as
//! docs/state.md describes it: every command is encoded, appended to an in-memory log,
//! decoded again and applied; receives read what the state wants and select among it;
//! handles are signed and verified with the state's key; a crash replays the log.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

use sluice_state::codec;
use sluice_state::handle::{Delivery, HandleError, HandleKey, Side};
use sluice_state::ids::{LogIndex, QueueId, RecordIndex, ShardNumber, ShardUid, StreamUid};
use sluice_state::lease::{LeaseCommand, LeaseOutcome};
use sluice_state::log::{self, StartFrom};
use sluice_state::queue::{
    EntryError, Offered, OfferedRecord, QueueAttributes, QueueCommand, QueueLimits, QueueReply, QueueShardStart,
    Received, Reservations, ShardHorizon, StartingPosition, VisibilityChange,
};
use sluice_state::state::{Command, Entry, Outcome, State};
use sluice_state::stream::{ShardInfo, StreamEvent};
use std::collections::BTreeMap;

pub const STREAM: StreamUid = StreamUid(1);
pub const QUEUE: QueueId = QueueId(7);

/// One shard of the fake stream. Record indexes start at 1, as the journal's do.
#[derive(Debug, Clone, Default)]
pub struct FakeShard {
    pub info: Option<ShardInfo>,
    /// Arrival time of record `i` at position `i - 1`.
    pub arrivals: Vec<i64>,
    /// Records before this index were trimmed by retention (deleted segments).
    pub first_retained: u64,
    /// Set once the shard was closed.
    pub ending: Option<u64>,
}

impl FakeShard {
    /// The index the next record gets.
    pub fn end(&self) -> u64 {
        self.arrivals.len() as u64 + 1
    }

    pub fn arrival(&self, index: u64) -> Option<i64> {
        if index < self.first_retained.max(1) || index >= self.end() {
            return None;
        }
        Some(self.arrivals[(index - 1) as usize])
    }
}

/// A failed queue entry, as the runtime would answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryFailure {
    Handle(HandleError),
    WrongApi,
    Entry(EntryError),
}

pub struct Sim {
    pub now_ms: i64,
    pub retention_ms: i64,
    pub shards: BTreeMap<ShardUid, FakeShard>,
    pub state: State,
    pub log: Vec<(LogIndex, Vec<u8>)>,
    pub limits: QueueLimits,
    pub reserved: Reservations,
}

pub fn shard_info(uid: u64, parents: &[u64]) -> ShardInfo {
    ShardInfo {
        uid: ShardUid(uid),
        number: ShardNumber(uid as u32),
        parents: parents.iter().map(|&p| ShardUid(p)).collect(),
        hash_key_start: u128::from(uid) << 100,
        hash_key_end: (u128::from(uid) << 100) + 99,
    }
}

impl Sim {
    /// A fresh core at `now_ms` whose log starts with `Init`.
    pub fn new(now_ms: i64, retention_ms: i64) -> Sim {
        let mut sim = Sim {
            now_ms,
            retention_ms,
            shards: BTreeMap::new(),
            state: State::default(),
            log: Vec::new(),
            limits: QueueLimits::default(),
            reserved: Reservations::default(),
        };
        sim.append(Command::Init { handle_key: HandleKey([0x5a; 32]) });
        sim
    }

    /// A core with a queue on a stream of `shard_count` shards (uids 1..), from TRIM_HORIZON.
    pub fn with_queue(shard_count: u64, retention_ms: i64, attributes: QueueAttributes) -> Sim {
        let mut sim = Sim::new(1_000_000, retention_ms);
        for uid in 1..=shard_count {
            sim.shards.insert(ShardUid(uid), FakeShard { info: Some(shard_info(uid, &[])), ..FakeShard::default() });
        }
        sim.create_queue(attributes);
        sim
    }

    pub fn create_queue(&mut self, attributes: QueueAttributes) -> Outcome {
        let shards = self
            .shards
            .values()
            .map(|shard| QueueShardStart {
                info: shard.info.clone().expect("fake shards have infos"),
                // TRIM_HORIZON: from index 0, which a receive skips to the first record.
                start: RecordIndex(0),
                ending: shard.ending.map(RecordIndex),
            })
            .collect();
        self.append(Command::Queue(QueueCommand::CreateQueue {
            queue: QUEUE,
            name: "jobs".into(),
            stream: STREAM,
            retention_ms: self.retention_ms,
            starting_position: StartingPosition::TrimHorizon,
            effective_start_ms: self.now_ms,
            attributes,
            shards,
        }))
    }

    /// Encodes, logs, decodes and applies one command at the current time.
    pub fn append(&mut self, command: Command) -> Outcome {
        let entry = Entry { now_ms: self.now_ms, command };
        let bytes = codec::encode(&entry).expect("test entries fit");
        let decoded = codec::decode(&bytes).expect("what we encode decodes");
        assert_eq!(decoded, entry);
        let index = LogIndex(self.log.last().map_or(1, |(last, _)| last.0 + 1));
        self.log.push((index, bytes));
        self.state.apply(index, &decoded)
    }

    pub fn lease(&mut self, command: LeaseCommand) -> LeaseOutcome {
        match self.append(Command::Lease(command)) {
            Outcome::Lease(outcome) => outcome,
            other => panic!("lease command answered {other:?}"),
        }
    }

    pub fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
    }

    pub fn put(&mut self, shard: u64, count: usize) {
        let now_ms = self.now_ms;
        let shard = self.shards.get_mut(&ShardUid(shard)).expect("known shard");
        assert!(shard.ending.is_none(), "closed shards take no records");
        shard.arrivals.extend(std::iter::repeat_n(now_ms, count));
    }

    /// Deletes records past retention from the fake shards, as the journal deletes segments.
    pub fn trim(&mut self) {
        for shard in self.shards.values_mut() {
            while let Some(arrival) = shard.arrival(shard.first_retained.max(1)) {
                if arrival + self.retention_ms > self.now_ms {
                    break;
                }
                shard.first_retained = shard.first_retained.max(1) + 1;
            }
        }
    }

    /// Splits `parent` into two children: the control plane's events, in order.
    pub fn split(&mut self, parent: u64, children: [u64; 2]) {
        let ending = self.shards[&ShardUid(parent)].end();
        self.shards.get_mut(&ShardUid(parent)).unwrap().ending = Some(ending);
        let infos: Vec<ShardInfo> = children.iter().map(|&child| shard_info(child, &[parent])).collect();
        for info in &infos {
            self.shards.insert(info.uid, FakeShard { info: Some(info.clone()), ..FakeShard::default() });
        }
        self.append(Command::Stream(StreamEvent::ShardsCreated { stream: STREAM, shards: infos }));
        self.append(Command::Stream(StreamEvent::ShardEnded {
            stream: STREAM,
            shard: ShardUid(parent),
            ending_index: RecordIndex(ending),
        }));
    }

    pub fn key(&self) -> HandleKey {
        self.state.handle_key().expect("initialised").clone()
    }

    /// What the runtime reads for a receive: everything the state wants.
    fn read(&self, side: Side, limit: usize) -> Offered {
        let queue = self.state.queues.queue(QUEUE).expect("the queue exists");
        let wants = queue.wants(side, self.now_ms, limit, &self.limits, &self.reserved);
        let mut offered = Offered::default();
        for (shard, index) in wants.redeliveries {
            if let Some(arrival_ms) = self.shards[&shard].arrival(index.0) {
                offered.records.push(OfferedRecord { shard, index, arrival_ms });
            }
        }
        for want in wants.fresh {
            let shard = &self.shards[&want.shard];
            // The first record at or after `from` that is retained and not past retention, as
            // the runtime finds it (the journal's trim horizon, then AT_TIMESTAMP of now minus
            // retention): everything before it will never be delivered.
            let mut first_available = want.from.0.max(shard.first_retained.max(1));
            while shard.arrival(first_available).is_some_and(|arrival| arrival + self.retention_ms <= self.now_ms) {
                first_available += 1;
            }
            let first_available = first_available.min(shard.end().max(want.from.0));
            offered.horizons.push(ShardHorizon {
                shard: want.shard,
                from: want.from,
                first_available: RecordIndex(first_available),
            });
            for index in (first_available..shard.end()).take(want.count_max) {
                let arrival_ms = shard.arrival(index).expect("retained");
                offered.records.push(OfferedRecord { shard: want.shard, index: RecordIndex(index), arrival_ms });
            }
        }
        offered
    }

    /// A receive as the runtime does it: read, select, log, apply, sign.
    pub fn receive(&mut self, side: Side, limit: usize, visibility_timeout_s: Option<u32>) -> Vec<(Received, String)> {
        let offered = self.read(side, limit);
        let queue = self.state.queues.queue(QUEUE).expect("the queue exists");
        let command =
            queue.select(side, self.now_ms, limit, visibility_timeout_s, &self.limits, &self.reserved, &offered);
        let QueueCommand::Receive { records, skips, .. } = &command else { unreachable!() };
        if records.is_empty() && skips.is_empty() {
            return Vec::new();
        }
        self.reserved.reserve(&command);
        let outcome = self.append(Command::Queue(command.clone()));
        self.reserved.release(&command);
        let Outcome::Queue(Ok(QueueReply::Received(received))) = outcome else {
            panic!("receive answered {outcome:?}")
        };
        let key = self.key();
        received.into_iter().map(|r| (r, key.sign(QUEUE, r.delivery))).collect()
    }

    /// Verifies handles as the runtime does; the valid ones go into `command`.
    fn entries<T>(
        &mut self,
        side: Side,
        items: Vec<(String, T)>,
        command: impl FnOnce(Vec<(Delivery, T)>) -> Option<QueueCommand>,
    ) -> Vec<Result<(), EntryFailure>> {
        let key = self.key();
        let mut results: Vec<Option<Result<(), EntryFailure>>> = Vec::new();
        let mut valid = Vec::new();
        for (handle, extra) in items {
            match key.verify(QUEUE, &handle) {
                Ok(delivery) if delivery.side == side => {
                    results.push(None);
                    valid.push((delivery, extra));
                }
                Ok(_) => results.push(Some(Err(EntryFailure::WrongApi))),
                Err(error) => results.push(Some(Err(EntryFailure::Handle(error)))),
            }
        }
        let mut applied = Vec::new().into_iter();
        if let Some(command) = (!valid.is_empty()).then(|| command(valid)).flatten() {
            let Outcome::Queue(Ok(QueueReply::Entries(entries))) = self.append(Command::Queue(command)) else {
                panic!()
            };
            applied = entries.into_iter();
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| applied.next().expect("one result per entry").map_err(EntryFailure::Entry))
            })
            .collect()
    }

    pub fn acknowledge(&mut self, side: Side, handles: &[String]) -> Vec<Result<(), EntryFailure>> {
        let items = handles.iter().map(|h| (h.clone(), ())).collect();
        self.entries(side, items, |valid| {
            Some(QueueCommand::Acknowledge {
                queue: QUEUE,
                side,
                deliveries: valid.into_iter().map(|(d, ())| d).collect(),
            })
        })
    }

    pub fn change_visibility(&mut self, side: Side, changes: &[(String, u32)]) -> Vec<Result<(), EntryFailure>> {
        self.entries(side, changes.to_vec(), |valid| {
            let changes = valid
                .into_iter()
                .map(|(delivery, visibility_timeout_s)| VisibilityChange { delivery, visibility_timeout_s })
                .collect();
            Some(QueueCommand::ChangeVisibility { queue: QUEUE, side, changes })
        })
    }

    pub fn restore(&mut self, handles: &[String]) -> Vec<Result<(), EntryFailure>> {
        let items = handles.iter().map(|h| (h.clone(), ())).collect();
        self.entries(Side::DeadLetter, items, |valid| {
            Some(QueueCommand::Restore { queue: QUEUE, deliveries: valid.into_iter().map(|(d, ())| d).collect() })
        })
    }

    /// Appends a snapshot of the current state.
    pub fn snapshot(&mut self) {
        for entry in log::snapshot_entries(&self.state) {
            self.append(entry.command);
        }
    }

    /// The decoded log.
    pub fn decoded_log(&self) -> Vec<(LogIndex, Entry)> {
        log::decode_log(self.log.iter().map(|(index, bytes)| (*index, bytes.as_slice()))).expect("the log decodes")
    }

    /// Kills the core and starts it again: the state is what replay rebuilds, from the latest
    /// snapshot. Checks that replay from the beginning and from every complete snapshot
    /// rebuilds exactly the state the core had.
    pub fn crash(&mut self) {
        let decoded = self.decoded_log();
        let snapshots = log::snapshots_in(&decoded).expect("snapshots are consistent");
        let latest = log::replay(&decoded, StartFrom::LatestSnapshot).expect("the log replays");
        assert_eq!(latest.state, self.state, "replay from the latest snapshot differs");
        assert_eq!(latest.snapshot, snapshots.last().copied());
        let first = decoded.first().map(|(index, _)| *index);
        if first == Some(LogIndex(1)) {
            let beginning = log::replay(&decoded, StartFrom::Beginning).expect("the log replays");
            assert_eq!(beginning.state, self.state, "replay from the beginning differs");
        }
        // Every snapshot whose following entries are all still in the log.
        for as_of in snapshots.into_iter().filter(|as_of| first.is_some_and(|first| as_of.0 + 1 >= first.0)) {
            let replayed = log::replay(&decoded, StartFrom::Snapshot(as_of)).expect("the log replays");
            assert_eq!(replayed.state, self.state, "replay from the snapshot as of {as_of} differs");
        }
        self.state = latest.state;
        self.reserved = Reservations::default();
    }

    /// Trims the log before the latest snapshot, as retention of the internal shard would,
    /// and checks that recovery still works.
    pub fn trim_log(&mut self) {
        let decoded = self.decoded_log();
        let Some(trim_before) = log::replay(&decoded, StartFrom::LatestSnapshot).expect("replays").trim_before else {
            return;
        };
        self.log.retain(|(index, _)| *index >= trim_before);
        self.crash();
    }
}

/// One entry of every kind, as the fuzz target's seed corpus (fuzz/corpus/state_log) and the
/// codec tests use them.
pub fn seed_entries() -> Vec<(&'static str, Entry)> {
    use sluice_state::handle::Delivery;
    use sluice_state::ids::{ApplicationId, WorkerId};
    use sluice_state::lease::{Checkpoint, InitialPosition, NewShard};
    use sluice_state::queue::{DeadLetter, OfferedRecord, Skip};
    let now_ms = 1_700_000_000_000;
    let at = |command| Entry { now_ms, command };
    let worker = |name: &str| WorkerId::new(name).unwrap();
    let delivery = |index, attempt, side| Delivery { shard: ShardUid(2), index: RecordIndex(index), attempt, side };
    let mut snapshot = Sim::with_queue(2, 3_600_000, QueueAttributes::default());
    snapshot.put(1, 3);
    snapshot.receive(Side::Queue, 2, None);
    snapshot.append(Command::Queue(QueueCommand::Tag { queue: QUEUE, tags: vec![("team".into(), "orders".into())] }));
    let snapshot_part = log::snapshot_entries(&snapshot.state).remove(0).command;
    vec![
        ("init", at(Command::Init { handle_key: HandleKey([0x5a; 32]) })),
        (
            "shards_created",
            at(Command::Stream(StreamEvent::ShardsCreated {
                stream: STREAM,
                shards: vec![shard_info(2, &[1]), shard_info(3, &[1])],
            })),
        ),
        (
            "shard_ended",
            at(Command::Stream(StreamEvent::ShardEnded {
                stream: STREAM,
                shard: ShardUid(1),
                ending_index: RecordIndex(1234),
            })),
        ),
        (
            "retention_changed",
            at(Command::Stream(StreamEvent::RetentionChanged { stream: STREAM, retention_ms: 86_400_000 })),
        ),
        (
            "shards_expired",
            at(Command::Stream(StreamEvent::ShardsExpired { stream: STREAM, shards: vec![ShardUid(1)] })),
        ),
        ("stream_deleted", at(Command::Stream(StreamEvent::StreamDeleted { stream: STREAM }))),
        (
            "create_application",
            at(Command::Lease(LeaseCommand::CreateApplication {
                application: ApplicationId(3),
                name: "orders-app".into(),
                stream: STREAM,
                initial_position: InitialPosition::AtTimestamp { timestamp_ms: now_ms - 60_000 },
                lease_duration_ms: 10_000,
                shards: vec![
                    NewShard { info: shard_info(1, &[]), closed: true },
                    NewShard { info: shard_info(2, &[1]), closed: false },
                ],
            })),
        ),
        ("delete_application", at(Command::Lease(LeaseCommand::DeleteApplication { application: ApplicationId(3) }))),
        (
            "take_lease",
            at(Command::Lease(LeaseCommand::Take {
                application: ApplicationId(3),
                shard: ShardUid(2),
                worker: worker("w1"),
                lease_counter: 5,
            })),
        ),
        (
            "renew_lease",
            at(Command::Lease(LeaseCommand::Renew {
                application: ApplicationId(3),
                shard: ShardUid(2),
                worker: worker("w1"),
                lease_counter: 6,
            })),
        ),
        (
            "release_lease",
            at(Command::Lease(LeaseCommand::Release {
                application: ApplicationId(3),
                shard: ShardUid(2),
                worker: worker("w1"),
                lease_counter: 6,
            })),
        ),
        (
            "steal_lease",
            at(Command::Lease(LeaseCommand::Steal {
                application: ApplicationId(3),
                shard: ShardUid(2),
                worker: worker("w2"),
                lease_owner: worker("w1"),
                lease_counter: 6,
            })),
        ),
        (
            "checkpoint_lease",
            at(Command::Lease(LeaseCommand::Checkpoint {
                application: ApplicationId(3),
                shard: ShardUid(2),
                worker: worker("w2"),
                lease_counter: 7,
                checkpoint: Checkpoint::Sequence {
                    sequence_number: 1_329_227_995_784_915_872_903_807_060_280_344_576 + 42,
                    sub_sequence_number: 3,
                },
            })),
        ),
        (
            "create_queue",
            at(Command::Queue(QueueCommand::CreateQueue {
                queue: QUEUE,
                name: "jobs".into(),
                stream: STREAM,
                retention_ms: 86_400_000,
                starting_position: StartingPosition::Latest,
                effective_start_ms: now_ms,
                attributes: QueueAttributes {
                    visibility_timeout_s: 45,
                    dead_letter: DeadLetter::BuiltIn { max_receive_count: 4 },
                },
                shards: vec![QueueShardStart { info: shard_info(2, &[1]), start: RecordIndex(17), ending: None }],
            })),
        ),
        (
            "update_queue",
            at(Command::Queue(QueueCommand::UpdateQueue {
                queue: QUEUE,
                visibility_timeout_s: Some(0),
                dead_letter: Some(DeadLetter::None),
            })),
        ),
        ("delete_queue", at(Command::Queue(QueueCommand::DeleteQueue { queue: QUEUE }))),
        (
            "receive",
            at(Command::Queue(QueueCommand::Receive {
                queue: QUEUE,
                side: Side::Queue,
                visibility_timeout_s: 30,
                records: vec![
                    OfferedRecord { shard: ShardUid(2), index: RecordIndex(17), arrival_ms: now_ms - 5 },
                    OfferedRecord { shard: ShardUid(2), index: RecordIndex(18), arrival_ms: now_ms - 4 },
                ],
                skips: vec![Skip { shard: ShardUid(3), to: RecordIndex(9) }],
            })),
        ),
        (
            "acknowledge",
            at(Command::Queue(QueueCommand::Acknowledge {
                queue: QUEUE,
                side: Side::Queue,
                deliveries: vec![delivery(17, 1, Side::Queue)],
            })),
        ),
        (
            "change_visibility",
            at(Command::Queue(QueueCommand::ChangeVisibility {
                queue: QUEUE,
                side: Side::DeadLetter,
                changes: vec![VisibilityChange {
                    delivery: delivery(18, 7, Side::DeadLetter),
                    visibility_timeout_s: 0,
                }],
            })),
        ),
        (
            "restore",
            at(Command::Queue(QueueCommand::Restore {
                queue: QUEUE,
                deliveries: vec![delivery(18, 7, Side::DeadLetter)],
            })),
        ),
        ("snapshot_part", at(snapshot_part)),
        (
            "tag_queue",
            at(Command::Queue(QueueCommand::Tag {
                queue: QUEUE,
                tags: vec![("team".into(), "orders".into()), ("cost-centre".into(), String::new())],
            })),
        ),
        ("untag_queue", at(Command::Queue(QueueCommand::Untag { queue: QUEUE, keys: vec!["team".into()] }))),
    ]
}
