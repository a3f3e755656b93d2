//! One way to reach a Kinesis endpoint for the producer and the consumer: the native protocol,
//! the native protocol to a cluster's shard leaders ([`Endpoint::Routed`]), or AWS JSON/CBOR
//! over HTTP, behind one `call`, reconnecting after a failed connection.
//!
//! The plain [`crate::Client`] deliberately never reconnects (the caller knows which
//! operations are safe to repeat). The producer and consumer do know: PutRecords is retried
//! by the producer core under its per-key ordering rules, and reads are idempotent. So this
//! wrapper drops a failed connection and opens a new one on the next call; the failed call
//! itself is reported (as a [`ConnectionError`]) for the caller to retry.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use serde::Serialize;
use sluice_model::{OperationInput, PutRecordInput, PutRecordsInput, SubscribeToShardEvent, SubscribeToShardInput};
use sluice_protocol::aws::Encoding;
use sluice_protocol::native::EncodeInput;

use crate::auth::ConnectOptions;
use crate::aws::{HttpClient, HttpSubscription};
use crate::errors::{ClientError, ConnectionError};
use crate::routed::{RoutedClient, RoutedConfig};
use crate::{Client, Subscription};

/// How long one call may take before it is given up as a transport failure (the KPL's
/// `RequestTimeout` default, as a routed client's calls): the producer's retry (after backoff)
/// then goes to a fresh connection.
pub const CALL_TIMEOUT_MS: u64 = crate::routed::CALL_TIMEOUT_MS;

/// Where the endpoint is and which protocol it speaks. `Send`, so it can be handed to the
/// thread a producer runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// sluiced's native protocol at `host:port`.
    Native(String),
    /// AWS JSON 1.1 or CBOR 1.1 over HTTP/1.1 at `host:port` (sluiced's `--http-listen`, or
    /// any Kinesis-compatible endpoint); signed and over TLS as the transport's
    /// [`ConnectOptions`] say.
    Http { addr: String, encoding: Encoding },
    /// A cluster's native protocol through [`RoutedClient`]: PutRecord and PutRecords go
    /// straight to each shard's leader (learned from any of these seeds, `host:port`), the rest
    /// (reads, the control plane, SubscribeToShard) to one node, which serves or forwards it.
    /// On a node alone it behaves as [`Endpoint::Native`] (one table, no hop to save).
    Routed(Vec<String>),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Native(addr) => write!(f, "native://{addr}"),
            Endpoint::Http { addr, .. } => write!(f, "http://{addr}"),
            Endpoint::Routed(seeds) => write!(f, "routed://{}", seeds.join(",")),
        }
    }
}

enum Connection {
    Native(Client),
    Http(Rc<HttpClient>),
    /// Reconnects by itself, member by member.
    Routed(RoutedClient),
}

/// A reconnecting connection to an [`Endpoint`], bound to the glommio executor it was made on.
pub struct Transport {
    endpoint: Endpoint,
    /// Credentials (the native handshake, or SigV4 over HTTP), region and TLS.
    options: ConnectOptions,
    connection: RefCell<Option<Rc<Connection>>>,
}

impl Transport {
    /// A transport that connects on its first call, unauthenticated and without TLS.
    pub fn new(endpoint: Endpoint) -> Transport {
        Transport::with_options(endpoint, ConnectOptions::default())
    }

    /// A transport that authenticates with `options.credentials` (the native handshake, or
    /// SigV4 over HTTP) and uses TLS if `options.tls` is set, on every connection it opens.
    pub fn with_options(endpoint: Endpoint, options: ConnectOptions) -> Transport {
        Transport { endpoint, options, connection: RefCell::new(None) }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn connection(&self) -> Result<Rc<Connection>, ClientError> {
        if let Some(connection) = self.connection.borrow().as_ref() {
            let failed = match connection.as_ref() {
                Connection::Native(client) => client.connection_error().is_some(),
                // These open connections as requests need them.
                Connection::Http(_) | Connection::Routed(_) => false,
            };
            if !failed {
                return Ok(connection.clone());
            }
        }
        let connection = Rc::new(match &self.endpoint {
            Endpoint::Native(addr) => Connection::Native(Client::connect_with(addr, &self.options).await?),
            Endpoint::Http { addr, encoding } => {
                Connection::Http(HttpClient::connect_with(addr, *encoding, &self.options).await?)
            }
            Endpoint::Routed(seeds) => {
                let config = RoutedConfig { options: self.options.clone(), ..RoutedConfig::new(seeds.clone()) };
                Connection::Routed(RoutedClient::connect(config).await?)
            }
        });
        *self.connection.borrow_mut() = Some(connection.clone());
        Ok(connection)
    }

    /// Calls one operation, connecting first if there is no working connection. A call that
    /// takes longer than [`CALL_TIMEOUT_MS`] fails with a connection error and drops the
    /// connection (its answer, if it ever comes, is not waited for).
    pub async fn call<I>(&self, input: &I) -> Result<I::Output, ClientError>
    where
        I: OperationInput + EncodeInput + Serialize + 'static,
        I::Output: 'static,
    {
        let attempt = async {
            let connection = self.connection().await?;
            match connection.as_ref() {
                Connection::Native(client) => client.call(input).await,
                Connection::Http(client) => client.call(input).await,
                Connection::Routed(client) => routed_call(client, input).await,
            }
        };
        let timeout = async {
            glommio::timer::sleep(Duration::from_millis(CALL_TIMEOUT_MS)).await;
            Err(ClientError::Connection(ConnectionError::Io(std::sync::Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from {} within {CALL_TIMEOUT_MS} ms", self.endpoint),
            )))))
        };
        let result = future::or(attempt, timeout).await;
        if matches!(result, Err(ClientError::Connection(_) | ClientError::Connect { .. })) {
            self.connection.borrow_mut().take();
        }
        result
    }
}

/// `input` through a routed client: the writes by their shards' leaders, the rest through any
/// node.
async fn routed_call<I>(client: &RoutedClient, input: &I) -> Result<I::Output, ClientError>
where
    I: OperationInput + EncodeInput + 'static,
    I::Output: 'static,
{
    let input: &dyn Any = input;
    let output: Box<dyn Any> = if let Some(put) = input.downcast_ref::<PutRecordsInput>() {
        Box::new(client.put_records(put).await?)
    } else if let Some(put) = input.downcast_ref::<PutRecordInput>() {
        Box::new(client.put_record(put).await?)
    } else {
        let input = input.downcast_ref::<I>().expect("the input is an I");
        return client.call(input).await;
    };
    Ok(*output.downcast::<I::Output>().expect("PutRecord and PutRecords answer with their own outputs"))
}

/// A SubscribeToShard over either protocol.
pub enum ShardSubscription {
    Native(Subscription),
    Http(HttpSubscription),
}

impl ShardSubscription {
    /// The next event; `None` once the subscription ended (see [`Subscription::next`]).
    pub async fn next(&mut self) -> Option<Result<SubscribeToShardEvent, ClientError>> {
        match self {
            ShardSubscription::Native(subscription) => subscription.next().await,
            ShardSubscription::Http(subscription) => subscription.next().await,
        }
    }
}

impl Transport {
    /// SubscribeToShard; returns once the subscription is established.
    pub async fn subscribe_to_shard(&self, input: &SubscribeToShardInput) -> Result<ShardSubscription, ClientError> {
        let connection = self.connection().await?;
        let result = match connection.as_ref() {
            Connection::Native(client) => client.subscribe_to_shard(input).await.map(ShardSubscription::Native),
            Connection::Http(client) => client.subscribe_to_shard(input).await.map(ShardSubscription::Http),
            Connection::Routed(client) => match client.any().await {
                Ok(client) => client.subscribe_to_shard(input).await.map(ShardSubscription::Native),
                Err(error) => Err(error),
            },
        };
        if matches!(result, Err(ClientError::Connection(_) | ClientError::Connect { .. })) {
            self.connection.borrow_mut().take();
        }
        result
    }
}
