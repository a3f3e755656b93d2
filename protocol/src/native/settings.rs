//! The stream and account settings, resource policies and stream encryption on the native
//! protocol: the tables of `sluice.fbs`'s "Stream and account settings" section, both
//! directions, kept apart from the older Kinesis operations of [`super::request`] and
//! [`super::response`], which call in here.
//!
//! They are here so that every Kinesis catalog change has a native form: a cluster's follower
//! forwards a catalog change to the catalog's leader over this protocol, whichever protocol
//! the client used (`server/src/ops/cluster/forward.rs`).
//!
//! Enum-valued members travel as numbers, as the older Kinesis operations' do: a request with
//! a number this build does not know decodes to AWS's enum-set ValidationException.

use super::convert::WireEnum;
use super::request::{optional_text, owned, required, stream_arn, stream_arn_of, text};
use super::response::required as required_member;
use super::{DecodeError, EncodeError, EncodeInput};
use crate::flatbuffers::{FlatBufferBuilder, WIPOffset};
use crate::{wire, FrameError, RequestBodyTable, ResponseBodyTable};
use sluice_model::*;

type Fbb = FlatBufferBuilder<'static>;

fn finish_request<T: RequestBodyTable>(fbb: &mut Fbb, cid: u64, body: WIPOffset<T>) -> Result<&[u8], EncodeError> {
    crate::encode_request(fbb, cid, body).map_err(EncodeError::from)
}

// ---------------------------------------------------------------------------------------------
// Requests: encoding (the client's direction).

impl EncodeInput for UpdateMaxRecordSizeInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let args = wire::UpdateMaxRecordSizeRequestArgs {
            stream_arn: stream_arn(fbb, &self.stream_arn),
            max_record_size_in_kib: Some(self.max_record_size_in_kib),
        };
        let body = wire::UpdateMaxRecordSizeRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

impl EncodeInput for UpdateStreamWarmThroughputInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let args = wire::UpdateStreamWarmThroughputRequestArgs {
            stream_arn: stream_arn(fbb, &self.stream_arn),
            stream_name: optional_text(fbb, self.stream_name.as_deref()),
            warm_throughput_mi_bps: Some(self.warm_throughput_mi_bps),
        };
        let body = wire::UpdateStreamWarmThroughputRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

impl EncodeInput for UpdateStreamRecordDistributionStrategyInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let args = wire::UpdateStreamRecordDistributionStrategyRequestArgs {
            stream_arn: text(fbb, self.stream_arn.as_str()),
            record_distribution_strategy: Some(self.record_distribution_strategy.encode("RecordDistributionStrategy")?),
        };
        let body = wire::UpdateStreamRecordDistributionStrategyRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

impl EncodeInput for UpdateAccountSettingsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let status = &self.minimum_throughput_billing_commitment.status;
        let args = wire::UpdateAccountSettingsRequestArgs {
            minimum_throughput_billing_commitment_status: Some(
                status.encode("MinimumThroughputBillingCommitment.Status")?,
            ),
        };
        let body = wire::UpdateAccountSettingsRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

impl EncodeInput for PutResourcePolicyInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let args = wire::PutResourcePolicyRequestArgs {
            resource_arn: text(fbb, self.resource_arn.as_str()),
            policy: text(fbb, &self.policy),
            stream_id: optional_text(fbb, self.stream_id.as_deref()),
        };
        let body = wire::PutResourcePolicyRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

impl EncodeInput for GetResourcePolicyInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let args = wire::GetResourcePolicyRequestArgs {
            resource_arn: text(fbb, self.resource_arn.as_str()),
            stream_id: optional_text(fbb, self.stream_id.as_deref()),
        };
        let body = wire::GetResourcePolicyRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

impl EncodeInput for DeleteResourcePolicyInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let args = wire::DeleteResourcePolicyRequestArgs {
            resource_arn: text(fbb, self.resource_arn.as_str()),
            stream_id: optional_text(fbb, self.stream_id.as_deref()),
        };
        let body = wire::DeleteResourcePolicyRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

/// StartStreamEncryption and StopStreamEncryption: the same members, tables of the same shape.
macro_rules! encryption_request {
    ($input:ident, $table:ident, $args:ident) => {
        impl EncodeInput for $input {
            fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
                let args = wire::$args {
                    stream_name: optional_text(fbb, self.stream_name.as_deref()),
                    encryption_type: Some(self.encryption_type.encode("EncryptionType")?),
                    key_id: text(fbb, &self.key_id),
                    stream_arn: stream_arn(fbb, &self.stream_arn),
                };
                let body = wire::$table::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
        }
    };
}

encryption_request!(StartStreamEncryptionInput, StartStreamEncryptionRequest, StartStreamEncryptionRequestArgs);
encryption_request!(StopStreamEncryptionInput, StopStreamEncryptionRequest, StopStreamEncryptionRequestArgs);

// ---------------------------------------------------------------------------------------------
// Requests: decoding (the server's direction). A required member that is absent is AWS's
// `Value null at '...'` ValidationException, as for every other request.

type Request_<T> = Result<T, KinesisError>;

pub(super) fn update_max_record_size(t: wire::UpdateMaxRecordSizeRequest<'_>) -> Request_<Request> {
    Ok(Request::UpdateMaxRecordSize(UpdateMaxRecordSizeInput {
        stream_arn: stream_arn_of(t.stream_arn()),
        max_record_size_in_kib: required(t.max_record_size_in_kib(), "maxRecordSizeInKiB")?,
    }))
}

pub(super) fn update_stream_warm_throughput(t: wire::UpdateStreamWarmThroughputRequest<'_>) -> Request_<Request> {
    Ok(Request::UpdateStreamWarmThroughput(UpdateStreamWarmThroughputInput {
        stream_arn: stream_arn_of(t.stream_arn()),
        stream_name: owned(t.stream_name()),
        warm_throughput_mi_bps: required(t.warm_throughput_mi_bps(), "warmThroughputMiBps")?,
    }))
}

pub(super) fn update_stream_record_distribution_strategy(
    t: wire::UpdateStreamRecordDistributionStrategyRequest<'_>,
) -> Request_<Request> {
    const STRATEGY: &str = "recordDistributionStrategy";
    Ok(Request::UpdateStreamRecordDistributionStrategy(UpdateStreamRecordDistributionStrategyInput {
        stream_arn: StreamArn::from(required(t.stream_arn(), "streamARN")?),
        record_distribution_strategy: RecordDistributionStrategy::from_request(
            required(t.record_distribution_strategy(), STRATEGY)?,
            STRATEGY,
        )?,
    }))
}

pub(super) fn update_account_settings(t: wire::UpdateAccountSettingsRequest<'_>) -> Request_<Request> {
    const STATUS: &str = "minimumThroughputBillingCommitment.status";
    let status = required(t.minimum_throughput_billing_commitment_status(), STATUS)?;
    Ok(Request::UpdateAccountSettings(UpdateAccountSettingsInput {
        minimum_throughput_billing_commitment: MinimumThroughputBillingCommitmentInput {
            status: BillingCommitmentInputStatus::from_request(status, STATUS)?,
        },
    }))
}

pub(super) fn put_resource_policy(t: wire::PutResourcePolicyRequest<'_>) -> Request_<Request> {
    Ok(Request::PutResourcePolicy(PutResourcePolicyInput {
        resource_arn: ResourceArn::from(required(t.resource_arn(), "resourceARN")?),
        policy: required(t.policy(), "policy")?.to_owned(),
        stream_id: owned(t.stream_id()),
    }))
}

pub(super) fn get_resource_policy(t: wire::GetResourcePolicyRequest<'_>) -> Request_<Request> {
    Ok(Request::GetResourcePolicy(GetResourcePolicyInput {
        resource_arn: ResourceArn::from(required(t.resource_arn(), "resourceARN")?),
        stream_id: owned(t.stream_id()),
    }))
}

pub(super) fn delete_resource_policy(t: wire::DeleteResourcePolicyRequest<'_>) -> Request_<Request> {
    Ok(Request::DeleteResourcePolicy(DeleteResourcePolicyInput {
        resource_arn: ResourceArn::from(required(t.resource_arn(), "resourceARN")?),
        stream_id: owned(t.stream_id()),
    }))
}

/// The members StartStreamEncryption and StopStreamEncryption share.
struct Encryption {
    stream_name: Option<String>,
    encryption_type: EncryptionType,
    key_id: String,
    stream_arn: Option<StreamArn>,
}

fn encryption(
    stream_name: Option<&str>,
    encryption_type: Option<wire::EncryptionType>,
    key_id: Option<&str>,
    arn: Option<&str>,
) -> Request_<Encryption> {
    const TYPE: &str = "encryptionType";
    Ok(Encryption {
        stream_name: owned(stream_name),
        encryption_type: EncryptionType::from_request(required(encryption_type, TYPE)?, TYPE)?,
        key_id: required(key_id, "keyId")?.to_owned(),
        stream_arn: stream_arn_of(arn),
    })
}

pub(super) fn start_stream_encryption(t: wire::StartStreamEncryptionRequest<'_>) -> Request_<Request> {
    let Encryption { stream_name, encryption_type, key_id, stream_arn } =
        encryption(t.stream_name(), t.encryption_type(), t.key_id(), t.stream_arn())?;
    Ok(Request::StartStreamEncryption(StartStreamEncryptionInput { stream_name, encryption_type, key_id, stream_arn }))
}

pub(super) fn stop_stream_encryption(t: wire::StopStreamEncryptionRequest<'_>) -> Request_<Request> {
    let Encryption { stream_name, encryption_type, key_id, stream_arn } =
        encryption(t.stream_name(), t.encryption_type(), t.key_id(), t.stream_arn())?;
    Ok(Request::StopStreamEncryption(StopStreamEncryptionInput { stream_name, encryption_type, key_id, stream_arn }))
}

// ---------------------------------------------------------------------------------------------
// Responses: encoding (the server's direction).

fn finish_response<T: ResponseBodyTable>(fbb: &mut Fbb, cid: u64, body: WIPOffset<T>) -> Result<&[u8], FrameError> {
    crate::encode_response(fbb, cid, body)
}

/// A warm throughput's table (UpdateStreamWarmThroughput, DescribeStreamSummary).
pub(super) fn warm_throughput_table(fbb: &mut Fbb, warm: &WarmThroughput) -> WIPOffset<wire::WarmThroughput<'static>> {
    wire::WarmThroughput::create(
        fbb,
        &wire::WarmThroughputArgs { target_mi_bps: warm.target_mi_bps, current_mi_bps: warm.current_mi_bps },
    )
}

/// A billing commitment's table (DescribeAccountSettings, UpdateAccountSettings).
pub(super) fn commitment_table(
    fbb: &mut Fbb,
    commitment: &MinimumThroughputBillingCommitment,
) -> WIPOffset<wire::MinimumThroughputBillingCommitment<'static>> {
    wire::MinimumThroughputBillingCommitment::create(
        fbb,
        &wire::MinimumThroughputBillingCommitmentArgs {
            status: Some(commitment.status.to_wire()),
            started_at: commitment.started_at.map(Timestamp::epoch_ms),
            ended_at: commitment.ended_at.map(Timestamp::epoch_ms),
            earliest_allowed_end_at: commitment.earliest_allowed_end_at.map(Timestamp::epoch_ms),
        },
    )
}

macro_rules! empty {
    ($fbb:expr, $cid:expr, $table:ident, $args:ident) => {{
        let body = wire::$table::create($fbb, &wire::$args {});
        finish_response($fbb, $cid, body)
    }};
}

/// Builds the answer of one of this module's operations under `cid`; `None` for any other
/// response.
pub(super) fn encode_response<'f>(
    fbb: &'f mut Fbb,
    cid: u64,
    response: &Response,
) -> Option<Result<&'f [u8], FrameError>> {
    Some(match response {
        Response::UpdateMaxRecordSize(_) => {
            empty!(fbb, cid, UpdateMaxRecordSizeResponse, UpdateMaxRecordSizeResponseArgs)
        }
        Response::UpdateStreamWarmThroughput(output) => {
            let stream_arn = stream_arn(fbb, &output.stream_arn);
            let stream_name = optional_text(fbb, output.stream_name.as_deref());
            let warm_throughput = output.warm_throughput.as_ref().map(|warm| warm_throughput_table(fbb, warm));
            let body = wire::UpdateStreamWarmThroughputResponse::create(
                fbb,
                &wire::UpdateStreamWarmThroughputResponseArgs { stream_arn, stream_name, warm_throughput },
            );
            finish_response(fbb, cid, body)
        }
        Response::UpdateStreamRecordDistributionStrategy(_) => empty!(
            fbb,
            cid,
            UpdateStreamRecordDistributionStrategyResponse,
            UpdateStreamRecordDistributionStrategyResponseArgs
        ),
        Response::UpdateAccountSettings(output) => {
            let commitment = output
                .minimum_throughput_billing_commitment
                .as_ref()
                .map(|commitment| commitment_table(fbb, commitment));
            let body = wire::UpdateAccountSettingsResponse::create(
                fbb,
                &wire::UpdateAccountSettingsResponseArgs { minimum_throughput_billing_commitment: commitment },
            );
            finish_response(fbb, cid, body)
        }
        Response::PutResourcePolicy(_) => empty!(fbb, cid, PutResourcePolicyResponse, PutResourcePolicyResponseArgs),
        Response::GetResourcePolicy(output) => {
            let policy = text(fbb, &output.policy);
            let body = wire::GetResourcePolicyResponse::create(fbb, &wire::GetResourcePolicyResponseArgs { policy });
            finish_response(fbb, cid, body)
        }
        Response::DeleteResourcePolicy(_) => {
            empty!(fbb, cid, DeleteResourcePolicyResponse, DeleteResourcePolicyResponseArgs)
        }
        Response::StartStreamEncryption(_) => {
            empty!(fbb, cid, StartStreamEncryptionResponse, StartStreamEncryptionResponseArgs)
        }
        Response::StopStreamEncryption(_) => {
            empty!(fbb, cid, StopStreamEncryptionResponse, StopStreamEncryptionResponseArgs)
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Responses: decoding (the client's direction).

type Response_<T> = Result<T, DecodeError>;

pub(super) fn warm_throughput_of(warm: wire::WarmThroughput<'_>) -> WarmThroughput {
    WarmThroughput { target_mi_bps: warm.target_mi_bps(), current_mi_bps: warm.current_mi_bps() }
}

pub(super) fn commitment_of(
    commitment: Option<wire::MinimumThroughputBillingCommitment<'_>>,
) -> Response_<Option<MinimumThroughputBillingCommitment>> {
    let Some(commitment) = commitment else { return Ok(None) };
    let status = required_member(commitment.status(), "MinimumThroughputBillingCommitment", "status")?;
    Ok(Some(MinimumThroughputBillingCommitment {
        status: BillingCommitmentStatus::from_response(status),
        started_at: commitment.started_at().map(Timestamp::from_epoch_ms),
        ended_at: commitment.ended_at().map(Timestamp::from_epoch_ms),
        earliest_allowed_end_at: commitment.earliest_allowed_end_at().map(Timestamp::from_epoch_ms),
    }))
}

pub(super) fn update_stream_warm_throughput_of(t: wire::UpdateStreamWarmThroughputResponse<'_>) -> Response {
    Response::UpdateStreamWarmThroughput(UpdateStreamWarmThroughputOutput {
        stream_arn: stream_arn_of(t.stream_arn()),
        stream_name: owned(t.stream_name()),
        warm_throughput: t.warm_throughput().map(warm_throughput_of),
    })
}

pub(super) fn update_account_settings_of(t: wire::UpdateAccountSettingsResponse<'_>) -> Response_<Response> {
    Ok(Response::UpdateAccountSettings(UpdateAccountSettingsOutput {
        minimum_throughput_billing_commitment: commitment_of(t.minimum_throughput_billing_commitment())?,
    }))
}

pub(super) fn get_resource_policy_of(t: wire::GetResourcePolicyResponse<'_>) -> Response_<Response> {
    Ok(Response::GetResourcePolicy(GetResourcePolicyOutput {
        policy: required_member(t.policy(), "GetResourcePolicyResponse", "policy")?.to_owned(),
    }))
}
