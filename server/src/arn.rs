//! Amazon Resource Names for streams and consumers, formed and parsed as AWS does:
//! `arn:aws:kinesis:<region>:<account>:stream/<name>` and
//! `arn:aws:kinesis:<region>:<account>:stream/<name>/consumer/<consumer>:<creation epoch s>`.

use crate::error::ServiceError;
use crate::model::StreamRef;
use sluice_engine::catalog::is_valid_name;

/// The region Sluice reports. A single-node Sluice is one "region"; SDKs need some value.
pub const REGION: &str = "us-east-1";
/// The account id Sluice reports: the 12 zeros that local AWS emulators use, so existing
/// tooling recognises it as "not a real account".
pub const ACCOUNT_ID: &str = "000000000000";

pub fn stream_arn(stream_name: &str) -> String {
    format!("arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{stream_name}")
}

pub fn consumer_arn(stream_name: &str, consumer_name: &str, created_ms: i64) -> String {
    format!("{}/consumer/{consumer_name}:{}", stream_arn(stream_name), created_ms / 1000)
}

/// The stream name inside a stream ARN of this account and region.
pub fn parse_stream_arn(arn: &str) -> Result<String, ServiceError> {
    let prefix = format!("arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/");
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
