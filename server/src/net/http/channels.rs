//! The Kinesis channel operations over HTTP (`X-Amz-Target: Kinesis_20131202.<Operation>`,
//! AWS JSON 1.1): CreateChannel, DescribeChannel, ListChannels, UpdateChannel and
//! DeleteChannel. Their shapes are the delivery engine's (`sluice_firehose::channel`), so they
//! are decoded here with serde rather than by the Kinesis codec, validated as the model says
//! (ValidationException) and run by `ops::channels`.
//
// Unfinished: a cargo-fuzz target for these bodies; they are decoded by serde_json into the
// structs below and `CreateChannelInput`, whose validation the firehose crate's tests cover.

use crate::net::http::firehose::{decode, violation};
use crate::ops::channels;
use crate::ops::channels::Channels;
use crate::ops::firehose::FirehoseError;
use crate::ops::node::Node;
use serde::Deserialize;
use serde_json::Value;
use sluice_firehose::channel::CreateChannelInput;
use std::rc::Rc;

/// The channel operations of the Kinesis model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateChannel,
    DeleteChannel,
    DescribeChannel,
    ListChannels,
    UpdateChannel,
}

impl Operation {
    pub fn from_name(name: &str) -> Option<Operation> {
        Some(match name {
            "CreateChannel" => Operation::CreateChannel,
            "DeleteChannel" => Operation::DeleteChannel,
            "DescribeChannel" => Operation::DescribeChannel,
            "ListChannels" => Operation::ListChannels,
            "UpdateChannel" => Operation::UpdateChannel,
            _ => return None,
        })
    }

    /// The operation's name, as in its `X-Amz-Target`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateChannel => "CreateChannel",
            Operation::DeleteChannel => "DeleteChannel",
            Operation::DescribeChannel => "DescribeChannel",
            Operation::ListChannels => "ListChannels",
            Operation::UpdateChannel => "UpdateChannel",
        }
    }
}

/// `ChannelARN`: 1–2048 characters of `arn:aws.*:kinesis:.*:\d{12}:channel/\S+`.
fn check_channel_arn(arn: &str) -> Result<(), FirehoseError> {
    if arn.is_empty() || arn.len() > 2048 {
        return Err(violation(
            arn,
            "channelARN",
            "Member must have length less than or equal to 2048 and greater than or equal to 1",
        ));
    }
    let valid = arn.starts_with("arn:aws")
        && arn.split_once(":kinesis:").is_some_and(|(_, rest)| {
            rest.split_once(":channel/").is_some_and(|(head, name)| {
                let account = head.rsplit(':').next().unwrap_or("");
                account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && !name.is_empty()
                    && !name.chars().any(char::is_whitespace)
            })
        });
    if !valid {
        return Err(violation(
            arn,
            "channelARN",
            r"Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\d{12}:channel/\S+",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArnInput {
    #[serde(rename = "ChannelARN")]
    channel_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamFilter {
    #[serde(rename = "StreamARN")]
    stream_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    stream_filter: Option<Vec<StreamFilter>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FreshnessUpdate {
    data_freshness_in_seconds: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    #[serde(rename = "ChannelARN")]
    channel_arn: String,
    s3_destination_configuration: Option<FreshnessUpdate>,
    s3_tables_destination_configuration: Option<FreshnessUpdate>,
    logging_configuration: Option<Value>,
}

/// Answers one channel call whose body has been read (as a JSON document: see
/// [`super::firehose::json_answer`]).
pub async fn answer(
    node: &Rc<Node>,
    channels: &Channels,
    operation: Operation,
    body: &[u8],
) -> Result<Value, FirehoseError> {
    crate::ops::firehose::refuse_on_replicated(node, operation.name())?;
    match operation {
        Operation::CreateChannel => {
            let input: CreateChannelInput = decode(body)?;
            channels::create(channels, node, input).await
        }
        Operation::DescribeChannel => {
            let input: ArnInput = decode(body)?;
            check_channel_arn(&input.channel_arn)?;
            channels::describe(channels, &input.channel_arn)
        }
        Operation::ListChannels => {
            let input: ListInput = decode(body)?;
            if let Some(max) = input.max_results {
                if !(1..=10_000).contains(&max) {
                    return Err(violation(
                        &max.to_string(),
                        "maxResults",
                        "Member must have value less than or equal to 10000 and greater than or equal to 1",
                    ));
                }
            }
            if let Some(filter) = &input.stream_filter {
                if filter.is_empty() || filter.len() > 10_000 {
                    return Err(violation(
                        "[]",
                        "streamFilter",
                        "Member must have length less than or equal to 10000 and greater than or equal to 1",
                    ));
                }
            }
            let filter: Option<Vec<String>> =
                input.stream_filter.map(|filter| filter.into_iter().map(|f| f.stream_arn).collect());
            let max = input.max_results.map(|max| max as usize);
            channels::list(channels, filter.as_deref(), max, input.next_token.as_deref())
        }
        Operation::UpdateChannel => {
            let input: UpdateInput = decode(body)?;
            check_channel_arn(&input.channel_arn)?;
            channels::update(
                channels,
                &input.channel_arn,
                input.s3_destination_configuration.map(|u| u.data_freshness_in_seconds),
                input.s3_tables_destination_configuration.map(|u| u.data_freshness_in_seconds),
                input.logging_configuration,
            )
            .await
        }
        Operation::DeleteChannel => {
            let input: ArnInput = decode(body)?;
            check_channel_arn(&input.channel_arn)?;
            channels::delete(channels, &input.channel_arn)?;
            Ok(serde_json::json!({}))
        }
    }
}
