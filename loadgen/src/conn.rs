//! One way to talk to the daemon, whichever protocol `--protocol` chose: the native protocol
//! (`sluice_client::Client`, or with `--route direct` `sluice_client::RoutedClient`, which
//! sends writes to each shard's leader) or the AWS JSON 1.1 API
//! (`sluice_client::aws::HttpClient`, on hyper's client). Both speak the model's types, so a scenario calls `conn.call(&input)`
//! either way.

use serde::Serialize;
use sluice_client::aws::{HttpClient, HttpSubscription};
use sluice_client::{
    Client, ClientError, ConsumerArn, EncodeInput, OperationInput, PutRecordInput, PutRecordsInput, Response,
    RoutedClient, ShardId, StartingPosition, SubscribeToShardEvent, SubscribeToShardInput,
};
use std::any::Any;
use std::rc::Rc;

#[derive(Clone)]
pub enum Conn {
    Native(Client),
    Http(Rc<HttpClient>),
    /// `--route direct`: writes to each shard's leader, everything else to the node given.
    Routed(RoutedClient),
}

pub enum Subscription {
    Native(sluice_client::Subscription),
    Http(HttpSubscription),
}

impl Subscription {
    /// The next event; `None` once the subscription ended.
    pub async fn next(&mut self) -> Option<Result<SubscribeToShardEvent, ClientError>> {
        match self {
            Subscription::Native(subscription) => subscription.next().await,
            Subscription::Http(subscription) => subscription.next().await,
        }
    }
}

impl Conn {
    /// Calls one operation: its output, or the Kinesis error the daemon answered.
    pub async fn call<I>(&self, input: &I) -> Result<I::Output, ClientError>
    where
        I: OperationInput + EncodeInput + Serialize + 'static,
    {
        match self {
            Conn::Native(client) => client.call(input).await,
            Conn::Http(client) => client.call(input).await,
            Conn::Routed(client) => {
                // The writes are routed; the typed call cannot name them otherwise than by
                // their input's type.
                let input_any: &dyn Any = input;
                let response = if let Some(put) = input_any.downcast_ref::<PutRecordsInput>() {
                    Response::PutRecords(client.put_records(put).await?)
                } else if let Some(put) = input_any.downcast_ref::<PutRecordInput>() {
                    Response::PutRecord(client.put_record(put).await?)
                } else {
                    return client.call(input).await;
                };
                I::output_of(response).map_err(|other| ClientError::UnexpectedResponse {
                    operation: I::OPERATION.name(),
                    body: format!("a {other} response"),
                })
            }
        }
    }

    /// What the routed client did (`--route direct`); `None` otherwise.
    pub fn routed_stats(&self) -> Option<sluice_client::RoutedStats> {
        match self {
            Conn::Routed(client) => Some(client.stats()),
            _ => None,
        }
    }

    /// SubscribeToShard. Give each subscription its own `Conn` (see
    /// `sluice_client::Client::subscribe_to_shard`); over HTTP it takes a connection of its own
    /// anyway.
    pub async fn subscribe_to_shard(&self, input: &SubscribeToShardInput) -> Result<Subscription, ClientError> {
        match self {
            Conn::Native(client) => Ok(Subscription::Native(client.subscribe_to_shard(input).await?)),
            Conn::Http(client) => Ok(Subscription::Http(client.subscribe_to_shard(input).await?)),
            Conn::Routed(client) => Ok(Subscription::Native(client.any().await?.subscribe_to_shard(input).await?)),
        }
    }
}

/// SubscribeToShard's input.
pub fn subscription_input(
    consumer_arn: &ConsumerArn,
    shard_id: &ShardId,
    starting_position: StartingPosition,
) -> SubscribeToShardInput {
    SubscribeToShardInput { consumer_arn: consumer_arn.clone(), shard_id: shard_id.clone(), starting_position }
}
