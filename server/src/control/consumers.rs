//! Enhanced fan-out consumers, and tags by ARN (a stream's or a consumer's).

use crate::control::streams::merge_tags;
use crate::control::{stream_mut, Rules};
use crate::kinesis::views;
use sluice_engine::catalog::{Catalog, ConsumerMeta, StreamStatus};
use sluice_model::{Consumer, ConsumerName, KinesisError, Resource, TagMap};

type Result<T = ()> = std::result::Result<T, KinesisError>;

/// RegisterStreamConsumer on stream `stream`.
pub fn register_consumer(
    catalog: &mut Catalog,
    now_ms: i64,
    rules: Rules<'_>,
    stream: &str,
    consumer_name: &str,
    tags: Option<&TagMap>,
) -> Result<Consumer> {
    let Rules { identity, limits } = rules;
    let tags = tags.cloned().unwrap_or_default();
    if tags.len() > limits.tags_per_resource_max {
        return Err(KinesisError::too_many_tags("consumer", limits.tags_per_resource_max));
    }
    let meta = stream_mut(catalog, identity, stream)?;
    if meta.consumers.iter().any(|consumer| consumer.name == consumer_name) {
        return Err(KinesisError::resource_in_use(format!(
            "Consumer {consumer_name} already exists for stream {stream}"
        )));
    }
    if meta.consumers.len() >= limits.consumers_per_stream_max {
        return Err(KinesisError::limit_exceeded(format!(
            "A stream can have at most {} registered consumers",
            limits.consumers_per_stream_max
        )));
    }
    // Registration is immediate here, so the consumer is ACTIVE at once; AWS reports CREATING
    // for a few seconds first, which clients already poll through.
    let consumer = ConsumerMeta {
        name: consumer_name.to_owned(),
        created_ms: now_ms,
        status: StreamStatus::Active,
        tags,
        resource_policy: None,
    };
    meta.consumers.push(consumer.clone());
    Ok(views::consumer(identity, meta, &consumer))
}

/// DeregisterStreamConsumer of a consumer named in the request: by ARN (`created_s` given:
/// the consumer registered at that second) or by stream and name. ResourceNotFound if there is
/// no such consumer, so that the check and the removal are one change (a replicated node
/// applies it in log order, after whatever changed the consumers before it).
pub fn deregister_named(
    catalog: &mut Catalog,
    rules: Rules<'_>,
    stream: &str,
    consumer_name: &str,
    created_s: Option<i64>,
) -> Result {
    let meta = stream_mut(catalog, rules.identity, stream)?;
    let before = meta.consumers.len();
    meta.consumers.retain(|existing| {
        existing.name != consumer_name
            || created_s.is_some_and(|created| created != existing.created_ms.div_euclid(1000))
    });
    if meta.consumers.len() == before {
        return Err(KinesisError::consumer_not_found(stream, consumer_name));
    }
    Ok(())
}

/// The consumer a consumer ARN names, in the catalog: the registration time must match, since
/// a consumer registered again under the same name is another consumer.
fn consumer_mut<'c>(catalog: &'c mut Catalog, name: &ConsumerName) -> Result<&'c mut ConsumerMeta> {
    let not_found = || KinesisError::consumer_not_found(&name.stream, &name.consumer);
    let stream = catalog.streams.get_mut(&name.stream).ok_or_else(not_found)?;
    stream
        .consumers
        .iter_mut()
        .find(|meta| meta.name == name.consumer && meta.created_ms.div_euclid(1000) == name.created_s)
        .ok_or_else(not_found)
}

fn resource_tags<'c>(
    catalog: &'c mut Catalog,
    rules: Rules<'_>,
    resource: &Resource,
) -> Result<(&'c mut TagMap, &'static str)> {
    match resource {
        Resource::Stream(name) => Ok((&mut stream_mut(catalog, rules.identity, name)?.tags, "stream")),
        Resource::Consumer(name) => Ok((&mut consumer_mut(catalog, name)?.tags, "consumer")),
    }
}

/// TagResource: adds or overwrites tags of a stream or a consumer.
pub fn tag_resource(catalog: &mut Catalog, rules: Rules<'_>, resource: &Resource, tags: &TagMap) -> Result {
    let (existing, kind) = resource_tags(catalog, rules, resource)?;
    merge_tags(existing, tags, kind, rules.limits.tags_per_resource_max)
}

pub fn untag_resource(catalog: &mut Catalog, rules: Rules<'_>, resource: &Resource, keys: &[String]) -> Result {
    let (existing, _) = resource_tags(catalog, rules, resource)?;
    for key in keys {
        existing.remove(key);
    }
    Ok(())
}

/// PutResourcePolicy (`Some`, a document the caller has parsed) and DeleteResourcePolicy
/// (`None`; deleting a policy a resource does not have changes nothing) on a stream or a
/// consumer.
pub fn set_resource_policy(
    catalog: &mut Catalog,
    rules: Rules<'_>,
    resource: &Resource,
    policy: Option<String>,
) -> Result {
    let slot = match resource {
        Resource::Stream(name) => &mut stream_mut(catalog, rules.identity, name)?.resource_policy,
        Resource::Consumer(name) => &mut consumer_mut(catalog, name)?.resource_policy,
    };
    *slot = policy;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::{rules, NOW_MS};
    use sluice_engine::catalog::CapacityMode;
    use sluice_model::ErrorKind;

    #[test]
    fn consumers_register_once_and_within_the_quota() {
        let mut catalog = Catalog::new(1);
        catalog.create_stream("s", 1, CapacityMode::Provisioned, NOW_MS).unwrap();
        let consumer = register_consumer(&mut catalog, NOW_MS, rules(), "s", "c0", None).unwrap();
        assert_eq!(consumer.consumer_arn, rules().identity.consumer_arn("s", "c0", NOW_MS));
        let again = register_consumer(&mut catalog, NOW_MS, rules(), "s", "c0", None);
        assert_eq!(again.unwrap_err().kind, ErrorKind::ResourceInUse);
        for i in 1..20 {
            register_consumer(&mut catalog, NOW_MS, rules(), "s", &format!("c{i}"), None).unwrap();
        }
        let over = register_consumer(&mut catalog, NOW_MS, rules(), "s", "c20", None);
        assert_eq!(over.unwrap_err().kind, ErrorKind::LimitExceeded);
        deregister_named(&mut catalog, rules(), "s", "c0", None).unwrap();
        register_consumer(&mut catalog, NOW_MS, rules(), "s", "c20", None).unwrap();
    }

    #[test]
    fn a_consumer_named_by_arn_is_deregistered_once_and_only_with_its_registration_time() {
        let mut catalog = Catalog::new(1);
        catalog.create_stream("s", 1, CapacityMode::Provisioned, NOW_MS).unwrap();
        register_consumer(&mut catalog, NOW_MS, rules(), "s", "c", None).unwrap();
        let stale = deregister_named(&mut catalog, rules(), "s", "c", Some(NOW_MS / 1000 - 1));
        assert_eq!(stale.unwrap_err().kind, ErrorKind::ResourceNotFound);
        deregister_named(&mut catalog, rules(), "s", "c", Some(NOW_MS / 1000)).unwrap();
        assert!(catalog.streams["s"].consumers.is_empty());
        // Applied a second time (a crash before the applied index was saved): refused, and
        // nothing changes.
        let again = deregister_named(&mut catalog, rules(), "s", "c", Some(NOW_MS / 1000));
        assert_eq!(again.unwrap_err().kind, ErrorKind::ResourceNotFound);
        register_consumer(&mut catalog, NOW_MS, rules(), "s", "d", None).unwrap();
        deregister_named(&mut catalog, rules(), "s", "d", None).unwrap();
        let missing = deregister_named(&mut catalog, rules(), "t", "d", None);
        assert_eq!(missing.unwrap_err().kind, ErrorKind::ResourceNotFound);
    }

    #[test]
    fn consumers_are_tagged_by_arn_with_their_registration_time() {
        let mut catalog = Catalog::new(1);
        catalog.create_stream("s", 1, CapacityMode::Provisioned, NOW_MS).unwrap();
        register_consumer(&mut catalog, NOW_MS, rules(), "s", "c", None).unwrap();
        let name = |created_s| Resource::Consumer(ConsumerName { stream: "s".into(), consumer: "c".into(), created_s });
        let tags: TagMap = [("team".to_owned(), "data".to_owned())].into();
        tag_resource(&mut catalog, rules(), &name(NOW_MS / 1000), &tags).unwrap();
        assert_eq!(catalog.streams["s"].consumers[0].tags, tags);
        let stale = tag_resource(&mut catalog, rules(), &name(NOW_MS / 1000 - 1), &tags);
        assert_eq!(stale.unwrap_err().kind, ErrorKind::ResourceNotFound);
        untag_resource(&mut catalog, rules(), &name(NOW_MS / 1000), &["team".to_owned()]).unwrap();
        assert!(catalog.streams["s"].consumers[0].tags.is_empty());
    }
}
