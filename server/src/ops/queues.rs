//! Kinesis queues (issue 18): the twelve queue operations of the model, kept by the delivery
//! state on core 0 ([`delivery`](super::delivery), the same log as consumer-group leases) and
//! answered only once durable. Every operation runs on core 0: it resolves the queue (its ARN
//! carries the id), builds a `QueueCommand`, submits it, and answers the outcome decided
//! when the command was applied, in log order.
//!
//! A receive reads from the shards' cores what [`Queue::wants`] asks for (redeliveries by
//! position, new records from each shard's cursor), lets the pure [`Queue::select`] choose,
//! logs the `Receive`, and answers the records the applied command delivered, with handles
//! signed by the state's key. Concurrent receives of a queue reserve what they chose
//! ([`Reservations`]) until their command is applied, so they choose different records.
//!
//! **Statuses** (the model's asynchronous create, update and delete): a queue is CREATING from
//! the moment its `CreateQueue` is durable (CreateQueue answers then) until it has followed
//! its stream (children of a reshard that ran meanwhile), which a task does right after the
//! answer; UPDATING while an `UpdateQueue` is being made durable (UpdateQueue answers
//! UPDATING, as the model documents, with the update applied); DELETING while a
//! `DeleteQueue` is, during which receives deliver nothing. The transitional statuses live
//! only in core 0's memory: each is one durable command, so a restart has none to finish.
//!
//! **Tags** are kept by the delivery state (`QueueCommand::Tag` / `Untag`), so they are as
//! durable as the queue and go with it; CreateQueue's `Tags` are a `Tag` command right after
//! the creation (a crash between the two leaves the queue untagged, and the unanswered
//! CreateQueue's retry is refused as ResourceInUse).
//!
//! Differences from docs/state.md's plan and from AWS, each named `Unfinished`:
//! - Every queue lives on core 0 (no home cores), like applications.
//! - Native protocol and `sluice` CLI support.
//! - A per-queue prefetch cache: every receive reads its shards again.
//! - Long polling looks again every `QUEUE_RECEIVE_POLL_MS` instead of waking on new records.

use crate::kinesis::errors::engine_error;
use crate::kinesis::leases::{shard_info, stream_uid};
use crate::kinesis::paging::{decode_next_token, encode_next_token, page_size};
use crate::kinesis::views;
use crate::limits::{CONSUMERS_PER_STREAM_MAX, QUEUE_RECEIVE_POLL_MS, QUEUE_RECEIVE_READ_BYTES_MAX};
use crate::ops::node::Node;
use crate::runtime::routes::StreamRoute;
use sluice_engine::catalog::{CapacityMode, StreamMeta};
use sluice_engine::{StartPosition, StoredRecord};
use sluice_model::limits::{
    QUEUE_LIST_PAGE_SIZE_DEFAULT, QUEUE_LIST_PAGE_SIZE_MAX, QUEUE_RECEIVE_LIMIT_MAX, QUEUE_WAIT_TIME_S_DEFAULT,
};
use sluice_model::*;
use sluice_state::handle::{self, HandleKey, Side};
use sluice_state::ids::{QueueId, RecordIndex, ShardUid, StreamUid};
use sluice_state::queue::{
    self, DeadLetter, Offered, OfferedRecord, Queue, QueueCommand, QueueError, QueueLimits, QueueReply,
    QueueShardStart, Reservations, ShardHorizon, StartingPosition, VisibilityChange,
};
use sluice_state::stream::StreamEvent;
use sluice_state::{Command, Outcome};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

type Result<T> = std::result::Result<T, KinesisError>;

thread_local! {
    /// Per queue, the records chosen by receives not applied yet (core 0 only). Not state: a
    /// crash forgets it, and applying a `Receive` drops whatever is no longer deliverable.
    static RESERVATIONS: RefCell<HashMap<QueueId, Reservations>> = RefCell::new(HashMap::new());
    /// Per queue, its status while it is not ACTIVE (core 0 only; see the module's doc).
    static STATUSES: RefCell<HashMap<QueueId, QueueStatus>> = RefCell::new(HashMap::new());
}

/// A queue's status: ACTIVE unless an operation holds another one.
fn status_of(id: QueueId) -> QueueStatus {
    STATUSES.with(|statuses| statuses.borrow().get(&id).cloned()).unwrap_or(QueueStatus::Active)
}

/// Holds a queue in a transitional status until dropped (however the operation ends).
struct Transition(QueueId);

impl Transition {
    fn new(id: QueueId, status: QueueStatus) -> Transition {
        STATUSES.with(|statuses| statuses.borrow_mut().insert(id, status));
        Transition(id)
    }
}

impl Drop for Transition {
    fn drop(&mut self) {
        STATUSES.with(|statuses| statuses.borrow_mut().remove(&self.0));
    }
}

/// Submits a queue command on core 0 and returns its reply, or its refusal as an exception.
async fn submit(core0: &Rc<Node>, arn: &str, command: QueueCommand) -> Result<QueueReply> {
    let outcome = core0.delivery_state()?.submit(&core0.journal, core0.now_ms(), Command::Queue(command)).await?;
    match outcome {
        Outcome::Queue(Ok(reply)) => Ok(reply),
        Outcome::Queue(Err(QueueError::QueueNotFound(_))) => Err(not_found(arn)),
        Outcome::Queue(Err(QueueError::TooManyTags { .. })) => {
            Err(KinesisError::too_many_tags("queue", sluice_state::limits::QUEUE_TAGS_MAX))
        }
        Outcome::Invalid(invalid) => Err(KinesisError::invalid_argument(invalid.to_string())),
        other => Err(KinesisError::internal(format!("a queue command answered {other:?}"))),
    }
}

fn not_found(arn: &str) -> KinesisError {
    KinesisError::resource_not_found(format!("Queue {arn} not found."))
}

/// The queue an ARN names, if it exists.
fn queue_id(core0: &Node, arn: &str) -> Result<QueueId> {
    let id = QueueId(core0.identity().queue_of(arn)?.0);
    core0.delivery_state()?.state().queues.queue(id).map(|_| id).ok_or_else(|| not_found(arn))
}

/// The stream a queue reads, from the routes (`None` once it is gone).
fn stream_of(core0: &Node, uid: StreamUid) -> Option<Arc<StreamRoute>> {
    core0.routes().streams.values().find(|route| stream_uid(&route.meta) == uid).cloned()
}

fn attributes_view(attributes: &queue::QueueAttributes) -> QueueAttributes {
    let dead_letter = match attributes.dead_letter {
        DeadLetter::BuiltIn { max_receive_count } => DeadLetterConfiguration {
            target_type: TargetType::BuiltIn,
            max_receive_count: Some(max_receive_count as i32),
        },
        DeadLetter::None => DeadLetterConfiguration { target_type: TargetType::None, max_receive_count: None },
    };
    QueueAttributes {
        visibility_timeout_seconds: Some(attributes.visibility_timeout_s as i32),
        dead_letter_configuration: Some(dead_letter),
    }
}

fn description(core0: &Node, queue: &Queue) -> QueueDescription {
    let identity = core0.identity();
    let stream_arn = match stream_of(core0, queue.stream) {
        Some(route) => identity.stream_arn(&route.meta.name),
        // Unreachable while DeleteStream refuses streams with queues; say what is known.
        None => StreamArn::from(format!("{}-deleted", identity.stream_arn("stream").as_str())),
    };
    let r#type = match queue.starting_position {
        StartingPosition::TrimHorizon => QueueStartingPositionType::TrimHorizon,
        StartingPosition::Latest => QueueStartingPositionType::Latest,
        StartingPosition::AtTimestamp { .. } => QueueStartingPositionType::AtTimestamp,
    };
    QueueDescription {
        queue_name: queue.name.clone(),
        queue_arn: identity.queue_arn(QueueRef(queue.id.0)),
        queue_status: status_of(queue.id),
        queue_creation_timestamp: Timestamp::from_epoch_ms(queue.created_ms),
        stream_configuration_list: vec![QueueStreamConfiguration {
            stream_arn,
            // The effective start, as the model's description of an ACTIVE queue reports it.
            starting_position: Some(QueueStartingPosition {
                r#type,
                timestamp: Some(Timestamp::from_epoch_ms(queue.effective_start_ms)),
            }),
        }],
        queue_attributes: Some(attributes_view(&queue.attributes)),
    }
}

fn describe_output(core0: &Node, id: QueueId, arn: &str) -> Result<QueueDescriptionOutput> {
    let state = core0.delivery_state()?.state();
    let queue = state.queues.queue(id).ok_or_else(|| not_found(arn))?;
    Ok(QueueDescriptionOutput { queue_description: description(core0, queue) })
}

fn dead_letter(config: &DeadLetterConfiguration) -> DeadLetter {
    match (config.target_type.clone(), config.max_receive_count) {
        (TargetType::None, _) => DeadLetter::None,
        // Validated: BUILT_IN comes with MaxReceiveCount in 1..=1000.
        (_, count) => DeadLetter::BuiltIn {
            max_receive_count: count.unwrap_or(sluice_model::limits::QUEUE_MAX_RECEIVE_COUNT_DEFAULT) as u32,
        },
    }
}

/// Where each shard of `meta` starts for a new queue, resolved on the shard's core.
async fn shard_starts(core0: &Rc<Node>, meta: &StreamMeta, position: StartingPosition) -> Result<Vec<QueueShardStart>> {
    let mut starts = Vec::new();
    for shard in &meta.shards {
        let ending = shard.ending_index.map(RecordIndex);
        let start = match (position, shard.ending_index) {
            // A closed shard takes no new records: LATEST delivers none of it.
            (StartingPosition::Latest, Some(ending)) => ending,
            (StartingPosition::TrimHorizon, _) => 0,
            (position, _) => {
                let engine_position = match position {
                    StartingPosition::AtTimestamp { timestamp_ms } => StartPosition::AtTimestamp(timestamp_ms),
                    _ => StartPosition::Latest,
                };
                let uid = shard.uid;
                let resolved = core0
                    .run_on(
                        shard.core as usize,
                        move |node| async move { node.journal.resolve(uid, engine_position).await },
                    )
                    .await?;
                // A shard its core no longer serves (expired): nothing of it to deliver.
                resolved.unwrap_or_else(|_| shard.ending_index.unwrap_or(0))
            }
        };
        starts.push(QueueShardStart { info: shard_info(shard, meta), start: RecordIndex(start), ending });
    }
    Ok(starts)
}

pub async fn create(node: &Rc<Node>, input: CreateQueueInput) -> Result<QueueDescriptionOutput> {
    node.on_core0(move |core0| async move {
        let tags = input.tags.clone().unwrap_or_default();
        let tags_max = core0.limits().tags_per_resource_max.min(sluice_state::limits::QUEUE_TAGS_MAX);
        if tags.len() > tags_max {
            return Err(KinesisError::too_many_tags("queue", tags_max));
        }
        // Checked before the queue exists, so that a creation never half succeeds.
        let tag_command = |queue| QueueCommand::Tag { queue, tags: tags.clone().into_iter().collect() };
        tag_command(QueueId(0))
            .validate()
            .map_err(|invalid| KinesisError::invalid_argument(invalid.to_string()))?;
        let [config] = input.stream_configuration_list.as_slice() else {
            // The model: "The list must contain exactly one entry, because a queue delivers
            // records from a single data stream."
            return Err(KinesisError::invalid_argument(
                "A queue reads exactly one stream: StreamConfigurationList must have one entry",
            ));
        };
        let delivery = core0.delivery_state()?.clone();
        // One creation or deletion at a time, so that two creations of one name cannot both
        // pass the check below.
        let _permit = delivery.control_permit(&core0.journal, core0.now_ms()).await?;
        let stream = core0.identity().stream_name_of(&config.stream_arn)?.to_owned();
        let route = crate::ops::records::route_of(&core0, &stream)?;
        let meta = &route.meta;
        if meta.mode != CapacityMode::OnDemand {
            return Err(KinesisError::validation(Violation::value(
                &stream,
                "streamConfigurationList.member.streamARN",
                "Queues can only be created on streams in ON_DEMAND capacity mode",
            )));
        }
        let uid = stream_uid(meta);
        let (exists, on_stream) = {
            let state = delivery.state();
            let exists = state.queues.queues().any(|queue| queue.name == input.queue_name);
            (exists, state.queues.queues().filter(|queue| queue.stream == uid).count())
        };
        if exists {
            return Err(KinesisError::resource_in_use(format!("Queue {} already exists.", input.queue_name)));
        }
        // A queue counts as a registered consumer of its stream (with the EFO consumers).
        let consumers = meta.consumers.len() + on_stream;
        if consumers >= CONSUMERS_PER_STREAM_MAX {
            return Err(KinesisError::limit_exceeded(format!(
                "Stream {stream} has {consumers} registered consumers and queues, the most it may have ({CONSUMERS_PER_STREAM_MAX})."
            )));
        }
        let now_ms = core0.now_ms();
        let retention_ms = meta.retention_ms();
        let starting_position = match config.starting_position.as_ref().map(|p| (&p.r#type, p.timestamp)) {
            Some((QueueStartingPositionType::TrimHorizon, _)) => StartingPosition::TrimHorizon,
            Some((QueueStartingPositionType::AtTimestamp, Some(timestamp))) => {
                StartingPosition::AtTimestamp { timestamp_ms: timestamp.epoch_ms() }
            }
            _ => StartingPosition::Latest,
        };
        let effective_start_ms = match starting_position {
            StartingPosition::Latest => now_ms,
            StartingPosition::TrimHorizon => now_ms - retention_ms,
            StartingPosition::AtTimestamp { timestamp_ms } => timestamp_ms.max(now_ms - retention_ms),
        };
        let shards = shard_starts(&core0, meta, starting_position).await?;
        let mut attributes = queue::QueueAttributes::default();
        if let Some(given) = &input.queue_attributes {
            if let Some(seconds) = given.visibility_timeout_seconds {
                attributes.visibility_timeout_s = seconds as u32;
            }
            if let Some(config) = &given.dead_letter_configuration {
                attributes.dead_letter = dead_letter(config);
            }
        }
        let id = QueueId(delivery.allocate_queue_id());
        let arn = core0.identity().queue_arn(QueueRef(id.0));
        let command = QueueCommand::CreateQueue {
            queue: id,
            name: input.queue_name.clone(),
            stream: uid,
            retention_ms,
            starting_position,
            effective_start_ms,
            attributes,
            shards,
        };
        submit(&core0, &arn, command).await?;
        // CREATING until it has followed the stream (below).
        let creating = Transition::new(id, QueueStatus::Creating);
        if !tags.is_empty() {
            submit(&core0, &arn, tag_command(id)).await?;
        }
        drop(_permit);
        let answer = describe_output(&core0, id, &arn);
        // A reshard may have run between reading the routes and applying the creation; the
        // queue is ACTIVE once it followed it. (A receive meanwhile follows first too.)
        let follower = core0.clone();
        glommio::spawn_local(async move {
            if let Err(error) = follow_streams(&follower).await {
                tracing::error!(%error, queue = id.0, "a new queue could not follow its stream");
            }
            drop(creating);
        })
        .detach();
        answer
    })
    .await
}

pub async fn describe(node: &Rc<Node>, input: DescribeQueueInput) -> Result<QueueDescriptionOutput> {
    node.on_core0(move |core0| async move {
        let id = queue_id(&core0, &input.queue_arn)?;
        describe_output(&core0, id, &input.queue_arn)
    })
    .await
}

pub async fn update(node: &Rc<Node>, input: UpdateQueueInput) -> Result<QueueDescriptionOutput> {
    node.on_core0(move |core0| async move {
        let id = queue_id(&core0, &input.queue_arn)?;
        let attributes = &input.queue_attributes;
        let command = QueueCommand::UpdateQueue {
            queue: id,
            visibility_timeout_s: attributes.visibility_timeout_seconds.map(|seconds| seconds as u32),
            dead_letter: attributes.dead_letter_configuration.as_ref().map(dead_letter),
        };
        let _updating = Transition::new(id, QueueStatus::Updating);
        submit(&core0, &input.queue_arn, command).await?;
        // Answered UPDATING, as the model documents, with the update applied.
        describe_output(&core0, id, &input.queue_arn)
    })
    .await
}

pub async fn delete(node: &Rc<Node>, input: DeleteQueueInput) -> Result<Empty> {
    node.on_core0(move |core0| async move {
        let delivery = core0.delivery_state()?.clone();
        let _permit = delivery.control_permit(&core0.journal, core0.now_ms()).await?;
        let id = queue_id(&core0, &input.queue_arn)?;
        // DELETING: receives deliver nothing from now on.
        let _deleting = Transition::new(id, QueueStatus::Deleting);
        submit(&core0, &input.queue_arn, QueueCommand::DeleteQueue { queue: id }).await?;
        RESERVATIONS.with(|reservations| reservations.borrow_mut().remove(&id));
        Ok(Empty {})
    })
    .await
}

pub async fn list(node: &Rc<Node>, input: ListQueuesInput) -> Result<ListQueuesOutput> {
    node.on_core0(move |core0| async move {
        let identity = core0.identity();
        let scope = "queues";
        let after =
            input.next_token.as_deref().map(|token| decode_next_token(token, scope, core0.now_ms())).transpose()?;
        let size = page_size(input.max_results, QUEUE_LIST_PAGE_SIZE_DEFAULT, QUEUE_LIST_PAGE_SIZE_MAX);
        // The filter's streams, by the state's stream identity (a stream that does not exist,
        // or was created at another time, matches no queue).
        let mut wanted: Option<Vec<StreamUid>> = None;
        if let Some(filters) = &input.stream_filter {
            let mut uids = Vec::new();
            for filter in filters {
                let name = identity.stream_name_of(&filter.stream_arn)?;
                let Some(route) = core0.routes().streams.get(name).cloned() else { continue };
                let created_ok = filter
                    .stream_creation_timestamp
                    .is_none_or(|at| at.epoch_ms().div_euclid(1000) == route.meta.created_ms.div_euclid(1000));
                if created_ok {
                    uids.push(stream_uid(&route.meta));
                }
            }
            wanted = Some(uids);
        }
        let state = core0.delivery_state()?.state();
        let mut queues: Vec<&Queue> = state
            .queues
            .queues()
            .filter(|queue| wanted.as_ref().is_none_or(|uids| uids.contains(&queue.stream)))
            .filter(|queue| after.as_ref().is_none_or(|after| queue.name > *after))
            .collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        let summaries: Vec<QueueSummary> = queues
            .iter()
            .take(size)
            .map(|queue| {
                let described = description(&core0, queue);
                let streams = stream_of(&core0, queue.stream)
                    .map(|route| QueueStreamIdentifier {
                        stream_arn: identity.stream_arn(&route.meta.name),
                        stream_creation_timestamp: Timestamp::from_epoch_ms(route.meta.created_ms),
                    })
                    .into_iter()
                    .collect();
                QueueSummary {
                    queue_name: described.queue_name,
                    queue_arn: described.queue_arn,
                    queue_status: described.queue_status,
                    queue_creation_timestamp: described.queue_creation_timestamp,
                    streams,
                }
            })
            .collect();
        let next_token = (queues.len() > size)
            .then(|| summaries.last().map(|last| encode_next_token(&last.queue_name, scope, core0.now_ms())))
            .flatten();
        Ok(ListQueuesOutput { queue_summaries: summaries, next_token })
    })
    .await
}

/// A receive's arguments, whichever side it receives from.
struct ReceiveArgs {
    arn: String,
    side: Side,
    limit: Option<i32>,
    wait_time_seconds: Option<i32>,
    visibility_timeout_seconds: Option<i32>,
}

pub async fn receive(node: &Rc<Node>, input: ReceiveQueueRecordsInput) -> Result<QueueRecordsOutput> {
    let args = ReceiveArgs {
        arn: input.queue_arn,
        side: Side::Queue,
        limit: input.limit,
        wait_time_seconds: input.wait_time_seconds,
        visibility_timeout_seconds: input.visibility_timeout_seconds,
    };
    node.on_core0(move |core0| async move { receive_on_core0(&core0, args).await }).await
}

pub async fn receive_dead_letter(
    node: &Rc<Node>,
    input: ReceiveDeadLetterQueueRecordsInput,
) -> Result<QueueRecordsOutput> {
    let args = ReceiveArgs {
        arn: input.queue_arn,
        side: Side::DeadLetter,
        limit: input.limit,
        wait_time_seconds: input.wait_time_seconds,
        visibility_timeout_seconds: input.visibility_timeout_seconds,
    };
    node.on_core0(move |core0| async move { receive_on_core0(&core0, args).await }).await
}

/// Receives until something is delivered or the wait ends (long polling).
async fn receive_on_core0(core0: &Rc<Node>, args: ReceiveArgs) -> Result<QueueRecordsOutput> {
    let id = queue_id(core0, &args.arn)?;
    // Reshards of the stream (children to deliver, parents ended) before choosing.
    follow_streams(core0).await?;
    let limit = args.limit.unwrap_or(QUEUE_RECEIVE_LIMIT_MAX) as usize;
    let wait_ms = i64::from(args.wait_time_seconds.unwrap_or(QUEUE_WAIT_TIME_S_DEFAULT)) * 1000;
    let visibility = args.visibility_timeout_seconds.map(|seconds| seconds as u32);
    let deadline_ms = core0.now_ms() + wait_ms;
    loop {
        let records = receive_once(core0, id, &args, limit, visibility).await?;
        if !records.is_empty() {
            return Ok(QueueRecordsOutput { queue_records: records });
        }
        let now_ms = core0.now_ms();
        if now_ms >= deadline_ms {
            return Ok(QueueRecordsOutput::default());
        }
        // Sleep until the wait ends, a visibility timeout ends, or the next look.
        let next_deadline =
            core0.delivery_state()?.state().queues.queue(id).ok_or_else(|| not_found(&args.arn))?.next_deadline_ms();
        let mut sleep_ms = (deadline_ms - now_ms).min(QUEUE_RECEIVE_POLL_MS as i64);
        if let Some(visible_at_ms) = next_deadline {
            sleep_ms = sleep_ms.min((visible_at_ms - now_ms).max(1));
        }
        glommio::timer::sleep(Duration::from_millis(sleep_ms.max(1) as u64)).await;
    }
}

/// One try of a receive: read what the queue wants, select, log, and answer what the applied
/// command delivered (possibly nothing).
async fn receive_once(
    core0: &Rc<Node>,
    id: QueueId,
    args: &ReceiveArgs,
    limit: usize,
    visibility: Option<u32>,
) -> Result<Vec<QueueRecord>> {
    if status_of(id) == QueueStatus::Deleting {
        return Ok(Vec::new());
    }
    let limits = QueueLimits::default();
    let now_ms = core0.now_ms();
    let (wants, shard_cores) = {
        let state = core0.delivery_state()?.state();
        let queue = state.queues.queue(id).ok_or_else(|| not_found(&args.arn))?;
        let wants = RESERVATIONS.with(|reservations| {
            let reservations = reservations.borrow();
            let reserved = reservations.get(&id).cloned().unwrap_or_default();
            queue.wants(args.side, now_ms, limit, &limits, &reserved)
        });
        let route = stream_of(core0, queue.stream);
        let cores: HashMap<ShardUid, usize> = route
            .map(|route| route.meta.shards.iter().map(|shard| (ShardUid(shard.uid), shard.core as usize)).collect())
            .unwrap_or_default();
        (wants, cores)
    };
    if wants.redeliveries.is_empty() && wants.fresh.is_empty() {
        return Ok(Vec::new());
    }
    // Read: every redelivery by position, and each shard's new records, in parallel.
    let mut read: BTreeMap<(ShardUid, RecordIndex), StoredRecord> = BTreeMap::new();
    let mut offered = Offered::default();
    let fresh_bytes = QUEUE_RECEIVE_READ_BYTES_MAX / wants.fresh.len().max(1);
    let mut tasks = Vec::new();
    for &(shard, index) in &wants.redeliveries {
        let Some(&core) = shard_cores.get(&shard) else { continue };
        tasks.push((shard, index, false, read_on(core0, core, shard, index, 1, QUEUE_RECEIVE_READ_BYTES_MAX)));
    }
    for want in &wants.fresh {
        let Some(&core) = shard_cores.get(&want.shard) else { continue };
        tasks.push((
            want.shard,
            want.from,
            true,
            read_on(core0, core, want.shard, want.from, want.count_max, fresh_bytes),
        ));
    }
    for (shard, from, fresh, task) in tasks {
        let Ok(Ok((trim, records))) = task.await else {
            // A shard its core no longer serves: nothing offered from it this time.
            continue;
        };
        if fresh {
            let first_available =
                records.first().map_or(from.0.max(trim.0).max(from.0), |record| record.sequence_number.record_index());
            offered.horizons.push(ShardHorizon { shard, from, first_available: RecordIndex(first_available) });
        }
        for record in records {
            let index = RecordIndex(record.sequence_number.record_index());
            if !fresh && index != from {
                break;
            }
            offered.records.push(OfferedRecord { shard, index, arrival_ms: record.timestamp_ms });
            read.insert((shard, index), record);
        }
    }
    // Select against the state as it is now (other receives may have applied meanwhile).
    let command = {
        let state = core0.delivery_state()?.state();
        let queue = state.queues.queue(id).ok_or_else(|| not_found(&args.arn))?;
        RESERVATIONS.with(|reservations| {
            let mut reservations = reservations.borrow_mut();
            let reserved = reservations.entry(id).or_default();
            let command = queue.select(args.side, now_ms, limit, visibility, &limits, reserved, &offered);
            reserved.reserve(&command);
            command
        })
    };
    let QueueCommand::Receive { records, skips, .. } = &command else {
        return Err(KinesisError::internal("select answered something other than a receive"));
    };
    if records.is_empty() && skips.is_empty() {
        return Ok(Vec::new());
    }
    let outcome = submit(core0, &args.arn, command.clone()).await;
    RESERVATIONS.with(|reservations| {
        if let Some(reserved) = reservations.borrow_mut().get_mut(&id) {
            reserved.release(&command);
        }
    });
    let received = match outcome? {
        QueueReply::Received(received) => received,
        other => return Err(KinesisError::internal(format!("a receive answered {other:?}"))),
    };
    let key = handle_key(core0)?;
    Ok(received
        .into_iter()
        .filter_map(|delivered| {
            let record = read.get(&(delivered.delivery.shard, delivered.delivery.index))?;
            Some(QueueRecord {
                receipt_handle: key.sign(id, delivered.delivery),
                record_id: views::sequence_number(record.sequence_number).to_string(),
                partition_key: Some(String::from_utf8_lossy(&record.partition_key).into_owned()),
                data: record.data.clone(),
                approximate_arrival_timestamp: Timestamp::from_epoch_ms(delivered.arrival_ms),
                first_receive_timestamp: Timestamp::from_epoch_ms(delivered.first_receive_ms),
                receive_count: delivered.receive_count.min(i32::MAX as u32) as i32,
            })
        })
        .collect())
}

/// A shard's trim horizon and the records read from it, or why the read failed.
type ShardRead = Result<(RecordIndex, Vec<StoredRecord>)>;

/// Reads up to `count_max` records of `shard` from `from` on its core; answers the shard's
/// trim horizon with them.
fn read_on(
    core0: &Rc<Node>,
    core: usize,
    shard: ShardUid,
    from: RecordIndex,
    count_max: usize,
    bytes_max: usize,
) -> glommio::Task<Result<ShardRead>> {
    let node = core0.clone();
    glommio::spawn_local(async move {
        node.run_on(core, move |node| async move {
            let (trim, _) = node.journal.bounds(shard.0).await.map_err(engine_error)?;
            let mut batch = node.journal.read(shard.0, from.0, count_max, bytes_max).await.map_err(engine_error)?;
            node.open_records(shard.0, &mut batch.records)?;
            Ok((RecordIndex(trim), batch.records))
        })
        .await
    })
}

fn handle_key(core0: &Node) -> Result<HandleKey> {
    core0
        .delivery_state()?
        .state()
        .handle_key()
        .cloned()
        .ok_or_else(|| KinesisError::internal("the delivery state has no handle key"))
}

/// An entry operation (acknowledge, visibility, restore): which side, and what to do.
enum EntryAction {
    Acknowledge(Side),
    Visibility(Side, Vec<u32>),
    Restore,
}

/// Verifies every handle (a forged or foreign one fails its entry at once, unlogged), logs one
/// command for the rest, and answers each entry in `Successful` or `Failed`.
async fn entries(core0: &Rc<Node>, arn: &str, handles: Vec<String>, action: EntryAction) -> Result<QueueEntriesOutput> {
    let id = queue_id(core0, arn)?;
    let key = handle_key(core0)?;
    let verified: Vec<std::result::Result<handle::Delivery, handle::HandleError>> =
        handles.iter().map(|handle| key.verify(id, handle)).collect();
    let deliveries: Vec<handle::Delivery> = verified.iter().filter_map(|v| v.as_ref().ok().copied()).collect();
    let mut results: Vec<std::result::Result<(), queue::EntryError>> = Vec::new();
    if !deliveries.is_empty() {
        let command = match &action {
            EntryAction::Acknowledge(side) => QueueCommand::Acknowledge { queue: id, side: *side, deliveries },
            EntryAction::Visibility(side, seconds) => {
                let changes = verified
                    .iter()
                    .zip(seconds)
                    .filter_map(|(v, &seconds)| {
                        v.as_ref().ok().map(|&delivery| VisibilityChange { delivery, visibility_timeout_s: seconds })
                    })
                    .collect();
                QueueCommand::ChangeVisibility { queue: id, side: *side, changes }
            }
            EntryAction::Restore => QueueCommand::Restore { queue: id, deliveries },
        };
        match submit(core0, arn, command).await? {
            QueueReply::Entries(entries) => results = entries,
            other => return Err(KinesisError::internal(format!("an entry command answered {other:?}"))),
        }
    }
    let mut applied = results.into_iter();
    let mut output = QueueEntriesOutput::default();
    for (handle, verified) in handles.into_iter().zip(verified) {
        let result = match verified {
            Err(error) => Err(QueueEntryError::new(handle.clone(), ErrorKind::InvalidArgument, error.to_string())),
            Ok(_) => match applied.next() {
                Some(Ok(())) => Ok(()),
                Some(Err(error)) => {
                    let kind = match error.kind() {
                        queue::EntryErrorKind::ResourceNotFound => ErrorKind::ResourceNotFound,
                        queue::EntryErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                    };
                    Err(QueueEntryError::new(handle.clone(), kind, error.to_string()))
                }
                None => Err(QueueEntryError::new(handle.clone(), ErrorKind::InternalFailure, "no result")),
            },
        };
        match result {
            Ok(()) => output.successful.push(ReceiptHandleEntry { receipt_handle: handle }),
            Err(error) => output.failed.push(error),
        }
    }
    Ok(output)
}

fn handles_of(entries: Vec<ReceiptHandleEntry>) -> Vec<String> {
    entries.into_iter().map(|entry| entry.receipt_handle).collect()
}

pub async fn acknowledge(node: &Rc<Node>, input: AcknowledgeQueueRecordsInput) -> Result<QueueEntriesOutput> {
    node.on_core0(move |core0| async move {
        let handles = handles_of(input.entries);
        entries(&core0, &input.queue_arn, handles, EntryAction::Acknowledge(Side::Queue)).await
    })
    .await
}

pub async fn acknowledge_dead_letter(
    node: &Rc<Node>,
    input: AcknowledgeDeadLetterQueueRecordsInput,
) -> Result<QueueEntriesOutput> {
    node.on_core0(move |core0| async move {
        let handles = handles_of(input.entries);
        entries(&core0, &input.queue_arn, handles, EntryAction::Acknowledge(Side::DeadLetter)).await
    })
    .await
}

pub async fn restore_dead_letter(
    node: &Rc<Node>,
    input: RestoreDeadLetterQueueRecordsInput,
) -> Result<QueueEntriesOutput> {
    node.on_core0(move |core0| async move {
        let handles = handles_of(input.entries);
        entries(&core0, &input.queue_arn, handles, EntryAction::Restore).await
    })
    .await
}

pub async fn change_visibility(
    node: &Rc<Node>,
    input: UpdateQueueRecordsVisibilityInput,
) -> Result<QueueEntriesOutput> {
    node.on_core0(move |core0| async move {
        let seconds = input.entries.iter().map(|entry| entry.visibility_timeout_seconds as u32).collect();
        let handles = input.entries.into_iter().map(|entry| entry.receipt_handle).collect();
        entries(&core0, &input.queue_arn, handles, EntryAction::Visibility(Side::Queue, seconds)).await
    })
    .await
}

pub async fn change_dead_letter_visibility(
    node: &Rc<Node>,
    input: UpdateDeadLetterQueueRecordsVisibilityInput,
) -> Result<QueueEntriesOutput> {
    node.on_core0(move |core0| async move {
        let seconds = input.entries.iter().map(|entry| entry.visibility_timeout_seconds as u32).collect();
        let handles = input.entries.into_iter().map(|entry| entry.receipt_handle).collect();
        entries(&core0, &input.queue_arn, handles, EntryAction::Visibility(Side::DeadLetter, seconds)).await
    })
    .await
}

/// Refuses `doing` to a stream that has queues: deleting it ("You must delete every queue on a
/// data stream before you can delete the stream", whatever `EnforceConsumerDeletion` says) or
/// switching it to PROVISIONED (queues live only on ON_DEMAND streams).
pub async fn refuse_stream_with_queues(node: &Rc<Node>, stream: String, doing: &'static str) -> Result<()> {
    node.on_core0(move |core0| async move {
        let Some(route) = core0.routes().streams.get(&stream).cloned() else { return Ok(()) };
        let uid = stream_uid(&route.meta);
        let count = core0.delivery_state()?.state().queues.queues().filter(|queue| queue.stream == uid).count();
        if count > 0 {
            return Err(KinesisError::resource_in_use(format!(
                "Stream {stream} has {count} queues; delete them before {doing}."
            )));
        }
        Ok(())
    })
    .await
}

/// On core 0: appends the stream events the queues have not followed yet: shards a reshard
/// created (open shards of the stream the queue lacks, created after the queue), shards the
/// catalog records as ended whose queue state has no end yet, and retention changes.
///
/// Unfinished: a child created and closed again before any follow ran (both reshard steps
/// between two follows, e.g. across a crash) is not added; `reshard::drive` follows after
/// every step, so this needs a crash at exactly that point.
pub async fn follow_streams(core0: &Rc<Node>) -> Result<()> {
    let Some(delivery) = core0.delivery.clone() else { return Ok(()) };
    // Replicated, the delivery group's leader proposes the events (`cluster::delivery::lead`).
    if !delivery.proposes_here() {
        return Ok(());
    }
    let routes = core0.routes();
    let streams: HashMap<StreamUid, &StreamRoute> =
        routes.streams.values().map(|route| (stream_uid(&route.meta), route.as_ref())).collect();
    let mut events: Vec<StreamEvent> = Vec::new();
    {
        let state = delivery.state();
        let mut created: BTreeMap<StreamUid, BTreeMap<u64, sluice_state::stream::ShardInfo>> = BTreeMap::new();
        let mut ended: BTreeMap<(StreamUid, u64), u64> = BTreeMap::new();
        let mut retention: BTreeMap<StreamUid, i64> = BTreeMap::new();
        for queue in state.queues.queues() {
            let Some(route) = streams.get(&queue.stream) else { continue };
            let meta = &route.meta;
            for shard in &meta.shards {
                let followed = queue.shard(ShardUid(shard.uid));
                if followed.is_none() && shard.is_open() && shard.created_ms >= queue.created_ms {
                    created.entry(queue.stream).or_default().insert(shard.uid, shard_info(shard, meta));
                }
                if let (Some(ending_index), Some(followed)) = (shard.ending_index, followed) {
                    if followed.ending.is_none() {
                        ended.insert((queue.stream, shard.uid), ending_index);
                    }
                }
            }
            if queue.retention_ms != meta.retention_ms() {
                retention.insert(queue.stream, meta.retention_ms());
            }
        }
        for (stream, shards) in created {
            events.push(StreamEvent::ShardsCreated { stream, shards: shards.into_values().collect() });
        }
        for ((stream, shard), ending_index) in ended {
            events.push(StreamEvent::ShardEnded {
                stream,
                shard: ShardUid(shard),
                ending_index: RecordIndex(ending_index),
            });
        }
        for (stream, retention_ms) in retention {
            events.push(StreamEvent::RetentionChanged { stream, retention_ms });
        }
    }
    for event in events {
        delivery.submit(&core0.journal, core0.now_ms(), Command::Stream(event)).await?;
    }
    Ok(())
}

/// TagResource on a queue ARN: adds or overwrites tags, at most 50 in all.
pub async fn tag(node: &Rc<Node>, arn: String, tags: TagMap) -> Result<()> {
    node.on_core0(move |core0| async move {
        let id = queue_id(&core0, &arn)?;
        let limit = core0.limits().tags_per_resource_max.min(sluice_state::limits::QUEUE_TAGS_MAX);
        // Checked again when the command applies (log order decides); this answers the usual
        // case without logging a command that will be refused.
        let count = {
            let state = core0.delivery_state()?.state();
            let existing = &state.queues.queue(id).ok_or_else(|| not_found(&arn))?.tags;
            existing.len() + tags.keys().filter(|key| !existing.contains_key(*key)).count()
        };
        if count > limit {
            return Err(KinesisError::too_many_tags("queue", limit));
        }
        submit(&core0, &arn, QueueCommand::Tag { queue: id, tags: tags.into_iter().collect() }).await.map(drop)
    })
    .await
}

/// UntagResource on a queue ARN: keys it does not have are ignored.
pub async fn untag(node: &Rc<Node>, arn: String, keys: Vec<String>) -> Result<()> {
    node.on_core0(move |core0| async move {
        let id = queue_id(&core0, &arn)?;
        submit(&core0, &arn, QueueCommand::Untag { queue: id, keys }).await.map(drop)
    })
    .await
}

/// ListTagsForResource on a queue ARN: its tags, sorted by key.
pub async fn tags(node: &Rc<Node>, arn: String) -> Result<TagMap> {
    node.on_core0(move |core0| async move {
        let id = queue_id(&core0, &arn)?;
        let state = core0.delivery_state()?.state();
        Ok(state.queues.queue(id).ok_or_else(|| not_found(&arn))?.tags.clone())
    })
    .await
}
