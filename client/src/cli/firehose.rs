//! `sluice firehose …`: the Firehose commands of the AWS CLI (`aws firehose
//! create-delivery-stream --delivery-stream-name … --extended-s3-destination-configuration
//! '{…}'`), with its command and parameter names. Structured parameters take the AWS JSON form
//! (botocore's `firehose/2015-08-04` member names, inline or `file://PATH`); `--tags` also takes
//! the AWS CLI's shorthand (`Key=team,Value=web Key=env,Value=prod`), and
//! `--delivery-stream-encryption-configuration-input` and `--record` theirs (`KeyType=…`,
//! `Data=…`). Blobs (`Data`) are base64, as AWS CLI v2 takes them by default.
//!
//! The request body is the JSON AWS JSON 1.1 sends, built here member by member from what was
//! given. It goes over the native protocol (`--endpoint`, like every Kinesis command; record
//! data decoded to raw bytes, the native handshake when credentials are found) unless `--http`
//! is given or only `--http-endpoint` is: then over the daemon's HTTP port (`X-Amz-Target:
//! Firehose_20150804.<Operation>`), signed with SigV4 for the `firehose` service when
//! credentials are found. Either way the answer is printed as the AWS JSON the HTTP API sends.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use sluice_model::{FirehoseRequest, FirehoseResponse, FirehoseTag, PutRecordBatchEntry};

use super::args::{Call, ParamError};

/// `sluice firehose [--http] COMMAND …`.
#[derive(Debug, Args)]
pub struct FirehoseArgs {
    /// Call the HTTP API (--http-endpoint, AWS JSON 1.1) instead of the native protocol.
    #[arg(long)]
    pub http: bool,
    #[command(subcommand)]
    pub command: FirehoseCommand,
}

#[derive(Debug, Subcommand)]
pub enum FirehoseCommand {
    /// Create a delivery stream.
    CreateDeliveryStream(CreateDeliveryStreamArgs),
    /// Describe a delivery stream: its configuration, status and encryption.
    DescribeDeliveryStream(DescribeDeliveryStreamArgs),
    /// List delivery streams.
    ListDeliveryStreams(ListDeliveryStreamsArgs),
    /// Delete a delivery stream.
    DeleteDeliveryStream(DeleteDeliveryStreamArgs),
    /// Put one record into a delivery stream.
    PutRecord(PutRecordArgs),
    /// Put up to 500 records into a delivery stream.
    PutRecordBatch(PutRecordBatchArgs),
    /// Change a delivery stream's destination.
    UpdateDestination(UpdateDestinationArgs),
    /// Add or update tags of a delivery stream.
    TagDeliveryStream(TagDeliveryStreamArgs),
    /// Remove tags from a delivery stream.
    UntagDeliveryStream(UntagDeliveryStreamArgs),
    /// List a delivery stream's tags.
    ListTagsForDeliveryStream(ListTagsForDeliveryStreamArgs),
    /// Encrypt a delivery stream's records at rest from now on.
    StartDeliveryStreamEncryption(StartDeliveryStreamEncryptionArgs),
    /// Store a delivery stream's new records in plaintext again.
    StopDeliveryStreamEncryption(DeliveryStreamNameArgs),
}

#[derive(Debug, Args)]
pub struct DeliveryStreamNameArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
}

#[derive(Debug, Args)]
pub struct CreateDeliveryStreamArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    /// `DirectPut` (default) or `KinesisStreamAsSource`.
    #[arg(long)]
    pub delivery_stream_type: Option<String>,
    /// JSON: `{"ThroughputHintInMBs": 1}`.
    #[arg(long)]
    pub direct_put_source_configuration: Option<String>,
    /// JSON: `{"KinesisStreamARN": "arn:…", "RoleARN": "arn:…"}`.
    #[arg(long)]
    pub kinesis_stream_source_configuration: Option<String>,
    /// JSON or `KeyType=…,KeyARN=…`.
    #[arg(long)]
    pub delivery_stream_encryption_configuration_input: Option<String>,
    /// JSON (the deprecated plain S3 destination).
    #[arg(long)]
    pub s3_destination_configuration: Option<String>,
    /// JSON: `{"RoleARN": "arn:…", "BucketARN": "arn:aws:s3:::NAME", "Prefix": "…", …}`.
    #[arg(long)]
    pub extended_s3_destination_configuration: Option<String>,
    /// JSON: `{"EndpointConfiguration": {"Url": "…"}, "S3Configuration": {…}, …}`.
    #[arg(long)]
    pub http_endpoint_destination_configuration: Option<String>,
    /// `Key=k,Value=v …` or a JSON list `[{"Key": "k", "Value": "v"}]`.
    #[arg(long, num_args = 1..)]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct DescribeDeliveryStreamArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    #[arg(long)]
    pub limit: Option<i64>,
    #[arg(long)]
    pub exclusive_start_destination_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListDeliveryStreamsArgs {
    #[arg(long)]
    pub limit: Option<i64>,
    #[arg(long)]
    pub delivery_stream_type: Option<String>,
    #[arg(long)]
    pub exclusive_start_delivery_stream_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteDeliveryStreamArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    #[arg(long, conflicts_with = "no_allow_force_delete")]
    pub allow_force_delete: bool,
    #[arg(long)]
    pub no_allow_force_delete: bool,
}

#[derive(Debug, Args)]
pub struct PutRecordArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    /// `Data=<base64>` or JSON `{"Data": "<base64>"}`.
    #[arg(long)]
    pub record: String,
}

#[derive(Debug, Args)]
pub struct PutRecordBatchArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    /// JSON: `[{"Data": "<base64>"}, …]`, inline or `file://PATH`.
    #[arg(long)]
    pub records: String,
}

#[derive(Debug, Args)]
pub struct UpdateDestinationArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    #[arg(long)]
    pub current_delivery_stream_version_id: String,
    #[arg(long)]
    pub destination_id: String,
    /// JSON.
    #[arg(long)]
    pub s3_destination_update: Option<String>,
    /// JSON.
    #[arg(long)]
    pub extended_s3_destination_update: Option<String>,
    /// JSON.
    #[arg(long)]
    pub http_endpoint_destination_update: Option<String>,
}

#[derive(Debug, Args)]
pub struct TagDeliveryStreamArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    /// `Key=k,Value=v …` or a JSON list `[{"Key": "k", "Value": "v"}]`.
    #[arg(long, num_args = 1.., required = true)]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UntagDeliveryStreamArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    /// Keys, space-separated, or a JSON list.
    #[arg(long, num_args = 1.., required = true)]
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListTagsForDeliveryStreamArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    #[arg(long)]
    pub exclusive_start_tag_key: Option<String>,
    #[arg(long)]
    pub limit: Option<i64>,
}

#[derive(Debug, Args)]
pub struct StartDeliveryStreamEncryptionArgs {
    #[arg(long)]
    pub delivery_stream_name: String,
    /// JSON or `KeyType=AWS_OWNED_CMK` / `KeyType=CUSTOMER_MANAGED_CMK,KeyARN=arn:aws:kms:…`.
    #[arg(long)]
    pub delivery_stream_encryption_configuration_input: Option<String>,
}

fn error(parameter: &'static str, message: impl ToString) -> ParamError {
    ParamError { parameter, message: message.to_string() }
}

/// A parameter's text: inline, or the file `file://PATH` names, as the AWS CLI reads it.
fn text(parameter: &'static str, value: &str) -> Result<String, ParamError> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|problem| error(parameter, format!("Unable to load paramfile {value}: {problem}"))),
        None => Ok(value.to_owned()),
    }
}

/// A JSON parameter (inline or `file://PATH`).
fn json_param(parameter: &'static str, value: &str) -> Result<Value, ParamError> {
    serde_json::from_str(text(parameter, value)?.trim())
        .map_err(|problem| error(parameter, format!("Invalid JSON: {problem}")))
}

/// A JSON structure parameter, or the AWS CLI's shorthand `Member=value,Member=value` (values
/// are strings; a value may contain `=`, not `,`).
fn structure_param(parameter: &'static str, value: &str) -> Result<Value, ParamError> {
    let value = text(parameter, value)?;
    let value = value.trim();
    if value.starts_with('{') {
        let structure = json_param(parameter, value)?;
        return match structure {
            Value::Object(_) => Ok(structure),
            _ => Err(error(parameter, "expected a JSON object")),
        };
    }
    let mut members = Map::new();
    for pair in value.split(',') {
        match pair.split_once('=') {
            Some((key, member)) if !key.trim().is_empty() => {
                members.insert(key.trim().to_owned(), Value::String(member.trim().to_owned()));
            }
            _ => return Err(error(parameter, format!("Expected Member=value, found {pair:?}"))),
        }
    }
    Ok(Value::Object(members))
}

/// `--tags`: a JSON list of `{"Key", "Value"}`, or shorthand structures, one per value.
fn tags_param(values: &[String]) -> Result<Value, ParamError> {
    const PARAMETER: &str = "--tags";
    if let [only] = values {
        if only.trim_start().starts_with('[') || only.starts_with("file://") {
            return match json_param(PARAMETER, only)? {
                list @ Value::Array(_) => Ok(list),
                _ => Err(error(PARAMETER, "expected a JSON list of {\"Key\": …, \"Value\": …}")),
            };
        }
    }
    values
        .iter()
        .map(|value| {
            let tag = structure_param(PARAMETER, value)?;
            if tag.get("Key").is_none()
                || tag.as_object().is_some_and(|tag| tag.keys().any(|k| k != "Key" && k != "Value"))
            {
                return Err(error(PARAMETER, format!("Expected Key=…[,Value=…], found {value:?}")));
            }
            Ok(tag)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// A record's `Data` must be base64 (checked here, as the AWS CLI checks blobs before sending).
fn check_data(parameter: &'static str, record: &Value, at: &str) -> Result<(), ParamError> {
    match record.get("Data") {
        Some(Value::String(data)) => BASE64
            .decode(data)
            .map(|_| ())
            .map_err(|problem| error(parameter, format!("{at}Data is not valid base64: {problem}"))),
        _ => Err(error(parameter, format!("{at}Data (base64) is required"))),
    }
}

/// Adds `member` to `body` when the parameter was given, parsed by `parse`.
fn put_if(
    body: &mut Map<String, Value>,
    member: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<Value, ParamError>,
) -> Result<(), ParamError> {
    if let Some(value) = value {
        body.insert(member.to_owned(), parse(value)?);
    }
    Ok(())
}

impl FirehoseCommand {
    /// The operation and the JSON body this command sends (`http`: `--http` was given).
    pub fn to_call(&self, http: bool) -> Result<Call, ParamError> {
        let mut body = Map::new();
        let operation = match self {
            Self::CreateDeliveryStream(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                if let Some(kind) = &args.delivery_stream_type {
                    body.insert("DeliveryStreamType".into(), json!(kind));
                }
                for (member, parameter, value) in [
                    (
                        "DirectPutSourceConfiguration",
                        "--direct-put-source-configuration",
                        &args.direct_put_source_configuration,
                    ),
                    (
                        "KinesisStreamSourceConfiguration",
                        "--kinesis-stream-source-configuration",
                        &args.kinesis_stream_source_configuration,
                    ),
                    (
                        "S3DestinationConfiguration",
                        "--s3-destination-configuration",
                        &args.s3_destination_configuration,
                    ),
                    (
                        "ExtendedS3DestinationConfiguration",
                        "--extended-s3-destination-configuration",
                        &args.extended_s3_destination_configuration,
                    ),
                    (
                        "HttpEndpointDestinationConfiguration",
                        "--http-endpoint-destination-configuration",
                        &args.http_endpoint_destination_configuration,
                    ),
                ] {
                    put_if(&mut body, member, value.as_deref(), |value| json_param(parameter, value))?;
                }
                put_if(
                    &mut body,
                    "DeliveryStreamEncryptionConfigurationInput",
                    args.delivery_stream_encryption_configuration_input.as_deref(),
                    |value| structure_param("--delivery-stream-encryption-configuration-input", value),
                )?;
                if let Some(tags) = &args.tags {
                    body.insert("Tags".into(), tags_param(tags)?);
                }
                "CreateDeliveryStream"
            }
            Self::DescribeDeliveryStream(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                if let Some(limit) = args.limit {
                    body.insert("Limit".into(), json!(limit));
                }
                if let Some(id) = &args.exclusive_start_destination_id {
                    body.insert("ExclusiveStartDestinationId".into(), json!(id));
                }
                "DescribeDeliveryStream"
            }
            Self::ListDeliveryStreams(args) => {
                if let Some(limit) = args.limit {
                    body.insert("Limit".into(), json!(limit));
                }
                if let Some(kind) = &args.delivery_stream_type {
                    body.insert("DeliveryStreamType".into(), json!(kind));
                }
                if let Some(name) = &args.exclusive_start_delivery_stream_name {
                    body.insert("ExclusiveStartDeliveryStreamName".into(), json!(name));
                }
                "ListDeliveryStreams"
            }
            Self::DeleteDeliveryStream(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                if args.allow_force_delete || args.no_allow_force_delete {
                    body.insert("AllowForceDelete".into(), json!(args.allow_force_delete));
                }
                "DeleteDeliveryStream"
            }
            Self::PutRecord(args) => {
                const PARAMETER: &str = "--record";
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                let record = structure_param(PARAMETER, &args.record)?;
                check_data(PARAMETER, &record, "")?;
                body.insert("Record".into(), record);
                "PutRecord"
            }
            Self::PutRecordBatch(args) => {
                const PARAMETER: &str = "--records";
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                let records = json_param(PARAMETER, &args.records)?;
                let Value::Array(list) = &records else {
                    return Err(error(PARAMETER, "expected a JSON list of {\"Data\": \"<base64>\"}"));
                };
                for (index, record) in list.iter().enumerate() {
                    check_data(PARAMETER, record, &format!("Records[{index}]."))?;
                }
                body.insert("Records".into(), records);
                "PutRecordBatch"
            }
            Self::UpdateDestination(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                body.insert("CurrentDeliveryStreamVersionId".into(), json!(args.current_delivery_stream_version_id));
                body.insert("DestinationId".into(), json!(args.destination_id));
                for (member, parameter, value) in [
                    ("S3DestinationUpdate", "--s3-destination-update", &args.s3_destination_update),
                    (
                        "ExtendedS3DestinationUpdate",
                        "--extended-s3-destination-update",
                        &args.extended_s3_destination_update,
                    ),
                    (
                        "HttpEndpointDestinationUpdate",
                        "--http-endpoint-destination-update",
                        &args.http_endpoint_destination_update,
                    ),
                ] {
                    put_if(&mut body, member, value.as_deref(), |value| json_param(parameter, value))?;
                }
                "UpdateDestination"
            }
            Self::TagDeliveryStream(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                body.insert("Tags".into(), tags_param(&args.tags)?);
                "TagDeliveryStream"
            }
            Self::UntagDeliveryStream(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                let keys = match args.tag_keys.as_slice() {
                    [only] if only.trim_start().starts_with('[') => json_param("--tag-keys", only)?,
                    keys => json!(keys),
                };
                body.insert("TagKeys".into(), keys);
                "UntagDeliveryStream"
            }
            Self::ListTagsForDeliveryStream(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                if let Some(key) = &args.exclusive_start_tag_key {
                    body.insert("ExclusiveStartTagKey".into(), json!(key));
                }
                if let Some(limit) = args.limit {
                    body.insert("Limit".into(), json!(limit));
                }
                "ListTagsForDeliveryStream"
            }
            Self::StartDeliveryStreamEncryption(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                put_if(
                    &mut body,
                    "DeliveryStreamEncryptionConfigurationInput",
                    args.delivery_stream_encryption_configuration_input.as_deref(),
                    |value| structure_param("--delivery-stream-encryption-configuration-input", value),
                )?;
                "StartDeliveryStreamEncryption"
            }
            Self::StopDeliveryStreamEncryption(args) => {
                body.insert("DeliveryStreamName".into(), json!(args.delivery_stream_name));
                "StopDeliveryStreamEncryption"
            }
        };
        Ok(Call::Firehose { operation, body: Value::Object(body), http })
    }
}

/// The exception name and message of a Firehose error answer (`{"__type": "…", "message": …}`,
/// the type possibly prefixed `namespace#`); anything else is reported as it came.
pub fn error_of(status: u16, body: &[u8]) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field =
        |name: &str| parsed.as_ref().and_then(|value| value.get(name)).and_then(Value::as_str).map(str::to_owned);
    match field("__type") {
        Some(kind) => {
            let kind = kind.rsplit_once('#').map_or(kind.as_str(), |(_, name)| name).to_owned();
            (kind, field("message").or_else(|| field("Message")).unwrap_or_default())
        }
        None => (format!("HTTP {status}"), String::from_utf8_lossy(body).into_owned()),
    }
}

/// The native request of a command's AWS JSON body (what [`FirehoseCommand::to_call`] built):
/// the same members, with record data decoded from base64 to the raw bytes the native
/// protocol carries. CreateDeliveryStream and UpdateDestination travel as that JSON body.
pub fn native_request(operation: &str, body: &Value) -> Result<FirehoseRequest, ParamError> {
    let text = |member: &str| body.get(member).and_then(Value::as_str).map(str::to_owned);
    let name = || text("DeliveryStreamName").unwrap_or_default();
    let number = |member: &str| body.get(member).and_then(Value::as_i64);
    let data = |parameter: &'static str, record: &Value| -> Result<Bytes, ParamError> {
        let encoded = record.get("Data").and_then(Value::as_str).unwrap_or_default();
        BASE64.decode(encoded).map(Bytes::from).map_err(|problem| error(parameter, format!("Data: {problem}")))
    };
    let json_body = || Bytes::from(serde_json::to_vec(body).expect("JSON values serialize"));
    Ok(match operation {
        "CreateDeliveryStream" => FirehoseRequest::CreateDeliveryStream { input_json: json_body() },
        "UpdateDestination" => FirehoseRequest::UpdateDestination { input_json: json_body() },
        "DeleteDeliveryStream" => FirehoseRequest::DeleteDeliveryStream {
            delivery_stream_name: name(),
            allow_force_delete: body.get("AllowForceDelete").and_then(Value::as_bool),
        },
        "DescribeDeliveryStream" => FirehoseRequest::DescribeDeliveryStream {
            delivery_stream_name: name(),
            limit: number("Limit"),
            exclusive_start_destination_id: text("ExclusiveStartDestinationId"),
        },
        "ListDeliveryStreams" => FirehoseRequest::ListDeliveryStreams {
            limit: number("Limit"),
            delivery_stream_type: text("DeliveryStreamType"),
            exclusive_start_delivery_stream_name: text("ExclusiveStartDeliveryStreamName"),
        },
        "PutRecord" => FirehoseRequest::PutRecord {
            delivery_stream_name: name(),
            data: data("--record", body.get("Record").unwrap_or(&Value::Null))?,
        },
        "PutRecordBatch" => FirehoseRequest::PutRecordBatch {
            delivery_stream_name: name(),
            records: body
                .get("Records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|record| data("--records", record))
                .collect::<Result<_, _>>()?,
        },
        "TagDeliveryStream" => FirehoseRequest::TagDeliveryStream {
            delivery_stream_name: name(),
            tags: body
                .get("Tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|tag| FirehoseTag {
                    key: tag.get("Key").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    value: tag.get("Value").and_then(Value::as_str).map(str::to_owned),
                })
                .collect(),
        },
        "UntagDeliveryStream" => FirehoseRequest::UntagDeliveryStream {
            delivery_stream_name: name(),
            tag_keys: body
                .get("TagKeys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|key| key.as_str().map(str::to_owned).ok_or_else(|| error("--tag-keys", "expected strings")))
                .collect::<Result<_, _>>()?,
        },
        "ListTagsForDeliveryStream" => FirehoseRequest::ListTagsForDeliveryStream {
            delivery_stream_name: name(),
            exclusive_start_tag_key: text("ExclusiveStartTagKey"),
            limit: number("Limit"),
        },
        "StartDeliveryStreamEncryption" => {
            let configuration = body.get("DeliveryStreamEncryptionConfigurationInput");
            let member = |member: &str| {
                configuration.and_then(|configuration| configuration.get(member)).and_then(Value::as_str)
            };
            FirehoseRequest::StartDeliveryStreamEncryption {
                delivery_stream_name: name(),
                key_type: member("KeyType").map(str::to_owned),
                key_arn: member("KeyARN").map(str::to_owned),
            }
        }
        "StopDeliveryStreamEncryption" => {
            FirehoseRequest::StopDeliveryStreamEncryption { delivery_stream_name: name() }
        }
        other => unreachable!("{other} is not a Firehose command"),
    })
}

/// A native answer as the AWS JSON the HTTP API answers, so both print the same.
pub fn answer_json(response: &FirehoseResponse) -> Value {
    match response {
        FirehoseResponse::CreateDeliveryStream { delivery_stream_arn } => {
            json!({ "DeliveryStreamARN": delivery_stream_arn })
        }
        FirehoseResponse::DescribeDeliveryStream { description_json } => {
            let description: Value = serde_json::from_slice(description_json)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(description_json).into_owned()));
            json!({ "DeliveryStreamDescription": description })
        }
        FirehoseResponse::ListDeliveryStreams { delivery_stream_names, has_more_delivery_streams } => {
            json!({ "DeliveryStreamNames": delivery_stream_names, "HasMoreDeliveryStreams": has_more_delivery_streams })
        }
        FirehoseResponse::PutRecord { record_id, encrypted } => {
            let mut answer = json!({ "RecordId": record_id });
            if let Some(encrypted) = encrypted {
                answer["Encrypted"] = json!(encrypted);
            }
            answer
        }
        FirehoseResponse::PutRecordBatch { failed_put_count, encrypted, request_responses } => {
            let responses: Vec<Value> = request_responses
                .iter()
                .map(|entry| match entry {
                    PutRecordBatchEntry::Stored { record_id } => json!({ "RecordId": record_id }),
                    PutRecordBatchEntry::Failed { error_code, error_message } => {
                        json!({ "ErrorCode": error_code, "ErrorMessage": error_message })
                    }
                })
                .collect();
            let mut answer = json!({ "FailedPutCount": failed_put_count, "RequestResponses": responses });
            if let Some(encrypted) = encrypted {
                answer["Encrypted"] = json!(encrypted);
            }
            answer
        }
        FirehoseResponse::ListTagsForDeliveryStream { tags, has_more_tags } => {
            let tags: Vec<Value> = tags
                .iter()
                .map(|tag| match &tag.value {
                    Some(value) => json!({ "Key": tag.key, "Value": value }),
                    None => json!({ "Key": tag.key }),
                })
                .collect();
            json!({ "Tags": tags, "HasMoreTags": has_more_tags })
        }
        FirehoseResponse::DeleteDeliveryStream
        | FirehoseResponse::UpdateDestination
        | FirehoseResponse::TagDeliveryStream
        | FirehoseResponse::UntagDeliveryStream
        | FirehoseResponse::StartDeliveryStreamEncryption
        | FirehoseResponse::StopDeliveryStreamEncryption => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::Cli;
    use super::*;
    use clap::Parser;

    fn call(args: &[&str]) -> Result<(&'static str, Value), ParamError> {
        let cli = Cli::try_parse_from(std::iter::once("sluice").chain(args.iter().copied())).unwrap();
        match cli.command.to_call()? {
            Call::Firehose { operation, body, http: _ } => Ok((operation, body)),
            other => panic!("not a firehose call: {other:?}"),
        }
    }

    #[test]
    fn native_requests_carry_raw_record_data_and_the_json_of_configurations() {
        let (operation, body) = call(&[
            "firehose",
            "put-record-batch",
            "--delivery-stream-name",
            "d",
            "--records",
            r#"[{"Data": "AAEC/w=="}, {"Data": "aGk="}]"#,
        ])
        .unwrap();
        assert_eq!(
            native_request(operation, &body).unwrap(),
            FirehoseRequest::PutRecordBatch {
                delivery_stream_name: "d".into(),
                records: vec![Bytes::from_static(b"\x00\x01\x02\xff"), Bytes::from_static(b"hi")],
            }
        );
        let (operation, body) = call(&[
            "firehose",
            "start-delivery-stream-encryption",
            "--delivery-stream-name",
            "d",
            "--delivery-stream-encryption-configuration-input",
            "KeyType=AWS_OWNED_CMK",
        ])
        .unwrap();
        assert_eq!(
            native_request(operation, &body).unwrap(),
            FirehoseRequest::StartDeliveryStreamEncryption {
                delivery_stream_name: "d".into(),
                key_type: Some("AWS_OWNED_CMK".into()),
                key_arn: None,
            }
        );
        let (operation, body) = call(&[
            "firehose",
            "create-delivery-stream",
            "--delivery-stream-name",
            "d",
            "--extended-s3-destination-configuration",
            r#"{"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}"#,
        ])
        .unwrap();
        let FirehoseRequest::CreateDeliveryStream { input_json } = native_request(operation, &body).unwrap() else {
            panic!("not a create")
        };
        assert_eq!(serde_json::from_slice::<Value>(&input_json).unwrap(), body);
        let cli = Cli::try_parse_from(["sluice", "firehose", "--http", "list-delivery-streams"]).unwrap();
        assert!(matches!(cli.command.to_call().unwrap(), Call::Firehose { http: true, .. }));
    }

    #[test]
    fn native_answers_print_as_the_http_apis() {
        let batch = FirehoseResponse::PutRecordBatch {
            failed_put_count: 1,
            encrypted: Some(false),
            request_responses: vec![
                PutRecordBatchEntry::Stored { record_id: "1".into() },
                PutRecordBatchEntry::Failed {
                    error_code: "ServiceUnavailableException".into(),
                    error_message: "Slow down.".into(),
                },
            ],
        };
        assert_eq!(
            answer_json(&batch),
            json!({"FailedPutCount": 1, "Encrypted": false, "RequestResponses": [{"RecordId": "1"},
                   {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}]})
        );
        assert_eq!(answer_json(&FirehoseResponse::DeleteDeliveryStream), json!({}));
        let tags = FirehoseResponse::ListTagsForDeliveryStream {
            tags: vec![FirehoseTag { key: "k".into(), value: None }],
            has_more_tags: false,
        };
        assert_eq!(answer_json(&tags), json!({"Tags": [{"Key": "k"}], "HasMoreTags": false}));
    }

    #[test]
    fn commands_send_botocores_members() {
        let (operation, body) = call(&[
            "firehose",
            "create-delivery-stream",
            "--delivery-stream-name",
            "d",
            "--extended-s3-destination-configuration",
            r#"{"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"}"#,
            "--tags",
            "Key=team,Value=web",
            "Key=env",
        ])
        .unwrap();
        assert_eq!(operation, "CreateDeliveryStream");
        assert_eq!(
            body,
            json!({"DeliveryStreamName": "d", "ExtendedS3DestinationConfiguration": {"RoleARN": "r", "BucketARN": "arn:aws:s3:::b"},
                   "Tags": [{"Key": "team", "Value": "web"}, {"Key": "env"}]})
        );
        let (_, body) = call(&[
            "firehose",
            "tag-delivery-stream",
            "--delivery-stream-name",
            "d",
            "--tags",
            r#"[{"Key": "a", "Value": "b"}]"#,
        ])
        .unwrap();
        assert_eq!(body["Tags"], json!([{"Key": "a", "Value": "b"}]));
        let (operation, body) =
            call(&["firehose", "untag-delivery-stream", "--delivery-stream-name", "d", "--tag-keys", "a", "b"])
                .unwrap();
        assert_eq!((operation, body["TagKeys"].clone()), ("UntagDeliveryStream", json!(["a", "b"])));
        let (_, body) = call(&[
            "firehose",
            "start-delivery-stream-encryption",
            "--delivery-stream-name",
            "d",
            "--delivery-stream-encryption-configuration-input",
            "KeyType=CUSTOMER_MANAGED_CMK,KeyARN=arn:aws:kms:us-east-1:000000000000:key/k",
        ])
        .unwrap();
        assert_eq!(
            body["DeliveryStreamEncryptionConfigurationInput"],
            json!({"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": "arn:aws:kms:us-east-1:000000000000:key/k"})
        );
        let (_, body) =
            call(&["firehose", "put-record", "--delivery-stream-name", "d", "--record", "Data=aGk="]).unwrap();
        assert_eq!(body["Record"], json!({"Data": "aGk="}));
        let (_, body) = call(&["firehose", "list-delivery-streams", "--limit", "3"]).unwrap();
        assert_eq!(body, json!({"Limit": 3}));
    }

    #[test]
    fn bad_parameters_are_refused_before_sending() {
        let refused = |args: &[&str]| call(args).unwrap_err().parameter;
        assert_eq!(
            refused(&["firehose", "put-record", "--delivery-stream-name", "d", "--record", "Data=!!"]),
            "--record"
        );
        assert_eq!(
            refused(&["firehose", "put-record-batch", "--delivery-stream-name", "d", "--records", r#"[{"Data": 1}]"#]),
            "--records"
        );
        assert_eq!(
            refused(&[
                "firehose",
                "put-record-batch",
                "--delivery-stream-name",
                "d",
                "--records",
                "file:///nonexistent/x"
            ]),
            "--records"
        );
        assert_eq!(
            refused(&["firehose", "tag-delivery-stream", "--delivery-stream-name", "d", "--tags", "Value=x"]),
            "--tags"
        );
        assert_eq!(
            refused(&[
                "firehose",
                "create-delivery-stream",
                "--delivery-stream-name",
                "d",
                "--s3-destination-configuration",
                "{"
            ]),
            "--s3-destination-configuration"
        );
    }

    #[test]
    fn error_answers_name_their_exception() {
        assert_eq!(
            error_of(400, br#"{"__type": "com.amazonaws#InvalidKMSResourceException", "message": "no key"}"#),
            ("InvalidKMSResourceException".to_string(), "no key".to_string())
        );
        assert_eq!(error_of(502, b"bad gateway"), ("HTTP 502".to_string(), "bad gateway".to_string()));
    }
}
