//! Sluice's consumer-group operations on the native protocol (docs/clients.md, the
//! `Sluice_20261201` targets over HTTP): the request and response tables of
//! `sluice.fbs`'s "Consumer groups" section, both directions. Kept apart from the Kinesis
//! operations of [`super::request`] and [`super::response`], which call in here.
//!
//! Enum-valued members travel as their spellings (as UpdateShardCount's scaling type does),
//! so an unknown value reaches the server's validation exactly as it does over HTTP.

use super::convert::{hash_key_from_wire, hash_key_to_wire};
use super::{DecodeError, EncodeError, EncodeInput};
use crate::flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Vector, WIPOffset};
use crate::{wire, FrameError, RequestBodyTable, ResponseBodyTable};
use sluice_model::enums::{AwsEnum, UnknownValue};
use sluice_model::*;

type Fbb = FlatBufferBuilder<'static>;
type Text = Option<WIPOffset<&'static str>>;

fn text(fbb: &mut Fbb, value: &str) -> Text {
    Some(fbb.create_string(value))
}

fn optional_text(fbb: &mut Fbb, value: Option<&str>) -> Text {
    value.map(|value| fbb.create_string(value))
}

/// The enum value a spelling names, or the unknown value carrying it.
fn spelled<E: AwsEnum>(spelling: &str) -> E {
    E::all()
        .iter()
        .find(|known| known.spelling() == spelling)
        .cloned()
        .unwrap_or_else(|| E::unknown(UnknownValue::Text(spelling.to_owned())))
}

fn finish_request<T: RequestBodyTable>(fbb: &mut Fbb, cid: u64, body: WIPOffset<T>) -> Result<&[u8], EncodeError> {
    crate::encode_request(fbb, cid, body).map_err(EncodeError::from)
}

fn initial_position_table(fbb: &mut Fbb, position: &InitialPosition) -> WIPOffset<wire::InitialPosition<'static>> {
    let type_ = text(fbb, position.r#type.as_str());
    wire::InitialPosition::create(
        fbb,
        &wire::InitialPositionArgs { type_, timestamp: position.timestamp.map(Timestamp::epoch_ms) },
    )
}

/// The four members that name an application, built in the order every table has them.
struct Named {
    application_arn: Text,
    stream_name: Text,
    stream_arn: Text,
    application_name: Text,
}

fn named(fbb: &mut Fbb, input: &impl ApplicationRef) -> Named {
    let named = input.application_ref();
    Named {
        application_arn: optional_text(fbb, named.application_arn),
        stream_name: optional_text(fbb, named.stream_name),
        stream_arn: optional_text(fbb, named.stream_arn.map(StreamArn::as_str)),
        application_name: optional_text(fbb, named.application_name),
    }
}

impl EncodeInput for CreateApplicationInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let args = wire::CreateApplicationRequestArgs {
            stream_name: optional_text(fbb, self.stream_name.as_deref()),
            stream_arn: optional_text(fbb, self.stream_arn.as_ref().map(StreamArn::as_str)),
            application_name: text(fbb, &self.application_name),
            initial_position: self.initial_position.as_ref().map(|position| initial_position_table(fbb, position)),
            lease_duration_millis: self.lease_duration_millis,
        };
        let body = wire::CreateApplicationRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

impl EncodeInput for ListApplicationsInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let args = wire::ListApplicationsRequestArgs {
            stream_name: optional_text(fbb, self.stream_name.as_deref()),
            stream_arn: optional_text(fbb, self.stream_arn.as_ref().map(StreamArn::as_str)),
            max_results: self.max_results,
            next_token: optional_text(fbb, self.next_token.as_deref()),
        };
        let body = wire::ListApplicationsRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

/// `EncodeInput` for an input that only names its application.
macro_rules! encode_named {
    ($( $input:ident => $table:ident, $args:ident; )*) => {$(
        impl EncodeInput for $input {
            fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
                let Named { application_arn, stream_name, stream_arn, application_name } = named(fbb, self);
                let args = wire::$args { application_arn, stream_name, stream_arn, application_name };
                let body = wire::$table::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
        }
    )*};
}

encode_named! {
    DescribeApplicationInput => DescribeApplicationRequest, DescribeApplicationRequestArgs;
    DeleteApplicationInput => DeleteApplicationRequest, DeleteApplicationRequestArgs;
}

impl EncodeInput for ListLeasesInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let Named { application_arn, stream_name, stream_arn, application_name } = named(fbb, self);
        let args = wire::ListLeasesRequestArgs {
            application_arn,
            stream_name,
            stream_arn,
            application_name,
            max_results: self.max_results,
            next_token: optional_text(fbb, self.next_token.as_deref()),
        };
        let body = wire::ListLeasesRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

/// `EncodeInput` for take, renew and release: the application, the lease, the worker and the
/// counter it saw.
macro_rules! encode_conditional {
    ($( $input:ident => $table:ident, $args:ident; )*) => {$(
        impl EncodeInput for $input {
            fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
                let Named { application_arn, stream_name, stream_arn, application_name } = named(fbb, self);
                let args = wire::$args {
                    application_arn,
                    stream_name,
                    stream_arn,
                    application_name,
                    lease_key: text(fbb, &self.lease_key),
                    worker_id: text(fbb, &self.worker_id),
                    lease_counter: Some(self.lease_counter),
                };
                let body = wire::$table::create(fbb, &args);
                finish_request(fbb, cid, body)
            }
        }
    )*};
}

encode_conditional! {
    TakeLeaseInput => TakeLeaseRequest, TakeLeaseRequestArgs;
    RenewLeaseInput => RenewLeaseRequest, RenewLeaseRequestArgs;
    ReleaseLeaseInput => ReleaseLeaseRequest, ReleaseLeaseRequestArgs;
}

impl EncodeInput for StealLeaseInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let Named { application_arn, stream_name, stream_arn, application_name } = named(fbb, self);
        let args = wire::StealLeaseRequestArgs {
            application_arn,
            stream_name,
            stream_arn,
            application_name,
            lease_key: text(fbb, &self.lease_key),
            worker_id: text(fbb, &self.worker_id),
            lease_owner: text(fbb, &self.lease_owner),
            lease_counter: Some(self.lease_counter),
        };
        let body = wire::StealLeaseRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

impl EncodeInput for CheckpointLeaseInput {
    fn encode<'f>(&self, fbb: &'f mut Fbb, cid: u64) -> Result<&'f [u8], EncodeError> {
        let Named { application_arn, stream_name, stream_arn, application_name } = named(fbb, self);
        let args = wire::CheckpointLeaseRequestArgs {
            application_arn,
            stream_name,
            stream_arn,
            application_name,
            lease_key: text(fbb, &self.lease_key),
            worker_id: text(fbb, &self.worker_id),
            lease_counter: Some(self.lease_counter),
            checkpoint: text(fbb, &self.checkpoint),
            checkpoint_sub_sequence_number: self.checkpoint_sub_sequence_number,
        };
        let body = wire::CheckpointLeaseRequest::create(fbb, &args);
        finish_request(fbb, cid, body)
    }
}

// ---------------------------------------------------------------------------------------------
// Requests, decoded (the server's direction).

type Request_<T> = Result<T, KinesisError>;

/// A required member, or AWS's ValidationException for its absence.
fn required<T>(value: Option<T>, path: &str) -> Request_<T> {
    value.ok_or_else(|| KinesisError::validation(Violation::null(path)))
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

fn initial_position_of(position: wire::InitialPosition<'_>) -> Request_<InitialPosition> {
    Ok(InitialPosition {
        r#type: spelled(required(position.type_(), "initialPosition.type")?),
        timestamp: position.timestamp().map(Timestamp::from_epoch_ms),
    })
}

/// The members that name an application, from any table that has them.
macro_rules! named_of {
    ($t:expr) => {
        (
            owned($t.application_arn()),
            owned($t.stream_name()),
            $t.stream_arn().map(StreamArn::from),
            owned($t.application_name()),
        )
    };
}

pub(super) fn create_application(t: wire::CreateApplicationRequest<'_>) -> Request_<Request> {
    Ok(Request::CreateApplication(CreateApplicationInput {
        stream_name: owned(t.stream_name()),
        stream_arn: t.stream_arn().map(StreamArn::from),
        application_name: required(t.application_name(), "applicationName")?.to_owned(),
        initial_position: t.initial_position().map(initial_position_of).transpose()?,
        lease_duration_millis: t.lease_duration_millis(),
    }))
}

pub(super) fn describe_application(t: wire::DescribeApplicationRequest<'_>) -> Request_<Request> {
    let (application_arn, stream_name, stream_arn, application_name) = named_of!(t);
    Ok(Request::DescribeApplication(DescribeApplicationInput {
        application_arn,
        stream_name,
        stream_arn,
        application_name,
    }))
}

pub(super) fn delete_application(t: wire::DeleteApplicationRequest<'_>) -> Request_<Request> {
    let (application_arn, stream_name, stream_arn, application_name) = named_of!(t);
    Ok(Request::DeleteApplication(DeleteApplicationInput {
        application_arn,
        stream_name,
        stream_arn,
        application_name,
    }))
}

pub(super) fn list_applications(t: wire::ListApplicationsRequest<'_>) -> Request_<Request> {
    Ok(Request::ListApplications(ListApplicationsInput {
        stream_name: owned(t.stream_name()),
        stream_arn: t.stream_arn().map(StreamArn::from),
        max_results: t.max_results(),
        next_token: owned(t.next_token()),
    }))
}

pub(super) fn list_leases(t: wire::ListLeasesRequest<'_>) -> Request_<Request> {
    let (application_arn, stream_name, stream_arn, application_name) = named_of!(t);
    Ok(Request::ListLeases(ListLeasesInput {
        application_arn,
        stream_name,
        stream_arn,
        application_name,
        max_results: t.max_results(),
        next_token: owned(t.next_token()),
    }))
}

/// Decoders for take, renew and release.
macro_rules! decode_conditional {
    ($( $fn:ident($table:ident) => $variant:ident($input:ident); )*) => {$(
        pub(super) fn $fn(t: wire::$table<'_>) -> Request_<Request> {
            let (application_arn, stream_name, stream_arn, application_name) = named_of!(t);
            Ok(Request::$variant($input {
                application_arn,
                stream_name,
                stream_arn,
                application_name,
                lease_key: required(t.lease_key(), "leaseKey")?.to_owned(),
                worker_id: required(t.worker_id(), "workerId")?.to_owned(),
                lease_counter: required(t.lease_counter(), "leaseCounter")?,
            }))
        }
    )*};
}

decode_conditional! {
    take_lease(TakeLeaseRequest) => TakeLease(TakeLeaseInput);
    renew_lease(RenewLeaseRequest) => RenewLease(RenewLeaseInput);
    release_lease(ReleaseLeaseRequest) => ReleaseLease(ReleaseLeaseInput);
}

pub(super) fn steal_lease(t: wire::StealLeaseRequest<'_>) -> Request_<Request> {
    let (application_arn, stream_name, stream_arn, application_name) = named_of!(t);
    Ok(Request::StealLease(StealLeaseInput {
        application_arn,
        stream_name,
        stream_arn,
        application_name,
        lease_key: required(t.lease_key(), "leaseKey")?.to_owned(),
        worker_id: required(t.worker_id(), "workerId")?.to_owned(),
        lease_owner: required(t.lease_owner(), "leaseOwner")?.to_owned(),
        lease_counter: required(t.lease_counter(), "leaseCounter")?,
    }))
}

pub(super) fn checkpoint_lease(t: wire::CheckpointLeaseRequest<'_>) -> Request_<Request> {
    let (application_arn, stream_name, stream_arn, application_name) = named_of!(t);
    Ok(Request::CheckpointLease(CheckpointLeaseInput {
        application_arn,
        stream_name,
        stream_arn,
        application_name,
        lease_key: required(t.lease_key(), "leaseKey")?.to_owned(),
        worker_id: required(t.worker_id(), "workerId")?.to_owned(),
        lease_counter: required(t.lease_counter(), "leaseCounter")?,
        checkpoint: required(t.checkpoint(), "checkpoint")?.to_owned(),
        checkpoint_sub_sequence_number: t.checkpoint_sub_sequence_number(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Responses, encoded (the server's direction).

fn finish_response<T: ResponseBodyTable>(fbb: &mut Fbb, cid: u64, body: WIPOffset<T>) -> Result<&[u8], FrameError> {
    crate::encode_response(fbb, cid, body)
}

fn strings(fbb: &mut Fbb, values: &[String]) -> WIPOffset<Vector<'static, ForwardsUOffset<&'static str>>> {
    let offsets: Vec<_> = values.iter().map(|value| fbb.create_string(value)).collect();
    fbb.create_vector(&offsets)
}

fn lease_table(fbb: &mut Fbb, lease: &Lease) -> WIPOffset<wire::Lease<'static>> {
    let lease_key = text(fbb, &lease.lease_key);
    let lease_owner = optional_text(fbb, lease.lease_owner.as_deref());
    let checkpoint = text(fbb, &lease.checkpoint);
    let parent_shard_ids = Some(strings(fbb, &lease.parent_shard_ids));
    let child_shard_ids = Some(strings(fbb, &lease.child_shard_ids));
    let range = &lease.hash_key_range;
    let (start, end) = (hash_key_to_wire(range.starting_hash_key), hash_key_to_wire(range.ending_hash_key));
    let hash_key_range = Some(wire::HashKeyRange::create(
        fbb,
        &wire::HashKeyRangeArgs { starting_hash_key: Some(&start), ending_hash_key: Some(&end) },
    ));
    wire::Lease::create(
        fbb,
        &wire::LeaseArgs {
            lease_key,
            lease_owner,
            lease_counter: lease.lease_counter,
            lease_expiration_timestamp: lease.lease_expiration_timestamp.map(Timestamp::epoch_ms),
            checkpoint,
            checkpoint_sub_sequence_number: lease.checkpoint_sub_sequence_number,
            owner_switches_since_checkpoint: lease.owner_switches_since_checkpoint,
            parent_shard_ids,
            child_shard_ids,
            hash_key_range,
            shard_closed: lease.shard_closed,
        },
    )
}

fn description_table(
    fbb: &mut Fbb,
    description: &ApplicationDescription,
) -> WIPOffset<wire::ApplicationDescription<'static>> {
    let application_name = text(fbb, &description.application_name);
    let application_arn = text(fbb, &description.application_arn);
    let application_status = text(fbb, description.application_status.as_str());
    let stream_arn = text(fbb, description.stream_arn.as_str());
    let initial_position = Some(initial_position_table(fbb, &description.initial_position));
    wire::ApplicationDescription::create(
        fbb,
        &wire::ApplicationDescriptionArgs {
            application_name,
            application_arn,
            application_status,
            application_creation_timestamp: description.application_creation_timestamp.epoch_ms(),
            stream_arn,
            initial_position,
            lease_duration_millis: description.lease_duration_millis,
            lease_count: description.lease_count,
        },
    )
}

fn summary_table(fbb: &mut Fbb, summary: &ApplicationSummary) -> WIPOffset<wire::ApplicationSummary<'static>> {
    let application_name = text(fbb, &summary.application_name);
    let application_arn = text(fbb, &summary.application_arn);
    let application_status = text(fbb, summary.application_status.as_str());
    let stream_arn = text(fbb, summary.stream_arn.as_str());
    wire::ApplicationSummary::create(
        fbb,
        &wire::ApplicationSummaryArgs {
            application_name,
            application_arn,
            application_status,
            application_creation_timestamp: summary.application_creation_timestamp.epoch_ms(),
            stream_arn,
        },
    )
}

/// Builds the answer to one of this module's operations; `None` for any other response.
pub(super) fn encode_response<'f>(
    fbb: &'f mut Fbb,
    cid: u64,
    response: &Response,
) -> Option<Result<&'f [u8], FrameError>> {
    macro_rules! lease_body {
        ($table:ident, $args:ident, $output:expr) => {{
            let lease = Some(lease_table(fbb, &$output.lease));
            let body = wire::$table::create(fbb, &wire::$args { lease });
            finish_response(fbb, cid, body)
        }};
    }
    Some(match response {
        Response::CreateApplication(output) => {
            let application_description = Some(description_table(fbb, &output.application_description));
            let body = wire::CreateApplicationResponse::create(
                fbb,
                &wire::CreateApplicationResponseArgs { application_description },
            );
            finish_response(fbb, cid, body)
        }
        Response::DescribeApplication(output) => {
            let application_description = Some(description_table(fbb, &output.application_description));
            let body = wire::DescribeApplicationResponse::create(
                fbb,
                &wire::DescribeApplicationResponseArgs { application_description },
            );
            finish_response(fbb, cid, body)
        }
        Response::DeleteApplication(_) => {
            let body = wire::DeleteApplicationResponse::create(fbb, &wire::DeleteApplicationResponseArgs {});
            finish_response(fbb, cid, body)
        }
        Response::ListApplications(output) => {
            let tables: Vec<_> = output.applications.iter().map(|summary| summary_table(fbb, summary)).collect();
            let applications = Some(fbb.create_vector(&tables));
            let next_token = optional_text(fbb, output.next_token.as_deref());
            let body = wire::ListApplicationsResponse::create(
                fbb,
                &wire::ListApplicationsResponseArgs { applications, next_token },
            );
            finish_response(fbb, cid, body)
        }
        Response::ListLeases(output) => {
            let tables: Vec<_> = output.leases.iter().map(|lease| lease_table(fbb, lease)).collect();
            let leases = Some(fbb.create_vector(&tables));
            let next_token = optional_text(fbb, output.next_token.as_deref());
            let body = wire::ListLeasesResponse::create(fbb, &wire::ListLeasesResponseArgs { leases, next_token });
            finish_response(fbb, cid, body)
        }
        Response::TakeLease(output) => lease_body!(TakeLeaseResponse, TakeLeaseResponseArgs, output),
        Response::RenewLease(output) => lease_body!(RenewLeaseResponse, RenewLeaseResponseArgs, output),
        Response::ReleaseLease(output) => lease_body!(ReleaseLeaseResponse, ReleaseLeaseResponseArgs, output),
        Response::StealLease(output) => lease_body!(StealLeaseResponse, StealLeaseResponseArgs, output),
        Response::CheckpointLease(output) => lease_body!(CheckpointLeaseResponse, CheckpointLeaseResponseArgs, output),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Responses, decoded (the client's direction).

type Response_<T> = Result<T, DecodeError>;

fn member<T>(value: Option<T>, shape: &'static str, member: &'static str) -> Response_<T> {
    value.ok_or(DecodeError::MissingMember { shape, member })
}

fn string_list(list: Option<Vector<'_, ForwardsUOffset<&str>>>) -> Vec<String> {
    list.into_iter().flatten().map(str::to_owned).collect()
}

pub(super) fn lease_of(lease: Option<wire::Lease<'_>>, shape: &'static str) -> Response_<Lease> {
    let lease = member(lease, shape, "lease")?;
    let range = member(lease.hash_key_range(), "Lease", "hash_key_range")?;
    Ok(Lease {
        lease_key: member(lease.lease_key(), "Lease", "lease_key")?.to_owned(),
        lease_owner: owned(lease.lease_owner()),
        lease_counter: lease.lease_counter(),
        lease_expiration_timestamp: lease.lease_expiration_timestamp().map(Timestamp::from_epoch_ms),
        checkpoint: member(lease.checkpoint(), "Lease", "checkpoint")?.to_owned(),
        checkpoint_sub_sequence_number: lease.checkpoint_sub_sequence_number(),
        owner_switches_since_checkpoint: lease.owner_switches_since_checkpoint(),
        parent_shard_ids: string_list(lease.parent_shard_ids()),
        child_shard_ids: string_list(lease.child_shard_ids()),
        hash_key_range: HashKeyRange {
            starting_hash_key: hash_key_from_wire(member(
                range.starting_hash_key(),
                "HashKeyRange",
                "starting_hash_key",
            )?),
            ending_hash_key: hash_key_from_wire(member(range.ending_hash_key(), "HashKeyRange", "ending_hash_key")?),
        },
        shard_closed: lease.shard_closed(),
    })
}

pub(super) fn description_of(
    description: Option<wire::ApplicationDescription<'_>>,
    shape: &'static str,
) -> Response_<ApplicationDescriptionOutput> {
    const SHAPE: &str = "ApplicationDescription";
    let d = member(description, shape, "application_description")?;
    let position = member(d.initial_position(), SHAPE, "initial_position")?;
    Ok(ApplicationDescriptionOutput {
        application_description: ApplicationDescription {
            application_name: member(d.application_name(), SHAPE, "application_name")?.to_owned(),
            application_arn: member(d.application_arn(), SHAPE, "application_arn")?.to_owned(),
            application_status: spelled(member(d.application_status(), SHAPE, "application_status")?),
            application_creation_timestamp: Timestamp::from_epoch_ms(d.application_creation_timestamp()),
            stream_arn: member(d.stream_arn(), SHAPE, "stream_arn")?.into(),
            initial_position: InitialPosition {
                r#type: spelled(member(position.type_(), "InitialPosition", "type")?),
                timestamp: position.timestamp().map(Timestamp::from_epoch_ms),
            },
            lease_duration_millis: d.lease_duration_millis(),
            lease_count: d.lease_count(),
        },
    })
}

pub(super) fn applications_of(t: wire::ListApplicationsResponse<'_>) -> Response_<ListApplicationsOutput> {
    const SHAPE: &str = "ApplicationSummary";
    let applications = t
        .applications()
        .into_iter()
        .flatten()
        .map(|s| {
            Ok(ApplicationSummary {
                application_name: member(s.application_name(), SHAPE, "application_name")?.to_owned(),
                application_arn: member(s.application_arn(), SHAPE, "application_arn")?.to_owned(),
                application_status: spelled(member(s.application_status(), SHAPE, "application_status")?),
                application_creation_timestamp: Timestamp::from_epoch_ms(s.application_creation_timestamp()),
                stream_arn: member(s.stream_arn(), SHAPE, "stream_arn")?.into(),
            })
        })
        .collect::<Response_<_>>()?;
    Ok(ListApplicationsOutput { applications, next_token: owned(t.next_token()) })
}

pub(super) fn leases_of(t: wire::ListLeasesResponse<'_>) -> Response_<ListLeasesOutput> {
    let leases = t
        .leases()
        .into_iter()
        .flatten()
        .map(|lease| lease_of(Some(lease), "ListLeasesResponse"))
        .collect::<Response_<_>>()?;
    Ok(ListLeasesOutput { leases, next_token: owned(t.next_token()) })
}
