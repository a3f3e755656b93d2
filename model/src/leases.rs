//! Sluice's own operations: consumer groups whose leases and checkpoints the daemon keeps
//! (issue 14), served under the `X-Amz-Target` prefix `Sluice_20261201` and specified in
//! `docs/clients.md` ("Consumer groups: the lease operations"). Members follow KCL's lease
//! table in AWS's PascalCase; an application is named like an enhanced fan-out consumer:
//! `ApplicationARN`, or `StreamName` / `StreamARN` plus `ApplicationName`.

use crate::enums::{ApplicationStatus, InitialPositionType};
use crate::ids::{StreamArn, Timestamp};
use crate::shapes::HashKeyRange;
use serde::{Deserialize, Serialize};

/// The operations of this module, which answer to the `Sluice_20261201` target prefix rather
/// than Kinesis' (see [`crate::Operation::is_sluice`]).
pub const SLUICE_TARGET_PREFIX: &str = "Sluice_20261201.";

/// Where workers start in the shards that exist at creation.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InitialPosition {
    pub r#type: InitialPositionType,
    /// Only with `AT_TIMESTAMP`.
    pub timestamp: Option<Timestamp>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApplicationDescription {
    pub application_name: String,
    #[serde(rename = "ApplicationARN")]
    pub application_arn: String,
    pub application_status: ApplicationStatus,
    pub application_creation_timestamp: Timestamp,
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub initial_position: InitialPosition,
    pub lease_duration_millis: i64,
    pub lease_count: i64,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApplicationSummary {
    pub application_name: String,
    #[serde(rename = "ApplicationARN")]
    pub application_arn: String,
    pub application_status: ApplicationStatus,
    pub application_creation_timestamp: Timestamp,
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
}

/// One application's lease on one shard, as KCL's lease table has it.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Lease {
    /// The shard id.
    pub lease_key: String,
    /// Absent while unowned.
    pub lease_owner: Option<String>,
    /// The fencing token: +1 on every change of owner.
    pub lease_counter: i64,
    /// Absent while unowned.
    pub lease_expiration_timestamp: Option<Timestamp>,
    /// `TRIM_HORIZON`, `LATEST` or `AT_TIMESTAMP` before the first checkpoint, then a sequence
    /// number, then `SHARD_END`.
    pub checkpoint: String,
    pub checkpoint_sub_sequence_number: i64,
    pub owner_switches_since_checkpoint: i64,
    #[serde(default)]
    pub parent_shard_ids: Vec<String>,
    #[serde(default)]
    pub child_shard_ids: Vec<String>,
    pub hash_key_range: HashKeyRange,
    pub shard_closed: bool,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateApplicationInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
    pub application_name: String,
    /// Absent means `LATEST`.
    pub initial_position: Option<InitialPosition>,
    /// 1,000..=600,000; absent means 10,000.
    pub lease_duration_millis: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApplicationDescriptionOutput {
    pub application_description: ApplicationDescription,
}

/// Declares inputs that name an application (by ARN, or by stream and name) plus their own
/// members.
macro_rules! application_inputs {
    ($( $(#[$meta:meta])* $name:ident { $( $(#[$field_meta:meta])* $field:ident: $ty:ty, )* } )*) => {
        $(
            $(#[$meta])*
            #[serde_with::skip_serializing_none]
            #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
            #[serde(rename_all = "PascalCase")]
            pub struct $name {
                #[serde(rename = "ApplicationARN")]
                pub application_arn: Option<String>,
                pub stream_name: Option<String>,
                #[serde(rename = "StreamARN")]
                pub stream_arn: Option<StreamArn>,
                pub application_name: Option<String>,
                $( $(#[$field_meta])* pub $field: $ty, )*
            }

            impl ApplicationRef for $name {
                fn application_ref(&self) -> ApplicationNamed<'_> {
                    ApplicationNamed {
                        application_arn: self.application_arn.as_deref(),
                        stream_name: self.stream_name.as_deref(),
                        stream_arn: self.stream_arn.as_ref(),
                        application_name: self.application_name.as_deref(),
                    }
                }
            }
        )*
    };
}

/// How a request names its application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplicationNamed<'a> {
    pub application_arn: Option<&'a str>,
    pub stream_name: Option<&'a str>,
    pub stream_arn: Option<&'a StreamArn>,
    pub application_name: Option<&'a str>,
}

/// An input that names an application.
pub trait ApplicationRef {
    fn application_ref(&self) -> ApplicationNamed<'_>;
}

application_inputs! {
    DescribeApplicationInput {}
    DeleteApplicationInput {}
    ListLeasesInput {
        /// 1..=10,000; absent means 1,000.
        max_results: Option<i32>,
        next_token: Option<String>,
    }
    TakeLeaseInput {
        lease_key: String,
        worker_id: String,
        /// The counter the worker saw in ListLeases.
        lease_counter: i64,
    }
    RenewLeaseInput {
        lease_key: String,
        worker_id: String,
        lease_counter: i64,
    }
    ReleaseLeaseInput {
        lease_key: String,
        worker_id: String,
        lease_counter: i64,
    }
    StealLeaseInput {
        lease_key: String,
        worker_id: String,
        /// The owner the worker saw.
        lease_owner: String,
        lease_counter: i64,
    }
    CheckpointLeaseInput {
        lease_key: String,
        worker_id: String,
        lease_counter: i64,
        /// A sequence number (decimal) or `SHARD_END`.
        checkpoint: String,
        /// Absent means 0.
        checkpoint_sub_sequence_number: Option<i64>,
    }
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListApplicationsInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
    /// 1..=100; absent means 100.
    pub max_results: Option<i32>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListApplicationsOutput {
    #[serde(default)]
    pub applications: Vec<ApplicationSummary>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListLeasesOutput {
    #[serde(default)]
    pub leases: Vec<Lease>,
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LeaseOutput {
    pub lease: Lease,
}
