//! The one dispatch: a model `Request` in, a model `Response` out, whichever protocol the
//! request came by. Every request is validated (the model's rules common to every protocol),
//! its caller authorized ([`auth::authorize`]), and then its operation runs.
//!
//! SubscribeToShard answers with a stream of events, which no `Response` can hold (the model
//! is pure; the events come on a runtime channel): it answers [`Answer::Subscription`], and
//! each protocol frames the events its own way.

use crate::ops::auth::{authorize, Caller};
use crate::ops::node::Node;
use crate::ops::subscriptions::Events;
use crate::ops::{consumers, observe, records, reshard, streams, subscriptions};
use sluice_model::{KinesisError, Request, Response};
use std::rc::Rc;

/// What a request is answered with.
#[derive(Debug)]
pub enum Answer {
    Response(Response),
    /// SubscribeToShard accepted: its events follow on this receiver (the acceptance itself is
    /// the model's `Response::SubscribeToShard`, which the protocol sends first).
    Subscription(Events),
}

/// Validates, authorizes and runs `request` for `caller`, on the core that received it.
pub async fn execute(node: &Rc<Node>, caller: &Caller, request: Request) -> Result<Answer, KinesisError> {
    let observation = observe::begin(node, &request);
    let answer = run(node, caller, request).await;
    observe::finish(node, observation, &answer);
    answer
}

async fn run(node: &Rc<Node>, caller: &Caller, request: Request) -> Result<Answer, KinesisError> {
    let identity = node.identity();
    request.validate(identity)?;
    authorize(caller, &request, identity)?;
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
        Request::DescribeAccountSettings(_) => Response::DescribeAccountSettings(streams::describe_account_settings()),
        Request::DescribeLimits(_) => Response::DescribeLimits(streams::describe_limits(node)),
        Request::DescribeStream(input) => Response::DescribeStream(streams::describe(node, input)?),
        Request::DescribeStreamConsumer(input) => Response::DescribeStreamConsumer(consumers::describe(node, input)?),
        Request::DescribeStreamSummary(input) => {
            Response::DescribeStreamSummary(streams::describe_summary(node, input)?)
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
            Response::ListTagsForResource(consumers::list_tags_for_resource(node, input)?)
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
        Request::UntagResource(input) => Response::UntagResource(consumers::untag_resource(node, input).await?),
        Request::UpdateShardCount(input) => Response::UpdateShardCount(reshard::update_shard_count(node, input).await?),
        Request::UpdateStreamMode(input) => Response::UpdateStreamMode(streams::update_mode(node, input).await?),
    };
    Ok(Answer::Response(response))
}
