//! `sluice`'s Kinesis queue commands: the twelve queue operations of the model, with the AWS
//! CLI's command and parameter names (`aws kinesis create-queue --queue-name …
//! --stream-configuration-list '[…]'`). Structured parameters take the AWS JSON form (the
//! member names of the model, as `aws` accepts with JSON); `--tags` also takes `Key=Value,…`.
//!
//! These go over the AWS JSON protocol to the daemon's HTTP port (`--http-endpoint`), not the
//! native protocol: the native schema has no queue tables yet (`protocol/src/native`,
//! `EncodeError::NotNative`).

use clap::Args;
use serde::de::DeserializeOwned;
use sluice_client::*;

use super::args::{parse_tags, ParamError};

/// A JSON parameter as the model's type (its AWS member names), or the AWS CLI's error.
fn parse_json<T: DeserializeOwned>(parameter: &'static str, value: &str) -> Result<T, ParamError> {
    serde_json::from_str(value.trim())
        .map_err(|error| ParamError { parameter, message: format!("Invalid JSON: {error}") })
}

#[derive(Debug, Args)]
pub struct CreateQueueArgs {
    #[arg(long)]
    pub queue_name: String,
    /// JSON: `[{"StreamARN": "arn:…", "StartingPosition": {"Type": "TRIM_HORIZON"}}]` (exactly
    /// one stream; Type LATEST, TRIM_HORIZON or AT_TIMESTAMP with "Timestamp" in epoch
    /// seconds).
    #[arg(long)]
    pub stream_configuration_list: String,
    /// JSON: `{"VisibilityTimeoutSeconds": 30, "DeadLetterConfiguration": {"TargetType":
    /// "BUILT_IN", "MaxReceiveCount": 6}}`.
    #[arg(long)]
    pub queue_attributes: Option<String>,
    /// `Key=Value,…` or a JSON object.
    #[arg(long)]
    pub tags: Option<String>,
}

/// The queue a command acts on.
#[derive(Debug, Args)]
pub struct QueueArnArgs {
    #[arg(long)]
    pub queue_arn: String,
}

#[derive(Debug, Args)]
pub struct ListQueuesArgs {
    /// JSON: `[{"StreamARN": "arn:…"}]`.
    #[arg(long)]
    pub stream_filter: Option<String>,
    #[arg(long)]
    pub max_results: Option<i32>,
    #[arg(long)]
    pub next_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateQueueArgs {
    #[arg(long)]
    pub queue_arn: String,
    /// JSON, as for create-queue.
    #[arg(long)]
    pub queue_attributes: String,
}

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    #[arg(long)]
    pub queue_arn: String,
    /// Records at most (1..10; 10 by default).
    #[arg(long)]
    pub limit: Option<i32>,
    /// Long polling: seconds to wait for a record (1..20; 9 by default).
    #[arg(long)]
    pub wait_time_seconds: Option<i32>,
    /// This receive's visibility timeout instead of the queue's.
    #[arg(long)]
    pub visibility_timeout_seconds: Option<i32>,
}

#[derive(Debug, Args)]
pub struct EntriesArgs {
    #[arg(long)]
    pub queue_arn: String,
    /// JSON: `[{"ReceiptHandle": "…"}]` (with `"VisibilityTimeoutSeconds": n` for the
    /// visibility commands); 1 to 10 entries.
    #[arg(long)]
    pub entries: String,
}

pub fn create_queue(args: &CreateQueueArgs) -> Result<Request, ParamError> {
    Ok(CreateQueueInput {
        queue_name: args.queue_name.clone(),
        stream_configuration_list: parse_json("--stream-configuration-list", &args.stream_configuration_list)?,
        queue_attributes: args.queue_attributes.as_deref().map(|v| parse_json("--queue-attributes", v)).transpose()?,
        tags: args.tags.as_deref().map(|tags| parse_tags("--tags", tags)).transpose()?,
    }
    .into())
}

pub fn describe_queue(args: &QueueArnArgs) -> Request {
    DescribeQueueInput { queue_arn: args.queue_arn.clone() }.into()
}

pub fn delete_queue(args: &QueueArnArgs) -> Request {
    DeleteQueueInput { queue_arn: args.queue_arn.clone() }.into()
}

pub fn list_queues(args: &ListQueuesArgs) -> Result<Request, ParamError> {
    Ok(ListQueuesInput {
        stream_filter: args.stream_filter.as_deref().map(|v| parse_json("--stream-filter", v)).transpose()?,
        max_results: args.max_results,
        next_token: args.next_token.clone(),
    }
    .into())
}

pub fn update_queue(args: &UpdateQueueArgs) -> Result<Request, ParamError> {
    Ok(UpdateQueueInput {
        queue_arn: args.queue_arn.clone(),
        queue_attributes: parse_json("--queue-attributes", &args.queue_attributes)?,
    }
    .into())
}

pub fn receive(args: &ReceiveArgs, dead_letter: bool) -> Request {
    let queue_arn = args.queue_arn.clone();
    let (limit, wait_time_seconds, visibility_timeout_seconds) =
        (args.limit, args.wait_time_seconds, args.visibility_timeout_seconds);
    if dead_letter {
        ReceiveDeadLetterQueueRecordsInput { queue_arn, limit, wait_time_seconds, visibility_timeout_seconds }.into()
    } else {
        ReceiveQueueRecordsInput { queue_arn, limit, wait_time_seconds, visibility_timeout_seconds }.into()
    }
}

/// Which entry operation a command is.
#[derive(Debug, Clone, Copy)]
pub enum EntryOperation {
    Acknowledge,
    AcknowledgeDeadLetter,
    Restore,
    Visibility,
    DeadLetterVisibility,
}

pub fn entries(args: &EntriesArgs, operation: EntryOperation) -> Result<Request, ParamError> {
    let queue_arn = args.queue_arn.clone();
    Ok(match operation {
        EntryOperation::Acknowledge => {
            AcknowledgeQueueRecordsInput { queue_arn, entries: parse_json("--entries", &args.entries)? }.into()
        }
        EntryOperation::AcknowledgeDeadLetter => {
            AcknowledgeDeadLetterQueueRecordsInput { queue_arn, entries: parse_json("--entries", &args.entries)? }
                .into()
        }
        EntryOperation::Restore => {
            RestoreDeadLetterQueueRecordsInput { queue_arn, entries: parse_json("--entries", &args.entries)? }.into()
        }
        EntryOperation::Visibility => {
            UpdateQueueRecordsVisibilityInput { queue_arn, entries: parse_json("--entries", &args.entries)? }.into()
        }
        EntryOperation::DeadLetterVisibility => {
            UpdateDeadLetterQueueRecordsVisibilityInput { queue_arn, entries: parse_json("--entries", &args.entries)? }
                .into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parameters_take_the_model_s_member_names() {
        let args = CreateQueueArgs {
            queue_name: "work".into(),
            stream_configuration_list:
                r#"[{"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "StartingPosition": {"Type": "TRIM_HORIZON"}}]"#
                    .into(),
            queue_attributes: Some(
                r#"{"VisibilityTimeoutSeconds": 5, "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 3}}"#
                    .into(),
            ),
            tags: Some("team=orders".into()),
        };
        let Request::CreateQueue(input) = create_queue(&args).unwrap() else { panic!("not a CreateQueue") };
        assert_eq!(input.stream_configuration_list.len(), 1);
        let position = input.stream_configuration_list[0].starting_position.as_ref().unwrap();
        assert_eq!(position.r#type, QueueStartingPositionType::TrimHorizon);
        let attributes = input.queue_attributes.unwrap();
        assert_eq!(attributes.visibility_timeout_seconds, Some(5));
        assert_eq!(attributes.dead_letter_configuration.unwrap().max_receive_count, Some(3));
        assert_eq!(input.tags.unwrap()["team"], "orders");
        let entries = EntriesArgs {
            queue_arn: "q".into(),
            entries: r#"[{"ReceiptHandle": "h", "VisibilityTimeoutSeconds": 0}]"#.into(),
        };
        let Request::UpdateQueueRecordsVisibility(input) = entries_request(&entries) else { panic!() };
        assert_eq!(input.entries[0].visibility_timeout_seconds, 0);
        let bad = EntriesArgs { queue_arn: "q".into(), entries: "[{".into() };
        let error = super::entries(&bad, EntryOperation::Acknowledge).unwrap_err();
        assert_eq!(error.parameter, "--entries");
    }

    fn entries_request(args: &EntriesArgs) -> Request {
        super::entries(args, EntryOperation::Visibility).unwrap()
    }
}
