//! The consumer's read path: every shard of a stream, parents to their end before their
//! children, by polling (GetRecords) or enhanced fan-out (SubscribeToShard), with KPL
//! aggregates split into their user records (`sluice_kpl::consumer::records`).
//!
//! [`read_stream`] is one reader of a whole stream: it lists the shards, starts a task per
//! shard whose parents are done (a parent that is no longer listed expired, so it is done),
//! and lists again whenever a shard reaches its end, to start the children. Records go to a
//! bounded channel in shard order; a slow receiver makes the shard tasks wait (no buffering
//! beyond one GetRecords answer per shard).
//!
//! [`read_shard_batches`] is the same read of one shard handing raw batches to any
//! [`BatchSink`]: what the consumer-group worker (`crate::worker`) drives, starting from its
//! lease's checkpoint and deaggregating in `sluice_kpl`'s `ShardConsumer`.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use sluice_kpl::consumer::records::{deaggregate_records, ConsumerRecord, DeaggregationIssue, ReceivedRecord};
use sluice_kpl::types::HashKeyRange;
use sluice_model::{
    ConsumerArn, ErrorKind, GetRecordsInput, GetShardIteratorInput, ListShardsInput, Record, SequenceNumber, Shard,
    ShardId, ShardIteratorType, StartingPosition, SubscribeToShardInput, Timestamp,
};

use crate::errors::ClientError;
use crate::transport::Transport;

/// Records asked of one GetRecords call: the API's maximum, so a shard that is behind catches
/// up at the 2 MiB/s read quota rather than at a call's count.
pub const GET_RECORDS_LIMIT: i32 = 10_000;

/// Longest wait between retries of a throttled or failed read.
const READ_BACKOFF_MAX_MS: u64 = 5_000;
/// First wait after a throttled or failed read, doubled up to [`READ_BACKOFF_MAX_MS`].
const READ_BACKOFF_BASE_MS: u64 = 200;

/// Where to start in the shards that exist when reading starts; shards that appear later
/// (children of a reshard) are always read from `TRIM_HORIZON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    TrimHorizon,
    Latest,
    AtTimestamp(Timestamp),
    /// `AT_SEQUENCE_NUMBER`: where a lease's checkpoint resumes (the checkpointed record is
    /// read again, for the user records of its aggregate after the checkpoint).
    AtSequenceNumber(SequenceNumber),
}

/// How records are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadMode {
    /// GetRecords, waiting `idle_ms` after an answer without records (KCL's
    /// `idleTimeBetweenReadsInMillis`; 200 ms keeps within the 5 calls/s per shard quota).
    Polling { idle_ms: u64 },
    /// SubscribeToShard as this registered consumer, subscribing again when the server ends
    /// a subscription (every 5 minutes).
    Subscribe { consumer_arn: ConsumerArn },
}

#[derive(Debug, Clone)]
pub struct ReadConfig {
    pub start: Start,
    pub mode: ReadMode,
    /// Stop each open shard once it is caught up (nothing behind the tip), instead of reading
    /// on: "read what is there now".
    pub stop_when_caught_up: bool,
}

/// What the reader hands over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A user record (a plain Kinesis record, or one out of a KPL aggregate), in shard order.
    Record { shard_id: ShardId, record: ConsumerRecord },
    /// Records that could not be delivered (a corrupt aggregate, or one that does not belong
    /// to its shard, which the KCL drops too).
    Issue { shard_id: ShardId, issue: DeaggregationIssue },
    /// The shard was read to its end: its children are next.
    ShardEnded { shard_id: ShardId },
}

/// How a shard's read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardOutcome {
    /// The shard is closed and was read to its end.
    Ended,
    /// `stop_when_caught_up`: nothing was left to read.
    CaughtUp,
    /// The receiver of the items went away.
    Abandoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardState {
    Waiting,
    Reading,
    Done,
}

/// Every shard of `stream`: lists all shards, reads them (parents first), sends the items to
/// `sink`; returns when every shard is done (with `stop_when_caught_up`, or when the stream's
/// shards all ended) or the sink is closed.
pub async fn read_stream(
    transport: Rc<Transport>,
    stream: &str,
    config: &ReadConfig,
    sink: async_channel::Sender<Item>,
) -> Result<(), ClientError> {
    let mut states: BTreeMap<ShardId, ShardState> = BTreeMap::new();
    let mut initial: Option<BTreeSet<ShardId>> = None;
    // Each shard task reports its end here; bounded by the number of tasks.
    let (done_sender, done) = async_channel::unbounded::<Result<(ShardId, ShardOutcome), ClientError>>();
    let mut reading = 0usize;
    loop {
        let shards = list_all_shards(&transport, stream).await?;
        let listed: BTreeSet<ShardId> = shards.iter().map(|shard| shard.shard_id.clone()).collect();
        let first_listing = initial.is_none();
        let initial = initial.get_or_insert_with(|| listed.clone());
        for shard in &shards {
            let state = *states.entry(shard.shard_id.clone()).or_insert(ShardState::Waiting);
            if state != ShardState::Waiting {
                continue;
            }
            // A closed shard that existed before a LATEST start will never get a new record.
            let closed = shard.sequence_number_range.ending_sequence_number.is_some();
            if first_listing && closed && config.start == Start::Latest {
                states.insert(shard.shard_id.clone(), ShardState::Done);
                continue;
            }
            let parents_done = [&shard.parent_shard_id, &shard.adjacent_parent_shard_id]
                .into_iter()
                .flatten()
                .all(|parent| !listed.contains(parent) || states.get(parent) == Some(&ShardState::Done));
            if !parents_done {
                continue;
            }
            let start = if initial.contains(&shard.shard_id) { config.start.clone() } else { Start::TrimHorizon };
            states.insert(shard.shard_id.clone(), ShardState::Reading);
            reading += 1;
            let (transport, config, sink, done) =
                (transport.clone(), config.clone(), sink.clone(), done_sender.clone());
            let (stream, shard) = (stream.to_owned(), shard.clone());
            glommio::spawn_local(async move {
                let outcome = read_shard(&transport, &stream, &shard, start, &config, &sink).await;
                let _ = done.send(outcome.map(|outcome| (shard.shard_id, outcome))).await;
            })
            .detach();
        }
        // A shard that waits on a parent that is neither listed-and-waiting nor reading
        // would wait forever; every waiting shard has a parent reading or waiting, so the
        // loop ends only when nothing is reading.
        if reading == 0 {
            return Ok(());
        }
        let (shard_id, outcome) = done.recv().await.expect("this function holds a sender")?;
        reading -= 1;
        states.insert(shard_id, ShardState::Done);
        if outcome == ShardOutcome::Abandoned {
            return Ok(());
        }
        if outcome == ShardOutcome::CaughtUp && reading == 0 {
            return Ok(());
        }
    }
}

/// Every shard of the stream, open and closed, every page.
pub async fn list_all_shards(transport: &Transport, stream: &str) -> Result<Vec<Shard>, ClientError> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let input = match next_token.take() {
            Some(token) => ListShardsInput { next_token: Some(token), ..Default::default() },
            None => ListShardsInput { stream_name: Some(stream.to_owned()), ..Default::default() },
        };
        let output = transport.call(&input).await?;
        shards.extend(output.shards);
        match output.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(shards),
        }
    }
}

fn retryable(error: &ClientError) -> bool {
    match error {
        ClientError::Connection(_) | ClientError::Connect { .. } => true,
        ClientError::Service(error) => matches!(
            error.kind,
            ErrorKind::ProvisionedThroughputExceeded
                | ErrorKind::LimitExceeded
                | ErrorKind::InternalFailure
                | ErrorKind::Throttling
                | ErrorKind::KmsThrottling
        ),
        _ => false,
    }
}

async fn backoff(attempt: &mut u32) {
    let wait_ms = (READ_BACKOFF_BASE_MS << (*attempt).min(8)).min(READ_BACKOFF_MAX_MS);
    *attempt += 1;
    glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
}

/// Reads one shard from `start` to its end (or until caught up), sending its items to `sink`.
/// Throttles, connection failures and expired iterators are retried; other errors end it.
pub async fn read_shard(
    transport: &Transport,
    stream: &str,
    shard: &Shard,
    start: Start,
    config: &ReadConfig,
    sink: &async_channel::Sender<Item>,
) -> Result<ShardOutcome, ClientError> {
    let range = shard_range(shard);
    let mut items = ItemSink { shard_id: shard.shard_id.clone(), range, sink };
    let outcome = read_shard_batches(transport, stream, &shard.shard_id, start, config, &mut items).await?;
    if outcome == ShardOutcome::Ended && sink.send(Item::ShardEnded { shard_id: shard.shard_id.clone() }).await.is_err()
    {
        return Ok(ShardOutcome::Abandoned);
    }
    Ok(outcome)
}

/// A shard's hash-key range, as deaggregation checks it.
pub fn shard_range(shard: &Shard) -> HashKeyRange {
    HashKeyRange { start: shard.hash_key_range.starting_hash_key, end: shard.hash_key_range.ending_hash_key }
}

/// Where [`read_shard_batches`] hands each batch of Kinesis records (in shard order, possibly
/// empty ones never).
#[expect(
    async_fn_in_trait,
    reason = "sinks run on one glommio executor (Rc everywhere): their futures are never sent across threads"
)]
pub trait BatchSink {
    /// Takes a batch; false stops the read (`ShardOutcome::Abandoned`).
    async fn deliver(&mut self, records: Vec<ReceivedRecord>) -> bool;
    /// A read found nothing new (the shard is caught up); false stops the read. A worker
    /// checkpoints here what it processed, so an idle shard's checkpoint is not left behind.
    async fn idle(&mut self) -> bool {
        true
    }
    /// Checked before every read: true stops the read (`ShardOutcome::Abandoned`).
    fn stopped(&self) -> bool;
}

/// The sink of [`read_shard`]: deaggregates and sends [`Item`]s to a channel.
struct ItemSink<'a> {
    shard_id: ShardId,
    range: HashKeyRange,
    sink: &'a async_channel::Sender<Item>,
}

impl BatchSink for ItemSink<'_> {
    async fn deliver(&mut self, records: Vec<ReceivedRecord>) -> bool {
        let batch = deaggregate_records(records, Some(self.range));
        for issue in batch.issues {
            if self.sink.send(Item::Issue { shard_id: self.shard_id.clone(), issue }).await.is_err() {
                return false;
            }
        }
        for record in batch.records {
            if self.sink.send(Item::Record { shard_id: self.shard_id.clone(), record }).await.is_err() {
                return false;
            }
        }
        true
    }

    fn stopped(&self) -> bool {
        self.sink.is_closed()
    }
}

/// Reads one shard from `start` to its end (or until caught up, or until `sink` stops it),
/// handing each non-empty batch of Kinesis records to `sink` as it arrives. Throttles,
/// connection failures and expired iterators are retried; other errors end it.
pub async fn read_shard_batches<S: BatchSink>(
    transport: &Transport,
    stream: &str,
    shard_id: &ShardId,
    start: Start,
    config: &ReadConfig,
    sink: &mut S,
) -> Result<ShardOutcome, ClientError> {
    let mut reader = ShardReader { shard_id: shard_id.clone(), last: None, start, sink };
    match &config.mode {
        ReadMode::Polling { idle_ms } => reader.poll(transport, stream, *idle_ms, config.stop_when_caught_up).await,
        ReadMode::Subscribe { consumer_arn } => {
            reader.subscribe(transport, consumer_arn, config.stop_when_caught_up).await
        }
    }
}

struct ShardReader<'a, S> {
    shard_id: ShardId,
    /// The last Kinesis record delivered: where to resume after an expired iterator or the
    /// end of a subscription.
    last: Option<SequenceNumber>,
    start: Start,
    sink: &'a mut S,
}

impl<S: BatchSink> ShardReader<'_, S> {
    fn position(&self) -> StartingPosition {
        match (&self.last, &self.start) {
            (Some(last), _) => StartingPosition {
                r#type: ShardIteratorType::AfterSequenceNumber,
                sequence_number: Some(last.clone()),
                timestamp: None,
            },
            (None, Start::TrimHorizon) => StartingPosition::new(ShardIteratorType::TrimHorizon),
            (None, Start::Latest) => StartingPosition::new(ShardIteratorType::Latest),
            (None, Start::AtTimestamp(at)) => {
                StartingPosition { r#type: ShardIteratorType::AtTimestamp, sequence_number: None, timestamp: Some(*at) }
            }
            (None, Start::AtSequenceNumber(sequence_number)) => StartingPosition {
                r#type: ShardIteratorType::AtSequenceNumber,
                sequence_number: Some(sequence_number.clone()),
                timestamp: None,
            },
        }
    }

    /// Hands a batch to the sink; false if it wants no more.
    async fn deliver(&mut self, records: Vec<Record>) -> bool {
        let Some(last) = records.last() else { return true };
        self.last = Some(last.sequence_number.clone());
        let received = records
            .into_iter()
            .map(|record| ReceivedRecord {
                sequence_number: record.sequence_number,
                partition_key: record.partition_key.unwrap_or_default(),
                data: record.data,
                approximate_arrival_ms: record.approximate_arrival_timestamp.map(|at| at.epoch_ms().max(0) as u64),
            })
            .collect();
        self.sink.deliver(received).await
    }

    async fn iterator(&self, transport: &Transport, stream: &str) -> Result<String, ClientError> {
        let position = self.position();
        let input = GetShardIteratorInput {
            stream_name: Some(stream.to_owned()),
            shard_id: self.shard_id.clone(),
            shard_iterator_type: position.r#type,
            starting_sequence_number: position.sequence_number,
            timestamp: position.timestamp,
            stream_arn: None,
        };
        let output = transport.call(&input).await?;
        output.shard_iterator.ok_or_else(|| ClientError::UnexpectedResponse {
            operation: "GetShardIterator",
            body: "an answer without a shard iterator".into(),
        })
    }

    async fn poll(
        &mut self,
        transport: &Transport,
        stream: &str,
        idle_ms: u64,
        stop_when_caught_up: bool,
    ) -> Result<ShardOutcome, ClientError> {
        let mut failures = 0u32;
        let mut iterator: Option<String> = None;
        loop {
            if self.sink.stopped() {
                return Ok(ShardOutcome::Abandoned);
            }
            let current = match iterator.take() {
                Some(iterator) => iterator,
                None => match self.iterator(transport, stream).await {
                    Ok(iterator) => iterator,
                    Err(error) if retryable(&error) => {
                        backoff(&mut failures).await;
                        continue;
                    }
                    Err(error) => return Err(error),
                },
            };
            let input =
                GetRecordsInput { shard_iterator: current.clone(), limit: Some(GET_RECORDS_LIMIT), stream_arn: None };
            let output = match transport.call(&input).await {
                Ok(output) => output,
                Err(ClientError::Service(error)) if error.kind == ErrorKind::ExpiredIterator => continue,
                Err(error) if retryable(&error) => {
                    // Keep the iterator unless the connection failed (it is still valid: an
                    // iterator is good for 5 minutes and names its own position).
                    iterator = Some(current);
                    backoff(&mut failures).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            failures = 0;
            let empty = output.records.is_empty();
            if !self.deliver(output.records).await {
                return Ok(ShardOutcome::Abandoned);
            }
            match output.next_shard_iterator {
                None => return Ok(ShardOutcome::Ended),
                Some(next) => iterator = Some(next),
            }
            if empty {
                if !self.sink.idle().await {
                    return Ok(ShardOutcome::Abandoned);
                }
                if stop_when_caught_up && output.millis_behind_latest.is_none_or(|behind| behind == 0) {
                    return Ok(ShardOutcome::CaughtUp);
                }
                glommio::timer::sleep(Duration::from_millis(idle_ms)).await;
            }
        }
    }

    async fn subscribe(
        &mut self,
        transport: &Transport,
        consumer_arn: &ConsumerArn,
        stop_when_caught_up: bool,
    ) -> Result<ShardOutcome, ClientError> {
        let mut failures = 0u32;
        loop {
            if self.sink.stopped() {
                return Ok(ShardOutcome::Abandoned);
            }
            let input = SubscribeToShardInput {
                consumer_arn: consumer_arn.clone(),
                shard_id: self.shard_id.clone(),
                starting_position: self.position(),
            };
            let mut subscription = match transport.subscribe_to_shard(&input).await {
                Ok(subscription) => subscription,
                Err(error) if retryable(&error) || error.code() == Some(ErrorKind::ResourceInUse) => {
                    // ResourceInUse: the previous subscription of this consumer to this shard
                    // is still being torn down.
                    backoff(&mut failures).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let mut ended = false;
            while let Some(event) = subscription.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(error) if retryable(&error) => {
                        backoff(&mut failures).await;
                        break;
                    }
                    Err(error) => return Err(error),
                };
                failures = 0;
                let empty = event.records.is_empty();
                if self.sink.stopped() || !self.deliver(event.records).await {
                    return Ok(ShardOutcome::Abandoned);
                }
                if empty && !self.sink.idle().await {
                    return Ok(ShardOutcome::Abandoned);
                }
                if event.child_shards.as_ref().is_some_and(|children| !children.is_empty()) {
                    ended = true;
                }
                if empty && !ended && stop_when_caught_up && event.millis_behind_latest == 0 {
                    return Ok(ShardOutcome::CaughtUp);
                }
            }
            if ended {
                return Ok(ShardOutcome::Ended);
            }
        }
    }
}
