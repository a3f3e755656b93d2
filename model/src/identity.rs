//! Who the server is, for ARNs and messages: a region and an account id, passed as a value
//! (a server holds one [`Identity`]; nothing here is process-global).
//!
//! ARNs are formed and read as AWS does:
//! `arn:aws:kinesis:<region>:<account>:stream/<name>` and
//! `arn:aws:kinesis:<region>:<account>:stream/<name>/consumer/<consumer>:<creation epoch s>`.

use crate::error::{ErrorKind, KinesisError, Violation};
use crate::ids::{ConsumerArn, ResourceArn, ShardId, StreamArn};
use crate::limits::NAME_CHARS_MAX;

/// The region Sluice reports unless configured. A single-node Sluice is one "region"; SDKs
/// need some value, and us-east-1 is what they default to.
pub const REGION_DEFAULT: &str = "us-east-1";
/// The account id Sluice reports unless configured: the twelve zeros that local AWS emulators
/// use, so that tooling recognises it as "not a real account".
pub const ACCOUNT_ID_DEFAULT: &str = "000000000000";
/// Longest region name accepted (AWS's are at most 20-odd characters).
pub const REGION_CHARS_MAX: usize = 32;

/// The pattern of stream and consumer names, as validation messages quote it.
pub const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

/// A stream or consumer name Kinesis accepts: 1..=128 characters of `[a-zA-Z0-9_.-]`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=NAME_CHARS_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The region and account a server answers as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    region: String,
    account_id: String,
    /// `arn:aws:kinesis:<region>:<account>:stream/`, formed once.
    stream_arn_prefix: String,
}

/// A region or account id AWS would not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("region {0:?} must be lowercase letters, digits and dashes, like us-east-1")]
    Region(String),
    #[error("account id {0:?} must be 12 digits, as AWS account ids are")]
    AccountId(String),
}

impl Default for Identity {
    fn default() -> Identity {
        Identity::new(REGION_DEFAULT, ACCOUNT_ID_DEFAULT).expect("the defaults are valid")
    }
}

/// What a resource ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Stream(String),
    Consumer(ConsumerName),
}

/// The parts of a consumer ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerName {
    pub stream: String,
    pub consumer: String,
    /// When the consumer was registered, epoch seconds: a consumer registered again under the
    /// same name is another consumer.
    pub created_s: i64,
}

impl Identity {
    pub fn new(region: &str, account_id: &str) -> Result<Identity, IdentityError> {
        let region_ok = !region.is_empty()
            && region.len() <= REGION_CHARS_MAX
            && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(IdentityError::Region(region.to_owned()));
        }
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentityError::AccountId(account_id.to_owned()));
        }
        Ok(Identity {
            stream_arn_prefix: format!("arn:aws:kinesis:{region}:{account_id}:stream/"),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn stream_arn(&self, stream: &str) -> StreamArn {
        StreamArn::from(format!("{}{stream}", self.stream_arn_prefix))
    }

    pub fn consumer_arn(&self, stream: &str, consumer: &str, created_ms: i64) -> ConsumerArn {
        ConsumerArn::from(format!(
            "{}{stream}/consumer/{consumer}:{}",
            self.stream_arn_prefix,
            created_ms.div_euclid(1000)
        ))
    }

    /// The stream name inside a stream ARN of this account and region.
    pub fn stream_name_of<'a>(&self, arn: &'a StreamArn) -> Result<&'a str, KinesisError> {
        self.stream_name_in(arn.as_str()).ok_or_else(|| KinesisError::invalid_stream_arn(arn.as_str()))
    }

    fn stream_name_in<'a>(&self, arn: &'a str) -> Option<&'a str> {
        arn.strip_prefix(self.stream_arn_prefix.as_str()).filter(|name| is_valid_name(name))
    }

    /// The stream, consumer and creation time a consumer ARN of this account names.
    pub fn consumer_of(&self, arn: &ConsumerArn) -> Result<ConsumerName, KinesisError> {
        self.consumer_in(arn.as_str()).ok_or_else(|| KinesisError::invalid_consumer_arn(arn.as_str()))
    }

    fn consumer_in(&self, arn: &str) -> Option<ConsumerName> {
        let (stream_part, rest) = arn.split_once("/consumer/")?;
        let stream = self.stream_name_in(stream_part)?;
        let (consumer, created) = rest.rsplit_once(':')?;
        let created_s: i64 = created.parse().ok()?;
        is_valid_name(consumer).then(|| ConsumerName {
            stream: stream.to_owned(),
            consumer: consumer.to_owned(),
            created_s,
        })
    }

    /// A consumer-group application's ARN (Sluice's own):
    /// `arn:aws:kinesis:<region>:<account>:stream/<stream>/application/<name>:<created s>`.
    pub fn application_arn(&self, stream: &str, application: &str, created_ms: i64) -> String {
        format!("{}{stream}/application/{application}:{}", self.stream_arn_prefix, created_ms.div_euclid(1000))
    }

    /// The stream, application and creation time an application ARN of this account names.
    pub fn application_of(&self, arn: &str) -> Result<ApplicationName, KinesisError> {
        let parsed = (|| {
            let (stream_part, rest) = arn.split_once("/application/")?;
            let stream = self.stream_name_in(stream_part)?;
            let (application, created) = rest.rsplit_once(':')?;
            let created_s: i64 = created.parse().ok()?;
            is_valid_name(application).then(|| ApplicationName {
                stream: stream.to_owned(),
                application: application.to_owned(),
                created_s: Some(created_s),
            })
        })();
        parsed.ok_or_else(|| {
            KinesisError::invalid_argument(format!(
                "ApplicationARN {arn} is not an application ARN of this account and region"
            ))
        })
    }

    /// The application a lease request names: by `ApplicationARN`, or by `StreamName` /
    /// `StreamARN` and `ApplicationName`.
    pub fn resolve_application(
        &self,
        named: crate::leases::ApplicationNamed<'_>,
    ) -> Result<ApplicationName, KinesisError> {
        match (named.application_arn, named.application_name) {
            (Some(arn), _) => self.application_of(arn),
            (None, Some(application)) => {
                if !is_valid_name(application) {
                    return Err(invalid_name(application, "applicationName"));
                }
                let stream = self.resolve_stream(named.stream_name, named.stream_arn)?;
                Ok(ApplicationName { stream: stream.to_owned(), application: application.to_owned(), created_s: None })
            }
            (None, None) => Err(KinesisError::invalid_argument(
                "Either ApplicationARN, or StreamName or StreamARN and ApplicationName, must be provided",
            )),
        }
    }

    /// What a TagResource-style ARN names: a stream or a consumer of this account.
    pub fn resource_of(&self, arn: &ResourceArn) -> Result<Resource, KinesisError> {
        let text = arn.as_str();
        let resource = if text.contains("/consumer/") {
            self.consumer_in(text).map(Resource::Consumer)
        } else {
            self.stream_name_in(text).map(|name| Resource::Stream(name.to_owned()))
        };
        resource.ok_or_else(|| KinesisError::invalid_resource_arn(text))
    }

    /// The stream a request names by `StreamName` or `StreamARN` (AWS accepts either; both
    /// given must agree).
    pub fn resolve_stream<'a>(
        &self,
        name: Option<&'a str>,
        arn: Option<&'a StreamArn>,
    ) -> Result<&'a str, KinesisError> {
        match (name, arn) {
            (Some(name), None) => {
                if is_valid_name(name) {
                    Ok(name)
                } else {
                    Err(invalid_name(name, "streamName"))
                }
            }
            (None, Some(arn)) => self.stream_name_of(arn),
            (Some(name), Some(arn)) => {
                let from_arn = self.stream_name_of(arn)?;
                if from_arn == name {
                    Ok(from_arn)
                } else {
                    Err(KinesisError::invalid_argument(format!(
                        "StreamName {name} and StreamARN {arn} name different streams"
                    )))
                }
            }
            (None, None) => Err(KinesisError::invalid_argument("Either StreamName or StreamARN must be provided")),
        }
    }
}

/// An application as a lease request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationName {
    pub stream: String,
    pub application: String,
    /// From an ARN: the creation time it carries, in seconds.
    pub created_s: Option<i64>,
}

/// The errors whose AWS messages name the caller's account or region.
impl KinesisError {
    /// AWS: `Stream orders under account 123456789012 not found.`
    pub fn stream_not_found(identity: &Identity, stream: &str) -> KinesisError {
        KinesisError::resource_not_found(format!("Stream {stream} under account {} not found.", identity.account_id()))
    }

    /// AWS: `Stream orders under account 123456789012 already exists.`
    pub fn stream_exists(identity: &Identity, stream: &str) -> KinesisError {
        KinesisError::resource_in_use(format!(
            "Stream {stream} under account {} already exists.",
            identity.account_id()
        ))
    }

    /// AWS: `Shard shardId-000000000009 in stream orders under account 123456789012 does not
    /// exist`.
    pub fn shard_not_found(identity: &Identity, stream: &str, shard: &ShardId) -> KinesisError {
        KinesisError::resource_not_found(format!(
            "Shard {shard} in stream {stream} under account {} does not exist",
            identity.account_id()
        ))
    }

    /// AWS: `This request would exceed the shard limit for the account 123456789012 in
    /// us-east-1. Current shard count for the account: 500. Limit: 500. Number of additional
    /// shards that would have resulted from this request: 1.`
    pub fn shard_limit_exceeded(identity: &Identity, open: u32, limit: u32, additional: u32) -> KinesisError {
        KinesisError::limit_exceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {open}. Limit: {limit}. Number of additional shards that would have resulted from this request: {additional}.",
            identity.account_id(),
            identity.region()
        ))
    }

    /// A stream that must be ACTIVE for the call is CREATING, UPDATING or DELETING.
    pub fn stream_not_active(identity: &Identity, stream: &str, doing: &str) -> KinesisError {
        KinesisError::resource_in_use(format!(
            "Stream {stream} under account {} is not ACTIVE; {doing}",
            identity.account_id()
        ))
    }

    /// The shard's quota refused a write, a read or an iterator (AWS: `Rate exceeded for shard
    /// shardId-000000000001 in stream orders under account 123456789012.`).
    pub fn rate_exceeded(identity: &Identity, stream: &str, shard: &ShardId, quota: &str) -> KinesisError {
        KinesisError::new(
            ErrorKind::ProvisionedThroughputExceeded,
            format!(
                "Rate exceeded for shard {shard} in stream {stream} under account {}. {quota}",
                identity.account_id()
            ),
        )
    }
}

/// A name that is not 1..=128 characters of `[a-zA-Z0-9_.-]`: a ValidationException naming
/// whichever constraint it breaks, as the shape checker would.
pub fn invalid_name(name: &str, path: &str) -> KinesisError {
    let violation = if name.is_empty() {
        Violation::min_length(name, path, 1)
    } else if name.chars().count() > NAME_CHARS_MAX {
        Violation::max_length(name, path, NAME_CHARS_MAX)
    } else {
        Violation::pattern(name, path, NAME_PATTERN)
    };
    KinesisError::validation(violation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn arns_round_trip() {
        let identity = Identity::default();
        let arn = identity.stream_arn("orders");
        assert_eq!(arn, "arn:aws:kinesis:us-east-1:000000000000:stream/orders");
        assert_eq!(identity.stream_name_of(&arn).unwrap(), "orders");
        let consumer = identity.consumer_arn("orders", "billing", 1_700_000_000_123);
        assert_eq!(consumer, "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/billing:1700000000");
        let parsed = identity.consumer_of(&consumer).unwrap();
        assert_eq!(
            (parsed.stream.as_str(), parsed.consumer.as_str(), parsed.created_s),
            ("orders", "billing", 1_700_000_000)
        );
        for bad in
            ["", "arn:aws:kinesis:eu-west-1:000000000000:stream/x", "arn:aws:kinesis:us-east-1:000000000000:stream/"]
        {
            assert_eq!(identity.stream_name_of(&StreamArn::from(bad)).unwrap_err().kind, ErrorKind::InvalidArgument);
        }
        assert!(identity.consumer_of(&ConsumerArn::from(format!("{arn}/consumer/c:notanumber"))).is_err());
        assert_eq!(identity.resource_of(&ResourceArn::from(consumer.as_str())).unwrap(), Resource::Consumer(parsed));
        assert_eq!(identity.resource_of(&ResourceArn::from(arn.as_str())).unwrap(), Resource::Stream("orders".into()));
        let other = Identity::new("eu-west-1", "123456789012").unwrap();
        assert_eq!(other.stream_arn("s"), "arn:aws:kinesis:eu-west-1:123456789012:stream/s");
        assert!(other.stream_name_of(&arn).is_err(), "another account's ARN");
    }

    #[test]
    fn identities_are_what_aws_would_name() {
        for (region, account) in [("", "123456789012"), ("US-EAST-1", "123456789012"), ("eu west", "123456789012")] {
            assert!(matches!(Identity::new(region, account), Err(IdentityError::Region(_))), "{region}");
        }
        for account in ["", "12345678901", "1234567890123", "12345678901x"] {
            assert!(matches!(Identity::new("eu-west-1", account), Err(IdentityError::AccountId(_))), "{account}");
        }
    }

    #[test]
    fn streams_resolve_by_name_or_arn() {
        let identity = Identity::default();
        let t = identity.stream_arn("t");
        assert_eq!(identity.resolve_stream(Some("s"), None).unwrap(), "s");
        assert_eq!(identity.resolve_stream(None, Some(&t)).unwrap(), "t");
        assert_eq!(identity.resolve_stream(Some("s"), Some(&t)).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(identity.resolve_stream(None, None).unwrap_err().kind, ErrorKind::InvalidArgument);
        let bad = identity.resolve_stream(Some("a b"), None).unwrap_err();
        assert_eq!(bad.kind, ErrorKind::Validation);
        assert_eq!(
            bad.message,
            "1 validation error detected: Value 'a b' at 'streamName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
    }
}
