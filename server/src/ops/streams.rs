//! Streams: lifecycle, descriptions and listings, retention, tags, enhanced monitoring,
//! capacity mode, and the account's limits and settings.

use crate::control;
use crate::kinesis::paging::{decode_next_token, encode_next_token, page_size};
use crate::kinesis::views;
use crate::limits::{DESCRIBE_STREAM_SHARDS_MAX, LIST_SHARDS_MAX, LIST_STREAMS_DEFAULT, LIST_TAGS_DEFAULT};
use crate::ops::cluster::meta::{edit, MetaCommand};
use crate::ops::node::Node;
use crate::ops::records::{route_of, stream_route};
use sluice_engine::catalog::{CapacityMode, ShardMeta, StreamMeta};
use sluice_model::limits::{LIST_TAGS_PAGE_SIZE_MAX, PAGE_SIZE_MAX};
use sluice_model::*;
use std::rc::Rc;

type Result<T> = std::result::Result<T, KinesisError>;

/// Whether this node is a member of a cluster: its catalog changes are metadata commands
/// (`ops/cluster/meta.rs`), proposed to the catalog's Raft group and applied on every member.
pub fn replicated(node: &Node) -> bool {
    node.shared.config.cluster.is_some()
}

/// The status a describe shows: the catalog's, except on a replicated node while one of the
/// stream's open shards is in its first election here (0.5 to 1 s after CreateStream or a
/// reshard made it): CREATING for a new stream, UPDATING for one whose open shards came from
/// a reshard. ACTIVE then means what it means on AWS and on one node, that writes are taken:
/// a client that waits for ACTIVE (AWS's `stream_exists` waiter, the loadgen) does not meet a
/// burst of retriable "no leader" errors first. A leader lost later (a failover) does not
/// change the status: AWS keeps such a stream ACTIVE too.
fn described_status(node: &Node, meta: &StreamMeta) -> StreamStatus {
    let status = views::stream_status(meta.status);
    if status != StreamStatus::Active || !replicated(node) {
        return status;
    }
    let open = || meta.shards.iter().filter(|shard| shard.ending_index.is_none() && !shard.closing);
    if open().all(|shard| node.shared.leaders.elected(shard.uid)) {
        status
    } else if open().any(|shard| shard.parent_shard_number.is_some()) {
        StreamStatus::Updating
    } else {
        StreamStatus::Creating
    }
}

/// The stream's name, from `StreamName` or `StreamARN` (validated already).
fn resolve(node: &Node, name: Option<&str>, arn: Option<&StreamArn>) -> Result<String> {
    node.identity().resolve_stream(name, arn).map(str::to_owned)
}

pub async fn create(node: &Rc<Node>, input: CreateStreamInput) -> Result<Empty> {
    edit(node, MetaCommand::CreateStream { now_ms: node.now_ms(), input }).await?;
    Ok(Empty {})
}

pub async fn delete(node: &Rc<Node>, input: DeleteStreamInput) -> Result<Empty> {
    let name = resolve(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    let enforce = input.enforce_consumer_deletion.unwrap_or(false);
    // A replicated node has no queues (it refuses them), and its applier, on every member,
    // does what a node alone does after the change.
    let alone = !replicated(node);
    if alone {
        crate::ops::queues::refuse_stream_with_queues(node, name.clone(), "deleting the stream").await?;
    }
    edit(node, MetaCommand::DeleteStream { name, enforce_consumer_deletion: enforce }).await?;
    if alone {
        // The stream's applications and leases go with it (a restart that finds them finishes it).
        node.run_on(0, |core0| async move { crate::ops::leases::follow_streams(&core0).await }).await??;
    }
    Ok(Empty {})
}

/// The shards of a listing in shard-number order, after `exclusive_start` if given.
fn shards_after(shards: &mut Vec<&ShardMeta>, exclusive_start: Option<&ShardId>) -> usize {
    shards.sort_by_key(|shard| shard.number);
    match exclusive_start.and_then(ShardId::number) {
        Some(number) => shards.partition_point(|shard| shard.number <= number),
        None => 0,
    }
}

pub fn describe(node: &Node, input: DescribeStreamInput) -> Result<DescribeStreamOutput> {
    let route = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    let limit = page_size(input.limit, DESCRIBE_STREAM_SHARDS_MAX, DESCRIBE_STREAM_SHARDS_MAX);
    let meta = &route.meta;
    let mut shards: Vec<&ShardMeta> = meta.shards.iter().collect();
    let start = shards_after(&mut shards, input.exclusive_start_shard_id.as_ref());
    let page: Vec<Shard> = shards[start..].iter().take(limit).map(|shard| views::shard(shard, meta)).collect();
    let has_more = start + page.len() < shards.len();
    let mut stream_description = views::stream_description(node.identity(), meta, page, has_more);
    stream_description.stream_status = described_status(node, meta);
    if control::encryption::encryption_updating(meta, node.now_ms()) {
        stream_description.stream_status = StreamStatus::Updating;
    }
    Ok(DescribeStreamOutput { stream_description })
}

pub fn describe_summary(node: &Node, input: DescribeStreamSummaryInput) -> Result<DescribeStreamSummaryOutput> {
    let route = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    let mut stream_description_summary = views::stream_description_summary(
        node.identity(),
        &route.meta,
        control::settings::warm_throughput(&node.routes().account, node.now_ms(), &route.meta),
    );
    stream_description_summary.stream_status = described_status(node, &route.meta);
    if control::encryption::encryption_updating(&route.meta, node.now_ms()) {
        stream_description_summary.stream_status = StreamStatus::Updating;
    }
    Ok(DescribeStreamSummaryOutput { stream_description_summary })
}

pub fn list(node: &Node, input: ListStreamsInput) -> Result<ListStreamsOutput> {
    let limit = page_size(input.limit, LIST_STREAMS_DEFAULT, PAGE_SIZE_MAX);
    let after = match (&input.next_token, &input.exclusive_start_stream_name) {
        (Some(token), _) => Some(decode_next_token(token, "streams", node.now_ms())?),
        (None, start) => start.clone(),
    };
    let routes = node.routes();
    let mut names: Vec<&String> = routes.streams.keys().filter(|name| !control::streams::is_internal(name)).collect();
    names.sort();
    let start = after.map_or(0, |after| names.partition_point(|name| name.as_str() <= after.as_str()));
    let page: Vec<&String> = names[start..].iter().take(limit).copied().collect();
    let has_more_streams = start + page.len() < names.len();
    let stream_summaries =
        page.iter().map(|name| views::stream_summary(node.identity(), &routes.streams[*name].meta)).collect();
    let next_token =
        has_more_streams.then(|| encode_next_token(page.last().expect("a page before more"), "streams", node.now_ms()));
    Ok(ListStreamsOutput {
        stream_names: page.into_iter().cloned().collect(),
        has_more_streams,
        next_token,
        stream_summaries,
    })
}

pub fn list_shards(node: &Node, input: ListShardsInput) -> Result<ListShardsOutput> {
    let now_ms = node.now_ms();
    let limit = page_size(input.max_results, LIST_SHARDS_MAX, LIST_SHARDS_MAX);
    let (route, after) = match &input.next_token {
        Some(token) => {
            let scoped = decode_next_token(token, "shards", now_ms)?;
            let (stream, after) = scoped.split_once('\n').ok_or_else(|| KinesisError::invalid_next_token(token))?;
            (route_of(node, stream)?, Some(ShardId::from(after)))
        }
        None => (
            stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?,
            input.exclusive_start_shard_id.clone(),
        ),
    };
    let meta = &route.meta;
    let mut shards: Vec<&ShardMeta> = meta.shards.iter().collect();
    if let Some(filter) = &input.shard_filter {
        // Each filter keeps the shards that took records at a moment or over a span: the trim
        // horizon is the oldest retained moment, the tip is now. (Validated: a filter has the
        // members its type needs.)
        let trim_ms = (now_ms - meta.retention_ms()).max(meta.created_ms);
        let at = filter.timestamp.map_or(now_ms, Timestamp::epoch_ms);
        match filter.r#type {
            ShardFilterType::AfterShardId => {
                let number = filter.shard_id.as_ref().and_then(ShardId::number).unwrap_or(u32::MAX);
                shards.retain(|shard| shard.number > number);
            }
            ShardFilterType::AtTimestamp => shards.retain(|shard| shard.open_during(at, at)),
            ShardFilterType::FromTimestamp => shards.retain(|shard| shard.open_during(at, now_ms)),
            ShardFilterType::AtLatest => shards.retain(|shard| shard.is_open()),
            ShardFilterType::AtTrimHorizon => shards.retain(|shard| shard.open_during(trim_ms, trim_ms)),
            ShardFilterType::FromTrimHorizon => shards.retain(|shard| shard.open_during(trim_ms, now_ms)),
            ShardFilterType::Unknown(_) => return Err(KinesisError::not_in_enum(&filter.r#type, "shardFilter.type")),
        }
    }
    let start = shards_after(&mut shards, after.as_ref());
    let page: Vec<Shard> = shards[start..].iter().take(limit).map(|shard| views::shard(shard, meta)).collect();
    let more = start + page.len() < shards.len();
    let next_token = more.then(|| {
        let last = &page.last().expect("a page before more").shard_id;
        encode_next_token(&format!("{}\n{last}", meta.name), "shards", now_ms)
    });
    Ok(ListShardsOutput { shards: page, next_token })
}

pub async fn change_retention(
    node: &Rc<Node>,
    name: Option<&str>,
    arn: Option<&StreamArn>,
    hours: i32,
    increase: bool,
) -> Result<Empty> {
    let name = resolve(node, name, arn)?;
    edit(node, MetaCommand::SetRetention { name, hours, increase }).await?;
    Ok(Empty {})
}

pub async fn add_tags(node: &Rc<Node>, input: AddTagsToStreamInput) -> Result<Empty> {
    let name = resolve(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    edit(node, MetaCommand::AddTagsToStream { name, tags: input.tags }).await?;
    Ok(Empty {})
}

pub async fn remove_tags(node: &Rc<Node>, input: RemoveTagsFromStreamInput) -> Result<Empty> {
    let name = resolve(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    edit(node, MetaCommand::RemoveTagsFromStream { name, keys: input.tag_keys }).await?;
    Ok(Empty {})
}

pub fn list_tags(node: &Node, input: ListTagsForStreamInput) -> Result<ListTagsForStreamOutput> {
    let route = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    let limit = page_size(input.limit, LIST_TAGS_DEFAULT, LIST_TAGS_PAGE_SIZE_MAX);
    let tags = &route.meta.tags;
    let after: Vec<(&String, &String)> = match &input.exclusive_start_tag_key {
        Some(start) => {
            tags.range::<String, _>((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded)).collect()
        }
        None => tags.iter().collect(),
    };
    let page = after
        .iter()
        .take(limit)
        .map(|(key, value)| Tag { key: (*key).clone(), value: Some((*value).clone()) })
        .collect();
    Ok(ListTagsForStreamOutput { tags: page, has_more_tags: after.len() > limit })
}

pub async fn set_enhanced_monitoring(
    node: &Rc<Node>,
    name: Option<&str>,
    arn: Option<&StreamArn>,
    metrics: Vec<MetricsName>,
    enable: bool,
) -> Result<EnhancedMonitoringOutput> {
    let name = resolve(node, name, arn)?;
    edit(node, MetaCommand::SetEnhancedMonitoring { name, metrics, enable }).await?.into_monitoring()
}

pub async fn update_mode(node: &Rc<Node>, input: UpdateStreamModeInput) -> Result<Empty> {
    let name = node.identity().stream_name_of(&input.stream_arn)?.to_owned();
    let mode = input.stream_mode_details.stream_mode;
    if mode == StreamMode::Provisioned && !replicated(node) {
        // Queues live only on ON_DEMAND streams (and on a node alone: a replicated one refuses
        // them).
        crate::ops::queues::refuse_stream_with_queues(node, name.clone(), "switching it to PROVISIONED").await?;
    }
    edit(node, MetaCommand::UpdateStreamMode { now_ms: node.now_ms(), name, mode }).await?;
    Ok(Empty {})
}

pub fn describe_limits(node: &Node) -> DescribeLimitsOutput {
    let routes = node.routes();
    let metas = || routes.streams.values().map(|route| &route.meta);
    let limits = node.limits();
    DescribeLimitsOutput {
        shard_limit: limits.shard_limit as i32,
        open_shard_count: metas().flat_map(|meta| &meta.shards).filter(|shard| shard.is_open()).count() as i32,
        on_demand_stream_count: metas().filter(|meta| meta.mode == CapacityMode::OnDemand).count() as i32,
        on_demand_stream_count_limit: limits.on_demand_stream_limit as i32,
    }
}
