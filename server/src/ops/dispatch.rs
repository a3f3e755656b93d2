//! The one dispatch: a model `Request` in, a model `Response` out, whichever protocol the
//! request came by. Every request is validated (the model's rules common to every protocol),
//! its caller authorized ([`auth::authorize`]), and then its operation runs.
//!
//! SubscribeToShard answers with a stream of events, which no `Response` can hold (the model
//! is pure; the events come on a runtime channel): it answers [`Answer::Subscription`], and
//! each protocol frames the events its own way.

use crate::control::streams::{is_internal, INTERNAL_STREAM_PREFIX};
use crate::ops::auth::{authorize, Caller};
pub use crate::ops::cluster::forward::Origin;
use crate::ops::cluster::forward::RunsAt;
use crate::ops::cluster::{forward, meta, META_GROUP};
use crate::ops::node::Node;
use crate::ops::subscriptions::Events;
use crate::ops::{
    audit, consumers, encryption, leases, observe, queues, records, reshard, routes, settings, streams, subscriptions,
};
use sluice_model::iam::IamResource;
use sluice_model::{
    ErrorKind, GetShardIteratorInput, Identity, KinesisError, PutRecordsInput, PutRecordsOutput, PutRecordsResultEntry,
    Request, Response,
};
use std::rc::Rc;

/// What a request is answered with.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "an answer is moved once per request; boxing the common case to shrink the rare one costs an allocation"
)]
pub enum Answer {
    Response(Response),
    /// SubscribeToShard accepted: its events follow on this receiver (the acceptance itself is
    /// the model's `Response::SubscribeToShard`, which the protocol sends first).
    Subscription(Events),
}

/// Validates, authorizes and runs `request` for `caller`, on the core that received it, and
/// records the call in the audit log (if there is one and the caller is authenticated).
pub async fn execute(node: &Rc<Node>, caller: &Caller, request: Request) -> Result<Answer, KinesisError> {
    execute_from(node, caller, request, Origin::Client).await
}

/// [`execute`] for a request of known origin: in cluster mode, one another member forwarded
/// ([`Origin::Forwarded`]) is never forwarded again.
pub async fn execute_from(
    node: &Rc<Node>,
    caller: &Caller,
    request: Request,
    origin: Origin,
) -> Result<Answer, KinesisError> {
    let operation = request.operation();
    let parameters = audit::parameters(node, caller, &request);
    let observation = observe::begin(node, &request);
    let answer = checked(node, caller, request, origin).await;
    let outcome = match &answer {
        Ok(Answer::Response(response)) => Ok(Some(response)),
        Ok(Answer::Subscription(_)) => Ok(None),
        Err(error) => Err(error),
    };
    observe::finish(node, observation, outcome);
    if let Some(parameters) = parameters {
        audit::record_call(node, caller, operation, parameters, answer.as_ref().map(|_| ()));
    }
    answer
}

async fn checked(node: &Rc<Node>, caller: &Caller, request: Request, origin: Origin) -> Result<Answer, KinesisError> {
    let identity = node.identity();
    request.validate(identity)?;
    refuse_internal_streams(&request, identity)?;
    authorize(node, caller, &request)?;
    if node.shared.config.cluster.is_some() {
        crate::ops::cluster::check_operation(request.operation())?;
        // Validated and authorized here; the leader runs it (`ops/cluster/forward.rs`).
        if origin == Origin::Client {
            return for_client(routed(node, caller, request).await);
        }
    }
    run(node, caller, request).await
}

/// A client's request on a replicated member: run where its group's leader is, here or at
/// the member it is forwarded to. Once more after the leader this node chose could not take
/// it and certainly stored nothing of it (it could not be reached: it died or is cut off,
/// `forward::Unsent`; or it no longer leads, `ErrorKind::NotLeader`, this node included):
/// the request goes where it goes once this node knows another leader (up to
/// `LEADER_WAIT_MS`, `forward::leader_moved`); never a third time.
async fn routed(node: &Rc<Node>, caller: &Caller, request: Request) -> Result<Answer, KinesisError> {
    if forward::names_unknown_stream(node, &request) && !leads_catalog(node) {
        // The stream may be a moment old (`catalog_read`); if not, the answer below says so.
        let _ = meta::caught_up(node).await;
    }
    forward::leader_known(node, &request).await;
    let mut rerouted = false;
    loop {
        if let Request::PutRecords(input) = &request {
            if let Some(split) = forward::split_put_records(node, input) {
                let output = put_records_split(node, caller, input, split, rerouted).await;
                return Ok(Answer::Response(Response::PutRecords(output)));
            }
        }
        let runs_at = forward::runs_at(node, &request);
        let (refused, by) = match runs_at {
            RunsAt::Member(leader) => match forward::forward_once(node, leader, caller, &request).await {
                Ok(Err(error)) if error.kind == ErrorKind::NotLeader => (error, leader),
                Ok(answer) => {
                    if answer.is_ok() && meta::is_command(request.operation().name()) {
                        applied_here(node, &request).await;
                    }
                    let answer = answer.map(Answer::Response);
                    return records_sent_on(node, caller, &request, Some(leader), answer, rerouted).await;
                }
                Err(forward::Unsent(error)) => (error, leader),
            },
            RunsAt::Here | RunsAt::Leader(_) => {
                if let Request::GetShardIterator(input) = request {
                    return shard_iterator(node, caller, input).await.map(Answer::Response);
                }
                let reads_catalog = crate::ops::cluster::is_catalog_read(request.operation().name());
                if reads_catalog || matches!(request, Request::SubscribeToShard(_)) {
                    return catalog_read(node, caller, request).await;
                }
                // A write this node leads, as far as it knows: kept to send on if it turns out
                // not to (a copy costs little next to a replicated write).
                let RunsAt::Leader(own) = runs_at else { return run(node, caller, request).await };
                if rerouted {
                    return run(node, caller, request).await;
                }
                match run(node, caller, request.clone()).await {
                    Err(error) if error.kind == ErrorKind::NotLeader => (error, own),
                    answer => return records_sent_on(node, caller, &request, None, answer, rerouted).await,
                }
            }
        };
        if rerouted || !forward::leader_moved(node, &request, by).await {
            return Err(refused);
        }
        rerouted = true;
    }
}

/// After a catalog change forwarded to the catalog's leader was answered: waits until this
/// node applied it too, so that the client's next call here sees it (read-your-writes
/// through one address, as AWS's DescribeStream finds a stream CreateStream just answered).
/// The change is made either way; if this node cannot catch up in time, its copy shows the
/// change a moment later, as another member's does.
async fn applied_here(node: &Rc<Node>, request: &Request) {
    if let Err(error) = meta::caught_up(node).await {
        tracing::debug!(operation = request.operation().name(), %error, "a forwarded catalog change was answered before this node applied it");
    }
}

/// A read of the catalog (or a SubscribeToShard, which looks its consumer up there), served
/// from this node's copy: for most reads, once that copy is known current.
///
/// A read is linearizable: it first waits until this node applied every change the catalog's
/// leader had committed when the read began, a commit the leader confirms with a quorum
/// (`meta::caught_up`: a read index, at the leader too, so that a leader cut off from the
/// others cannot answer from a copy the majority has moved past). So a change answered
/// through any member is seen by every read that starts after it, through any member: a
/// client behind a load balancer creates a stream through one node and waits for it through
/// another (the AWS SDKs' StreamExists waiter stops at the first ResourceNotFoundException),
/// or tags it through one and lists the tags through another. It costs the read a round trip
/// to the leader (about 0.2 ms on loopback:
/// `bench/results/2026-12-06-linearizable-catalog-reads/`; catalog reads are few, AWS's API
/// reference allows DescribeStream 10 transactions a second per account), and a member
/// without a quorum answers InternalFailure instead of what may be stale, as etcd's default
/// reads do.
///
/// Two are not held up that way. A SubscribeToShard reads records, which a member serves
/// without a quorum as it serves GetRecords (committed records only), and only looks its
/// consumer up in the catalog. DescribeStreamRoutes answers which member leads each shard, a
/// live view no read index makes current, which a routed client asks for right after a
/// leader died (when the catalog may be electing too). One of them that finds no such
/// resource here, at a node that does not lead the catalog, runs once more after this node
/// caught up.
async fn catalog_read(node: &Rc<Node>, caller: &Caller, request: Request) -> Result<Answer, KinesisError> {
    if !matches!(request, Request::SubscribeToShard(_) | Request::DescribeStreamRoutes(_)) {
        if let Err(error) = meta::caught_up(node).await {
            return Err(KinesisError::internal(format!(
                "this member could not confirm the catalog's latest changes with the catalog's leader \
                 ({error}); retry"
            )));
        }
        return run(node, caller, request).await;
    }
    if leads_catalog(node) {
        return run(node, caller, request).await;
    }
    match run(node, caller, request.clone()).await {
        Err(error) if error.kind == ErrorKind::ResourceNotFound => match meta::caught_up(node).await {
            Ok(()) => run(node, caller, request).await,
            Err(_) => Err(error),
        },
        answer => answer,
    }
}

/// Whether this node leads the catalog's group, as far as it knows: its copy then has every
/// change acknowledged.
fn leads_catalog(node: &Node) -> bool {
    let cluster = node.shared.config.cluster.as_ref();
    cluster.is_some_and(|cluster| node.shared.leaders.leader(META_GROUP.0) == Some(cluster.node_id))
}

/// The answer to a whole PutRecords (`request`) that ran where it `went` (`None`: here),
/// with the records refused there as not their leader's sent on once
/// ([`put_records_rerouted`]): a shard's leadership moved while the others' records were
/// stored. Any other answer as it is.
async fn records_sent_on(
    node: &Rc<Node>,
    caller: &Caller,
    request: &Request,
    went: Option<u64>,
    answer: Result<Answer, KinesisError>,
    rerouted: bool,
) -> Result<Answer, KinesisError> {
    let (Request::PutRecords(input), Ok(Answer::Response(Response::PutRecords(output)))) = (request, &answer) else {
        return answer;
    };
    if rerouted || !refuses_any(output) {
        return answer;
    }
    let Ok(Answer::Response(Response::PutRecords(output))) = answer else { unreachable!("matched above") };
    let count = input.records.len();
    let outcome = (went, (0..count).collect(), Ok(Ok(Response::PutRecords(output))));
    let (mut answers, unsent) = unsent_records(node, input, vec![outcome]);
    answers.extend(put_records_rerouted(node, caller, input, unsent).await);
    Ok(Answer::Response(Response::PutRecords(forward::merge_put_records(count, answers))))
}

/// Whether `output` refuses a record as not its leader's ([`ErrorKind::NotLeader`]).
fn refuses_any(output: &PutRecordsOutput) -> bool {
    output.records.iter().any(|entry| entry.error_code == Some(ErrorKind::NotLeader))
}

/// A client's answer: a member's [`ErrorKind::NotLeader`] is a retriable InternalFailure
/// there, whole or for a record.
fn for_client(answer: Result<Answer, KinesisError>) -> Result<Answer, KinesisError> {
    match answer {
        Ok(Answer::Response(Response::PutRecords(mut output))) => {
            for entry in &mut output.records {
                entry.error_code = entry.error_code.map(ErrorKind::for_client);
            }
            Ok(Answer::Response(Response::PutRecords(output)))
        }
        Err(mut error) => {
            error.kind = error.kind.for_client();
            Err(error)
        }
        answer => answer,
    }
}

/// GetShardIterator from a client of a replicated member: answered here, unless its sequence
/// number lies past what this member applied even after a wait (a stalled or cut-off
/// member), or LATEST could not be confirmed here (`cluster::records::caught_up_to_commit`:
/// this member first applies what its group's leader had committed); the shard's leader
/// answers then, and its iterator reads here too (the cluster's iterator key).
async fn shard_iterator(
    node: &Rc<Node>,
    caller: &Caller,
    input: GetShardIteratorInput,
) -> Result<Response, KinesisError> {
    let behind = match records::shard_iterator_here(node, input.clone()).await? {
        Ok(output) => return Ok(Response::GetShardIterator(output)),
        Err(behind) => behind,
    };
    match forward::shard_leader_elsewhere(node, behind.shard_uid) {
        Some(leader) => forward::forward(node, leader, caller, &Request::GetShardIterator(input)).await,
        None => Err(behind.error),
    }
}

/// A PutRecords (`original`) split by the member leading each record's shard: each part goes
/// to its leader (or runs here) at the same time, and the answers are merged in the request's
/// order. Records whose leader could not take
/// them and certainly stored nothing of them ([`UnsentPart`]) go once more, as a whole
/// request does, unless the request was `rerouted` already ([`put_records_rerouted`]).
async fn put_records_split(
    node: &Rc<Node>,
    caller: &Caller,
    original: &PutRecordsInput,
    split: forward::PutRecordsSplit,
    rerouted: bool,
) -> PutRecordsOutput {
    let (mut answers, unsent) = unsent_records(node, original, put_records_parts(node, caller, split.parts).await);
    if rerouted {
        answers.extend(unsent.into_iter().map(UnsentPart::failed));
    } else if !unsent.is_empty() {
        answers.extend(put_records_rerouted(node, caller, original, unsent).await);
    }
    forward::merge_put_records(split.record_count, answers)
}

/// The answer to one part of a split PutRecords, with the index of each of its records in the
/// client's request.
type PartAnswer = (Vec<usize>, Result<Response, KinesisError>);

/// How one part of a split PutRecords went: where it went (`None`: here), the client's index
/// of each of its records, and its answer, or (`Err`) why it was not sent.
type PartOutcome = (Option<u64>, Vec<usize>, Result<Result<Response, KinesisError>, KinesisError>);

/// Records of a split PutRecords that their leader could not take, and of which it certainly
/// stored nothing: it could not be reached, or (`ErrorKind::NotLeader`) did not lead.
struct UnsentPart {
    /// The member that did not take them (this one included).
    leader: u64,
    input: PutRecordsInput,
    /// The client's index of each record, and why it was not taken.
    records: Vec<(usize, KinesisError)>,
}

impl UnsentPart {
    /// The records' answers if they go nowhere else.
    fn failed(self) -> PartAnswer {
        records_failed(self.records)
    }
}

/// The answer of records (the client's index of each) that each fail with their own error.
fn records_failed(records: Vec<(usize, KinesisError)>) -> PartAnswer {
    let indexes = records.iter().map(|(index, _)| *index).collect();
    let entries = records.into_iter().map(|(_, error)| PutRecordsResultEntry::failed(error)).collect();
    (indexes, Ok(Response::PutRecords(put_records_output(entries))))
}

fn put_records_output(records: Vec<PutRecordsResultEntry>) -> PutRecordsOutput {
    let failed = records.iter().filter(|entry| entry.error_code.is_some()).count() as i32;
    PutRecordsOutput { failed_record_count: Some(failed), records, encryption_type: None }
}

/// Runs every part at once where it goes.
async fn put_records_parts(node: &Rc<Node>, caller: &Caller, parts: Vec<forward::PutRecordsPart>) -> Vec<PartOutcome> {
    let running: Vec<_> = parts
        .into_iter()
        .map(|(leader, input, indexes)| {
            let (node, caller) = (node.clone(), caller.clone());
            glommio::spawn_local(async move {
                let request = Request::PutRecords(input);
                let answer = match leader {
                    Some(leader) => forward::forward_once(&node, leader, &caller, &request).await.map_err(|u| u.0),
                    None => Ok(match run(&node, &caller, request).await {
                        Ok(Answer::Response(response)) => Ok(response),
                        Ok(Answer::Subscription(_)) => unreachable!("PutRecords answers a response"),
                        Err(error) => Err(error),
                    }),
                };
                (leader, indexes, answer)
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(running.len());
    for part in running {
        outcomes.push(part.await);
    }
    outcomes
}

/// The parts' answers, and apart from them the records not taken ([`UnsentPart`]): a part
/// whose leader could not be reached or refused it whole as not its leader, and each record
/// refused alone as not its leader's (its shard's leader moved while the rest of the part
/// was stored). Their requests are rebuilt from `original`.
fn unsent_records(
    node: &Node,
    original: &PutRecordsInput,
    outcomes: Vec<PartOutcome>,
) -> (Vec<PartAnswer>, Vec<UnsentPart>) {
    let own = node.shared.config.cluster.as_ref().map_or(0, |cluster| cluster.node_id);
    let (mut answers, mut unsent) = (Vec::with_capacity(outcomes.len()), Vec::new());
    let unsent_part = |leader: Option<u64>, records: Vec<(usize, KinesisError)>| UnsentPart {
        leader: leader.unwrap_or(own),
        input: PutRecordsInput {
            records: records.iter().map(|(index, _)| original.records[*index].clone()).collect(),
            stream_name: original.stream_name.clone(),
            stream_arn: original.stream_arn.clone(),
        },
        records,
    };
    let refused_whole = |indexes: Vec<usize>, error: KinesisError| {
        indexes.into_iter().map(|index| (index, error.clone())).collect::<Vec<_>>()
    };
    for (leader, indexes, answer) in outcomes {
        match answer {
            Err(error) => unsent.push(unsent_part(leader, refused_whole(indexes, error))),
            Ok(Err(error)) if error.kind == ErrorKind::NotLeader => {
                unsent.push(unsent_part(leader, refused_whole(indexes, error)));
            }
            Ok(Ok(Response::PutRecords(mut output)))
                if output.records.len() == indexes.len() && refuses_any(&output) =>
            {
                let (mut kept, mut refused) = (Vec::new(), Vec::new());
                for (index, entry) in indexes.into_iter().zip(std::mem::take(&mut output.records)) {
                    if entry.error_code == Some(ErrorKind::NotLeader) {
                        let message = entry.error_message.unwrap_or_default();
                        refused.push((index, KinesisError::new(ErrorKind::NotLeader, message)));
                    } else {
                        kept.push(index);
                        output.records.push(entry);
                    }
                }
                unsent.push(unsent_part(leader, refused));
                if !kept.is_empty() {
                    answers.push((kept, Ok(Response::PutRecords(output))));
                }
            }
            Ok(answer) => answers.push((indexes, answer)),
        }
    }
    (answers, unsent)
}

/// The records not taken ([`UnsentPart`]), sent once more where they go once this node knows
/// another leader for their shards (up to `LEADER_WAIT_MS`, `forward::record_leaders_moved`),
/// split again if they go to several members; never a third time. A record whose shard's
/// leader did not move keeps its error. Before, a leader's death failed its part of every
/// split PutRecords through a follower until the election was over.
async fn put_records_rerouted(
    node: &Rc<Node>,
    caller: &Caller,
    original: &PutRecordsInput,
    unsent: Vec<UnsentPart>,
) -> Vec<PartAnswer> {
    let mut answers = Vec::new();
    let mut moved: Option<PutRecordsInput> = None;
    let mut indexes = Vec::new();
    for part in unsent {
        let went = forward::record_leaders_moved(node, &part.input, part.leader).await;
        let mut stayed = Vec::new();
        let mut input = PutRecordsInput { records: Vec::new(), ..part.input };
        for ((entry, (index, error)), went) in part.input.records.into_iter().zip(part.records).zip(went) {
            if went {
                input.records.push(entry);
                indexes.push(index);
            } else {
                stayed.push((index, error));
            }
        }
        if !stayed.is_empty() {
            answers.push(records_failed(stayed));
        }
        match &mut moved {
            Some(moved) => moved.records.extend(input.records),
            None if !input.records.is_empty() => moved = Some(input),
            None => {}
        }
    }
    let Some(input) = moved else { return answers };
    // `indexes[i]` is the client's index of the moved records' `i`th.
    let parts = match forward::split_put_records(node, &input) {
        Some(split) => split
            .parts
            .into_iter()
            .map(|(leader, part, at)| (leader, part, at.into_iter().map(|at| indexes[at]).collect()))
            .collect(),
        None => {
            let request = Request::PutRecords(input);
            let leader = forward::target(node, &request);
            let Request::PutRecords(input) = request else { unreachable!("built above") };
            vec![(leader, input, indexes)]
        }
    };
    let (rerouted, unsent) = unsent_records(node, original, put_records_parts(node, caller, parts).await);
    answers.extend(rerouted);
    answers.extend(unsent.into_iter().map(UnsentPart::failed));
    answers
}

/// Runs a validated and authorized request.
async fn run(node: &Rc<Node>, caller: &Caller, request: Request) -> Result<Answer, KinesisError> {
    let response = match request {
        Request::AddTagsToStream(input) => Response::AddTagsToStream(streams::add_tags(node, input).await?),
        Request::CreateStream(input) => Response::CreateStream(streams::create(node, input).await?),
        Request::DecreaseStreamRetentionPeriod(input) => {
            let (name, arn) = (input.stream_name.as_deref(), input.stream_arn.as_ref());
            Response::DecreaseStreamRetentionPeriod(
                streams::change_retention(node, name, arn, input.retention_period_hours, false).await?,
            )
        }
        Request::DeleteStream(input) => Response::DeleteStream(streams::delete(node, input).await?),
        Request::DeregisterStreamConsumer(input) => {
            Response::DeregisterStreamConsumer(consumers::deregister(node, input).await?)
        }
        Request::DescribeAccountSettings(_) => {
            Response::DescribeAccountSettings(settings::describe_account_settings(node))
        }
        Request::DescribeLimits(_) => Response::DescribeLimits(streams::describe_limits(node)),
        Request::DescribeStream(input) => Response::DescribeStream(streams::describe(node, input)?),
        Request::DescribeStreamConsumer(input) => Response::DescribeStreamConsumer(consumers::describe(node, input)?),
        Request::DescribeStreamSummary(input) => {
            Response::DescribeStreamSummary(streams::describe_summary(node, input)?)
        }
        Request::DescribeStreamRoutes(input) => {
            Response::DescribeStreamRoutes(routes::describe_stream_routes(node, input)?)
        }
        Request::DisableEnhancedMonitoring(input) => {
            let (name, arn) = (input.stream_name.as_deref(), input.stream_arn.as_ref());
            Response::DisableEnhancedMonitoring(
                streams::set_enhanced_monitoring(node, name, arn, input.shard_level_metrics.clone(), false).await?,
            )
        }
        Request::EnableEnhancedMonitoring(input) => {
            let (name, arn) = (input.stream_name.as_deref(), input.stream_arn.as_ref());
            Response::EnableEnhancedMonitoring(
                streams::set_enhanced_monitoring(node, name, arn, input.shard_level_metrics.clone(), true).await?,
            )
        }
        Request::GetRecords(input) => Response::GetRecords(records::get_records(node, input).await?),
        Request::GetShardIterator(input) => Response::GetShardIterator(records::get_shard_iterator(node, input).await?),
        Request::IncreaseStreamRetentionPeriod(input) => {
            let (name, arn) = (input.stream_name.as_deref(), input.stream_arn.as_ref());
            Response::IncreaseStreamRetentionPeriod(
                streams::change_retention(node, name, arn, input.retention_period_hours, true).await?,
            )
        }
        Request::ListShards(input) => Response::ListShards(streams::list_shards(node, input)?),
        Request::ListStreamConsumers(input) => Response::ListStreamConsumers(consumers::list(node, input)?),
        Request::ListStreams(input) => Response::ListStreams(streams::list(node, input)?),
        Request::ListTagsForResource(input) => {
            Response::ListTagsForResource(consumers::list_tags_for_resource(node, input).await?)
        }
        Request::ListTagsForStream(input) => Response::ListTagsForStream(streams::list_tags(node, input)?),
        Request::MergeShards(input) => Response::MergeShards(reshard::merge(node, input).await?),
        Request::PutRecord(input) => Response::PutRecord(records::put_record(node, input).await?),
        Request::PutRecords(input) => Response::PutRecords(records::put_records(node, input).await?),
        Request::RegisterStreamConsumer(input) => {
            Response::RegisterStreamConsumer(consumers::register(node, input).await?)
        }
        Request::RemoveTagsFromStream(input) => {
            Response::RemoveTagsFromStream(streams::remove_tags(node, input).await?)
        }
        Request::SplitShard(input) => Response::SplitShard(reshard::split(node, input).await?),
        Request::SubscribeToShard(input) => {
            return Ok(Answer::Subscription(subscriptions::subscribe(node, input).await?))
        }
        Request::TagResource(input) => Response::TagResource(consumers::tag_resource(node, input).await?),
        Request::PutResourcePolicy(input) => {
            Response::PutResourcePolicy(consumers::put_resource_policy(node, input).await?)
        }
        Request::GetResourcePolicy(input) => Response::GetResourcePolicy(consumers::get_resource_policy(node, input)?),
        Request::DeleteResourcePolicy(input) => {
            Response::DeleteResourcePolicy(consumers::delete_resource_policy(node, input).await?)
        }
        Request::UntagResource(input) => Response::UntagResource(consumers::untag_resource(node, input).await?),
        Request::UpdateShardCount(input) => Response::UpdateShardCount(reshard::update_shard_count(node, input).await?),
        Request::UpdateStreamMode(input) => Response::UpdateStreamMode(streams::update_mode(node, input).await?),
        Request::UpdateAccountSettings(input) => {
            Response::UpdateAccountSettings(settings::update_account_settings(node, input).await?)
        }
        Request::UpdateMaxRecordSize(input) => {
            Response::UpdateMaxRecordSize(settings::update_max_record_size(node, input).await?)
        }
        Request::UpdateStreamRecordDistributionStrategy(input) => {
            Response::UpdateStreamRecordDistributionStrategy(settings::update_distribution(node, input).await?)
        }
        Request::UpdateStreamWarmThroughput(input) => {
            Response::UpdateStreamWarmThroughput(settings::update_warm_throughput(node, input).await?)
        }
        Request::StartStreamEncryption(input) => {
            let principal = caller.principal().map(|principal| principal.arn.clone());
            Response::StartStreamEncryption(encryption::start(node, principal.as_deref(), input).await?)
        }
        Request::StopStreamEncryption(input) => Response::StopStreamEncryption(encryption::stop(node, input).await?),
        // Sluice's consumer-group operations (docs/clients.md).
        Request::CheckpointLease(input) => Response::CheckpointLease(leases::checkpoint_lease(node, input).await?),
        Request::CreateApplication(input) => {
            Response::CreateApplication(leases::create_application(node, input).await?)
        }
        Request::DeleteApplication(input) => {
            Response::DeleteApplication(leases::delete_application(node, input).await?)
        }
        Request::DescribeApplication(input) => {
            Response::DescribeApplication(leases::describe_application(node, input).await?)
        }
        Request::ListApplications(input) => Response::ListApplications(leases::list_applications(node, input).await?),
        Request::ListLeases(input) => Response::ListLeases(leases::list_leases(node, input).await?),
        Request::ReleaseLease(input) => Response::ReleaseLease(leases::release_lease(node, input).await?),
        Request::RenewLease(input) => Response::RenewLease(leases::renew_lease(node, input).await?),
        Request::StealLease(input) => Response::StealLease(leases::steal_lease(node, input).await?),
        Request::TakeLease(input) => Response::TakeLease(leases::take_lease(node, input).await?),
        // Kinesis queues.
        Request::CreateQueue(input) => Response::CreateQueue(queues::create(node, input).await?),
        Request::DescribeQueue(input) => Response::DescribeQueue(queues::describe(node, input).await?),
        Request::ListQueues(input) => Response::ListQueues(queues::list(node, input).await?),
        Request::UpdateQueue(input) => Response::UpdateQueue(queues::update(node, input).await?),
        Request::DeleteQueue(input) => Response::DeleteQueue(queues::delete(node, input).await?),
        Request::ReceiveQueueRecords(input) => Response::ReceiveQueueRecords(queues::receive(node, input).await?),
        Request::AcknowledgeQueueRecords(input) => {
            Response::AcknowledgeQueueRecords(queues::acknowledge(node, input).await?)
        }
        Request::UpdateQueueRecordsVisibility(input) => {
            Response::UpdateQueueRecordsVisibility(queues::change_visibility(node, input).await?)
        }
        Request::ReceiveDeadLetterQueueRecords(input) => {
            Response::ReceiveDeadLetterQueueRecords(queues::receive_dead_letter(node, input).await?)
        }
        Request::AcknowledgeDeadLetterQueueRecords(input) => {
            Response::AcknowledgeDeadLetterQueueRecords(queues::acknowledge_dead_letter(node, input).await?)
        }
        Request::RestoreDeadLetterQueueRecords(input) => {
            Response::RestoreDeadLetterQueueRecords(queues::restore_dead_letter(node, input).await?)
        }
        Request::UpdateDeadLetterQueueRecordsVisibility(input) => {
            Response::UpdateDeadLetterQueueRecordsVisibility(queues::change_dead_letter_visibility(node, input).await?)
        }
    };
    Ok(Answer::Response(response))
}

/// The server's own streams (`control::streams::INTERNAL_STREAM_PREFIX`) are not the API's: a
/// CreateStream of such a name is refused, and any other request naming one is answered as if
/// it did not exist.
fn refuse_internal_streams(request: &Request, identity: &Identity) -> Result<(), KinesisError> {
    for resource in request.resources(identity) {
        let arn = match &resource {
            IamResource::Stream(arn) => arn,
            IamResource::ConsumerByName { stream_arn, .. } => stream_arn,
            _ => continue,
        };
        let name = arn.as_str().rsplit_once(":stream/").map_or("", |(_, rest)| rest);
        let name = name.split('/').next().unwrap_or(name);
        if !is_internal(name) {
            continue;
        }
        if let Request::CreateStream(_) = request {
            return Err(KinesisError::invalid_argument(format!(
                "Stream names starting with {INTERNAL_STREAM_PREFIX} are reserved by Sluice"
            )));
        }
        return Err(KinesisError::resource_not_found(format!(
            "Stream {name} under account {} not found.",
            identity.account_id()
        )));
    }
    Ok(())
}
