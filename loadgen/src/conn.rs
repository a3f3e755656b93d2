//! One way to talk to the daemon, whichever protocol `--protocol` chose: the native protocol
//! through sluice-client, or the AWS JSON 1.1 API (`http`). The scenarios see only the few
//! operations they use, with sluice-client's types.

use crate::http::{self, HttpClient, HttpSubscription};
use serde_json::{json, Value};
use sluice_client::{
    Client, ClientError, ConsumerStatus, CreateStreamRequest, DeleteStreamRequest, DescribeStreamConsumerRequest,
    DescribeStreamSummaryRequest, GetRecordsRequest, GetRecordsResponse, GetShardIteratorRequest,
    GetShardIteratorResponse, ListShardsRequest, PutRecordsRequest, PutRecordsResponse, PutRecordsResultEntry,
    RegisterStreamConsumerRequest, StartingPosition, StreamStatus, SubscribeToShardEvent,
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

fn missing(shape: &'static str, member: &'static str) -> ClientError {
    ClientError::MissingMember { shape, member }
}

fn text(document: &Value, shape: &'static str, member: &'static str) -> Result<String, ClientError> {
    document.as_str().map(str::to_owned).ok_or_else(|| missing(shape, member))
}

impl Conn {
    pub async fn create_stream(&self, name: &str, shards: i32) -> Result<(), ClientError> {
        match self {
            Conn::Native(client) => {
                let request = CreateStreamRequest {
                    stream_name: name.to_owned(),
                    shard_count: Some(shards),
                    ..Default::default()
                };
                client.create_stream(&request).await
            }
            Conn::Http(client) => {
                client.call("CreateStream", &json!({"StreamName": name, "ShardCount": shards})).await.map(drop)
            }
        }
    }

    /// The stream's status and ARN.
    pub async fn stream_status(&self, name: &str) -> Result<(StreamStatus, String), ClientError> {
        match self {
            Conn::Native(client) => {
                let request = DescribeStreamSummaryRequest { stream_name: Some(name.to_owned()), stream_arn: None };
                let summary = client.describe_stream_summary(&request).await?.stream_description_summary;
                Ok((summary.stream_status, summary.stream_arn))
            }
            Conn::Http(client) => {
                let output = client.call("DescribeStreamSummary", &json!({"StreamName": name})).await?;
                let summary = &output["StreamDescriptionSummary"];
                let status = text(&summary["StreamStatus"], "StreamDescriptionSummary", "StreamStatus")?;
                let status = status.parse().map_err(|_| missing("StreamDescriptionSummary", "StreamStatus"))?;
                Ok((status, text(&summary["StreamARN"], "StreamDescriptionSummary", "StreamARN")?))
            }
        }
    }

    /// The stream's shards: `(shard id, starting hash key)`.
    pub async fn list_shards(&self, name: &str) -> Result<Vec<(String, String)>, ClientError> {
        match self {
            Conn::Native(client) => {
                let request = ListShardsRequest { stream_name: Some(name.to_owned()), ..Default::default() };
                let shards = client.list_shards(&request).await?.shards;
                Ok(shards.into_iter().map(|s| (s.shard_id, s.hash_key_range.starting_hash_key)).collect())
            }
            Conn::Http(client) => {
                let output = client.call("ListShards", &json!({"StreamName": name})).await?;
                let shards = output["Shards"].as_array().ok_or_else(|| missing("ListShardsOutput", "Shards"))?;
                shards
                    .iter()
                    .map(|shard| {
                        Ok((
                            text(&shard["ShardId"], "Shard", "ShardId")?,
                            text(&shard["HashKeyRange"]["StartingHashKey"], "HashKeyRange", "StartingHashKey")?,
                        ))
                    })
                    .collect()
            }
        }
    }

    /// Registers an enhanced fan-out consumer; its ARN.
    pub async fn register_consumer(&self, stream_arn: &str, name: &str) -> Result<String, ClientError> {
        match self {
            Conn::Native(client) => {
                let request = RegisterStreamConsumerRequest {
                    stream_arn: stream_arn.to_owned(),
                    consumer_name: name.to_owned(),
                    tags: Vec::new(),
                };
                Ok(client.register_stream_consumer(&request).await?.consumer.consumer_arn)
            }
            Conn::Http(client) => {
                let input = json!({"StreamARN": stream_arn, "ConsumerName": name});
                let output = client.call("RegisterStreamConsumer", &input).await?;
                text(&output["Consumer"]["ConsumerARN"], "Consumer", "ConsumerARN")
            }
        }
    }

    pub async fn consumer_status(&self, consumer_arn: &str) -> Result<ConsumerStatus, ClientError> {
        match self {
            Conn::Native(client) => {
                let request =
                    DescribeStreamConsumerRequest { consumer_arn: Some(consumer_arn.to_owned()), ..Default::default() };
                Ok(client.describe_stream_consumer(&request).await?.consumer_description.consumer_status)
            }
            Conn::Http(client) => {
                let output = client.call("DescribeStreamConsumer", &json!({"ConsumerARN": consumer_arn})).await?;
                let status =
                    text(&output["ConsumerDescription"]["ConsumerStatus"], "ConsumerDescription", "ConsumerStatus")?;
                status.parse().map_err(|_| missing("ConsumerDescription", "ConsumerStatus"))
            }
        }
    }

    /// Deletes a stream and its consumers.
    pub async fn delete_stream(&self, name: &str) -> Result<(), ClientError> {
        match self {
            Conn::Native(client) => {
                let request = DeleteStreamRequest {
                    stream_name: Some(name.to_owned()),
                    stream_arn: None,
                    enforce_consumer_deletion: Some(true),
                };
                client.delete_stream(&request).await
            }
            Conn::Http(client) => client
                .call("DeleteStream", &json!({"StreamName": name, "EnforceConsumerDeletion": true}))
                .await
                .map(drop),
        }
    }

    pub async fn put_records(&self, request: &PutRecordsRequest) -> Result<PutRecordsResponse, ClientError> {
        match self {
            Conn::Native(client) => client.put_records(request).await,
            Conn::Http(client) => {
                let records: Vec<Value> = request
                    .records
                    .iter()
                    .map(|entry| {
                        let mut record =
                            json!({"Data": http::base64(&entry.data), "PartitionKey": entry.partition_key});
                        if let Some(key) = &entry.explicit_hash_key {
                            record["ExplicitHashKey"] = json!(key);
                        }
                        record
                    })
                    .collect();
                let input = json!({"StreamName": request.stream_name, "Records": records});
                let output = client.call("PutRecords", &input).await?;
                let entries = output["Records"].as_array().ok_or_else(|| missing("PutRecordsOutput", "Records"))?;
                let records = entries
                    .iter()
                    .map(|entry| PutRecordsResultEntry {
                        sequence_number: entry["SequenceNumber"].as_str().map(str::to_owned),
                        shard_id: entry["ShardId"].as_str().map(str::to_owned),
                        error_code: entry["ErrorCode"]
                            .as_str()
                            .and_then(|name| http_error_code(name, entry["ErrorMessage"].as_str())),
                        error_message: entry["ErrorMessage"].as_str().map(str::to_owned),
                    })
                    .collect();
                Ok(PutRecordsResponse {
                    failed_record_count: output["FailedRecordCount"].as_i64().unwrap_or(0) as i32,
                    records,
                    encryption_type: None,
                })
            }
        }
    }

    pub async fn get_shard_iterator(
        &self,
        request: &GetShardIteratorRequest,
    ) -> Result<GetShardIteratorResponse, ClientError> {
        match self {
            Conn::Native(client) => client.get_shard_iterator(request).await,
            Conn::Http(client) => {
                let mut input = json!({
                    "StreamName": request.stream_name,
                    "ShardId": request.shard_id,
                    "ShardIteratorType": request.shard_iterator_type.as_str(),
                });
                if let Some(sequence) = &request.starting_sequence_number {
                    input["StartingSequenceNumber"] = json!(sequence);
                }
                let output = client.call("GetShardIterator", &input).await?;
                Ok(GetShardIteratorResponse {
                    shard_iterator: text(&output["ShardIterator"], "GetShardIteratorOutput", "ShardIterator")?,
                })
            }
        }
    }

    pub async fn get_records(&self, request: &GetRecordsRequest) -> Result<GetRecordsResponse, ClientError> {
        match self {
            Conn::Native(client) => client.get_records(request).await,
            Conn::Http(client) => {
                let mut input = json!({"ShardIterator": request.shard_iterator});
                if let Some(limit) = request.limit {
                    input["Limit"] = json!(limit);
                }
                let output = client.call("GetRecords", &input).await?;
                Ok(GetRecordsResponse {
                    records: http::records_from_json(&output["Records"])?,
                    next_shard_iterator: output["NextShardIterator"].as_str().map(str::to_owned),
                    millis_behind_latest: output["MillisBehindLatest"].as_i64(),
                    child_shards: None,
                })
            }
        }
    }

    /// SubscribeToShard. Give each subscription its own `Conn` (see
    /// `sluice_client::Client::subscribe_to_shard`); over HTTP it takes a connection of its own
    /// anyway.
    pub async fn subscribe_to_shard(
        &self,
        consumer_arn: &str,
        shard_id: &str,
        position: StartingPosition,
    ) -> Result<Subscription, ClientError> {
        match self {
            Conn::Native(client) => {
                Ok(Subscription::Native(client.subscribe_to_shard(consumer_arn, shard_id, position).await?))
            }
            Conn::Http(client) => {
                let mut start = json!({"Type": position.r#type.as_str()});
                if let Some(sequence) = &position.sequence_number {
                    start["SequenceNumber"] = json!(sequence);
                }
                let input = json!({"ConsumerARN": consumer_arn, "ShardId": shard_id, "StartingPosition": start});
                Ok(Subscription::Http(client.subscribe(&input).await?))
            }
        }
    }
}

/// A PutRecords entry's `ErrorCode` (`ProvisionedThroughputExceededException` or
/// `InternalFailure`) as an error code.
fn http_error_code(name: &str, message: Option<&str>) -> Option<sluice_client::ErrorCode> {
    http::service_error_code(name, message.unwrap_or_default())
}
