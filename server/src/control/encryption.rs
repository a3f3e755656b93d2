//! StartStreamEncryption and StopStreamEncryption as catalog changes. The key is resolved
//! before (a KMS question, `ops/encryption.rs`); here the stream records it, or forgets it, and
//! reports UPDATING for [`ENCRYPTION_UPDATING_MS`].

use crate::control::{stream_mut, Rules};
use crate::limits::ENCRYPTION_UPDATING_MS;
use sluice_engine::catalog::{Catalog, StreamEncryption, StreamMeta, StreamStatus};
use sluice_model::KinesisError;

type Result<T = ()> = std::result::Result<T, KinesisError>;

/// Whether the stream is in its UPDATING window after an encryption change at `now_ms`.
pub fn encryption_updating(stream: &StreamMeta, now_ms: i64) -> bool {
    stream.encryption_updating_until_ms.is_some_and(|until_ms| now_ms < until_ms)
}

fn require_active(stream: &StreamMeta, rules: Rules<'_>, now_ms: i64) -> Result {
    if stream.status != StreamStatus::Active || encryption_updating(stream, now_ms) {
        return Err(KinesisError::stream_not_active(rules.identity, &stream.name, "wait until it is"));
    }
    Ok(())
}

/// Starts (or changes the key of) server-side encryption: appends from now on are sealed.
pub fn start(catalog: &mut Catalog, now_ms: i64, rules: Rules<'_>, name: &str, encryption: StreamEncryption) -> Result {
    let stream = stream_mut(catalog, rules.identity, name)?;
    require_active(stream, rules, now_ms)?;
    stream.encryption = Some(encryption);
    stream.encryption_updating_until_ms = Some(now_ms + ENCRYPTION_UPDATING_MS);
    Ok(())
}

/// Stops server-side encryption: appends from now on are plaintext; sealed records stay sealed
/// on disk and are still opened on read. `key_id` must be the key the stream uses, as Kinesis
/// requires StopStreamEncryption to name it.
pub fn stop(catalog: &mut Catalog, now_ms: i64, rules: Rules<'_>, name: &str, key_id: &str) -> Result {
    let stream = stream_mut(catalog, rules.identity, name)?;
    require_active(stream, rules, now_ms)?;
    match &stream.encryption {
        None => {
            return Err(KinesisError::invalid_argument(format!(
                "Stream {name} under account {} is not encrypted.",
                rules.identity.account_id()
            )))
        }
        Some(current) if current.key_id != key_id && current.master_key_id != key_id => {
            return Err(KinesisError::invalid_argument(format!(
                "Stream {name} under account {} is encrypted with key {}, not {key_id}.",
                rules.identity.account_id(),
                current.key_id
            )))
        }
        Some(_) => {}
    }
    stream.encryption = None;
    stream.encryption_updating_until_ms = Some(now_ms + ENCRYPTION_UPDATING_MS);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::{rules, NOW_MS};
    use sluice_model::{CreateStreamInput, ErrorKind, StreamMode, StreamModeDetails};

    fn catalog() -> Catalog {
        let mut catalog = Catalog::new(1);
        let input = CreateStreamInput {
            stream_name: "s".into(),
            shard_count: Some(1),
            stream_mode_details: Some(StreamModeDetails::from(StreamMode::Provisioned)),
            ..Default::default()
        };
        crate::control::streams::create_stream(&mut catalog, NOW_MS, rules(), &input).unwrap();
        catalog
    }

    fn key(id: &str) -> StreamEncryption {
        StreamEncryption { key_id: id.into(), master_key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into() }
    }

    #[test]
    fn start_and_stop_go_through_updating_and_need_the_key_in_use() {
        let mut catalog = catalog();
        let kind = |result: Result| result.unwrap_err().kind;
        assert_eq!(kind(stop(&mut catalog, NOW_MS, rules(), "s", "alias/a")), ErrorKind::InvalidArgument);
        start(&mut catalog, NOW_MS, rules(), "s", key("alias/a")).unwrap();
        assert!(encryption_updating(&catalog.streams["s"], NOW_MS + ENCRYPTION_UPDATING_MS - 1));
        assert_eq!(kind(start(&mut catalog, NOW_MS + 1, rules(), "s", key("alias/b"))), ErrorKind::ResourceInUse);
        let later = NOW_MS + ENCRYPTION_UPDATING_MS;
        assert!(!encryption_updating(&catalog.streams["s"], later));
        assert_eq!(kind(stop(&mut catalog, later, rules(), "s", "alias/other")), ErrorKind::InvalidArgument);
        stop(&mut catalog, later, rules(), "s", "1234abcd-12ab-34cd-56ef-1234567890ab").unwrap();
        assert_eq!(catalog.streams["s"].encryption, None);
        assert_eq!(kind(start(&mut catalog, later, rules(), "nope", key("alias/a"))), ErrorKind::ResourceNotFound);
    }
}
