//! The checks of the settings operations that need no server state.

use crate::error::{KinesisError, Violation};
use crate::identity::Identity;
use crate::limits::{MAX_RECORD_SIZE_KIB_MAX, MAX_RECORD_SIZE_KIB_MIN};
use crate::operations::Request;
use crate::settings::UpdateMaxRecordSizeInput;

type Result<T = ()> = std::result::Result<T, KinesisError>;

/// The checks of a settings request that need no state; `None` for any other request.
pub(crate) fn validate(request: &Request, identity: &Identity) -> Option<Result> {
    Some(match request {
        Request::UpdateMaxRecordSize(input) => update_max_record_size(input, identity),
        Request::UpdateStreamWarmThroughput(input) => {
            if input.warm_throughput_mi_bps < 0 {
                return Some(Err(KinesisError::validation(Violation::min_value(
                    input.warm_throughput_mi_bps,
                    "warmThroughputMiBps",
                    0,
                ))));
            }
            identity.resolve_stream(input.stream_name.as_deref(), input.stream_arn.as_ref()).map(drop)
        }
        Request::UpdateStreamRecordDistributionStrategy(input) => {
            super::known(&input.record_distribution_strategy, "recordDistributionStrategy")
                .and_then(|()| identity.stream_name_of(&input.stream_arn).map(drop))
        }
        Request::UpdateAccountSettings(input) => super::known(
            &input.minimum_throughput_billing_commitment.status,
            "minimumThroughputBillingCommitment.status",
        ),
        _ => return None,
    })
}

fn update_max_record_size(input: &UpdateMaxRecordSizeInput, identity: &Identity) -> Result {
    let kib = input.max_record_size_in_kib;
    if kib < MAX_RECORD_SIZE_KIB_MIN {
        return Err(KinesisError::validation(Violation::min_value(kib, "maxRecordSizeInKiB", MAX_RECORD_SIZE_KIB_MIN)));
    }
    if kib > MAX_RECORD_SIZE_KIB_MAX {
        return Err(KinesisError::validation(Violation::max_value(kib, "maxRecordSizeInKiB", MAX_RECORD_SIZE_KIB_MAX)));
    }
    match &input.stream_arn {
        Some(arn) => identity.stream_name_of(arn).map(drop),
        None => Err(KinesisError::invalid_argument("StreamARN must be provided")),
    }
}
