//! What an authorizer checks for a request: the IAM action(s) it needs and the resources they
//! act on, as AWS's service authorization reference for Kinesis lists them ("Actions,
//! resources, and condition keys for Amazon Kinesis Data Streams"): most actions act on the
//! stream; DescribeStreamConsumer and SubscribeToShard on the consumer, DeregisterStreamConsumer
//! on the consumer and its stream; ListStreams, DescribeLimits and DescribeAccountSettings on
//! no resource (`*`); TagResource and its siblings on the stream or consumer they name.
//! CreateStream with tags also needs `kinesis:AddTagsToStream` on the new stream.
//!
//! Call it after [`Request::validate`]: a validated request names its resources well.

use crate::identity::Identity;
use crate::ids::{ConsumerArn, ResourceArn, StreamArn};
use crate::operations::Request;

/// A resource an IAM statement can grant an action on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IamResource {
    /// `*`: the action takes no resource.
    Any,
    Stream(StreamArn),
    Consumer(ConsumerArn),
    /// A consumer named by its stream's ARN and its name: its ARN carries its registration
    /// time, which only the server knows; the server resolves it before checking.
    ConsumerByName {
        stream_arn: StreamArn,
        consumer_name: String,
    },
    /// The stream a shard iterator was issued for (GetRecords without `StreamARN`): the
    /// iterator is opaque to the model; the server resolves it when it reads the iterator.
    ShardIteratorStream,
    /// A Kinesis queue, by its ARN.
    Queue(String),
}

/// One action a request needs, and the resources it needs it on (all of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamCheck {
    /// `kinesis:PutRecord`.
    pub action: &'static str,
    pub resources: Vec<IamResource>,
}

impl Request {
    /// The IAM action of this request's operation, `kinesis:<Operation>`.
    pub fn iam_action(&self) -> &'static str {
        self.operation().iam_action()
    }

    /// Every action this request needs, each with the resources it needs it on.
    pub fn iam_checks(&self, identity: &Identity) -> Vec<IamCheck> {
        let mut checks = vec![IamCheck { action: self.iam_action(), resources: self.resources(identity) }];
        if let Request::CreateStream(input) = self {
            if input.tags.as_ref().is_some_and(|tags| !tags.is_empty()) {
                checks.push(IamCheck {
                    action: crate::operations::Operation::AddTagsToStream.iam_action(),
                    resources: vec![IamResource::Stream(identity.stream_arn(&input.stream_name))],
                });
            }
        }
        checks
    }

    /// The resources this request's own action acts on.
    pub fn resources(&self, identity: &Identity) -> Vec<IamResource> {
        let stream = |name: &Option<String>, arn: &Option<StreamArn>| -> Vec<IamResource> {
            match (arn, name) {
                (Some(arn), _) => vec![IamResource::Stream(arn.clone())],
                (None, Some(name)) => vec![IamResource::Stream(identity.stream_arn(name))],
                (None, None) => Vec::new(),
            }
        };
        let consumer =
            |arn: &Option<ConsumerArn>, stream_arn: &Option<StreamArn>, name: &Option<String>, with_stream: bool| {
                let mut resources = Vec::new();
                match (arn, stream_arn, name) {
                    (Some(arn), _, _) => {
                        resources.push(IamResource::Consumer(arn.clone()));
                        if with_stream {
                            if let Ok(parts) = identity.consumer_of(arn) {
                                resources.push(IamResource::Stream(identity.stream_arn(&parts.stream)));
                            }
                        }
                    }
                    (None, Some(stream_arn), Some(name)) => {
                        resources.push(IamResource::ConsumerByName {
                            stream_arn: stream_arn.clone(),
                            consumer_name: name.clone(),
                        });
                        if with_stream {
                            resources.push(IamResource::Stream(stream_arn.clone()));
                        }
                    }
                    _ => {}
                }
                resources
            };
        let application = |input: &dyn crate::leases::ApplicationRef| -> Vec<IamResource> {
            match identity.resolve_application(input.application_ref()) {
                Ok(named) => vec![IamResource::Stream(identity.stream_arn(&named.stream))],
                Err(_) => Vec::new(),
            }
        };
        let tagged = |arn: &ResourceArn| -> Vec<IamResource> {
            if arn.as_str().contains("/consumer/") {
                vec![IamResource::Consumer(ConsumerArn::from(arn.as_str()))]
            } else if arn.as_str().contains(":queue/") {
                // Queues are tagged like streams (TagResource and its siblings).
                vec![IamResource::Queue(arn.as_str().to_owned())]
            } else {
                vec![IamResource::Stream(StreamArn::from(arn.as_str()))]
            }
        };
        match self {
            Request::AddTagsToStream(i) => stream(&i.stream_name, &i.stream_arn),
            Request::CreateStream(i) => vec![IamResource::Stream(identity.stream_arn(&i.stream_name))],
            Request::DecreaseStreamRetentionPeriod(i) => stream(&i.stream_name, &i.stream_arn),
            Request::DeleteStream(i) => stream(&i.stream_name, &i.stream_arn),
            Request::DeregisterStreamConsumer(i) => consumer(&i.consumer_arn, &i.stream_arn, &i.consumer_name, true),
            Request::DescribeAccountSettings(_) | Request::DescribeLimits(_) | Request::ListStreams(_) => {
                vec![IamResource::Any]
            }
            Request::DescribeStream(i) => stream(&i.stream_name, &i.stream_arn),
            Request::DescribeStreamConsumer(i) => consumer(&i.consumer_arn, &i.stream_arn, &i.consumer_name, false),
            Request::DescribeStreamSummary(i) => stream(&i.stream_name, &i.stream_arn),
            Request::DescribeStreamRoutes(i) => stream(&i.stream_name, &i.stream_arn),
            Request::DisableEnhancedMonitoring(i) => stream(&i.stream_name, &i.stream_arn),
            Request::EnableEnhancedMonitoring(i) => stream(&i.stream_name, &i.stream_arn),
            Request::GetRecords(i) => match &i.stream_arn {
                Some(arn) => vec![IamResource::Stream(arn.clone())],
                None => vec![IamResource::ShardIteratorStream],
            },
            Request::GetShardIterator(i) => stream(&i.stream_name, &i.stream_arn),
            Request::IncreaseStreamRetentionPeriod(i) => stream(&i.stream_name, &i.stream_arn),
            // A continuation (NextToken alone) names its stream inside the token, which the
            // server reads; without a name or ARN this is empty.
            Request::ListShards(i) => stream(&i.stream_name, &i.stream_arn),
            Request::ListStreamConsumers(i) => vec![IamResource::Stream(i.stream_arn.clone())],
            Request::ListTagsForResource(i) => tagged(&i.resource_arn),
            Request::ListTagsForStream(i) => stream(&i.stream_name, &i.stream_arn),
            Request::MergeShards(i) => stream(&i.stream_name, &i.stream_arn),
            Request::PutRecord(i) => stream(&i.stream_name, &i.stream_arn),
            Request::PutRecords(i) => stream(&i.stream_name, &i.stream_arn),
            Request::RegisterStreamConsumer(i) => vec![IamResource::Stream(i.stream_arn.clone())],
            Request::RemoveTagsFromStream(i) => stream(&i.stream_name, &i.stream_arn),
            Request::SplitShard(i) => stream(&i.stream_name, &i.stream_arn),
            Request::StartStreamEncryption(i) => stream(&i.stream_name, &i.stream_arn),
            Request::StopStreamEncryption(i) => stream(&i.stream_name, &i.stream_arn),
            Request::SubscribeToShard(i) => vec![IamResource::Consumer(i.consumer_arn.clone())],
            Request::TagResource(i) => tagged(&i.resource_arn),
            Request::PutResourcePolicy(i) => tagged(&i.resource_arn),
            Request::GetResourcePolicy(i) => tagged(&i.resource_arn),
            Request::DeleteResourcePolicy(i) => tagged(&i.resource_arn),
            Request::UntagResource(i) => tagged(&i.resource_arn),
            Request::UpdateShardCount(i) => stream(&i.stream_name, &i.stream_arn),
            Request::UpdateStreamMode(i) => vec![IamResource::Stream(i.stream_arn.clone())],
            Request::UpdateAccountSettings(_) => vec![IamResource::Any],
            Request::UpdateMaxRecordSize(i) => {
                i.stream_arn.iter().map(|arn| IamResource::Stream(arn.clone())).collect()
            }
            Request::UpdateStreamRecordDistributionStrategy(i) => vec![IamResource::Stream(i.stream_arn.clone())],
            Request::UpdateStreamWarmThroughput(i) => stream(&i.stream_name, &i.stream_arn),
            // Sluice's lease operations act on the application's stream.
            Request::CheckpointLease(i) => application(i),
            Request::CreateApplication(i) => stream(&i.stream_name, &i.stream_arn),
            Request::DeleteApplication(i) => application(i),
            Request::DescribeApplication(i) => application(i),
            Request::ListApplications(i) => stream(&i.stream_name, &i.stream_arn),
            Request::ListLeases(i) => application(i),
            Request::ReleaseLease(i) => application(i),
            Request::RenewLease(i) => application(i),
            Request::StealLease(i) => application(i),
            Request::TakeLease(i) => application(i),
            // Kinesis queues: CreateQueue acts on the queue's streams (and creates the queue,
            // whose ARN does not exist yet); ListQueues on none; the others on the queue.
            Request::CreateQueue(i) => {
                i.stream_configuration_list.iter().map(|c| IamResource::Stream(c.stream_arn.clone())).collect()
            }
            Request::ListQueues(_) => vec![IamResource::Any],
            Request::AcknowledgeDeadLetterQueueRecords(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::AcknowledgeQueueRecords(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::DeleteQueue(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::DescribeQueue(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::ReceiveDeadLetterQueueRecords(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::ReceiveQueueRecords(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::RestoreDeadLetterQueueRecords(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::UpdateDeadLetterQueueRecordsVisibility(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::UpdateQueue(i) => vec![IamResource::Queue(i.queue_arn.clone())],
            Request::UpdateQueueRecordsVisibility(i) => vec![IamResource::Queue(i.queue_arn.clone())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::*;
    use crate::Operation;

    #[test]
    fn every_operation_names_its_action_and_resources() {
        let identity = Identity::default();
        let stream = identity.stream_arn("s");
        let consumer = identity.consumer_arn("s", "c", 1_700_000_000_000);
        let put = Request::from(PutRecordsInput { stream_name: Some("s".into()), ..Default::default() });
        assert_eq!(put.iam_action(), "kinesis:PutRecords");
        assert_eq!(put.resources(&identity), vec![IamResource::Stream(stream.clone())]);
        let list = Request::from(ListStreamsInput::default());
        assert_eq!(list.resources(&identity), vec![IamResource::Any]);
        let deregister =
            Request::from(DeregisterStreamConsumerInput { consumer_arn: Some(consumer.clone()), ..Default::default() });
        assert_eq!(
            deregister.resources(&identity),
            vec![IamResource::Consumer(consumer.clone()), IamResource::Stream(stream.clone())]
        );
        let get = Request::from(GetRecordsInput { shard_iterator: "x".into(), ..Default::default() });
        assert_eq!(get.resources(&identity), vec![IamResource::ShardIteratorStream]);
        let tag = Request::from(TagResourceInput { resource_arn: consumer.as_str().into(), ..Default::default() });
        assert_eq!(tag.resources(&identity), vec![IamResource::Consumer(consumer)]);
        let create = Request::from(CreateStreamInput {
            stream_name: "s".into(),
            shard_count: Some(1),
            tags: Some([("k".to_owned(), "v".to_owned())].into()),
            ..Default::default()
        });
        let actions: Vec<_> = create.iam_checks(&identity).into_iter().map(|check| check.action).collect();
        assert_eq!(actions, ["kinesis:CreateStream", "kinesis:AddTagsToStream"]);
        assert_eq!(Operation::SubscribeToShard.iam_action(), "kinesis:SubscribeToShard");
        let routes = Request::from(crate::routes::DescribeStreamRoutesInput {
            stream_name: Some("s".into()),
            ..Default::default()
        });
        assert_eq!(routes.iam_action(), "kinesis:DescribeStream", "what DescribeStream needs, no action of its own");
        assert_eq!(routes.resources(&identity), vec![IamResource::Stream(stream.clone())]);
    }
}
