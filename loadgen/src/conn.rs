//! One way to talk to the daemon, whichever protocol `--protocol` chose: the native protocol
//! (`sluice_client::Client`) or the AWS JSON 1.1 API (`sluice_client::aws::HttpClient`, on
//! hyper's client). Both speak the model's types, so a scenario calls `conn.call(&input)`
//! either way.

use serde::Serialize;
use sluice_client::aws::{HttpClient, HttpSubscription};
use sluice_client::{
    Client, ClientError, ConsumerArn, EncodeInput, OperationInput, ShardId, StartingPosition, SubscribeToShardEvent,
    SubscribeToShardInput,
};
use std::rc::Rc;

#[derive(Clone)]
pub enum Conn {
    Native(Client),
    Http(Rc<HttpClient>),
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
        I: OperationInput + EncodeInput + Serialize,
    {
        match self {
            Conn::Native(client) => client.call(input).await,
            Conn::Http(client) => client.call(input).await,
        }
    }

    /// SubscribeToShard. Give each subscription its own `Conn` (see
    /// `sluice_client::Client::subscribe_to_shard`); over HTTP it takes a connection of its own
    /// anyway.
    pub async fn subscribe_to_shard(&self, input: &SubscribeToShardInput) -> Result<Subscription, ClientError> {
        match self {
            Conn::Native(client) => Ok(Subscription::Native(client.subscribe_to_shard(input).await?)),
            Conn::Http(client) => Ok(Subscription::Http(client.subscribe_to_shard(input).await?)),
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
