//! Consumer-group leases as the API shows them: the catalog's streams and shards as the
//! delivery state's, the state's applications and leases as the model's shapes, its errors
//! as exceptions, and checkpoints parsed from the wire (docs/clients.md). Pure.

use sluice_engine::catalog::{ShardMeta, StreamMeta};
use sluice_model::{
    ApplicationDescription, ApplicationStatus, ApplicationSummary, ErrorKind, HashKey, HashKeyRange, Identity,
    InitialPosition, InitialPositionType, KinesisError, Lease, Timestamp,
};
use sluice_state::ids::{ShardNumber, ShardUid, StreamUid};
use sluice_state::lease::{self, Application, Checkpoint, LeaseError, LeaseErrorKind, NewShard};
use sluice_state::stream::ShardInfo;

/// A stream's identity in the delivery state: the uid of its first shard. Shard uids are never
/// reused and a stream keeps its shards for life (closed shards stay in the catalog), so a
/// stream deleted and created again under its name is another stream, as the state requires.
pub fn stream_uid(stream: &StreamMeta) -> StreamUid {
    StreamUid(stream.shards.iter().map(|shard| shard.uid).min().expect("a stream has at least one shard"))
}

/// A catalog shard as the delivery state sees it.
pub fn shard_info(shard: &ShardMeta, stream: &StreamMeta) -> ShardInfo {
    let parents = [shard.parent_shard_number, shard.adjacent_parent_shard_number]
        .into_iter()
        .flatten()
        .filter_map(|number| stream.shard(number))
        .map(|parent| ShardUid(parent.uid))
        .collect();
    ShardInfo {
        uid: ShardUid(shard.uid),
        number: ShardNumber(shard.number),
        parents,
        hash_key_start: shard.hash_key_start,
        hash_key_end: shard.hash_key_end,
    }
}

/// Every shard of `stream`, for CreateApplication.
pub fn new_shards(stream: &StreamMeta) -> Vec<NewShard> {
    stream.shards.iter().map(|shard| NewShard { info: shard_info(shard, stream), closed: !shard.is_open() }).collect()
}

/// The state's initial position from the request's (validated) one.
pub fn initial_position(position: Option<&InitialPosition>) -> lease::InitialPosition {
    match position.map(|position| (&position.r#type, position.timestamp)) {
        Some((InitialPositionType::TrimHorizon, _)) => lease::InitialPosition::TrimHorizon,
        Some((InitialPositionType::AtTimestamp, Some(timestamp))) => {
            lease::InitialPosition::AtTimestamp { timestamp_ms: timestamp.epoch_ms() }
        }
        _ => lease::InitialPosition::Latest,
    }
}

fn position_view(position: lease::InitialPosition) -> InitialPosition {
    match position {
        lease::InitialPosition::TrimHorizon => {
            InitialPosition { r#type: InitialPositionType::TrimHorizon, timestamp: None }
        }
        lease::InitialPosition::Latest => InitialPosition { r#type: InitialPositionType::Latest, timestamp: None },
        lease::InitialPosition::AtTimestamp { timestamp_ms } => InitialPosition {
            r#type: InitialPositionType::AtTimestamp,
            timestamp: Some(Timestamp::from_epoch_ms(timestamp_ms)),
        },
    }
}

pub fn description(identity: &Identity, stream: &str, app: &Application) -> ApplicationDescription {
    ApplicationDescription {
        application_name: app.name.clone(),
        application_arn: identity.application_arn(stream, &app.name, app.created_ms),
        application_status: ApplicationStatus::Active,
        application_creation_timestamp: Timestamp::from_epoch_ms(app.created_ms),
        stream_arn: identity.stream_arn(stream),
        initial_position: position_view(app.initial_position),
        lease_duration_millis: app.lease_duration_ms,
        lease_count: app.leases.len() as i64,
    }
}

pub fn summary(identity: &Identity, stream: &str, app: &Application) -> ApplicationSummary {
    ApplicationSummary {
        application_name: app.name.clone(),
        application_arn: identity.application_arn(stream, &app.name, app.created_ms),
        application_status: ApplicationStatus::Active,
        application_creation_timestamp: Timestamp::from_epoch_ms(app.created_ms),
        stream_arn: identity.stream_arn(stream),
    }
}

/// A lease as the API shows it.
pub fn lease_view(app: &Application, lease: &lease::Lease) -> Lease {
    let key_of = |uid: &ShardUid| app.leases.get(uid).map(|other| other.key());
    let (checkpoint, sub_sequence_number) = match lease.checkpoint {
        Checkpoint::Sequence { sequence_number, sub_sequence_number } => {
            (sequence_number.to_string(), sub_sequence_number as i64)
        }
        other => (other.to_string(), 0),
    };
    Lease {
        lease_key: lease.key(),
        lease_owner: lease.owner.as_ref().map(|owner| owner.as_str().to_owned()),
        lease_counter: lease.counter as i64,
        lease_expiration_timestamp: lease.owner.as_ref().map(|_| Timestamp::from_epoch_ms(lease.expires_ms)),
        checkpoint,
        checkpoint_sub_sequence_number: sub_sequence_number,
        owner_switches_since_checkpoint: lease.owner_switches_since_checkpoint as i64,
        parent_shard_ids: lease
            .shard
            .parents
            .iter()
            .map(|uid| key_of(uid).unwrap_or_else(|| format!("uid {uid}")))
            .collect(),
        child_shard_ids: lease.children.iter().filter_map(key_of).collect(),
        hash_key_range: HashKeyRange {
            starting_hash_key: HashKey(lease.shard.hash_key_start),
            ending_hash_key: HashKey(lease.shard.hash_key_end),
        },
        shard_closed: lease.closed,
    }
}

/// A checkpoint a worker sends: a sequence number (with its sub-sequence number) or
/// `SHARD_END` (the shape checker let only those through).
pub fn parse_checkpoint(text: &str, sub_sequence_number: Option<i64>) -> Result<Checkpoint, KinesisError> {
    if text == "SHARD_END" {
        return Ok(Checkpoint::ShardEnd);
    }
    let sequence_number: u128 = text.parse().map_err(|_| {
        KinesisError::invalid_argument(format!("Checkpoint {text} is neither a sequence number nor SHARD_END"))
    })?;
    let sub_sequence_number = u64::try_from(sub_sequence_number.unwrap_or(0))
        .map_err(|_| KinesisError::invalid_argument("CheckpointSubSequenceNumber must not be negative"))?;
    Ok(Checkpoint::Sequence { sequence_number, sub_sequence_number })
}

/// A refused lease command as the exception docs/clients.md names.
pub fn lease_error(error: &LeaseError) -> KinesisError {
    let kind = match error.kind() {
        LeaseErrorKind::ResourceNotFound => ErrorKind::ResourceNotFound,
        LeaseErrorKind::ResourceInUse => ErrorKind::ResourceInUse,
        LeaseErrorKind::LeaseLost => ErrorKind::LeaseLost,
        LeaseErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
    };
    KinesisError::new(kind, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_parse_as_workers_send_them() {
        assert_eq!(parse_checkpoint("SHARD_END", None).unwrap(), Checkpoint::ShardEnd);
        assert!(
            parse_checkpoint("49590338271490256608559692538361571095921575989136588898", Some(3)).is_err(),
            "AWS's 56-digit numbers do not fit: Sluice's own are 37 digits"
        );
        assert_eq!(
            parse_checkpoint("1329227995784915872903807060280344618", Some(2)).unwrap(),
            Checkpoint::Sequence { sequence_number: 1329227995784915872903807060280344618, sub_sequence_number: 2 }
        );
        assert_eq!(parse_checkpoint("12", Some(-1)).unwrap_err().kind, ErrorKind::InvalidArgument);
    }
}
