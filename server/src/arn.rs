//! Amazon Resource Names for streams and consumers, formed and parsed as AWS does:
//! `arn:aws:kinesis:<region>:<account>:stream/<name>` and
//! `arn:aws:kinesis:<region>:<account>:stream/<name>/consumer/<consumer>:<creation epoch s>`.

use crate::error::ServiceError;
use crate::model::StreamRef;
use sluice_engine::catalog::is_valid_name;
use std::sync::OnceLock;

/// The region Sluice reports unless configured (`--region`). A single-node Sluice is one
/// "region"; SDKs need some value, and us-east-1 is what they default to.
pub const REGION_DEFAULT: &str = "us-east-1";
/// The account id Sluice reports unless configured (`--account-id`): the 12 zeros that local
/// AWS emulators use, so existing tooling recognises it as "not a real account".
pub const ACCOUNT_ID_DEFAULT: &str = "000000000000";

/// The configured `(region, account id)`, set once at start-up by [`configure`].
static IDENTITY: OnceLock<(String, String)> = OnceLock::new();

/// Sets the region and account id this process reports and accepts in ARNs. Once per
/// process, before serving; later calls with other values are refused.
pub fn configure(region: &str, account_id: &str) -> Result<(), String> {
    let region_ok = !region.is_empty()
        && region.len() <= 32
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(format!("region {region:?} must be lowercase letters, digits and dashes, like us-east-1"));
    }
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account id {account_id:?} must be 12 digits, as AWS account ids are"));
    }
    let wanted = (region.to_string(), account_id.to_string());
    let set = IDENTITY.get_or_init(|| wanted.clone());
    if *set != wanted {
        return Err(format!("region and account id are already {set:?}"));
    }
    Ok(())
}

/// The region in ARNs and messages.
pub fn region() -> &'static str {
    IDENTITY.get().map_or(REGION_DEFAULT, |(region, _)| region.as_str())
}

/// The account id in ARNs and messages.
pub fn account_id() -> &'static str {
    IDENTITY.get().map_or(ACCOUNT_ID_DEFAULT, |(_, account)| account.as_str())
}

pub fn stream_arn(stream_name: &str) -> String {
    format!("arn:aws:kinesis:{}:{}:stream/{stream_name}", region(), account_id())
}

pub fn consumer_arn(stream_name: &str, consumer_name: &str, created_ms: i64) -> String {
    format!("{}/consumer/{consumer_name}:{}", stream_arn(stream_name), created_ms / 1000)
}

/// The stream name inside a stream ARN of this account and region.
pub fn parse_stream_arn(arn: &str) -> Result<String, ServiceError> {
    let prefix = format!("arn:aws:kinesis:{}:{}:stream/", region(), account_id());
    let name = arn.strip_prefix(&prefix).filter(|name| is_valid_name(name));
    name.map(str::to_string).ok_or_else(|| ServiceError::invalid(format!("Invalid StreamARN {arn}")))
}

/// `(stream name, consumer name, creation epoch seconds)` of a consumer ARN.
pub fn parse_consumer_arn(arn: &str) -> Result<(String, String, i64), ServiceError> {
    let invalid = || ServiceError::invalid(format!("Invalid ConsumerARN {arn}"));
    let (stream_part, rest) = arn.split_once("/consumer/").ok_or_else(invalid)?;
    let stream = parse_stream_arn(stream_part).map_err(|_| invalid())?;
    let (consumer, created) = rest.rsplit_once(':').ok_or_else(invalid)?;
    let created: i64 = created.parse().map_err(|_| invalid())?;
    if !is_valid_name(consumer) {
        return Err(invalid());
    }
    Ok((stream, consumer.to_string(), created))
}

/// The stream a request names, by name or ARN; both given must agree.
pub fn resolve_stream(stream: &StreamRef) -> Result<String, ServiceError> {
    match (&stream.stream_name, &stream.stream_arn) {
        (Some(name), None) => {
            if is_valid_name(name) {
                Ok(name.clone())
            } else {
                Err(ServiceError::validation(format!(
                    "1 validation error detected: Value '{name}' at 'streamName' failed to satisfy constraint: \
                     Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128"
                )))
            }
        }
        (None, Some(arn)) => parse_stream_arn(arn),
        (Some(name), Some(arn)) => {
            let from_arn = parse_stream_arn(arn)?;
            if &from_arn == name {
                Ok(from_arn)
            } else {
                Err(ServiceError::invalid(format!("StreamName {name} and StreamARN {arn} name different streams")))
            }
        }
        (None, None) => Err(ServiceError::invalid("Either StreamName or StreamARN must be provided")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip() {
        let arn = stream_arn("orders");
        assert_eq!(arn, "arn:aws:kinesis:us-east-1:000000000000:stream/orders");
        assert_eq!(parse_stream_arn(&arn).unwrap(), "orders");
        let consumer = consumer_arn("orders", "billing", 1_700_000_000_123);
        assert_eq!(consumer, "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/billing:1700000000");
        assert_eq!(parse_consumer_arn(&consumer).unwrap(), ("orders".into(), "billing".into(), 1_700_000_000));
        for bad in
            ["", "arn:aws:kinesis:eu-west-1:000000000000:stream/x", "arn:aws:kinesis:us-east-1:000000000000:stream/"]
        {
            assert!(parse_stream_arn(bad).is_err(), "{bad}");
        }
        assert!(parse_consumer_arn(&format!("{arn}/consumer/c:notanumber")).is_err());
    }

    #[test]
    fn configure_refuses_what_aws_would_not_name() {
        // Only refusals here: a successful `configure` would fix the identity for every test
        // in this process (the daemon tests cover configured values end to end).
        for (region, account) in [("", "123456789012"), ("US-EAST-1", "123456789012"), ("eu west", "123456789012")] {
            assert!(configure(region, account).is_err(), "{region}");
        }
        for account in ["", "12345678901", "1234567890123", "12345678901x"] {
            assert!(configure("eu-west-1", account).is_err(), "{account}");
        }
        assert_eq!((region(), account_id()), (REGION_DEFAULT, ACCOUNT_ID_DEFAULT));
    }

    #[test]
    fn stream_refs_resolve() {
        let by_name = StreamRef { stream_name: Some("s".into()), stream_arn: None };
        assert_eq!(resolve_stream(&by_name).unwrap(), "s");
        let both = StreamRef { stream_name: Some("s".into()), stream_arn: Some(stream_arn("t")) };
        assert!(resolve_stream(&both).is_err());
        assert!(resolve_stream(&StreamRef::default()).is_err());
        let bad = StreamRef { stream_name: Some("a b".into()), stream_arn: None };
        assert_eq!(resolve_stream(&bad).unwrap_err().kind, crate::error::ErrorKind::Validation);
    }
}
