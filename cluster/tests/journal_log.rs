//! A shard group's Raft log kept in the journal (`journal_log`), on the simulated disk, driven
//! as a replica drives it: entries with records and without (empty, seal-like, membership
//! changes with contexts, fences after which no entry stores records), appended and synced, suffixes past the commit replaced by a newer
//! term, commits published and saved, compactions, and restarts by clean close, kill and
//! power loss, some between an append and its sync. After every restart the log must be what
//! was synced (or, for an append cut short, the log before it or a prefix of the log it was
//! making), every entry must read back as written, and the shard must serve exactly the
//! records of the committed entries. Seeded; `SIMULATION_SEED=N` replays one,
//! `SIMULATION_SEEDS=N` runs more.

use std::cell::RefCell;
use std::future::Future;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Message, MessageType};
use sluice_cluster::adopt::{adopt_durable_log, Adopted, ADOPTING_FILE};
use sluice_cluster::durable_log::DurableLog;
use sluice_cluster::journal_log::{decode_peer_runs, encode_peer_runs, EntryCodec, GapPast, JournalLog, PeerRuns};
use sluice_cluster::log_storage::LogStorage;
use sluice_cluster::log_store::LogStore;
use sluice_cluster::replica::{Input, Replica, ReplicaConfig, ReplicaEvents, Transport};
use sluice_engine::clock::ManualClock;
use sluice_engine::journal::{AppendRecord, Journal, JournalConfig, RaftEntryRun, ShardSpec, StoredRecord};
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::sim::{DiskConfig, Fault, OpKind, RunOutcome, SimDisk, SimExecutor, SimRng, SimStorage};
use sluice_engine::storage::Storage;

const JOURNAL_DIR: &str = "/journal";
const RAFT_DIR: &str = "/raft/shard-7";
const UID: u64 = 7;

/// A records entry: `b'R' | arrival_ms i64 | count u8 | (length u8 | data)*`; `b"F"` is a
/// fence (a seal: no entry after it stores records). Anything else holds no records.
struct TestCodec;

impl EntryCodec for TestCodec {
    fn records(&self, shard_uid: u64, data: &Bytes) -> Option<(i64, Vec<AppendRecord>)> {
        if data.first() != Some(&b'R') || data.len() < 10 {
            return None;
        }
        let arrival_ms = i64::from_le_bytes(data[1..9].try_into().unwrap());
        let mut at = 10;
        let mut records = Vec::new();
        for _ in 0..data[9] {
            let length = *data.get(at)? as usize;
            let record = data.get(at + 1..at + 1 + length)?;
            records.push(AppendRecord {
                shard_uid,
                partition_key: Bytes::from_static(b"k"),
                data: Bytes::copy_from_slice(record),
                sealed: false,
            });
            at += 1 + length;
        }
        (at == data.len()).then_some((arrival_ms, records))
    }

    fn entry(&self, records: &[StoredRecord]) -> Bytes {
        encode_records(records[0].timestamp_ms, records.iter().map(|record| record.data.clone()))
    }

    fn fences(&self, data: &Bytes) -> bool {
        data[..] == b"F"[..]
    }
}

fn encode_records(arrival_ms: i64, records: impl ExactSizeIterator<Item = Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(b'R');
    out.put_i64_le(arrival_ms);
    out.put_u8(records.len() as u8);
    for record in records {
        out.put_u8(record.len() as u8);
        out.put_slice(&record);
    }
    out.freeze()
}

fn is_fence(entry: &Entry) -> bool {
    entry.entry_type == EntryType::EntryNormal && TestCodec.fences(&entry.data)
}

/// The records of a records entry, as the journal serves them.
fn records_of(entry: &Entry) -> Vec<Bytes> {
    match TestCodec.records(UID, &entry.data) {
        Some((_, records)) if entry.entry_type == EntryType::EntryNormal => {
            records.into_iter().map(|record| record.data).collect()
        }
        _ => Vec::new(),
    }
}

fn block_on<T: 'static>(executor: &SimExecutor, future: impl Future<Output = T> + 'static) -> T {
    match executor.run(future, || false, 50_000_000) {
        RunOutcome::Finished(value) => value,
        RunOutcome::Stopped => unreachable!("no stop condition"),
        RunOutcome::Deadlock => panic!("the simulation deadlocked"),
        RunOutcome::Exhausted => panic!("the simulation ran out of polls"),
    }
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("SIMULATION_SEED") {
        return vec![seed.parse().expect("a number")];
    }
    let count = std::env::var("SIMULATION_SEEDS").map_or(48, |count| count.parse().expect("a number"));
    (0..count).collect()
}

/// What a replica knows of its log, and what a restart must find.
#[derive(Clone, Default)]
struct Model {
    /// The entries after the compaction point, as synced.
    log: Vec<Entry>,
    compacted: u64,
    compacted_term: u64,
    /// The records of the compacted entries (retention is off: the shard still serves them).
    compacted_records: Vec<Bytes>,
    /// A fence is among the compacted entries.
    compacted_fence: bool,
    /// The commit saved in the hard state (and published).
    commit: u64,
    term: u64,
    /// The newest arrival time given (records entries' times never go back).
    arrival_ms: i64,
    /// An append cut short by the crash: the log before it, and the log it was making.
    cut_short: Option<(Vec<Entry>, Vec<Entry>)>,
}

impl Model {
    fn last_index(&self) -> u64 {
        self.compacted + self.log.len() as u64
    }

    fn entry(&self, index: u64) -> &Entry {
        &self.log[(index - self.compacted - 1) as usize]
    }

    fn term_of(&self, index: u64) -> u64 {
        if index == self.compacted {
            self.compacted_term
        } else {
            self.entry(index).term
        }
    }

    /// The records of the committed entries, compacted ones included, up to the first fence.
    fn committed_records(&self) -> Vec<Bytes> {
        let mut records = self.compacted_records.clone();
        if !self.compacted_fence {
            let committed = self.log.iter().take((self.commit - self.compacted) as usize);
            records.extend(committed.take_while(|entry| !is_fence(entry)).flat_map(records_of));
        }
        records
    }

    /// Whether a committed entry, compacted or not, is a fence: the shard is then closed.
    fn fence_committed(&self) -> bool {
        self.compacted_fence || self.log.iter().take((self.commit - self.compacted) as usize).any(is_fence)
    }

    fn new_entry(&mut self, index: u64, rng: &mut SimRng) -> Entry {
        let term = self.term;
        match rng.below(8) {
            0 => Entry { index, term, ..Entry::default() },
            1 if rng.one_in(6) => Entry { index, term, data: Bytes::from_static(b"F"), ..Entry::default() },
            1 => Entry { index, term, data: Bytes::from_static(b"S"), ..Entry::default() },
            2 => Entry {
                index,
                term,
                entry_type: EntryType::EntryConfChangeV2,
                data: Bytes::from(vec![rng.below(256) as u8; rng.range(1, 40) as usize]),
                context: Bytes::from(vec![9; rng.below(5) as usize]),
                ..Entry::default()
            },
            _ => {
                self.arrival_ms += rng.below(3) as i64;
                let count = rng.range(1, 6);
                let records: Vec<Bytes> =
                    (0..count).map(|_| Bytes::from(vec![rng.below(256) as u8; rng.below(200) as usize])).collect();
                Entry { index, term, data: encode_records(self.arrival_ms, records.into_iter()), ..Entry::default() }
            }
        }
    }
}

/// Compares entries as the log returns them: a records entry's context is not kept.
fn assert_entries(seed: u64, what: &str, actual: &[Entry], expected: &[Entry]) {
    let key = |entry: &Entry| {
        let context = if records_of(entry).is_empty() { entry.context.clone() } else { Bytes::new() };
        (entry.index, entry.term, entry.entry_type, entry.data.clone(), context)
    };
    let brief = |entry: &Entry| {
        let records: Vec<usize> = records_of(entry).iter().map(Bytes::len).collect();
        format!("{}/{} {:?} {} bytes, records {records:?}", entry.index, entry.term, entry.entry_type, entry.data.len())
    };
    for (at, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(key(a) == key(e), "seed {seed}: {what}: entry {at} is {}, not {}", brief(a), brief(e));
    }
    assert_eq!(actual.len(), expected.len(), "seed {seed}: {what}: entries");
}

struct Opened {
    journal: Journal<SimStorage>,
    log: JournalLog<SimStorage, TestCodec>,
    store: LogStore,
}

/// Retention long enough that nothing expires.
const KEPT_FOR_EVER_MS: i64 = i64::MAX / 4;

async fn open(storage: SimStorage, segment_bytes: u64, clock: ManualClock, retention_ms: i64) -> Opened {
    let opened = try_open(storage, segment_bytes, clock, retention_ms).await;
    opened.expect("the log opens")
}

async fn try_open(
    storage: SimStorage,
    segment_bytes: u64,
    clock: ManualClock,
    retention_ms: i64,
) -> Result<Opened, sluice_cluster::ClusterError> {
    let mut config = JournalConfig::new(JOURNAL_DIR);
    config.segment_bytes_max = segment_bytes;
    config.tail_cache_bytes_max = 0;
    open_with(storage, config, clock, retention_ms).await
}

async fn open_with(
    storage: SimStorage,
    config: JournalConfig,
    clock: ManualClock,
    retention_ms: i64,
) -> Result<Opened, sluice_cluster::ClusterError> {
    let journal = Journal::open_in(storage.clone(), config, Arc::new(clock)).await.expect("the journal opens");
    let seq_prefix = ShardSeqPrefix::new(1_700_000_000, 0);
    journal.register_shard(ShardSpec { uid: UID, seq_prefix, retention_ms });
    let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
    let (log, store) =
        JournalLog::open(journal.clone(), UID, TestCodec, storage, Path::new(RAFT_DIR), conf_state, 2 << 10).await?;
    Ok(Opened { journal, log, store })
}

/// Every record the shard serves (gated at the published end).
async fn served(journal: &Journal<SimStorage>) -> Vec<Bytes> {
    served_by_index(journal).await.into_iter().map(|(_, data)| data).collect()
}

/// [`served`], each record with its record index.
async fn served_by_index(journal: &Journal<SimStorage>) -> Vec<(u64, Bytes)> {
    let mut records = Vec::new();
    let mut from = 0;
    loop {
        let batch = journal.read(UID, from, 1000, usize::MAX).await.expect("the shard reads");
        if batch.records.is_empty() {
            return records;
        }
        from = batch.next_index;
        records.extend(batch.records.into_iter().map(|record| (record.sequence_number.record_index(), record.data)));
    }
}

/// The log's entries from `from` on (a read may return fewer than asked: until one returns
/// none).
async fn read_all(opened: &Opened, from: u64) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut next = from;
    while next <= opened.store.last_index() {
        let read = opened.log.read(next, opened.store.last_index(), usize::MAX, &opened.store).await;
        let read = read.expect("the log reads");
        if read.is_empty() {
            break;
        }
        next += read.len() as u64;
        entries.extend(read);
    }
    entries
}

/// After a restart: the log is what the model says, read back whole and served up to the
/// commit; an append cut short left the log before it or a prefix of the one it made.
async fn check_recovered(seed: u64, opened: &Opened, model: &mut Model) {
    let store = &opened.store;
    assert_eq!(store.first_index(), model.compacted + 1, "seed {seed}: compaction point");
    let entries = read_all(opened, model.compacted + 1).await;
    if let Some((before, making)) = model.cut_short.take() {
        let keep = entries.len();
        // What both share was synced before the append: it is kept in any case.
        let synced = before.iter().zip(&making).take_while(|(a, b)| (a.index, a.term) == (b.index, b.term)).count();
        assert!(keep >= synced, "seed {seed}: synced entries lost ({keep} of {synced} left)");
        let recovered = if keep == before.len() && entries.iter().zip(&before).all(|(a, b)| a.term == b.term) {
            before
        } else {
            assert!(keep <= making.len(), "seed {seed}: {keep} entries after a cut-short append of {}", making.len());
            making[..keep].to_vec()
        };
        model.log = recovered;
    }
    assert_entries(seed, "entries after a restart", &entries, &model.log);
    let hard_state = store.hard_state();
    assert_eq!((hard_state.term, hard_state.commit), (model.term, model.commit), "seed {seed}: hard state");
    for index in model.compacted..=model.last_index() {
        assert_eq!(store.term_of(index), Some(model.term_of(index)), "seed {seed}: term of {index}");
    }
    assert_eq!(served(&opened.journal).await, model.committed_records(), "seed {seed}: served after a restart");
    assert_eq!(opened.journal.is_closed(UID), model.fence_committed(), "seed {seed}: closed after a restart");
}

/// One process: opens, checks what it finds, runs `steps` random steps, and ends by a clean
/// close (true) or leaves the journal to a crash.
async fn run_process(
    seed: u64,
    storage: SimStorage,
    segment_bytes: u64,
    mut model: Model,
    mut rng: SimRng,
    steps: usize,
) -> (Model, bool) {
    let clock = ManualClock::new(1_000);
    let mut opened = open(storage, segment_bytes, clock, KEPT_FOR_EVER_MS).await;
    check_recovered(seed, &opened, &mut model).await;
    // Each process writes in terms of its own: an entry a crash cut short may have reached
    // peers, and an index and a term name one entry (Raft's log matching).
    model.term += 1;
    let hard_state = HardState { term: model.term, commit: model.commit, ..HardState::default() };
    opened.log.save_hard_state(&hard_state).await.expect("save the hard state");
    opened.store.set_hard_state(hard_state);
    for _ in 0..steps {
        let last = model.last_index();
        match rng.below(10) {
            // Append after the end, or replace a suffix past the commit with a newer term.
            0..=5 => {
                let from = if last > model.commit && rng.one_in(3) {
                    model.term += 1;
                    // Raft saves a new term before it writes for it.
                    let hard_state = HardState { term: model.term, commit: model.commit, ..HardState::default() };
                    opened.log.save_hard_state(&hard_state).await.expect("save the hard state");
                    opened.store.set_hard_state(hard_state);
                    rng.range(model.commit + 1, last + 1)
                } else {
                    last + 1
                };
                let count = rng.range(1, 6);
                let entries: Vec<Entry> = (from..from + count).map(|index| model.new_entry(index, &mut rng)).collect();
                let places = opened.log.append(&entries).await.expect("append");
                let before = model.log.clone();
                model.log.truncate((from - model.compacted - 1) as usize);
                model.log.extend(entries.iter().cloned());
                if rng.one_in(8) {
                    model.cut_short = Some((before, model.log.clone()));
                    return (model, false);
                }
                opened.log.sync().await.expect("sync");
                opened.store.append(&entries, &places);
            }
            // Commit, publish and save.
            6 | 7 if last > model.commit => {
                model.commit = rng.range(model.commit + 1, last + 1);
                let hard_state = HardState { term: model.term, commit: model.commit, ..HardState::default() };
                opened.log.save_hard_state(&hard_state).await.expect("save the hard state");
                opened.store.set_hard_state(hard_state);
                opened.log.committed(model.commit, &opened.store).expect("publish");
                assert_eq!(served(&opened.journal).await, model.committed_records(), "seed {seed}: served");
                assert_eq!(opened.journal.is_closed(UID), model.fence_committed(), "seed {seed}: closed");
            }
            // Compact some committed entries away.
            8 if model.commit > model.compacted => {
                let index = rng.range(model.compacted + 1, model.commit + 1);
                let term = model.term_of(index);
                opened.store.compact(index);
                opened.log.compact(index, term, &opened.store).await.expect("compact");
                let gone: Vec<Entry> = model.log.drain(..(index - model.compacted) as usize).collect();
                if !model.compacted_fence {
                    let before_fence = gone.iter().take_while(|entry| !is_fence(entry));
                    model.compacted_records.extend(before_fence.flat_map(records_of));
                    model.compacted_fence = gone.iter().any(is_fence);
                }
                model.compacted = index;
                model.compacted_term = term;
            }
            // Read a range back.
            _ if last > model.compacted => {
                let from = rng.range(model.compacted + 1, last + 1);
                let to = rng.range(from, last + 1);
                let bytes_max = rng.range(1, 2000) as usize;
                let entries = opened.log.read(from, to, bytes_max, &opened.store).await.expect("read");
                assert!(!entries.is_empty(), "seed {seed}: a read returns at least one entry");
                let expected: Vec<Entry> =
                    (from..from + entries.len() as u64).map(|i| model.entry(i).clone()).collect();
                assert_entries(seed, "a read", &entries, &expected);
            }
            _ => {}
        }
    }
    let clean = rng.coin();
    if clean {
        opened.journal.close().await.expect("close");
    }
    (model, clean)
}

#[test]
fn the_log_kept_in_the_journal_survives_restarts_as_synced() {
    for seed in seeds() {
        let mut rng = SimRng::new(seed);
        let alignment = if rng.one_in(3) { 4096 } else { 512 };
        let disk = SimDisk::new(DiskConfig { alignment, yields_max: 2, ..DiskConfig::default() }, rng.fork());
        let segment_bytes = rng.range(4, 16) * 1024;
        let mut model = Model::default();
        for _ in 0..rng.range(3, 8) {
            let executor = SimExecutor::new(rng.fork());
            let storage = disk.storage(&executor);
            let steps = rng.range(10, 60) as usize;
            let process = run_process(seed, storage, segment_bytes, model, rng.fork(), steps);
            let (ended, clean) = block_on(&executor, process);
            model = ended;
            executor.shutdown();
            if !clean {
                if rng.coin() {
                    disk.power_loss();
                } else {
                    disk.kill();
                }
            }
        }
        // And once more, to check what the last process left.
        let executor = SimExecutor::new(rng.fork());
        let storage = disk.storage(&executor);
        block_on(&executor, run_process(seed, storage, segment_bytes, model, rng.fork(), 0));
        executor.shutdown();
    }
}

/// Entries 1 to 12 with two records each, the first `old` of them arriving at 1 000 ms and the
/// rest at 500 000 ms (appended after them), then an empty entry; committed up to `commit`.
async fn write_aging_log(storage: SimStorage, old: u64, commit: u64) -> Vec<Entry> {
    let mut opened = open(storage, 4096, ManualClock::new(1_000), 60_000).await;
    let hard_state = HardState { term: 2, ..HardState::default() };
    opened.log.save_hard_state(&hard_state).await.unwrap();
    let mut entries: Vec<Entry> = (1..=12)
        .map(|index| {
            let arrival_ms = if index <= old { 1_000 } else { 500_000 };
            let records = (0..2u32).map(|at| Bytes::from(vec![(index as u32 * 2 + at) as u8; 200]));
            Entry { index, term: 2, data: encode_records(arrival_ms, records), ..Entry::default() }
        })
        .collect();
    entries.push(Entry { index: 13, term: 2, ..Entry::default() });
    // The old entries first, in a commit of their own: the segment rolls after them.
    for part in [&entries[..old as usize], &entries[old as usize..]] {
        let places = opened.log.append(part).await.unwrap();
        opened.log.sync().await.unwrap();
        opened.store.append(part, &places);
    }
    let hard_state = HardState { term: 2, commit, ..HardState::default() };
    opened.log.save_hard_state(&hard_state).await.unwrap();
    opened.store.set_hard_state(hard_state);
    opened.log.committed(commit, &opened.store).unwrap();
    opened.journal.close().await.unwrap();
    entries
}

/// The records of entries `range` of `written` (1-based indexes, as the log's).
fn records_in(written: &[Entry], range: std::ops::RangeInclusive<usize>) -> Vec<Bytes> {
    written[range.start() - 1..*range.end()].iter().flat_map(records_of).collect()
}

#[test]
fn entries_whose_records_expired_are_read_as_gone_then_compacted_and_deleted() {
    let executor = SimExecutor::new(SimRng::new(1));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(2));
    let written = block_on(&executor, write_aging_log(disk.storage(&executor), 8, 13));
    // 530 s later, with a retention of 60 s: the records of entries 1 to 8 expired. They are
    // committed: retention takes them at the first read.
    let storage = disk.storage(&executor);
    let expected = written.clone();
    block_on(&executor, async move {
        let mut opened = open(storage, 4096, ManualClock::new(530_000), 60_000).await;
        assert_eq!((opened.store.first_index(), opened.store.last_index()), (1, 13));
        assert_eq!(served(&opened.journal).await, records_in(&expected, 9..=12));
        // A read of entries whose records expired finds them gone, a prefix of the log.
        let entries = opened.log.read(1, 13, usize::MAX, &opened.store).await.unwrap();
        assert!(entries.is_empty(), "read {} entries whose records expired", entries.len());
        assert_eq!(opened.log.gone_through(), 1);
        let entries = opened.log.read(8, 13, usize::MAX, &opened.store).await.unwrap();
        assert!(entries.is_empty());
        assert_eq!(opened.log.gone_through(), 8);
        let entries = opened.log.read(9, 13, usize::MAX, &opened.store).await.unwrap();
        assert_entries(0, "the entries held", &entries, &expected[8..]);
        // Their segment stays while the log holds them, and goes once it compacted them.
        assert_eq!(opened.journal.enforce_retention().await.unwrap(), 0, "a held segment stays");
        opened.store.compact(8);
        opened.log.compact(8, 2, &opened.store).await.unwrap();
        assert!(opened.journal.enforce_retention().await.unwrap() > 0, "a segment of expired records goes");
        opened.journal.close().await.unwrap();
    });
    // The log starts after the entries compacted; retention found no others gone.
    let storage = disk.storage(&executor);
    block_on(&executor, async move {
        let opened = open(storage, 4096, ManualClock::new(530_000), 60_000).await;
        let store = &opened.store;
        assert_eq!((store.first_index(), store.last_index(), store.term_of(8)), (9, 13, Some(2)));
        assert_eq!(served(&opened.journal).await, records_in(&written, 9..=12));
        let entries = opened.log.read(9, 13, usize::MAX, store).await.unwrap();
        assert_entries(0, "the entries held", &entries, &written[8..]);
        opened.journal.close().await.unwrap();
    });
    executor.shutdown();
}

#[test]
fn entries_not_committed_outlive_their_retention_until_they_commit() {
    let executor = SimExecutor::new(SimRng::new(1));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(2));
    let written = block_on(&executor, write_aging_log(disk.storage(&executor), 8, 5));
    let storage = disk.storage(&executor);
    block_on(&executor, async move {
        let mut opened = open(storage, 4096, ManualClock::new(530_000), 60_000).await;
        assert_eq!((opened.store.first_index(), opened.store.last_index()), (1, 13));
        // Nothing past the published end expires, nor anything that arrived with it: entries
        // 1 to 8 arrived together.
        assert_eq!(served(&opened.journal).await, records_in(&written, 1..=5));
        assert_eq!(opened.journal.enforce_retention().await.unwrap(), 0, "no segment goes");
        let entries = opened.log.read(1, 13, usize::MAX, &opened.store).await.unwrap();
        assert_entries(0, "the entries held", &entries, &written);
        // Committed, they expire.
        let hard_state = HardState { term: 2, commit: 13, ..HardState::default() };
        opened.log.save_hard_state(&hard_state).await.unwrap();
        opened.store.set_hard_state(hard_state);
        opened.log.committed(13, &opened.store).unwrap();
        assert_eq!(served(&opened.journal).await, records_in(&written, 9..=12));
        opened.journal.close().await.unwrap();
    });
    executor.shutdown();
}

/// A journal that writes one append per commit: a fault or a crash may come between any two.
fn one_append_per_commit() -> JournalConfig {
    let mut config = JournalConfig::new(JOURNAL_DIR);
    config.commit_bytes_max = 1;
    config
}

/// Entry `index` of `term` holding one record of ten bytes `byte`.
fn ten_bytes_entry(index: u64, term: u64, byte: u8) -> Entry {
    let data = encode_records(1_000, [Bytes::from(vec![byte; 10])].into_iter());
    Entry { index, term, data, ..Entry::default() }
}

/// Entry `index` of `term` without records (a new leader's first).
fn empty_entry(index: u64, term: u64) -> Entry {
    Entry { index, term, ..Entry::default() }
}

/// A disk on which a log of one append per commit holds `written` (synced, in `term`, committed
/// and compacted up to `compacted`), then `failing` appended with the first journal write after
/// them failing: the failure is reported (by the append or its sync), the journal closes (what
/// is still queued is written first), and the process is killed.
fn append_with_a_failed_write(term: u64, (written, compacted): (Vec<Entry>, u64), failing: Vec<Entry>) -> SimDisk {
    let executor = SimExecutor::new(SimRng::new(1));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(2));
    let (planned, storage) = (disk.clone(), disk.storage(&executor));
    block_on(&executor, async move {
        let config = one_append_per_commit();
        let mut opened = open_with(storage, config, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await.unwrap();
        opened.log.save_hard_state(&HardState { term, ..HardState::default() }).await.unwrap();
        let places = opened.log.append(&written).await.unwrap();
        opened.log.sync().await.unwrap();
        opened.store.append(&written, &places);
        if compacted > 0 {
            let hard_state = HardState { term, commit: compacted, ..HardState::default() };
            opened.log.save_hard_state(&hard_state).await.unwrap();
            opened.store.set_hard_state(hard_state);
            opened.store.compact(compacted);
            opened.log.compact(compacted, term, &opened.store).await.unwrap();
        }
        planned.plan(OpKind::Write, Fault::Eio);
        let appended = opened.log.append(&failing).await;
        let failed = appended.is_err() || opened.log.sync().await.is_err();
        assert!(failed, "the failed append is reported");
        opened.journal.close().await.unwrap();
    });
    disk.kill();
    executor.shutdown();
    disk
}

/// A hard state whose directory's sync failed is in place but not durable: the member stops,
/// and once restarted acts on the file it finds (its vote, its commit). Opening the log makes
/// that file durable, so a power loss afterwards takes back nothing the member acted on. (The
/// cluster simulation's seed 9454 lost a reported commit so: a member's stored commit after a
/// power loss was below what it had reported before it.)
#[test]
fn a_hard_state_found_at_open_survives_a_power_loss_though_its_sync_had_failed() {
    // A power loss keeps a random part of a directory's changes not synced: a few disks.
    for seed in 0..8 {
        let executor = SimExecutor::new(SimRng::new(seed));
        let disk = SimDisk::new(DiskConfig::default(), SimRng::new(seed));
        let (planned, storage) = (disk.clone(), disk.storage(&executor));
        let (term, vote) = (3, 2);
        block_on(&executor, async move {
            let opened = open(storage, 4096, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await;
            opened.log.save_hard_state(&HardState { term: 2, vote: 1, ..HardState::default() }).await.unwrap();
            planned.plan(OpKind::SyncDir, Fault::Eio);
            let saved = opened.log.save_hard_state(&HardState { term, vote, ..HardState::default() }).await;
            assert!(saved.is_err(), "the failed sync is reported");
            opened.journal.close().await.unwrap();
        });
        disk.kill();
        for power_loss in [false, true] {
            if power_loss {
                disk.power_loss();
            }
            let storage = disk.storage(&executor);
            block_on(&executor, async move {
                let opened = open(storage, 4096, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await;
                let found = opened.store.hard_state();
                assert_eq!((found.term, found.vote), (term, vote), "seed {seed}, after a power loss: {power_loss}");
                opened.journal.close().await.unwrap();
            });
        }
        executor.shutdown();
    }
}

/// The transport of the replicas the tests drive: what they send goes to a list.
struct Sent(Rc<RefCell<Vec<Message>>>);

impl Transport for Sent {
    fn send(&self, message: Message) {
        self.0.borrow_mut().push(message);
    }
}

/// A host that does nothing with what the replica reports.
struct Quiet;

impl ReplicaEvents for Quiet {
    fn opened(&self, _: u64, _: u64) {}
    fn committed(&self, _: u64, _: &[Entry], _: &[Option<u64>]) {}
    fn became_leader(&self, _: u64, _: u64, _: &LogStore) {}
}

/// Member 1 of a group of 1, 2 and 3 that campaigns only on its election timeout.
fn member_one() -> ReplicaConfig {
    ReplicaConfig {
        id: 1,
        voters: vec![1, 2, 3],
        members: vec![1, 2, 3],
        election_ticks: 10..11,
        dir: RAFT_DIR.into(),
        entry_cache_bytes: 2 << 10,
        segment_bytes: 1 << 20,
        laggard_held_bytes_max: None,
        campaigns_when_new: false,
        commit_saved_every_ticks: 600,
    }
}

/// A member whose log's entries were durable but whose hard state, written after them, was
/// not (a crash between the two writes): its log ends in term 1, its stored term is 0. Opened,
/// the replica takes its log's term (it sent no vote in it: a vote is sent once stored), so
/// that it can reject a pre-vote from a candidate whose log is behind: raft-rs panics sending
/// a rejection at term 0 (tikv/raft-rs#511; the cluster simulation's seed 17722).
#[test]
fn a_replica_whose_hard_state_lags_its_log_takes_its_logs_term() {
    let executor = SimExecutor::new(SimRng::new(1));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(2));
    let storage = disk.storage(&executor);
    block_on(&executor, async move {
        let mut opened = open(storage, 4096, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await;
        let entries = [ten_bytes_entry(1, 1, 1)];
        let places = opened.log.append(&entries).await.unwrap();
        opened.log.sync().await.unwrap();
        opened.store.append(&entries, &places);
        opened.journal.close().await.unwrap();
    });
    let storage = disk.storage(&executor);
    let sent = Rc::new(RefCell::new(Vec::new()));
    let transport = Sent(sent.clone());
    block_on(&executor, async move {
        let opened = open(storage, 4096, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await;
        assert_eq!((opened.store.hard_state().term, opened.store.last_index()), (0, 1));
        let replica = Replica::open(opened.log, opened.store, &member_one(), transport, Quiet).unwrap();
        let (inputs, inbox) = async_channel::bounded(4);
        // Node 2 campaigns for term 1 with an empty log: behind node 1's.
        let pre_vote =
            Message { msg_type: MessageType::MsgRequestPreVote, from: 2, to: 1, term: 1, ..Default::default() };
        inputs.send(Input::Message(Box::new(pre_vote))).await.unwrap();
        drop(inputs);
        replica.run(inbox).await.unwrap();
        opened.journal.close().await.unwrap();
    });
    let sent = sent.borrow();
    let answer = sent.iter().find(|message| message.msg_type == MessageType::MsgRequestPreVoteResponse);
    let answer = answer.expect("the pre-vote is answered");
    assert!(answer.reject && answer.term == 1, "{answer:?}");
    executor.shutdown();
}

/// A membership change committed in a `Ready` whose hard state the replica writes (a new
/// term's leader tells a follower the commit of entries it holds already): the change is
/// written first. Written after the hard state, a failure between the two left a member whose
/// stored commit was past a change it never applied; restarted, raft-rs took every committed
/// entry as applied and never gave it the change again.
#[test]
fn a_membership_change_is_written_before_a_commit_past_it() {
    use protobuf::Message as _;
    use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};

    let executor = SimExecutor::new(SimRng::new(1));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(2));
    let add_learner = ConfChangeV2 {
        changes: vec![ConfChangeSingle {
            change_type: ConfChangeType::AddLearnerNode,
            node_id: 4,
            ..Default::default()
        }]
        .into(),
        ..Default::default()
    };
    let data = Bytes::from(add_learner.write_to_bytes().unwrap());
    let change = Entry { index: 2, term: 1, entry_type: EntryType::EntryConfChangeV2, data, ..Entry::default() };
    // Node 2, leader in term 1, sends entries 1 and 2 (the change), not yet committed; then
    // node 3, leader in term 2, says they are.
    let append = Message {
        msg_type: MessageType::MsgAppend,
        from: 2,
        to: 1,
        term: 1,
        entries: vec![empty_entry(1, 1), change].into(),
        ..Default::default()
    };
    let commit = Message {
        msg_type: MessageType::MsgAppend,
        from: 3,
        to: 1,
        term: 2,
        log_term: 1,
        index: 2,
        commit: 2,
        ..Default::default()
    };
    for (message, fails) in [(append, false), (commit, true)] {
        let (planned, storage) = (disk.clone(), disk.storage(&executor));
        block_on(&executor, async move {
            let opened = open(storage, 4096, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await;
            if fails {
                // The second write of the `Ready`: the hard state's or the membership's,
                // whichever goes second.
                planned.plan_after(OpKind::Write, 1, Fault::Eio);
            }
            let sent = Sent(Rc::new(RefCell::new(Vec::new())));
            let replica = Replica::open(opened.log, opened.store, &member_one(), sent, Quiet).unwrap();
            let (inputs, inbox) = async_channel::bounded(4);
            inputs.send(Input::Message(Box::new(message))).await.unwrap();
            drop(inputs);
            let ran = replica.run(inbox).await;
            assert_eq!(ran.is_err(), fails, "{ran:?}");
            opened.journal.close().await.unwrap();
        });
    }
    let storage = disk.storage(&executor);
    block_on(&executor, async move {
        let opened = open(storage, 4096, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await;
        let (commit, learners) = (opened.store.hard_state().commit, opened.store.conf_state().learners);
        assert!(commit < 2 || learners == [4], "stored commit {commit}, learners {learners:?}");
        opened.journal.close().await.unwrap();
    });
    executor.shutdown();
}

/// An append whose first entry's commit fails while the next entry's is written behind it (the
/// journal frames the next commit while one is on its way to the disk): the journal holds a
/// hole in the log. `sync` fails, so the replica acknowledged neither entry; the log reopens
/// ending before the hole, and the entries written again in a new term replace what is past it.
#[test]
fn a_log_reopens_ending_before_a_hole_a_failed_append_left() {
    let (records, empty) = (ten_bytes_entry, empty_entry);
    // Entry 2's position-only run fails; entry 3's is written.
    let disk = append_with_a_failed_write(1, (vec![records(1, 1, 1)], 0), vec![empty(2, 1), records(3, 1, 3)]);
    reopened(&disk, move |mut opened| async move {
        assert_eq!(held_indexes(&opened, 1).await, [1, 3], "the journal holds a hole");
        assert_eq!(opened.store.last_index(), 1, "the log ends before the hole");
        let again = [empty(2, 2), records(3, 2, 9)];
        write_again_and_commit(&mut opened, &again).await;
        let entries = opened.log.read(1, 3, usize::MAX, &opened.store).await.unwrap();
        assert_entries(0, "the log after the hole", &entries, &[records(1, 1, 1), empty(2, 2), records(3, 2, 9)]);
        let served = served(&opened.journal).await;
        assert_eq!(served, [Bytes::from(vec![1; 10]), Bytes::from(vec![9; 10])], "the replaced records are gone");
        opened
    });
}

/// Reopens the journal and the log on `disk` (one append per commit), runs `check` on them,
/// then closes the journal.
fn reopened<F: Future<Output = Opened> + 'static>(disk: &SimDisk, check: impl FnOnce(Opened) -> F + 'static) {
    let executor = SimExecutor::new(SimRng::new(3));
    let storage = disk.storage(&executor);
    block_on(&executor, async move {
        let config = one_append_per_commit();
        let opened = open_with(storage, config, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await.unwrap();
        check(opened).await.journal.close().await.unwrap();
    });
    executor.shutdown();
}

/// The Raft indexes of the entries the journal holds from `from` on.
async fn held_indexes(opened: &Opened, from: u64) -> Vec<u64> {
    opened.journal.raft_entries(UID, from).await.unwrap().iter().map(|entry| entry.position.index).collect()
}

/// Appends `again` (entries of term 2) as a replica would, synced, and commits them.
async fn write_again_and_commit(opened: &mut Opened, again: &[Entry]) {
    let commit = again.last().expect("entries").index;
    let hard_state = HardState { term: 2, commit, ..HardState::default() };
    opened.log.save_hard_state(&HardState { commit: 0, ..hard_state.clone() }).await.unwrap();
    let places = opened.log.append(again).await.unwrap();
    opened.log.sync().await.unwrap();
    opened.store.append(again, &places);
    opened.log.save_hard_state(&hard_state).await.unwrap();
    opened.store.set_hard_state(hard_state);
    opened.log.committed(commit, &opened.store).unwrap();
}

/// A hole a failed append left right after the compaction point (the cluster simulation's seed
/// 672: a member that had just installed a snapshot): nothing expired, so no retention took
/// the missing entry, and the log must not start after it as if one had (which compacted an
/// entry this member never held, a reshard's fence, and it went on storing records after it).
/// The log ends at the compaction point, and the next append cuts the runs past the hole.
#[test]
fn a_log_whose_first_entry_after_the_compaction_point_failed_ends_there() {
    let (records, empty) = (ten_bytes_entry, empty_entry);
    let written = vec![records(1, 1, 1), records(2, 1, 2), records(3, 1, 3)];
    // Entry 4's position-only run fails; entry 5's records are written behind it.
    let disk = append_with_a_failed_write(1, (written.clone(), 3), vec![empty(4, 1), records(5, 1, 5)]);
    reopened(&disk, move |mut opened| async move {
        assert_eq!(held_indexes(&opened, 4).await, [5], "the journal holds a hole right after the compaction point");
        assert_eq!((opened.store.first_index(), opened.store.last_index()), (4, 3), "the log ends before the hole");
        write_again_and_commit(&mut opened, &[empty(4, 2), records(5, 2, 9)]).await;
        let served = served(&opened.journal).await;
        let expected: Vec<Bytes> = [1, 2, 3, 9].into_iter().map(|byte| Bytes::from(vec![byte; 10])).collect();
        assert_eq!(served, expected, "the records behind the hole are replaced");
        opened
    });
}

/// The same hole where it sits at the trim horizon, which retention might have reached too (a
/// shard without records, or every record before the hole expired; the cluster simulation's
/// seed 14842: a member restored past a gap, its entries after a fence, stopped on `retention
/// took entries up to 98, whose term the journal lacks`). Retention takes only committed
/// entries' records, and a member stores no commit past what it holds: entries missing past
/// the stored commit are a hole, and the log ends at the compaction point.
#[test]
fn a_log_whose_first_entry_after_the_compaction_point_failed_at_the_trim_horizon_ends_there() {
    let (records, empty) = (ten_bytes_entry, empty_entry);
    // No records before the hole: entry 2's position-only run fails, entry 3's is written.
    let disk = append_with_a_failed_write(1, (vec![empty(1, 1)], 1), vec![empty(2, 1), empty(3, 1)]);
    reopened(&disk, move |mut opened| async move {
        assert_eq!(held_indexes(&opened, 2).await, [3], "the journal holds a hole at the trim horizon");
        let log = (opened.store.first_index(), opened.store.last_index(), opened.store.hard_state().commit);
        assert_eq!(log, (2, 1, 1), "the log ends before the hole, its commit where it was");
        write_again_and_commit(&mut opened, &[empty(2, 2), records(3, 2, 9)]).await;
        assert_eq!(served(&opened.journal).await, [Bytes::from(vec![9; 10])]);
        opened
    });
}

/// A new leader's entries replacing a suffix, whose first run's commit fails while the next
/// is written behind it: the entry the first replaced would fill the hole, and the log would
/// reopen with an old entry before the new ones (a log no leader ever sent; the cluster
/// simulation's seed 542 committed such an entry). The first run of a replacement is durable
/// before the next is queued, so the log reopens as it was.
#[test]
fn a_replacement_whose_first_run_failed_leaves_the_log_as_it_was() {
    let empty = empty_entry;
    let old = vec![ten_bytes_entry(1, 1, 1), empty(2, 1), empty(3, 1)];
    // Entry 2's replacing run fails.
    let disk = append_with_a_failed_write(2, (old.clone(), 0), vec![empty(2, 2), empty(3, 2)]);
    reopened(&disk, move |opened| async move {
        let entries = opened.log.read(1, opened.store.last_index(), usize::MAX, &opened.store).await.unwrap();
        assert_entries(0, "the log after a failed replacement", &entries, &old);
        opened
    });
}

/// A leader reads entries back for a member behind while its group waits, so one read takes
/// a bounded number of entries (`JOURNAL_LOG_READ_ENTRIES_MAX`), fewer of them without records,
/// each a file of its own beside the journal (`JOURNAL_LOG_READ_SIDE_FILES_MAX`). (The cluster
/// simulation's seed 7928: leaders reading some 300 entries past a fence, each a file, held
/// their groups for 60 rounds and lost their leadership before the member behind got any.)
#[test]
fn a_read_takes_a_bounded_number_of_entries_and_fewer_from_beside_the_journal() {
    let executor = SimExecutor::new(SimRng::new(1));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(2));
    // Entries 1 to 60 with three records each, a fence at 61, then 39 entries after it, whose
    // bytes (records or not) are all kept beside the journal.
    let mut written: Vec<Entry> = (1..=60)
        .map(|index| {
            let records = (0..3u8).map(|at| Bytes::from(vec![index as u8, at]));
            Entry { index, term: 1, data: encode_records(1_000, records), ..Entry::default() }
        })
        .collect();
    written.push(Entry { index: 61, term: 1, data: Bytes::from_static(b"F"), ..Entry::default() });
    written.extend((62..=100).map(|index| ten_bytes_entry(index, 1, index as u8)));
    let storage = disk.storage(&executor);
    let to_write = written.clone();
    block_on(&executor, async move {
        let mut opened = open(storage, 64 << 10, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await;
        opened.log.save_hard_state(&HardState { term: 1, ..HardState::default() }).await.unwrap();
        for entries in to_write.chunks(10) {
            let places = opened.log.append(entries).await.unwrap();
            opened.log.sync().await.unwrap();
            opened.store.append(entries, &places);
        }
        opened.journal.close().await.unwrap();
    });
    let storage = disk.storage(&executor);
    let (reads, entries) = block_on(&executor, async move {
        let opened = open(storage, 64 << 10, ManualClock::new(1_000), KEPT_FOR_EVER_MS).await;
        // The entries each read returned.
        let mut reads = Vec::new();
        let mut entries = Vec::new();
        let mut from = 1;
        while from <= 100 {
            let read = opened.log.read(from, 100, usize::MAX, &opened.store).await.unwrap();
            reads.push(read.len());
            from += read.len() as u64;
            entries.extend(read);
        }
        opened.journal.close().await.unwrap();
        (reads, entries)
    });
    assert_entries(0, "the log read back", &entries, &written);
    // 64 entries at most, of which 16 without records.
    assert_eq!(reads, [64, 16, 16, 4], "entries per read");
    executor.shutdown();
}

/// Writes `entries` through a log on `storage` (a journal of 1 KiB segments, records kept for
/// `retention_ms`), committed up to `commit`, and closes it.
async fn write_log(storage: SimStorage, entries: Vec<Entry>, commit: u64, retention_ms: i64) {
    let mut opened = open(storage, 1024, ManualClock::new(1_000), retention_ms).await;
    let term = entries.iter().map(|entry| entry.term).max().unwrap_or(1);
    opened.log.save_hard_state(&HardState { term, ..HardState::default() }).await.unwrap();
    for entry in entries.chunks(2) {
        let places = opened.log.append(entry).await.unwrap();
        opened.log.sync().await.unwrap();
        opened.store.append(entry, &places);
    }
    let hard_state = HardState { term, commit, ..HardState::default() };
    opened.log.save_hard_state(&hard_state).await.unwrap();
    opened.store.set_hard_state(hard_state);
    opened.log.committed(commit, &opened.store).unwrap();
    opened.journal.close().await.unwrap();
}

/// Entry `index` of `term`: two records naming it (and `tag`), or every fifth bytes that hold
/// no records (kept beside the journal, as a membership change's are).
fn restore_entry(index: u64, term: u64, tag: u8, arrival_ms: i64) -> Entry {
    let data = match index % 5 {
        0 => Bytes::from(vec![b'N', index as u8, tag]),
        _ => encode_records(arrival_ms, (0..2u8).map(|at| Bytes::from(vec![index as u8, at, tag]))),
    };
    Entry { index, term, data, ..Entry::default() }
}

/// Every record `journal` holds of the shard, served or not, by record index.
async fn records_by_index(journal: &Journal<SimStorage>) -> std::collections::BTreeMap<u64, Bytes> {
    let mut records = std::collections::BTreeMap::new();
    let (mut from, tip) = (0, journal.tip(UID).unwrap().next_index);
    while from < tip {
        let batch = journal.read_log(UID, from, 1000, usize::MAX).await.unwrap();
        if batch.records.is_empty() {
            break;
        }
        from = batch.next_index;
        records.extend(batch.records.into_iter().map(|record| (record.sequence_number.record_index(), record.data)));
    }
    records
}

/// How a copy from a peer ended ([`restore_from_peer`]).
#[derive(Debug, PartialEq)]
enum CopyEnd {
    /// The restore finished: the shard's records before the copy's start went if so.
    Done(Option<GapPast>),
    /// The peer stopped answering; the journal changed already if `started`.
    Lost { started: bool },
}

/// Restores the member on `member` from the peer on `peer` to the peer's entry `snapshot`,
/// as a host would: the peer's runs a page of 4 at a time, then the plan, then the records
/// `piece_records` at a time into the restore, of which the peer answers `pieces_answered`.
/// The member's disk may crash on the way.
async fn restore_from_peer(
    member: &Opened,
    storage: &SimStorage,
    peer: &Journal<SimStorage>,
    snapshot: sluice_engine::format::RaftPosition,
    (piece_records, pieces_answered): (u64, usize),
) -> Result<CopyEnd, sluice_cluster::ClusterError> {
    use sluice_cluster::journal_log::{peer_runs, plan_restore, PeerRuns, ShardRestore};
    let commit = member.store.hard_state().commit;
    let mut runs: Option<PeerRuns> = None;
    while runs.as_ref().is_none_or(|runs| runs.through < snapshot.index) {
        let from = runs.as_ref().map_or(commit + 1, |runs| runs.through + 1);
        let page = peer_runs(peer, UID, snapshot, from, 4).await?.expect("the peer knows the snapshot's end");
        match &mut runs {
            Some(runs) => runs.add(page),
            None => runs = Some(page),
        }
    }
    let plan = plan_restore(&member.journal, UID, runs.unwrap()).await?.expect("the restore is not refused");
    let (gap, end) = (plan.gap, plan.peer.end);
    let host = (&TestCodec, storage, Path::new(RAFT_DIR));
    let mut restore = ShardRestore::new(&member.journal, UID, host, plan, None, snapshot_membership());
    // Entries' runs are written as their records come in.
    for _ in 0..pieces_answered {
        if restore.next_index() >= end {
            break;
        }
        let (next, count) = (restore.next_index(), (end - restore.next_index()).min(piece_records) as usize);
        let batch = peer.read_log(UID, next, count, usize::MAX).await?;
        restore.add(batch.records.into_iter().take(count).collect()).await?;
    }
    if restore.next_index() < end {
        return Ok(CopyEnd::Lost { started: restore.started() });
    }
    restore.finish().await?;
    Ok(CopyEnd::Done(gap))
}

/// A member about to restore the snapshot at `snapshot` (entry 20 of term 3) from a peer
/// holding `leaders` (24 entries, committed), its records kept for `retention_ms`: its own
/// log `own` (committed up to 4), and the entries of it that are the leader's.
#[derive(Clone)]
struct RestoreCase {
    leaders: Vec<Entry>,
    own: Vec<Entry>,
    retention_ms: i64,
    past_gap: Option<GapPast>,
    /// The member's entries that are the leader's: it must never forget them.
    held_leaders: u64,
}

const RESTORE_SNAPSHOT: sluice_engine::format::RaftPosition =
    sluice_engine::format::RaftPosition { index: 20, term: 3 };

/// The membership the snapshot carries: a learner joined before it (the member's files say
/// the three voters it started with).
fn snapshot_membership() -> ConfState {
    ConfState::from((vec![1, 2, 3], vec![4]))
}

/// Five members: one whose log ends in a deposed leader's entries; the same with the peer's
/// records of the first twelve entries expired (the shard restarts past the gap); one whose
/// deposed leader's entries reach past that gap (they are replaced, then the records before
/// the gap trimmed); one holding the leader's entries past its commit; and one whose deposed
/// entries, fewer than the leader's but holding more records each, reach past the gap in
/// records only (the first written entry cuts them where one of them begins; the cluster
/// simulation's seed 1367 refused this member every snapshot).
fn restore_cases() -> Vec<RestoreCase> {
    let arrival = |index: u64| if index <= 12 { 1_000 } else { 500_000 };
    let leaders: Vec<Entry> =
        (1..=24).map(|index| restore_entry(index, if index <= 4 { 1 } else { 3 }, 0, arrival(index))).collect();
    let deposed = |last: u64| -> Vec<Entry> {
        leaders[..4].iter().cloned().chain((5..=last).map(|index| restore_entry(index, 2, 9, 500_000))).collect()
    };
    let wide = |index: u64| {
        let data = encode_records(500_000, (0..4u8).map(|at| Bytes::from(vec![index as u8, at, 9])));
        Entry { index, term: 2, data, ..Entry::default() }
    };
    let deposed_wide: Vec<Entry> = leaders[..4].iter().cloned().chain((5..=10).map(wide)).collect();
    let cases = [
        (deposed(7), KEPT_FOR_EVER_MS, None),
        (deposed(7), 60_000, Some(GapPast::Restart)),
        (deposed(16), 60_000, Some(GapPast::Trim)),
        (leaders[..8].to_vec(), KEPT_FOR_EVER_MS, None),
        (deposed_wide, 60_000, Some(GapPast::Trim)),
    ];
    cases
        .into_iter()
        .map(|(own, retention_ms, past_gap)| {
            let held_leaders = own.iter().zip(&leaders).take_while(|(a, b)| a == b).count() as u64;
            RestoreCase { leaders: leaders.clone(), own, retention_ms, past_gap, held_leaders }
        })
        .collect()
}

/// An executor of `seed`, and the peer's and the member's disks with the case's logs written
/// ([`write_restore_case`]); and every record the peer holds, by record index.
fn restore_case_disks(
    seed: u64,
    case: &RestoreCase,
) -> (SimExecutor, (SimDisk, SimDisk), std::collections::BTreeMap<u64, Bytes>) {
    let executor = SimExecutor::new(SimRng::new(seed));
    let (peer_disk, member_disk) =
        (SimDisk::new(DiskConfig::default(), SimRng::new(1)), SimDisk::new(DiskConfig::default(), SimRng::new(2)));
    let peer_records = write_restore_case(&executor, case, (&peer_disk, &member_disk));
    (executor, (peer_disk, member_disk), peer_records)
}

/// Writes the case's logs on the peer's and the member's disks; returns every record the
/// peer holds, by record index.
fn write_restore_case(
    executor: &SimExecutor,
    case: &RestoreCase,
    (peer_disk, member_disk): (&SimDisk, &SimDisk),
) -> std::collections::BTreeMap<u64, Bytes> {
    let retention_ms = case.retention_ms;
    block_on(executor, write_log(peer_disk.storage(executor), case.leaders.clone(), 24, retention_ms));
    block_on(executor, write_log(member_disk.storage(executor), case.own.clone(), 4, retention_ms));
    let storage = peer_disk.storage(executor);
    block_on(executor, async move {
        let opened = open(storage, 1024, ManualClock::new(1_000), retention_ms).await;
        let records = records_by_index(&opened.journal).await;
        opened.journal.close().await.unwrap();
        records
    })
}

/// The member's journal, with one append per commit: a crash may come between any two of a
/// copy's runs.
async fn open_member(storage: SimStorage, retention_ms: i64) -> Opened {
    let mut config = one_append_per_commit();
    config.segment_bytes_max = 1024;
    config.tail_cache_bytes_max = 0;
    open_with(storage, config, ManualClock::new(530_000), retention_ms).await.unwrap()
}

/// After a restore that did not finish, and the member's log opened again: it holds only the
/// leader's entries (or, nothing of the copy durable, its own as before), forgets no entry of
/// the leader's it held, and serves only the leader's records at their sequence numbers. A
/// second restore from `peer` then completes, and the member serves what the peer serves up
/// to the snapshot's end.
async fn check_reopened_member(
    what: &str,
    case: &RestoreCase,
    mut member: Opened,
    member_storage: &SimStorage,
    peer: &Journal<SimStorage>,
    peer_records: &std::collections::BTreeMap<u64, Bytes>,
) {
    let (own, leaders, snapshot) = (&case.own, &case.leaders, RESTORE_SNAPSHOT);
    let (first, last) = (member.store.first_index(), member.store.last_index());
    // A restore settled at open compacts the log past membership changes the member never
    // applied (up to the snapshot's index, which a copy cut short may not reach): its
    // membership must be the snapshot's, or those changes are lost (the cluster simulation's
    // journal seed 37878: a member stayed in a joint membership the others had left).
    if first > 1 {
        let membership = (member.store.conf_index(), member.store.conf_state());
        assert_eq!(membership, (snapshot.index, snapshot_membership()), "{what}: settled at {}", first - 1);
    }
    // Each entry, or `None` if retention took its records (only a published one's).
    let mut entries = Vec::new();
    for index in first..=last {
        let read = member.log.read(index, index, usize::MAX, &member.store).await.unwrap();
        let published = member.store.hard_state().commit;
        assert!(!read.is_empty() || index <= published, "{what}: entry {index}, unpublished, is gone");
        entries.push(read.into_iter().next());
    }
    let is_leaders =
        |entry: &Option<Entry>| entry.as_ref().is_none_or(|entry| leaders.get(entry.index as usize - 1) == Some(entry));
    let kept = entries.iter().take_while(|entry| is_leaders(entry)).count();
    // Past the leader's entries, only the member's own log as it was.
    for (at, entry) in entries.iter().enumerate().skip(kept) {
        let own = own.get(first as usize - 1 + at);
        assert_eq!(entry.as_ref(), own, "{what}: a log mixing the leader's entries and others");
    }
    let leaders_through = first - 1 + kept as u64;
    assert!(leaders_through >= case.held_leaders, "{what}: the leader's entries up to {} forgotten", case.held_leaders);
    // Its records, the leader's up to there, are the peer's at their sequence numbers.
    let commit = member.store.hard_state().commit.max(leaders_through);
    let hard_state = HardState { term: 3, commit, ..HardState::default() };
    member.log.save_hard_state(&hard_state).await.unwrap();
    member.store.set_hard_state(hard_state);
    member.log.committed(commit, &member.store).unwrap();
    for (index, data) in served_by_index(&member.journal).await {
        assert_eq!(peer_records.get(&index), Some(&data), "{what}: record {index} is not the leader's");
    }
    // A second restore completes, and the member serves what the peer does.
    if member.store.term_of(snapshot.index) != Some(snapshot.term) {
        let copy = restore_from_peer(&member, member_storage, peer, snapshot, (3, usize::MAX)).await;
        assert!(matches!(copy, Ok(CopyEnd::Done(_))), "{what}: the second restore: {copy:?}");
        member.log.install_snapshot(snapshot.index, snapshot.term).await.expect(what);
        member.store.restore(snapshot.index, snapshot.term);
        member.log.committed(snapshot.index, &member.store).unwrap();
        let snapshot_end = member.journal.tip(UID).unwrap().next_index;
        let upto = |records: Vec<(u64, Bytes)>| -> Vec<(u64, Bytes)> {
            records.into_iter().filter(|(index, _)| *index < snapshot_end).collect()
        };
        let served = upto(served_by_index(&member.journal).await);
        assert_eq!(served, upto(served_by_index(peer).await), "{what}: served after the restore");
    }
}

/// A peer's listing that stops short of the snapshot's entry (retention took position-only runs
/// at its trim horizon between two pages: the cluster simulation's journal seed 43214) holds
/// expired runs only: the member plans as if the peer listed none, the snapshot's entry going
/// where its records end, past a gap.
#[test]
fn runs_listed_short_of_the_snapshot_are_taken_as_expired() {
    let case = restore_cases().remove(0);
    let (executor, (peer_disk, member_disk), _) = restore_case_disks(1, &case);
    let (peer_storage, member_storage) = (peer_disk.storage(&executor), member_disk.storage(&executor));
    block_on(&executor, async move {
        use sluice_cluster::journal_log::{peer_runs, plan_restore};
        let peer = open(peer_storage, 1024, ManualClock::new(530_000), KEPT_FOR_EVER_MS).await;
        let member = open_member(member_storage, KEPT_FOR_EVER_MS).await;
        let mut listed = peer_runs(&peer.journal, UID, RESTORE_SNAPSHOT, 5, 20).await.unwrap().unwrap();
        assert_eq!(listed.runs.last().map(|run| run.position), Some(RESTORE_SNAPSHOT));
        listed.runs.truncate(listed.runs.len() - 3);
        let plan = plan_restore(&member.journal, UID, listed.clone()).await.expect("a plan").expect("not refused");
        assert!(plan.peer.runs.is_empty(), "{plan:?}");
        assert_eq!((plan.start, plan.gap), (listed.end, Some(GapPast::Restart)));
    });
    executor.shutdown();
}

/// A member restoring a snapshot from a peer (`journal_log::ShardRestore`), its disk losing
/// power at every one of the restore's disk calls in turn: after each, the log reopens as
/// [`check_reopened_member`] wants, for each of the [`restore_cases`].
#[test]
fn a_restore_cut_short_anywhere_reopens_with_the_leaders_entries() {
    for (case_number, case) in restore_cases().into_iter().enumerate() {
        let retention_ms = case.retention_ms;
        let mut crash_at = 1;
        loop {
            let (executor, (peer_disk, member_disk), peer_records) = restore_case_disks(crash_at, &case);
            let (peer_storage, member_storage) = (peer_disk.storage(&executor), member_disk.storage(&executor));
            let crashing = member_disk.clone();
            let restore = async move {
                let peer = open(peer_storage, 1024, ManualClock::new(530_000), retention_ms).await;
                let member = open_member(member_storage.clone(), retention_ms).await;
                crashing.crash_after(crash_at);
                restore_from_peer(&member, &member_storage, &peer.journal, RESTORE_SNAPSHOT, (3, usize::MAX)).await
            };
            let finished = match executor.run(restore, || member_disk.crashed(), 50_000_000) {
                RunOutcome::Finished(copy) => {
                    assert_eq!(
                        copy.expect("the restore completes"),
                        CopyEnd::Done(case.past_gap),
                        "case {case_number}"
                    );
                    true
                }
                RunOutcome::Stopped => false,
                other => panic!("case {case_number}, crash at {crash_at}: {other:?}"),
            };
            member_disk.power_loss();
            executor.shutdown();
            let what = format!("case {case_number}, crash at call {crash_at}");
            check_restarted_member(&what, &case, (&peer_disk, &member_disk), crash_at + 1000, peer_records);
            if finished {
                break;
            }
            crash_at += 1;
        }
        assert!(crash_at > 3, "case {case_number}: the restore finished after {crash_at} disk calls");
    }
}

/// The member on `member_disk` restarted (on an executor of `seed`), checked by
/// [`check_reopened_member`] against the peer on `peer_disk`.
fn check_restarted_member(
    what: &str,
    case: &RestoreCase,
    (peer_disk, member_disk): (&SimDisk, &SimDisk),
    seed: u64,
    peer_records: std::collections::BTreeMap<u64, Bytes>,
) {
    let executor = SimExecutor::new(SimRng::new(seed));
    let (peer_storage, member_storage) = (peer_disk.storage(&executor), member_disk.storage(&executor));
    let (what, case, retention_ms) = (what.to_string(), case.clone(), case.retention_ms);
    block_on(&executor, async move {
        let peer = open(peer_storage, 1024, ManualClock::new(530_000), retention_ms).await;
        let member = open(member_storage.clone(), 1024, ManualClock::new(530_000), retention_ms).await;
        check_reopened_member(&what, &case, member, &member_storage, &peer.journal, &peer_records).await;
    });
    executor.shutdown();
}

/// A member restoring a snapshot from a peer (`journal_log::ShardRestore`), one of its disk's
/// writes failing, each in turn: the restore fails, the journal writes what it still has
/// queued (it goes on after a failed commit) as it closes, and the process is killed; after
/// each, the log reopens as [`check_reopened_member`] wants, for each of the
/// [`restore_cases`].
#[test]
fn a_restore_whose_write_fails_anywhere_reopens_with_the_leaders_entries() {
    for (case_number, case) in restore_cases().into_iter().enumerate() {
        let retention_ms = case.retention_ms;
        let mut failing = 0;
        loop {
            let (executor, (peer_disk, member_disk), peer_records) = restore_case_disks(failing, &case);
            let (peer_storage, member_storage) = (peer_disk.storage(&executor), member_disk.storage(&executor));
            let failing_disk = member_disk.clone();
            let (copy, faulted) = block_on(&executor, async move {
                let peer = open(peer_storage, 1024, ManualClock::new(530_000), retention_ms).await;
                let member = open_member(member_storage.clone(), retention_ms).await;
                failing_disk.plan_after(OpKind::Write, failing, Fault::Eio);
                let copy =
                    restore_from_peer(&member, &member_storage, &peer.journal, RESTORE_SNAPSHOT, (3, usize::MAX));
                let copy = copy.await;
                let faulted = failing_disk.stats().faults > 0;
                let _ = member.journal.close().await;
                (copy, faulted)
            });
            member_disk.kill();
            executor.shutdown();
            let what = format!("case {case_number}, write {failing} failing");
            // (A failed write the journal does without, a sealed segment's checkpoint, fails
            // nothing.)
            let finished = matches!(copy, Ok(CopyEnd::Done(past_gap)) if past_gap == case.past_gap);
            assert!(finished || (faulted && copy.is_err()), "{what}: {copy:?}");
            check_restarted_member(&what, &case, (&peer_disk, &member_disk), failing + 1000, peer_records);
            if !faulted {
                break;
            }
            failing += 1;
        }
        assert!(failing > 3, "case {case_number}: the restore finished after {failing} writes");
    }
}

/// A member restoring a snapshot from a peer that stops answering after each piece of the
/// copy in turn (one record each): its replica opens the log again on the running journal
/// (`Replica::run_reopening`), nothing restarted, and the log must be as
/// [`check_reopened_member`] wants, for each of the [`restore_cases`].
#[test]
fn a_restore_whose_peer_is_lost_reopens_in_place_with_the_leaders_entries() {
    for (case_number, case) in restore_cases().into_iter().enumerate() {
        let retention_ms = case.retention_ms;
        let (mut pieces, mut started) = (0, 0);
        loop {
            let (executor, (peer_disk, member_disk), peer_records) = restore_case_disks(pieces as u64, &case);
            let (peer_storage, member_storage) = (peer_disk.storage(&executor), member_disk.storage(&executor));
            let checked = case.clone();
            let copy = block_on(&executor, async move {
                let what = format!("case {case_number}, peer lost after {pieces} pieces");
                let peer = open(peer_storage, 1024, ManualClock::new(530_000), retention_ms).await;
                let member = open_member(member_storage.clone(), retention_ms).await;
                let copy = restore_from_peer(&member, &member_storage, &peer.journal, RESTORE_SNAPSHOT, (1, pieces));
                let copy = copy.await.expect(&what);
                if copy != (CopyEnd::Lost { started: true }) {
                    return copy;
                }
                // The replica drops its log and opens it again on the same journal.
                let Opened { journal, log, store } = member;
                drop((log, store));
                let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
                let dir = Path::new(RAFT_DIR);
                let reopened =
                    JournalLog::open(journal.clone(), UID, TestCodec, member_storage.clone(), dir, conf_state, 2 << 10);
                let (log, store) = reopened.await.expect(&what);
                let member = Opened { journal, log, store };
                check_reopened_member(&what, &checked, member, &member_storage, &peer.journal, &peer_records).await;
                copy
            });
            executor.shutdown();
            match copy {
                CopyEnd::Done(past_gap) => {
                    assert_eq!(past_gap, case.past_gap, "case {case_number}");
                    break;
                }
                CopyEnd::Lost { started: true } => started += 1,
                CopyEnd::Lost { started: false } => {}
            }
            pieces += 1;
        }
        assert!(started > 3, "case {case_number}: only {started} copies were lost once the journal changed");
    }
}

/// The old log's segment size in the move's test: a few entries a segment, so that its
/// compaction frees segments (it records its point only then).
const OLD_SEGMENT_BYTES: usize = 256;

/// A journal on `storage` with the shard registered, nothing expiring.
async fn open_journal(storage: SimStorage) -> Journal<SimStorage> {
    let mut config = JournalConfig::new(JOURNAL_DIR);
    config.segment_bytes_max = 4096;
    config.tail_cache_bytes_max = 0;
    let journal =
        Journal::open_in(storage, config, Arc::new(ManualClock::new(1_000))).await.expect("the journal opens");
    let seq_prefix = ShardSeqPrefix::new(1_700_000_000, 0);
    journal.register_shard(ShardSpec { uid: UID, seq_prefix, retention_ms: KEPT_FOR_EVER_MS });
    journal
}

fn three_voters() -> ConfState {
    ConfState::from((vec![1, 2, 3], vec![]))
}

/// A group's log as `sluiced` kept it before the switch-over: entries 1 to 30 in a
/// `DurableLog` (terms 2 then 3; records entries, empty ones, one that is not records, a
/// membership change), committed up to 26 and compacted to `compacted`; and its applier's
/// runs in the journal: the records of the entries up to `applied`, each run with its entry's
/// Raft position. Returns the entries.
async fn write_old_log(storage: SimStorage, compacted: u64, applied: u64) -> Vec<Entry> {
    let journal = open_journal(storage.clone()).await;
    let dir = Path::new(RAFT_DIR);
    let (mut log, store) = DurableLog::open(storage.clone(), dir, three_voters(), 0, OLD_SEGMENT_BYTES).await.unwrap();
    let entries: Vec<Entry> = (1..=30u64)
        .map(|index| {
            let term = if index <= 15 { 2 } else { 3 };
            let data = match index {
                7 => Bytes::from_static(b"conf"),
                12 => Bytes::from_static(b"S"),
                _ if index % 5 == 0 => Bytes::new(),
                _ => {
                    let records: Vec<Bytes> =
                        (0..index % 3 + 1).map(|at| Bytes::from(vec![(index * 3 + at) as u8; 40])).collect();
                    encode_records(1_000 + index as i64, records.into_iter())
                }
            };
            let entry_type = if index == 7 { EntryType::EntryConfChangeV2 } else { EntryType::EntryNormal };
            Entry { index, term, entry_type, data, ..Entry::default() }
        })
        .collect();
    // One append each: a segment rolls between appends.
    for entry in &entries {
        let places = log.append(std::slice::from_ref(entry)).await.unwrap();
        log.sync().await.unwrap();
        store.append(std::slice::from_ref(entry), &places);
    }
    let hard_state = HardState { term: 3, vote: 1, commit: 26, ..HardState::default() };
    log.save_hard_state(&hard_state).await.unwrap();
    store.set_hard_state(hard_state);
    store.compact(compacted);
    let freed = log.compact(compacted, entries[compacted as usize - 1].term, &store).await.unwrap();
    assert!(freed > 0, "the old log's compaction to {compacted} frees segments");
    // The applier: each committed entry's records, in one run with its position.
    let mut next = sluice_engine::shard_index::FIRST_RECORD_INDEX;
    for entry in entries.iter().take(applied as usize) {
        let Some((arrival_ms, records)) = TestCodec.records(UID, &entry.data) else { continue };
        if entry.entry_type != EntryType::EntryNormal {
            continue;
        }
        let count = records.len() as u64;
        let position = sluice_engine::format::RaftPosition { index: entry.index, term: entry.term };
        let mut queued = journal.queue_at(records, arrival_ms, next, Some(position)).await.unwrap();
        queued.durable().await.unwrap();
        next += count;
    }
    journal.close().await.unwrap();
    entries
}

/// `sluiced`'s existing data moved over at the switch-over (`adopt::adopt_durable_log`), cut
/// short by a power loss at every disk call in turn and moved again at the next start: the
/// view then opens compacted to the applier's newest entry (or to the old log's compaction
/// point, when that is later and the entries between hold no records), holds every later
/// entry of the old log as it was (bytes, terms, kinds), serves exactly the records the
/// applier wrote (its commit is at that entry), and the old log's segments are gone.
#[test]
fn a_durable_log_moved_into_the_journal_survives_a_power_loss_anywhere_in_the_move() {
    // (the old log's compaction point, the applier's newest entry, where the view starts)
    for (compacted, applied, start) in [(8, 21, 21), (20, 19, 20)] {
        let mut crash_at = 1;
        loop {
            let what = format!("compacted {compacted}, applied {applied}, crash at call {crash_at}");
            let disk = SimDisk::new(DiskConfig::default(), SimRng::new(7));
            let executor = SimExecutor::new(SimRng::new(crash_at));
            let written = block_on(&executor, write_old_log(disk.storage(&executor), compacted, applied));
            executor.shutdown();
            let executor = SimExecutor::new(SimRng::new(crash_at + 1_000));
            let storage = disk.storage(&executor);
            let crashing = disk.clone();
            let moving = async move {
                let journal = open_journal(storage.clone()).await;
                crashing.crash_after(crash_at);
                let dir = Path::new(RAFT_DIR);
                adopt_durable_log(&journal, UID, TestCodec, &storage, dir, three_voters(), OLD_SEGMENT_BYTES).await
            };
            let finished = match executor.run(moving, || disk.crashed(), 50_000_000) {
                RunOutcome::Finished(moved) => {
                    assert_eq!(
                        moved.unwrap_or_else(|error| panic!("{what}: {error}")),
                        Adopted::Moved { compacted: start, moved: 30 - start },
                        "{what}"
                    );
                    true
                }
                RunOutcome::Stopped => false,
                other => panic!("{what}: {other:?}"),
            };
            disk.power_loss();
            executor.shutdown();
            let executor = SimExecutor::new(SimRng::new(crash_at + 2_000));
            let storage = disk.storage(&executor);
            let check = what.clone();
            block_on(&executor, async move {
                let what = check;
                let journal = open_journal(storage.clone()).await;
                let dir = Path::new(RAFT_DIR);
                let again =
                    adopt_durable_log(&journal, UID, TestCodec, &storage, dir, three_voters(), OLD_SEGMENT_BYTES);
                let again = again.await.unwrap_or_else(|error| panic!("{what}: the move again: {error}"));
                if finished {
                    assert_eq!(again, Adopted::Nothing, "{what}: a finished move is not done again");
                }
                let names = storage.list(dir).await.unwrap();
                assert!(
                    names.iter().all(|name| !name.ends_with(".log") && name != ADOPTING_FILE),
                    "{what}: left {names:?}"
                );
                let (log, store) =
                    JournalLog::open(journal.clone(), UID, TestCodec, storage, dir, three_voters(), 2 << 10)
                        .await
                        .unwrap();
                let opened = Opened { journal, log, store };
                assert_eq!(opened.store.first_index(), start + 1, "{what}: the view's first entry");
                assert_eq!(opened.store.hard_state().commit, start, "{what}: the commit");
                let entries = read_all(&opened, start + 1).await;
                assert_entries(0, &what, &entries, &written[start as usize..]);
                let applied_records: Vec<Bytes> = written.iter().take(applied as usize).flat_map(records_of).collect();
                assert_eq!(served(&opened.journal).await, applied_records, "{what}: served");
            });
            executor.shutdown();
            if finished {
                break;
            }
            crash_at += 1;
        }
        assert!(crash_at > 10, "the move finished after {crash_at} disk calls");
    }
}

fn page_run(index: u64, term: u64, first_index: u64, end_index: u64) -> RaftEntryRun {
    RaftEntryRun { position: sluice_engine::format::RaftPosition { index, term }, first_index, end_index }
}

/// A page of a peer's runs as it travels between members (`journal_log::encode_peer_runs`):
/// it decodes as it was, and bytes no peer's log could have made are refused.
#[test]
fn a_page_of_runs_round_trips_and_what_no_peer_could_send_is_refused() {
    let position = sluice_engine::format::RaftPosition { index: 40, term: 3 };
    let page = PeerRuns {
        position,
        end: 90,
        runs: vec![page_run(7, 2, 10, 13), page_run(8, 2, 13, 13), page_run(9, 3, 13, 20)],
        through: 12,
    };
    assert_eq!(decode_peer_runs(&encode_peer_runs(Some(&page))), Ok(Some(page.clone())));
    assert_eq!(decode_peer_runs(&encode_peer_runs(None)), Ok(None));
    // Indexes that skip (runs expired between), as the cluster simulation's seed 71910 listed.
    let skipping = PeerRuns { runs: vec![page_run(7, 2, 13, 13), page_run(11, 2, 13, 13)], ..page.clone() };
    assert_eq!(decode_peer_runs(&encode_peer_runs(Some(&skipping))), Ok(Some(skipping)));
    let empty = PeerRuns { runs: Vec::new(), through: 40, ..page.clone() };
    assert_eq!(decode_peer_runs(&encode_peer_runs(Some(&empty))), Ok(Some(empty)));
    let bytes = encode_peer_runs(Some(&page));
    for cut in 0..bytes.len() {
        assert!(decode_peer_runs(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let refused = [
        // Indexes not increasing.
        vec![page_run(7, 2, 10, 13), page_run(7, 2, 13, 14)],
        vec![page_run(8, 2, 10, 13), page_run(7, 2, 13, 14)],
        // Places going back.
        vec![page_run(7, 2, 10, 13), page_run(8, 2, 12, 14)],
        // A run ending before it starts.
        vec![page_run(7, 2, 10, 9)],
        // Past the page.
        vec![page_run(13, 2, 10, 11)],
    ];
    for runs in refused {
        let bad = PeerRuns { runs: runs.clone(), ..page.clone() };
        assert!(decode_peer_runs(&encode_peer_runs(Some(&bad))).is_err(), "{runs:?}");
    }
    let past_the_snapshot = PeerRuns { through: 41, runs: Vec::new(), ..page };
    assert!(decode_peer_runs(&encode_peer_runs(Some(&past_the_snapshot))).is_err());
}

proptest::proptest! {
    #[test]
    fn a_page_of_runs_decodes_from_garbage_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        if let Ok(page) = decode_peer_runs(&bytes) {
            proptest::prop_assert_eq!(&encode_peer_runs(page.as_ref())[..], &bytes[..]);
        }
    }
}
