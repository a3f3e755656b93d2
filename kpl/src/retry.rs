//! Which failures are worth retrying, and how long to wait before the retry.
//!
//! # Classification
//!
//! The AWS SDKs' "standard" retry mode (botocore `retries/standard.py`, the same lists in the
//! Java and JS SDKs) retries throttling error codes, a few transient codes, HTTP 500, 502, 503
//! and 504, and connection errors, and nothing else. PutRecords adds per-record error codes:
//! `ProvisionedThroughputExceededException` (throttling) and `InternalFailure` (transient); and
//! `KMSThrottlingException` is, as its name says, throttling. Everything else (a missing
//! stream, a bad argument, access denied, a disabled KMS key) fails at once: retrying cannot
//! help, and holding the records until their TTL only hides the error. The KPL retries every
//! error until `RecordTtl`; that is the one place this producer deliberately differs.
//!
//! # Backoff
//!
//! Exponential with full jitter, as the SDKs do: before retry `n` (1-based), a uniform wait in
//! `[0, min(max, base * 2^(n-1))]`, drawn from the producer's seeded RNG so runs repeat.

use rand::Rng;

/// How a failed call or record should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The shard or account is over its quota: retry after a backoff (unless
    /// `fail_if_throttled`).
    Throttled,
    /// A passing fault of the service or the network: retry after a backoff.
    Transient,
    /// Retrying cannot help: fail the records with this error.
    Permanent,
}

/// Error codes the AWS SDKs treat as throttling (botocore standard retry mode), plus
/// `KMSThrottlingException`.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
    "KMSThrottlingException",
];

/// The code a driver reports for a call that got no answer: connection refused or reset, a
/// timeout (botocore's `ConnectionError`/`HTTPClientError`, retried as transient).
pub const CONNECTION_ERROR_CODE: &str = "ConnectionError";

/// Error codes the AWS SDKs treat as transient, plus PutRecords' per-record `InternalFailure`
/// and the generic server-side names that come with HTTP 5xx.
const TRANSIENT_CODES: &[&str] = &[
    CONNECTION_ERROR_CODE,
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "InternalFailure",
    "InternalFailureException",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// HTTP statuses the AWS SDKs retry whatever the error code.
const TRANSIENT_HTTP_STATUSES: &[u16] = &[500, 502, 503, 504];

/// Classifies an error by its code (the `__type` of an AWS error, or a PutRecords entry's
/// `ErrorCode`) and, for whole-call errors, the HTTP status.
pub fn classify(code: &str, http_status: Option<u16>) -> ErrorClass {
    if THROTTLING_CODES.contains(&code) {
        ErrorClass::Throttled
    } else if TRANSIENT_CODES.contains(&code) || http_status.is_some_and(|s| TRANSIENT_HTTP_STATUSES.contains(&s)) {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

/// The wait before retry number `retry` (1 for the first retry), full jitter.
pub fn backoff_ms(rng: &mut impl Rng, retry: u32, base_ms: u64, max_ms: u64) -> u64 {
    let exponent = retry.saturating_sub(1).min(32);
    let ceiling = base_ms.saturating_mul(1u64 << exponent).min(max_ms);
    rng.gen_range(0..=ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn codes_are_classified_as_the_sdks_do() {
        let check = |code: &str, status: Option<u16>, expected: ErrorClass| {
            assert_eq!(classify(code, status), expected, "{code} {status:?}");
        };
        check("ProvisionedThroughputExceededException", None, ErrorClass::Throttled);
        check("ProvisionedThroughputExceededException", Some(400), ErrorClass::Throttled);
        check("LimitExceededException", Some(400), ErrorClass::Throttled);
        check("KMSThrottlingException", None, ErrorClass::Throttled);
        check("InternalFailure", None, ErrorClass::Transient);
        check("", Some(503), ErrorClass::Transient);
        check("SomethingNew", Some(500), ErrorClass::Transient);
        check("ResourceNotFoundException", Some(400), ErrorClass::Permanent);
        check("InvalidArgumentException", Some(400), ErrorClass::Permanent);
        check("KMSDisabledException", None, ErrorClass::Permanent);
        check("AccessDeniedException", Some(400), ErrorClass::Permanent);
    }

    #[test]
    fn backoff_grows_to_its_cap_and_repeats_with_the_seed() {
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 1..40 {
            let ceiling = (100u64 << (retry - 1).min(32)).min(20_000);
            for _ in 0..50 {
                assert!(backoff_ms(&mut rng, retry, 100, 20_000) <= ceiling);
            }
        }
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..10).map(|n| backoff_ms(&mut rng, n, 100, 20_000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        // The ceiling is reached: over many draws at retry 20 some wait exceeds 10 s.
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..200).any(|_| backoff_ms(&mut rng, 20, 100, 20_000) > 10_000));
    }
}
