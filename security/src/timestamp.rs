//! Time stamps in the forms AWS uses: SigV4's ISO 8601 basic format (`20150830T123600Z`), its
//! date stamp (`20150830`), CloudTrail's `2015-08-30T12:36:00Z`, and the dates IAM policies
//! accept. Every function takes the time as an argument (epoch milliseconds): nothing here
//! reads the clock except [`now_ms`], so tests choose their time.

use time::format_description::well_known::{Iso8601, Rfc2822, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_millis() as i64
}

fn datetime(epoch_ms: i64) -> OffsetDateTime {
    let nanos = i128::from(epoch_ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `20150830T123600Z`: SigV4's `X-Amz-Date`.
pub fn amz_date(epoch_ms: i64) -> String {
    let t = datetime(epoch_ms);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `20150830`: the date in a SigV4 credential scope.
pub fn date_stamp(epoch_ms: i64) -> String {
    amz_date(epoch_ms)[..8].to_string()
}

/// Parses SigV4's ISO 8601 basic format, `YYYYMMDD'T'HHMMSS'Z'`, into epoch milliseconds.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    if text.len() != 16 {
        return None;
    }
    let parsed = PrimitiveDateTime::parse(text, format).ok()?;
    Some(parsed.assume_utc().unix_timestamp() * 1000)
}

/// Parses an HTTP `Date` header: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, what most
/// clients send) or RFC 2822 with a numeric zone (`Sun, 06 Nov 1994 08:49:37 -0000`, what
/// botocore sends), into epoch milliseconds.
pub fn parse_http_date(text: &str) -> Option<i64> {
    if let Ok(parsed) = OffsetDateTime::parse(text, &Rfc2822) {
        return Some(parsed.unix_timestamp() * 1000);
    }
    let system = httpdate::parse_http_date(text).ok()?;
    let since = system.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since.as_millis() as i64)
}

/// `2015-08-30T12:36:00Z`: CloudTrail's `eventTime`, and `aws:CurrentTime` in policies.
pub fn iso8601(epoch_ms: i64) -> String {
    let t = datetime(epoch_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses a date as IAM's Date condition operators accept it: an ISO 8601 date-time
/// (`2020-01-01T00:00:00Z`, with or without fractional seconds or an offset), a date alone
/// (`2020-01-01`, midnight UTC), or epoch seconds (`1577836800`). Epoch milliseconds out.
pub fn parse_policy_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok()?.checked_mul(1000);
    }
    if let Ok(parsed) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some((parsed.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    if let Ok(parsed) = OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        return Some((parsed.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    if let Ok(parsed) = PrimitiveDateTime::parse(text, &Iso8601::DEFAULT) {
        return Some(parsed.assume_offset(UtcOffset::UTC).unix_timestamp() * 1000);
    }
    let date = Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2015-08-30T12:36:00Z, the time in AWS's SigV4 examples.
    const EXAMPLE_MS: i64 = 1_440_938_160_000;

    #[test]
    fn formats_and_parses_the_sigv4_forms() {
        assert_eq!(amz_date(EXAMPLE_MS), "20150830T123600Z");
        assert_eq!(date_stamp(EXAMPLE_MS), "20150830");
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(EXAMPLE_MS));
        assert_eq!(iso8601(EXAMPLE_MS), "2015-08-30T12:36:00Z");
        for bad in ["", "20150830T123600", "2015-08-30T12:36:00Z", "20151330T123600Z", "20150830T123600Z0", "a"] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_http_dates_as_clients_send_them() {
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(EXAMPLE_MS));
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 -0000"), Some(EXAMPLE_MS));
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 14:36:00 +0200"), Some(EXAMPLE_MS));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn parses_policy_dates_in_each_form() {
        assert_eq!(parse_policy_date("2015-08-30T12:36:00Z"), Some(EXAMPLE_MS));
        assert_eq!(parse_policy_date("2015-08-30T12:36:00.000Z"), Some(EXAMPLE_MS));
        assert_eq!(parse_policy_date("2015-08-30T14:36:00+02:00"), Some(EXAMPLE_MS));
        assert_eq!(parse_policy_date("2015-08-30"), Some(EXAMPLE_MS - (12 * 3600 + 36 * 60) * 1000));
        assert_eq!(parse_policy_date("1440938160"), Some(EXAMPLE_MS));
        assert_eq!(parse_policy_date("soon"), None);
        assert_eq!(parse_policy_date("99999999999999999999"), None);
    }

    proptest! {
        #[test]
        fn amz_dates_round_trip(seconds in 0i64..253_402_300_799) {
            let ms = seconds * 1000;
            prop_assert_eq!(parse_amz_date(&amz_date(ms)), Some(ms));
            prop_assert_eq!(parse_policy_date(&iso8601(ms)), Some(ms));
        }
    }
}
