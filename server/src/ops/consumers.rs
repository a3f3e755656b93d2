//! Enhanced fan-out consumers, and what names a stream or a consumer by ARN: tags
//! (TagResource and its siblings) and resource policies (PutResourcePolicy and its siblings).

use crate::kinesis::paging::{decode_next_token, encode_next_token, page_size};
use crate::kinesis::views;
use crate::limits::LIST_CONSUMERS_DEFAULT;
use crate::ops::cluster::meta::{edit, MetaCommand};
use crate::ops::node::Node;
use crate::ops::records::route_of;
use crate::ops::streams::replicated;
use crate::runtime::routes::StreamRoute;
use sluice_engine::catalog::ConsumerMeta;
use sluice_model::limits::PAGE_SIZE_MAX;
use sluice_model::*;
use sluice_security::policy::{Policy, PolicyKind};
use std::rc::Rc;
use std::sync::Arc;

type Result<T> = std::result::Result<T, KinesisError>;

/// A consumer named by its ARN, checked to exist (with the same registration time).
pub fn find_by_arn(node: &Node, arn: &ConsumerArn) -> Result<ConsumerName> {
    let name = node.identity().consumer_of(arn)?;
    find(node, &name.stream, &name.consumer, Some(name.created_s))?;
    Ok(name)
}

/// The consumer `consumer` of stream `stream` (registered at `created_s`, if given).
fn find(node: &Node, stream: &str, consumer: &str, created_s: Option<i64>) -> Result<(Arc<StreamRoute>, ConsumerMeta)> {
    let not_found = || KinesisError::consumer_not_found(stream, consumer);
    let route = node.routes().streams.get(stream).cloned().ok_or_else(not_found)?;
    let found = route
        .meta
        .consumers
        .iter()
        .find(|meta| {
            meta.name == consumer && created_s.is_none_or(|created| created == meta.created_ms.div_euclid(1000))
        })
        .cloned()
        .ok_or_else(not_found)?;
    Ok((route, found))
}

/// A consumer named by ARN, or by stream ARN and name (validated: one or the other is there).
fn find_named(
    node: &Node,
    stream_arn: Option<&StreamArn>,
    consumer_name: Option<&str>,
    consumer_arn: Option<&ConsumerArn>,
) -> Result<(Arc<StreamRoute>, ConsumerMeta)> {
    match (consumer_arn, stream_arn, consumer_name) {
        (Some(arn), _, _) => {
            let name = node.identity().consumer_of(arn)?;
            find(node, &name.stream, &name.consumer, Some(name.created_s))
        }
        (None, Some(stream_arn), Some(name)) => find(node, node.identity().stream_name_of(stream_arn)?, name, None),
        _ => Err(KinesisError::invalid_argument("Either ConsumerARN, or StreamARN and ConsumerName, must be provided")),
    }
}

pub async fn register(node: &Rc<Node>, input: RegisterStreamConsumerInput) -> Result<RegisterStreamConsumerOutput> {
    let stream = node.identity().stream_name_of(&input.stream_arn)?.to_owned();
    // The registration time is the proposer's: it is part of the consumer's ARN, which must
    // be the same on every node.
    let command = MetaCommand::RegisterStreamConsumer {
        now_ms: node.now_ms(),
        stream,
        consumer: input.consumer_name,
        tags: input.tags,
    };
    let consumer = edit(node, command).await?.into_consumer()?;
    Ok(RegisterStreamConsumerOutput { consumer })
}

pub async fn deregister(node: &Rc<Node>, input: DeregisterStreamConsumerInput) -> Result<Empty> {
    let (stream, consumer, created_s) = if replicated(node) {
        // Named, not looked up: the command checks that the consumer exists where it is
        // applied, in log order, and this node's catalog may not have applied its
        // registration yet.
        match (&input.consumer_arn, &input.stream_arn, input.consumer_name) {
            (Some(arn), _, _) => {
                let name = node.identity().consumer_of(arn)?;
                (name.stream, name.consumer, Some(name.created_s))
            }
            (None, Some(stream_arn), Some(name)) => {
                (node.identity().stream_name_of(stream_arn)?.to_owned(), name, None)
            }
            _ => {
                return Err(KinesisError::invalid_argument(
                    "Either ConsumerARN, or StreamARN and ConsumerName, must be provided",
                ))
            }
        }
    } else {
        let (route, meta) =
            find_named(node, input.stream_arn.as_ref(), input.consumer_name.as_deref(), input.consumer_arn.as_ref())?;
        (route.meta.name.clone(), meta.name, Some(meta.created_ms.div_euclid(1000)))
    };
    edit(node, MetaCommand::DeregisterStreamConsumer { stream, consumer, created_s }).await?;
    Ok(Empty {})
}

pub fn describe(node: &Node, input: DescribeStreamConsumerInput) -> Result<DescribeStreamConsumerOutput> {
    let (route, meta) =
        find_named(node, input.stream_arn.as_ref(), input.consumer_name.as_deref(), input.consumer_arn.as_ref())?;
    Ok(DescribeStreamConsumerOutput {
        consumer_description: views::consumer_description(node.identity(), &route.meta, &meta),
    })
}

pub fn list(node: &Node, input: ListStreamConsumersInput) -> Result<ListStreamConsumersOutput> {
    let name = node.identity().stream_name_of(&input.stream_arn)?;
    let route = route_of(node, name)?;
    let limit = page_size(input.max_results, LIST_CONSUMERS_DEFAULT, PAGE_SIZE_MAX);
    let mut consumers: Vec<&ConsumerMeta> = route.meta.consumers.iter().collect();
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    let scope = format!("consumers/{name}");
    let start = match &input.next_token {
        Some(token) => {
            let after = decode_next_token(token, &scope, node.now_ms())?;
            consumers.partition_point(|consumer| consumer.name <= after)
        }
        None => 0,
    };
    let page: Vec<Consumer> =
        consumers[start..].iter().take(limit).map(|meta| views::consumer(node.identity(), &route.meta, meta)).collect();
    let next_token = (start + page.len() < consumers.len())
        .then(|| encode_next_token(&page.last().expect("a page before more").consumer_name, &scope, node.now_ms()));
    Ok(ListStreamConsumersOutput { consumers: page, next_token })
}

pub async fn tag_resource(node: &Rc<Node>, input: TagResourceInput) -> Result<Empty> {
    if node.identity().queue_of(input.resource_arn.as_str()).is_ok() {
        return crate::ops::queues::tag(node, input.resource_arn.as_str().to_owned(), input.tags)
            .await
            .map(|()| Empty {});
    }
    let resource = node.identity().resource_of(&input.resource_arn)?.into();
    edit(node, MetaCommand::TagResource { resource, tags: input.tags }).await?;
    Ok(Empty {})
}

pub async fn untag_resource(node: &Rc<Node>, input: UntagResourceInput) -> Result<Empty> {
    if node.identity().queue_of(input.resource_arn.as_str()).is_ok() {
        let arn = input.resource_arn.as_str().to_owned();
        return crate::ops::queues::untag(node, arn, input.tag_keys).await.map(|()| Empty {});
    }
    let resource = node.identity().resource_of(&input.resource_arn)?.into();
    edit(node, MetaCommand::UntagResource { resource, keys: input.tag_keys }).await?;
    Ok(Empty {})
}

/// PutResourcePolicy: the document must parse as an IAM resource policy (the grammar and the
/// size limit `sluice_security::policy` enforces, the ones the authorizer evaluates), else
/// InvalidArgumentException naming what is wrong with it.
pub async fn put_resource_policy(node: &Rc<Node>, input: PutResourcePolicyInput) -> Result<Empty> {
    let resource = node.identity().resource_of(&input.resource_arn)?;
    Policy::parse(&input.policy, PolicyKind::Resource)
        .map_err(|error| KinesisError::invalid_argument(format!("Invalid resource policy: {error}")))?;
    edit(node, MetaCommand::SetResourcePolicy { resource: resource.into(), policy: Some(input.policy) }).await?;
    Ok(Empty {})
}

pub async fn delete_resource_policy(node: &Rc<Node>, input: DeleteResourcePolicyInput) -> Result<Empty> {
    let resource = node.identity().resource_of(&input.resource_arn)?;
    edit(node, MetaCommand::SetResourcePolicy { resource: resource.into(), policy: None }).await?;
    Ok(Empty {})
}

/// GetResourcePolicy: the document as it was put, or `{}` for a resource without one.
pub fn get_resource_policy(node: &Node, input: GetResourcePolicyInput) -> Result<GetResourcePolicyOutput> {
    let policy = match node.identity().resource_of(&input.resource_arn)? {
        Resource::Stream(name) => route_of(node, &name)?.meta.resource_policy.clone(),
        Resource::Consumer(name) => find(node, &name.stream, &name.consumer, Some(name.created_s))?.1.resource_policy,
    };
    Ok(GetResourcePolicyOutput { policy: policy.unwrap_or_else(|| "{}".to_string()) })
}

/// ListTagsForResource: every tag of a stream, a consumer or a queue, sorted by key.
pub async fn list_tags_for_resource(
    node: &Rc<Node>,
    input: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput> {
    let tags = if node.identity().queue_of(input.resource_arn.as_str()).is_ok() {
        crate::ops::queues::tags(node, input.resource_arn.as_str().to_owned()).await?
    } else {
        match node.identity().resource_of(&input.resource_arn)? {
            Resource::Stream(name) => route_of(node, &name)?.meta.tags.clone(),
            Resource::Consumer(name) => find(node, &name.stream, &name.consumer, Some(name.created_s))?.1.tags,
        }
    };
    Ok(ListTagsForResourceOutput {
        tags: tags.into_iter().map(|(key, value)| Tag { key, value: Some(value) }).collect(),
    })
}
