//! The Firehose operations on the native protocol (`sluice.fbs`'s "Firehose" section), both
//! directions: [`FirehoseRequest`]s to frames and back, [`FirehoseResponse`]s likewise.
//!
//! Record data is a slice of the frame it arrived in, as Kinesis records are: PutRecordBatch
//! costs no base64 and no JSON on this protocol. CreateDeliveryStream and UpdateDestination
//! carry their AWS JSON bodies as bytes, and DescribeDeliveryStream answers its description as
//! AWS JSON bytes (docs/protocol.md, "Firehose", says why); they too are slices of the frame.

use super::request::{strings, EncodeInput};
use super::{DecodeError, EncodeError};
use crate::flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector, WIPOffset};
use crate::{create_bytes, wire, FrameError, RequestBodyRef, RequestBodyTable, ResponseBodyRef, ResponseBodyTable};
use bytes::Bytes;
use sluice_model::{FirehoseRequest, FirehoseResponse, FirehoseTag, KinesisError, PutRecordBatchEntry, Violation};

type Fbb = FlatBufferBuilder<'static>;
type Text = Option<WIPOffset<&'static str>>;

fn text(fbb: &mut Fbb, value: &str) -> Text {
    Some(fbb.create_string(value))
}

fn optional_text(fbb: &mut Fbb, value: Option<&str>) -> Text {
    value.map(|value| fbb.create_string(value))
}

fn tag_list(fbb: &mut Fbb, tags: &[FirehoseTag]) -> WIPOffset<Vector<'static, ForwardsUOffset<wire::Tag<'static>>>> {
    let tables: Vec<_> = tags
        .iter()
        .map(|tag| {
            let key = text(fbb, &tag.key);
            let value = optional_text(fbb, tag.value.as_deref());
            wire::Tag::create(fbb, &wire::TagArgs { key, value })
        })
        .collect();
    fbb.create_vector(&tables)
}

fn finish_request<T: RequestBodyTable>(fbb: &mut Fbb, cid: u64, body: WIPOffset<T>) -> Result<&[u8], EncodeError> {
    crate::encode_request(fbb, cid, body).map_err(EncodeError::from)
}

impl EncodeInput for FirehoseRequest {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        match self {
            FirehoseRequest::CreateDeliveryStream { input_json } => {
                let input_json = Some(create_bytes(fbb, input_json));
                let body = wire::CreateDeliveryStreamRequest::create(
                    fbb,
                    &wire::CreateDeliveryStreamRequestArgs { input_json },
                );
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::DeleteDeliveryStream { delivery_stream_name, allow_force_delete } => {
                let delivery_stream_name = text(fbb, delivery_stream_name);
                let args = wire::DeleteDeliveryStreamRequestArgs {
                    delivery_stream_name,
                    allow_force_delete: *allow_force_delete,
                };
                let body = wire::DeleteDeliveryStreamRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::DescribeDeliveryStream { delivery_stream_name, limit, exclusive_start_destination_id } => {
                let args = wire::DescribeDeliveryStreamRequestArgs {
                    delivery_stream_name: text(fbb, delivery_stream_name),
                    limit: *limit,
                    exclusive_start_destination_id: optional_text(fbb, exclusive_start_destination_id.as_deref()),
                };
                let body = wire::DescribeDeliveryStreamRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::ListDeliveryStreams {
                limit,
                delivery_stream_type,
                exclusive_start_delivery_stream_name,
            } => {
                let args = wire::ListDeliveryStreamsRequestArgs {
                    limit: *limit,
                    delivery_stream_type: optional_text(fbb, delivery_stream_type.as_deref()),
                    exclusive_start_delivery_stream_name: optional_text(
                        fbb,
                        exclusive_start_delivery_stream_name.as_deref(),
                    ),
                };
                let body = wire::ListDeliveryStreamsRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::PutRecord { delivery_stream_name, data } => {
                let data = Some(create_bytes(fbb, data));
                let record = Some(wire::FirehoseRecord::create(fbb, &wire::FirehoseRecordArgs { data }));
                let delivery_stream_name = text(fbb, delivery_stream_name);
                let args = wire::FirehosePutRecordRequestArgs { delivery_stream_name, record };
                let body = wire::FirehosePutRecordRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::PutRecordBatch { delivery_stream_name, records } => {
                let tables: Vec<_> = records
                    .iter()
                    .map(|data| {
                        let data = Some(create_bytes(fbb, data));
                        wire::FirehoseRecord::create(fbb, &wire::FirehoseRecordArgs { data })
                    })
                    .collect();
                let records = Some(fbb.create_vector(&tables));
                let delivery_stream_name = text(fbb, delivery_stream_name);
                let body = wire::PutRecordBatchRequest::create(
                    fbb,
                    &wire::PutRecordBatchRequestArgs { delivery_stream_name, records },
                );
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::UpdateDestination { input_json } => {
                let input_json = Some(create_bytes(fbb, input_json));
                let body =
                    wire::UpdateDestinationRequest::create(fbb, &wire::UpdateDestinationRequestArgs { input_json });
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::TagDeliveryStream { delivery_stream_name, tags } => {
                let tags = Some(tag_list(fbb, tags));
                let delivery_stream_name = text(fbb, delivery_stream_name);
                let args = wire::TagDeliveryStreamRequestArgs { delivery_stream_name, tags };
                let body = wire::TagDeliveryStreamRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::UntagDeliveryStream { delivery_stream_name, tag_keys } => {
                let tag_keys = Some(strings(fbb, tag_keys));
                let delivery_stream_name = text(fbb, delivery_stream_name);
                let args = wire::UntagDeliveryStreamRequestArgs { delivery_stream_name, tag_keys };
                let body = wire::UntagDeliveryStreamRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::ListTagsForDeliveryStream { delivery_stream_name, exclusive_start_tag_key, limit } => {
                let args = wire::ListTagsForDeliveryStreamRequestArgs {
                    delivery_stream_name: text(fbb, delivery_stream_name),
                    exclusive_start_tag_key: optional_text(fbb, exclusive_start_tag_key.as_deref()),
                    limit: *limit,
                };
                let body = wire::ListTagsForDeliveryStreamRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::StartDeliveryStreamEncryption { delivery_stream_name, key_type, key_arn } => {
                let args = wire::StartDeliveryStreamEncryptionRequestArgs {
                    delivery_stream_name: text(fbb, delivery_stream_name),
                    key_type: optional_text(fbb, key_type.as_deref()),
                    key_arn: optional_text(fbb, key_arn.as_deref()),
                };
                let body = wire::StartDeliveryStreamEncryptionRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
            FirehoseRequest::StopDeliveryStreamEncryption { delivery_stream_name } => {
                let delivery_stream_name = text(fbb, delivery_stream_name);
                let args = wire::StopDeliveryStreamEncryptionRequestArgs { delivery_stream_name };
                let body = wire::StopDeliveryStreamEncryptionRequest::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests, decoded (the server's direction).

type Decoded<T> = Result<T, KinesisError>;

/// A required member, or AWS's ValidationException for its absence.
fn required<T>(value: Option<T>, path: &str) -> Decoded<T> {
    value.ok_or_else(|| KinesisError::validation(Violation::null(path)))
}

fn name(value: Option<&str>) -> Decoded<String> {
    required(value, "deliveryStreamName").map(str::to_owned)
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

/// Bytes as a slice of their frame: no copy.
fn payload(frame: &Bytes, data: Option<Vector<'_, u8>>) -> Bytes {
    data.map_or_else(Bytes::new, |data| frame.slice_ref(data.bytes()))
}

fn tags_of(list: Vector<'_, ForwardsUOffset<wire::Tag<'_>>>, path: &str) -> Decoded<Vec<FirehoseTag>> {
    list.iter()
        .enumerate()
        .map(|(i, tag)| {
            let key = required(tag.key(), &format!("{path}.{}.member.key", i + 1))?.to_owned();
            Ok(FirehoseTag { key, value: owned(tag.value()) })
        })
        .collect()
}

/// The Firehose request a body holds, or `None` if it holds a Kinesis one.
pub(super) fn request_of(frame: &Bytes, body: RequestBodyRef<'_>) -> Option<Decoded<FirehoseRequest>> {
    let decoded = match body {
        RequestBodyRef::CreateDeliveryStream(t) => {
            Ok(FirehoseRequest::CreateDeliveryStream { input_json: payload(frame, t.input_json()) })
        }
        RequestBodyRef::DeleteDeliveryStream(t) => name(t.delivery_stream_name()).map(|delivery_stream_name| {
            FirehoseRequest::DeleteDeliveryStream { delivery_stream_name, allow_force_delete: t.allow_force_delete() }
        }),
        RequestBodyRef::DescribeDeliveryStream(t) => {
            name(t.delivery_stream_name()).map(|delivery_stream_name| FirehoseRequest::DescribeDeliveryStream {
                delivery_stream_name,
                limit: t.limit(),
                exclusive_start_destination_id: owned(t.exclusive_start_destination_id()),
            })
        }
        RequestBodyRef::ListDeliveryStreams(t) => Ok(FirehoseRequest::ListDeliveryStreams {
            limit: t.limit(),
            delivery_stream_type: owned(t.delivery_stream_type()),
            exclusive_start_delivery_stream_name: owned(t.exclusive_start_delivery_stream_name()),
        }),
        RequestBodyRef::FirehosePutRecord(t) => put_record(frame, t),
        RequestBodyRef::PutRecordBatch(t) => put_record_batch(frame, t),
        RequestBodyRef::UpdateDestination(t) => {
            Ok(FirehoseRequest::UpdateDestination { input_json: payload(frame, t.input_json()) })
        }
        RequestBodyRef::TagDeliveryStream(t) => (|| {
            Ok(FirehoseRequest::TagDeliveryStream {
                delivery_stream_name: name(t.delivery_stream_name())?,
                tags: tags_of(required(t.tags(), "tags")?, "tags")?,
            })
        })(),
        RequestBodyRef::UntagDeliveryStream(t) => (|| {
            Ok(FirehoseRequest::UntagDeliveryStream {
                delivery_stream_name: name(t.delivery_stream_name())?,
                tag_keys: required(t.tag_keys(), "tagKeys")?.iter().map(str::to_owned).collect(),
            })
        })(),
        RequestBodyRef::ListTagsForDeliveryStream(t) => {
            name(t.delivery_stream_name()).map(|delivery_stream_name| FirehoseRequest::ListTagsForDeliveryStream {
                delivery_stream_name,
                exclusive_start_tag_key: owned(t.exclusive_start_tag_key()),
                limit: t.limit(),
            })
        }
        RequestBodyRef::StartDeliveryStreamEncryption(t) => {
            name(t.delivery_stream_name()).map(|delivery_stream_name| FirehoseRequest::StartDeliveryStreamEncryption {
                delivery_stream_name,
                key_type: owned(t.key_type()),
                key_arn: owned(t.key_arn()),
            })
        }
        RequestBodyRef::StopDeliveryStreamEncryption(t) => name(t.delivery_stream_name())
            .map(|delivery_stream_name| FirehoseRequest::StopDeliveryStreamEncryption { delivery_stream_name }),
        _ => return None,
    };
    Some(decoded)
}

fn put_record(frame: &Bytes, t: wire::FirehosePutRecordRequest<'_>) -> Decoded<FirehoseRequest> {
    let delivery_stream_name = name(t.delivery_stream_name())?;
    let record = required(t.record(), "record")?;
    let data = payload(frame, Some(required(record.data(), "record.data")?));
    Ok(FirehoseRequest::PutRecord { delivery_stream_name, data })
}

fn put_record_batch(frame: &Bytes, t: wire::PutRecordBatchRequest<'_>) -> Decoded<FirehoseRequest> {
    let delivery_stream_name = name(t.delivery_stream_name())?;
    let records = required(t.records(), "records")?
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let data = required(record.data(), &format!("records.{}.member.data", i + 1))?;
            Ok(payload(frame, Some(data)))
        })
        .collect::<Decoded<Vec<Bytes>>>()?;
    Ok(FirehoseRequest::PutRecordBatch { delivery_stream_name, records })
}

// ---------------------------------------------------------------------------------------------
// Responses, encoded (the server's direction).

fn finish_response<T: ResponseBodyTable>(fbb: &mut Fbb, cid: u64, body: WIPOffset<T>) -> Result<&[u8], FrameError> {
    crate::encode_response(fbb, cid, body)
}

macro_rules! empty {
    ($fbb:expr, $cid:expr, $table:ident, $args:ident) => {{
        let body = wire::$table::create($fbb, &wire::$args {});
        finish_response($fbb, $cid, body)
    }};
}

/// A builder capacity that holds `response` without growing.
pub fn firehose_capacity_for(response: &FirehoseResponse) -> usize {
    const ENVELOPE_BYTES: usize = 1024;
    /// A batch entry's table, vtable and string headers, beside its strings.
    const ENTRY_FRAMING_BYTES: usize = 48;
    ENVELOPE_BYTES
        + match response {
            FirehoseResponse::DescribeDeliveryStream { description_json } => description_json.len(),
            FirehoseResponse::PutRecordBatch { request_responses, .. } => request_responses
                .iter()
                .map(|entry| {
                    ENTRY_FRAMING_BYTES
                        + match entry {
                            PutRecordBatchEntry::Stored { record_id } => record_id.len(),
                            PutRecordBatchEntry::Failed { error_code, error_message } => {
                                error_code.len() + error_message.len()
                            }
                        }
                })
                .sum(),
            _ => 0,
        }
}

/// Builds `response` in `fbb` and finishes it as the answer under `correlation_id`.
pub fn encode_firehose_response<'f>(
    fbb: &'f mut Fbb,
    correlation_id: u64,
    response: &FirehoseResponse,
) -> Result<&'f [u8], FrameError> {
    let cid = correlation_id;
    match response {
        FirehoseResponse::CreateDeliveryStream { delivery_stream_arn } => {
            let delivery_stream_arn = text(fbb, delivery_stream_arn);
            let args = wire::CreateDeliveryStreamResponseArgs { delivery_stream_arn };
            let body = wire::CreateDeliveryStreamResponse::create(fbb, &args);
            finish_response(fbb, cid, body)
        }
        FirehoseResponse::DeleteDeliveryStream => {
            empty!(fbb, cid, DeleteDeliveryStreamResponse, DeleteDeliveryStreamResponseArgs)
        }
        FirehoseResponse::DescribeDeliveryStream { description_json } => {
            let description_json = Some(create_bytes(fbb, description_json));
            let args = wire::DescribeDeliveryStreamResponseArgs { description_json };
            let body = wire::DescribeDeliveryStreamResponse::create(fbb, &args);
            finish_response(fbb, cid, body)
        }
        FirehoseResponse::ListDeliveryStreams { delivery_stream_names, has_more_delivery_streams } => {
            let delivery_stream_names = Some(strings(fbb, delivery_stream_names));
            let args = wire::ListDeliveryStreamsResponseArgs {
                delivery_stream_names,
                has_more_delivery_streams: *has_more_delivery_streams,
            };
            let body = wire::ListDeliveryStreamsResponse::create(fbb, &args);
            finish_response(fbb, cid, body)
        }
        FirehoseResponse::PutRecord { record_id, encrypted } => {
            let record_id = text(fbb, record_id);
            let args = wire::FirehosePutRecordResponseArgs { record_id, encrypted: *encrypted };
            let body = wire::FirehosePutRecordResponse::create(fbb, &args);
            finish_response(fbb, cid, body)
        }
        FirehoseResponse::PutRecordBatch { failed_put_count, encrypted, request_responses } => {
            let entries: Vec<_> = request_responses
                .iter()
                .map(|entry| {
                    let args = match entry {
                        PutRecordBatchEntry::Stored { record_id } => wire::PutRecordBatchResponseEntryArgs {
                            record_id: text(fbb, record_id),
                            ..Default::default()
                        },
                        PutRecordBatchEntry::Failed { error_code, error_message } => {
                            wire::PutRecordBatchResponseEntryArgs {
                                record_id: None,
                                error_code: text(fbb, error_code),
                                error_message: text(fbb, error_message),
                            }
                        }
                    };
                    wire::PutRecordBatchResponseEntry::create(fbb, &args)
                })
                .collect();
            let request_responses = Some(fbb.create_vector(&entries));
            let args = wire::PutRecordBatchResponseArgs {
                failed_put_count: *failed_put_count,
                encrypted: *encrypted,
                request_responses,
            };
            let body = wire::PutRecordBatchResponse::create(fbb, &args);
            finish_response(fbb, cid, body)
        }
        FirehoseResponse::UpdateDestination => {
            empty!(fbb, cid, UpdateDestinationResponse, UpdateDestinationResponseArgs)
        }
        FirehoseResponse::TagDeliveryStream => {
            empty!(fbb, cid, TagDeliveryStreamResponse, TagDeliveryStreamResponseArgs)
        }
        FirehoseResponse::UntagDeliveryStream => {
            empty!(fbb, cid, UntagDeliveryStreamResponse, UntagDeliveryStreamResponseArgs)
        }
        FirehoseResponse::ListTagsForDeliveryStream { tags, has_more_tags } => {
            let tags = Some(tag_list(fbb, tags));
            let args = wire::ListTagsForDeliveryStreamResponseArgs { tags, has_more_tags: *has_more_tags };
            let body = wire::ListTagsForDeliveryStreamResponse::create(fbb, &args);
            finish_response(fbb, cid, body)
        }
        FirehoseResponse::StartDeliveryStreamEncryption => {
            empty!(fbb, cid, StartDeliveryStreamEncryptionResponse, StartDeliveryStreamEncryptionResponseArgs)
        }
        FirehoseResponse::StopDeliveryStreamEncryption => {
            empty!(fbb, cid, StopDeliveryStreamEncryptionResponse, StopDeliveryStreamEncryptionResponseArgs)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses, decoded (the client's direction).

type Answer<T> = Result<T, DecodeError>;

fn member<T>(value: Option<T>, shape: &'static str, member: &'static str) -> Answer<T> {
    value.ok_or(DecodeError::MissingMember { shape, member })
}

/// The Firehose answer a body holds, or `None` if it holds a Kinesis one.
pub(super) fn response_of(frame: &Bytes, body: ResponseBodyRef<'_>) -> Option<Answer<FirehoseResponse>> {
    let decoded = match body {
        ResponseBodyRef::CreateDeliveryStream(t) => (|| {
            let arn = member(t.delivery_stream_arn(), "CreateDeliveryStreamResponse", "delivery_stream_arn")?;
            Ok(FirehoseResponse::CreateDeliveryStream { delivery_stream_arn: arn.to_owned() })
        })(),
        ResponseBodyRef::DeleteDeliveryStream(_) => Ok(FirehoseResponse::DeleteDeliveryStream),
        ResponseBodyRef::DescribeDeliveryStream(t) => (|| {
            let json = member(t.description_json(), "DescribeDeliveryStreamResponse", "description_json")?;
            Ok(FirehoseResponse::DescribeDeliveryStream { description_json: payload(frame, Some(json)) })
        })(),
        ResponseBodyRef::ListDeliveryStreams(t) => Ok(FirehoseResponse::ListDeliveryStreams {
            delivery_stream_names: t.delivery_stream_names().into_iter().flatten().map(str::to_owned).collect(),
            has_more_delivery_streams: t.has_more_delivery_streams(),
        }),
        ResponseBodyRef::FirehosePutRecord(t) => (|| {
            let record_id = member(t.record_id(), "FirehosePutRecordResponse", "record_id")?;
            Ok(FirehoseResponse::PutRecord { record_id: record_id.to_owned(), encrypted: t.encrypted() })
        })(),
        ResponseBodyRef::PutRecordBatch(t) => (|| {
            let request_responses = t
                .request_responses()
                .into_iter()
                .flatten()
                .map(|entry| match (entry.record_id(), entry.error_code()) {
                    (Some(record_id), None) => Ok(PutRecordBatchEntry::Stored { record_id: record_id.to_owned() }),
                    (None, Some(error_code)) => Ok(PutRecordBatchEntry::Failed {
                        error_code: error_code.to_owned(),
                        error_message: entry.error_message().unwrap_or_default().to_owned(),
                    }),
                    _ => Err(DecodeError::MissingMember {
                        shape: "PutRecordBatchResponseEntry",
                        member: "record_id or error_code",
                    }),
                })
                .collect::<Answer<Vec<_>>>()?;
            Ok(FirehoseResponse::PutRecordBatch {
                failed_put_count: t.failed_put_count(),
                encrypted: t.encrypted(),
                request_responses,
            })
        })(),
        ResponseBodyRef::UpdateDestination(_) => Ok(FirehoseResponse::UpdateDestination),
        ResponseBodyRef::TagDeliveryStream(_) => Ok(FirehoseResponse::TagDeliveryStream),
        ResponseBodyRef::UntagDeliveryStream(_) => Ok(FirehoseResponse::UntagDeliveryStream),
        ResponseBodyRef::ListTagsForDeliveryStream(t) => (|| {
            let tags = t
                .tags()
                .into_iter()
                .flatten()
                .map(|tag| {
                    let key = member(tag.key(), "Tag", "key")?.to_owned();
                    Ok(FirehoseTag { key, value: owned(tag.value()) })
                })
                .collect::<Answer<Vec<_>>>()?;
            Ok(FirehoseResponse::ListTagsForDeliveryStream { tags, has_more_tags: t.has_more_tags() })
        })(),
        ResponseBodyRef::StartDeliveryStreamEncryption(_) => Ok(FirehoseResponse::StartDeliveryStreamEncryption),
        ResponseBodyRef::StopDeliveryStreamEncryption(_) => Ok(FirehoseResponse::StopDeliveryStreamEncryption),
        _ => return None,
    };
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::super::{decode_any_request, decode_response, NativeRequest, ResponseMessage};
    use super::*;
    use proptest::prelude::*;
    use sluice_model::ErrorKind;

    fn request_frame(request: &FirehoseRequest) -> Bytes {
        let mut fbb = FlatBufferBuilder::new();
        Bytes::copy_from_slice(request.encode(&mut fbb, 9).unwrap())
    }

    fn decoded(frame: &Bytes) -> Result<FirehoseRequest, KinesisError> {
        let decoded = decode_any_request(frame).unwrap().expect("a whole frame");
        assert_eq!(decoded.correlation_id, 9);
        match decoded.request? {
            NativeRequest::Firehose(request) => Ok(request),
            other => panic!("decoded as {other:?}"),
        }
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.-]{0,70}"
    }

    fn bytes() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
    }

    fn tag() -> impl Strategy<Value = FirehoseTag> {
        ("[a-z:]{0,8}", proptest::option::of("[a-z ]{0,8}")).prop_map(|(key, value)| FirehoseTag { key, value })
    }

    fn request() -> impl Strategy<Value = FirehoseRequest> {
        let text = || proptest::option::of("[a-zA-Z_]{0,12}");
        prop_oneof![
            bytes().prop_map(|input_json| FirehoseRequest::CreateDeliveryStream { input_json }),
            (name(), proptest::option::of(any::<bool>())).prop_map(|(delivery_stream_name, allow_force_delete)| {
                FirehoseRequest::DeleteDeliveryStream { delivery_stream_name, allow_force_delete }
            }),
            (name(), proptest::option::of(any::<i64>()), text()).prop_map(|(n, limit, start)| {
                FirehoseRequest::DescribeDeliveryStream {
                    delivery_stream_name: n,
                    limit,
                    exclusive_start_destination_id: start,
                }
            }),
            (proptest::option::of(any::<i64>()), text(), text()).prop_map(|(limit, kind, start)| {
                FirehoseRequest::ListDeliveryStreams {
                    limit,
                    delivery_stream_type: kind,
                    exclusive_start_delivery_stream_name: start,
                }
            }),
            (name(), bytes())
                .prop_map(|(delivery_stream_name, data)| FirehoseRequest::PutRecord { delivery_stream_name, data }),
            (name(), proptest::collection::vec(bytes(), 0..8)).prop_map(|(delivery_stream_name, records)| {
                FirehoseRequest::PutRecordBatch { delivery_stream_name, records }
            }),
            bytes().prop_map(|input_json| FirehoseRequest::UpdateDestination { input_json }),
            (name(), proptest::collection::vec(tag(), 0..4)).prop_map(|(delivery_stream_name, tags)| {
                FirehoseRequest::TagDeliveryStream { delivery_stream_name, tags }
            }),
            (name(), proptest::collection::vec("[a-z]{0,6}", 0..4)).prop_map(|(delivery_stream_name, tag_keys)| {
                FirehoseRequest::UntagDeliveryStream { delivery_stream_name, tag_keys }
            }),
            (name(), text(), proptest::option::of(any::<i64>())).prop_map(|(n, start, limit)| {
                FirehoseRequest::ListTagsForDeliveryStream {
                    delivery_stream_name: n,
                    exclusive_start_tag_key: start,
                    limit,
                }
            }),
            (name(), text(), text()).prop_map(|(delivery_stream_name, key_type, key_arn)| {
                FirehoseRequest::StartDeliveryStreamEncryption { delivery_stream_name, key_type, key_arn }
            }),
            name().prop_map(|delivery_stream_name| FirehoseRequest::StopDeliveryStreamEncryption {
                delivery_stream_name
            }),
        ]
    }

    fn entry() -> impl Strategy<Value = PutRecordBatchEntry> {
        prop_oneof![
            "[a-z0-9]{1,20}".prop_map(|record_id| PutRecordBatchEntry::Stored { record_id }),
            ("[A-Za-z]{1,20}", "[a-z ]{0,20}")
                .prop_map(|(error_code, error_message)| PutRecordBatchEntry::Failed { error_code, error_message }),
        ]
    }

    fn response() -> impl Strategy<Value = FirehoseResponse> {
        prop_oneof![
            "[a-z:/]{0,30}"
                .prop_map(|delivery_stream_arn| FirehoseResponse::CreateDeliveryStream { delivery_stream_arn }),
            Just(FirehoseResponse::DeleteDeliveryStream),
            bytes().prop_map(|description_json| FirehoseResponse::DescribeDeliveryStream { description_json }),
            (proptest::collection::vec(name(), 0..5), any::<bool>()).prop_map(|(names, more)| {
                FirehoseResponse::ListDeliveryStreams { delivery_stream_names: names, has_more_delivery_streams: more }
            }),
            ("[a-z0-9]{0,20}", proptest::option::of(any::<bool>()))
                .prop_map(|(record_id, encrypted)| FirehoseResponse::PutRecord { record_id, encrypted }),
            (any::<i32>(), proptest::option::of(any::<bool>()), proptest::collection::vec(entry(), 0..10)).prop_map(
                |(failed_put_count, encrypted, request_responses)| FirehoseResponse::PutRecordBatch {
                    failed_put_count,
                    encrypted,
                    request_responses
                }
            ),
            Just(FirehoseResponse::UpdateDestination),
            Just(FirehoseResponse::TagDeliveryStream),
            Just(FirehoseResponse::UntagDeliveryStream),
            (proptest::collection::vec(tag(), 0..4), any::<bool>())
                .prop_map(|(tags, has_more_tags)| FirehoseResponse::ListTagsForDeliveryStream { tags, has_more_tags }),
            Just(FirehoseResponse::StartDeliveryStreamEncryption),
            Just(FirehoseResponse::StopDeliveryStreamEncryption),
        ]
    }

    proptest! {
        #[test]
        fn every_firehose_request_round_trips(request in request()) {
            let frame = request_frame(&request);
            prop_assert_eq!(decoded(&frame), Ok(request));
        }

        #[test]
        fn every_firehose_response_round_trips(response in response()) {
            let mut fbb = FlatBufferBuilder::with_capacity(firehose_capacity_for(&response));
            let frame = Bytes::copy_from_slice(encode_firehose_response(&mut fbb, 3, &response).unwrap());
            let decoded = decode_response(&frame).unwrap().expect("a whole frame");
            prop_assert_eq!(decoded.correlation_id, 3);
            prop_assert_eq!(decoded.message, Ok(ResponseMessage::Firehose(response)));
        }
    }

    #[test]
    fn record_data_is_read_in_place() {
        let records = vec![Bytes::from_static(b"\x00\x01raw"), Bytes::from_static(b"{\"a\":1}\n")];
        let frame = request_frame(&FirehoseRequest::PutRecordBatch { delivery_stream_name: "s".into(), records });
        let Ok(FirehoseRequest::PutRecordBatch { records, .. }) = decoded(&frame) else { panic!("not a batch") };
        for data in &records {
            let (outer, inner) = (frame.as_ptr_range(), data.as_ptr_range());
            assert!(outer.start <= inner.start && inner.end <= outer.end, "record data was copied");
        }
        assert_eq!(&records[0][..], b"\x00\x01raw");
    }

    #[test]
    fn a_missing_name_is_the_validation_error_aws_answers() {
        let mut fbb = FlatBufferBuilder::new();
        let body = wire::PutRecordBatchRequest::create(&mut fbb, &wire::PutRecordBatchRequestArgs::default());
        let frame = Bytes::copy_from_slice(crate::encode_request(&mut fbb, 9, body).unwrap());
        let error = decoded(&frame).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        assert!(error.message.contains("'deliveryStreamName'"), "{}", error.message);
    }
}
