//! Sluice's consumer-group operations (docs/clients.md): applications and their leases, kept
//! by the delivery state on core 0 ([`delivery`](super::delivery)) and answered only once
//! durable. Every operation runs on core 0: it resolves names against the catalog's routes
//! and the applied state, builds a command, and submits it; the outcome (decided when the
//! command is applied, in log order) is the answer.
//!
//! The state follows the catalog: after a reshard step, a stream deletion, and at start-up,
//! [`follow_streams`] appends the stream events the state has not seen (children created,
//! parents ended, stream deleted). Each is idempotent, so a repeat after a crash changes
//! nothing.
//!
//! Unfinished: home cores. Every application lives on core 0's internal shard; docs/state.md
//! spreads them over the cores by a home core recorded in the catalog.

use crate::kinesis::leases::{
    description, lease_error, lease_view, new_shards, parse_checkpoint, shard_info, stream_uid, summary,
};
use crate::kinesis::paging::{decode_next_token, encode_next_token, page_size};
use crate::ops::node::Node;
use crate::runtime::routes::StreamRoute;
use sluice_model::limits::{
    APPLICATIONS_PER_STREAM_MAX, LEASES_PAGE_SIZE_DEFAULT, LEASES_PAGE_SIZE_MAX, LEASE_DURATION_MS_DEFAULT,
};
use sluice_model::*;
use sluice_state::ids::{ApplicationId, ShardNumber, ShardUid, StreamUid, WorkerId};
use sluice_state::lease::{Application, LeaseCommand, LeaseReply};
use sluice_state::stream::StreamEvent;
use sluice_state::{Command, Outcome};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;

type Result<T> = std::result::Result<T, KinesisError>;

/// Submits a lease command on core 0 and returns its reply, or its refusal as an exception.
async fn submit(core0: &Rc<Node>, command: LeaseCommand) -> Result<LeaseReply> {
    let outcome = core0.delivery_state()?.submit(&core0.journal, core0.now_ms(), Command::Lease(command)).await?;
    match outcome {
        Outcome::Lease(Ok(reply)) => Ok(reply),
        Outcome::Lease(Err(error)) => Err(lease_error(&error)),
        Outcome::Invalid(invalid) => Err(KinesisError::invalid_argument(invalid.to_string())),
        other => Err(KinesisError::internal(format!("a lease command answered {other:?}"))),
    }
}

fn not_found(stream: &str, application: &str) -> KinesisError {
    KinesisError::resource_not_found(format!("Application {application} of stream {stream} not found."))
}

/// The stream's route, the application's id, and the stream's name, for a request naming an
/// application.
fn find_application(core0: &Node, named: ApplicationNamed<'_>) -> Result<(Arc<StreamRoute>, ApplicationId)> {
    let name = core0.identity().resolve_application(named)?;
    let route = core0
        .routes()
        .streams
        .get(&name.stream)
        .cloned()
        .ok_or_else(|| KinesisError::stream_not_found(core0.identity(), &name.stream))?;
    let uid = stream_uid(&route.meta);
    let state = core0.delivery_state()?.state();
    let app = state
        .leases
        .applications()
        .find(|app| {
            app.stream == uid
                && app.name == name.application
                && name.created_s.is_none_or(|created_s| created_s == app.created_ms.div_euclid(1000))
        })
        .ok_or_else(|| not_found(&name.stream, &name.application))?;
    Ok((route, app.id))
}

/// Runs `read` on the application's applied state.
fn with_application<T>(core0: &Node, id: ApplicationId, read: impl FnOnce(&Application) -> T) -> Result<T> {
    let state = core0.delivery_state()?.state();
    let app = state.leases.application(id).ok_or_else(|| KinesisError::resource_not_found("Application not found."))?;
    Ok(read(app))
}

pub async fn create_application(
    node: &Rc<Node>,
    input: CreateApplicationInput,
) -> Result<ApplicationDescriptionOutput> {
    node.on_core0(move |core0| async move {
        let delivery = core0.delivery_state()?.clone();
        // One creation or deletion at a time, so that two creations of one name cannot both
        // pass the check below.
        let _permit = delivery.control_permit(&core0.journal, core0.now_ms()).await?;
        let stream =
            core0.identity().resolve_stream(input.stream_name.as_deref(), input.stream_arn.as_ref())?.to_owned();
        let route = crate::ops::records::route_of(&core0, &stream)?;
        let uid = stream_uid(&route.meta);
        let (exists, count) = {
            let state = delivery.state();
            let on_stream: Vec<&Application> = state.leases.applications().filter(|app| app.stream == uid).collect();
            (on_stream.iter().any(|app| app.name == input.application_name), on_stream.len())
        };
        if exists {
            return Err(KinesisError::resource_in_use(format!(
                "Application {} of stream {stream} already exists.",
                input.application_name
            )));
        }
        if count >= APPLICATIONS_PER_STREAM_MAX {
            return Err(KinesisError::limit_exceeded(format!(
                "Stream {stream} has {count} applications, the most it may have ({APPLICATIONS_PER_STREAM_MAX})."
            )));
        }
        let id = ApplicationId(delivery.allocate_application_id());
        let command = LeaseCommand::CreateApplication {
            application: id,
            name: input.application_name.clone(),
            stream: uid,
            initial_position: crate::kinesis::leases::initial_position(input.initial_position.as_ref()),
            lease_duration_ms: input.lease_duration_millis.unwrap_or(LEASE_DURATION_MS_DEFAULT),
            shards: new_shards(&route.meta),
        };
        submit(&core0, command).await?;
        drop(_permit);
        // A reshard may have run between reading the routes and applying the creation.
        follow_streams(&core0).await?;
        let application_description = with_application(&core0, id, |app| description(core0.identity(), &stream, app))?;
        Ok(ApplicationDescriptionOutput { application_description })
    })
    .await
}

pub async fn describe_application(
    node: &Rc<Node>,
    input: DescribeApplicationInput,
) -> Result<ApplicationDescriptionOutput> {
    node.on_core0(move |core0| async move {
        let (route, id) = find_application(&core0, input.application_ref())?;
        let application_description =
            with_application(&core0, id, |app| description(core0.identity(), &route.meta.name, app))?;
        Ok(ApplicationDescriptionOutput { application_description })
    })
    .await
}

pub async fn list_applications(node: &Rc<Node>, input: ListApplicationsInput) -> Result<ListApplicationsOutput> {
    node.on_core0(move |core0| async move {
        let stream =
            core0.identity().resolve_stream(input.stream_name.as_deref(), input.stream_arn.as_ref())?.to_owned();
        let route = crate::ops::records::route_of(&core0, &stream)?;
        let uid = stream_uid(&route.meta);
        let scope = format!("applications/{stream}");
        let after =
            input.next_token.as_deref().map(|token| decode_next_token(token, &scope, core0.now_ms())).transpose()?;
        let size = page_size(input.max_results, APPLICATIONS_PER_STREAM_MAX, APPLICATIONS_PER_STREAM_MAX);
        let state = core0.delivery_state()?.state();
        let mut apps: Vec<&Application> = state.leases.applications().filter(|app| app.stream == uid).collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        let rest: Vec<&Application> =
            apps.into_iter().filter(|app| after.as_ref().is_none_or(|after| app.name > *after)).collect();
        let page: Vec<ApplicationSummary> =
            rest.iter().take(size).map(|app| summary(core0.identity(), &stream, app)).collect();
        let next_token = (rest.len() > size)
            .then(|| page.last().map(|last| encode_next_token(&last.application_name, &scope, core0.now_ms())))
            .flatten();
        Ok(ListApplicationsOutput { applications: page, next_token })
    })
    .await
}

pub async fn delete_application(node: &Rc<Node>, input: DeleteApplicationInput) -> Result<Empty> {
    node.on_core0(move |core0| async move {
        let delivery = core0.delivery_state()?.clone();
        let _permit = delivery.control_permit(&core0.journal, core0.now_ms()).await?;
        let (_, id) = find_application(&core0, input.application_ref())?;
        submit(&core0, LeaseCommand::DeleteApplication { application: id }).await?;
        Ok(Empty {})
    })
    .await
}

pub async fn list_leases(node: &Rc<Node>, input: ListLeasesInput) -> Result<ListLeasesOutput> {
    node.on_core0(move |core0| async move {
        let (_, id) = find_application(&core0, input.application_ref())?;
        let scope = format!("leases/{id}");
        let after =
            input.next_token.as_deref().map(|token| decode_next_token(token, &scope, core0.now_ms())).transpose()?;
        let after: Option<u32> = after.map(|after| ShardId::from(after).number().unwrap_or(u32::MAX));
        let size = page_size(input.max_results, LEASES_PAGE_SIZE_DEFAULT, LEASES_PAGE_SIZE_MAX);
        let now_ms = core0.now_ms();
        with_application(&core0, id, |app| {
            let mut leases: Vec<_> = app.leases.values().collect();
            leases.sort_by_key(|lease| lease.shard.number);
            let rest: Vec<_> =
                leases.into_iter().filter(|lease| after.is_none_or(|after| lease.shard.number.0 > after)).collect();
            let page: Vec<Lease> = rest.iter().take(size).map(|lease| lease_view(app, lease)).collect();
            let next_token = (rest.len() > size)
                .then(|| page.last().map(|last| encode_next_token(&last.lease_key, &scope, now_ms)))
                .flatten();
            ListLeasesOutput { leases: page, next_token }
        })
    })
    .await
}

/// What a lease operation asks of the state, once its application and lease are resolved.
enum LeaseAction {
    Take,
    Renew,
    Release,
    Steal { lease_owner: String },
    Checkpoint { checkpoint: String, sub_sequence_number: Option<i64> },
}

/// Take, renew, release, steal or checkpoint: resolve, submit, answer the lease after.
async fn lease_action(
    node: &Rc<Node>,
    named: (Option<String>, Option<String>, Option<StreamArn>, Option<String>),
    lease_key: String,
    worker_id: String,
    lease_counter: i64,
    action: LeaseAction,
) -> Result<LeaseOutput> {
    node.on_core0(move |core0| async move {
        let (application_arn, stream_name, stream_arn, application_name) = named;
        let named = ApplicationNamed {
            application_arn: application_arn.as_deref(),
            stream_name: stream_name.as_deref(),
            stream_arn: stream_arn.as_ref(),
            application_name: application_name.as_deref(),
        };
        let (_, application) = find_application(&core0, named)?;
        let number = ShardId::from(lease_key.as_str())
            .number()
            .ok_or_else(|| KinesisError::invalid_argument(format!("LeaseKey {lease_key} is not a shard id")))?;
        let shard = with_application(&core0, application, |app| {
            app.lease_by_number(ShardNumber(number)).map(|lease| lease.shard.uid)
        })?
        .ok_or_else(|| KinesisError::resource_not_found(format!("Lease {lease_key} not found.")))?;
        let worker = WorkerId::new(worker_id).map_err(|error| KinesisError::invalid_argument(error.to_string()))?;
        let lease_counter = lease_counter as u64;
        let command = match action {
            LeaseAction::Take => LeaseCommand::Take { application, shard, worker, lease_counter },
            LeaseAction::Renew => LeaseCommand::Renew { application, shard, worker, lease_counter },
            LeaseAction::Release => LeaseCommand::Release { application, shard, worker, lease_counter },
            LeaseAction::Steal { lease_owner } => LeaseCommand::Steal {
                application,
                shard,
                worker,
                lease_owner: WorkerId::new(lease_owner)
                    .map_err(|error| KinesisError::invalid_argument(error.to_string()))?,
                lease_counter,
            },
            LeaseAction::Checkpoint { checkpoint, sub_sequence_number } => LeaseCommand::Checkpoint {
                application,
                shard,
                worker,
                lease_counter,
                checkpoint: parse_checkpoint(&checkpoint, sub_sequence_number)?,
            },
        };
        match submit(&core0, command).await? {
            LeaseReply::Lease(lease) => {
                let lease = with_application(&core0, application, |app| lease_view(app, &lease))?;
                Ok(LeaseOutput { lease })
            }
            other => Err(KinesisError::internal(format!("a lease command answered {other:?}"))),
        }
    })
    .await
}

macro_rules! named {
    ($input:expr) => {
        ($input.application_arn, $input.stream_name, $input.stream_arn, $input.application_name)
    };
}

pub async fn take_lease(node: &Rc<Node>, input: TakeLeaseInput) -> Result<LeaseOutput> {
    lease_action(node, named!(input), input.lease_key, input.worker_id, input.lease_counter, LeaseAction::Take).await
}

pub async fn renew_lease(node: &Rc<Node>, input: RenewLeaseInput) -> Result<LeaseOutput> {
    lease_action(node, named!(input), input.lease_key, input.worker_id, input.lease_counter, LeaseAction::Renew).await
}

pub async fn release_lease(node: &Rc<Node>, input: ReleaseLeaseInput) -> Result<LeaseOutput> {
    lease_action(node, named!(input), input.lease_key, input.worker_id, input.lease_counter, LeaseAction::Release).await
}

pub async fn steal_lease(node: &Rc<Node>, input: StealLeaseInput) -> Result<LeaseOutput> {
    let action = LeaseAction::Steal { lease_owner: input.lease_owner };
    lease_action(node, named!(input), input.lease_key, input.worker_id, input.lease_counter, action).await
}

pub async fn checkpoint_lease(node: &Rc<Node>, input: CheckpointLeaseInput) -> Result<LeaseOutput> {
    let action = LeaseAction::Checkpoint {
        checkpoint: input.checkpoint,
        sub_sequence_number: input.checkpoint_sub_sequence_number,
    };
    lease_action(node, named!(input), input.lease_key, input.worker_id, input.lease_counter, action).await
}

/// On core 0: appends the stream events the delivery state has not followed yet, for every
/// application: shards the catalog has and its leases lack (a reshard's children), shards the
/// catalog records as ended whose leases are not closed, and streams that are gone.
pub async fn follow_streams(core0: &Rc<Node>) -> Result<()> {
    let Some(delivery) = core0.delivery.clone() else { return Ok(()) };
    // Replicated, the delivery group's leader proposes the events (`cluster::delivery::lead`).
    if !delivery.proposes_here() {
        return Ok(());
    }
    let routes = core0.routes();
    let streams: HashMap<StreamUid, &StreamRoute> =
        routes.streams.values().map(|route| (stream_uid(&route.meta), route.as_ref())).collect();
    // Per stream: the shards some application lacks, the ended shards some application has
    // not closed, and the streams that are gone. One event per stream serves every
    // application on it (applying one an application has seen already changes nothing).
    let mut created: BTreeMap<StreamUid, BTreeMap<u64, sluice_state::stream::ShardInfo>> = BTreeMap::new();
    let mut ended: BTreeMap<(StreamUid, u64), u64> = BTreeMap::new();
    let mut deleted: BTreeSet<StreamUid> = BTreeSet::new();
    {
        let state = delivery.state();
        for app in state.leases.applications() {
            let Some(route) = streams.get(&app.stream) else {
                deleted.insert(app.stream);
                continue;
            };
            let meta = &route.meta;
            for shard in &meta.shards {
                let lease = app.leases.get(&ShardUid(shard.uid));
                if lease.is_none() {
                    created.entry(app.stream).or_default().insert(shard.uid, shard_info(shard, meta));
                }
                if let Some(ending_index) = shard.ending_index {
                    if lease.is_none_or(|lease| !lease.closed) {
                        ended.insert((app.stream, shard.uid), ending_index);
                    }
                }
            }
        }
    }
    let mut events: Vec<StreamEvent> = Vec::new();
    for (stream, shards) in created {
        events.push(StreamEvent::ShardsCreated { stream, shards: shards.into_values().collect() });
    }
    for ((stream, shard), ending_index) in ended {
        let ending_index = sluice_state::ids::RecordIndex(ending_index);
        events.push(StreamEvent::ShardEnded { stream, shard: ShardUid(shard), ending_index });
    }
    events.extend(deleted.into_iter().map(|stream| StreamEvent::StreamDeleted { stream }));
    for event in events {
        delivery.submit(&core0.journal, core0.now_ms(), Command::Stream(event)).await?;
    }
    Ok(())
}
