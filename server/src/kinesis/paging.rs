//! Pagination: page sizes, and the tokens that continue a listing.
//!
//! A token names the last item returned, when it was issued, and what it lists (its scope, so
//! a token of one listing cannot continue another). It is URL-safe base64 of
//! `issued_ms \n scope \n after`: not secret, since it only points into a listing the caller
//! may read anyway; it expires [`NEXT_TOKEN_LIFETIME_MS`] after it was issued, as Kinesis'
//! do.

use crate::limits::{NEXT_TOKEN_CHARS_MAX, NEXT_TOKEN_LIFETIME_MS};
use base64::Engine as _;
use sluice_model::KinesisError;

/// A token continuing after `after` in the listing `scope`.
pub fn encode_next_token(after: &str, scope: &str, now_ms: i64) -> String {
    let text = format!("{now_ms}\n{scope}\n{after}");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// What a token continues after, if it is one of `scope`'s and has not expired.
pub fn decode_next_token(token: &str, scope: &str, now_ms: i64) -> Result<String, KinesisError> {
    let invalid = || KinesisError::invalid_next_token(token);
    if token.len() > NEXT_TOKEN_CHARS_MAX {
        return Err(invalid());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    let (issued, token_scope, after) = (parts.next(), parts.next(), parts.next());
    let issued: i64 = issued.and_then(|issued| issued.parse().ok()).ok_or_else(invalid)?;
    if token_scope != Some(scope) {
        return Err(invalid());
    }
    if now_ms.saturating_sub(issued) > NEXT_TOKEN_LIFETIME_MS {
        return Err(KinesisError::expired_next_token());
    }
    after.map(str::to_string).ok_or_else(invalid)
}

/// The size of a page: the request's (already validated against the model's maximum) capped
/// at `max`, or `default`.
pub fn page_size(requested: Option<i32>, default: usize, max: usize) -> usize {
    requested.map_or(default, |size| usize::try_from(size).unwrap_or(default)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::ErrorKind;

    #[test]
    fn next_tokens_round_trip_expire_and_stay_in_scope() {
        let token = encode_next_token("orders", "streams", 1_000);
        assert_eq!(decode_next_token(&token, "streams", 2_000).unwrap(), "orders");
        assert_eq!(
            decode_next_token(&token, "streams", 1_000 + NEXT_TOKEN_LIFETIME_MS + 1).unwrap_err().kind,
            ErrorKind::ExpiredNextToken
        );
        assert_eq!(decode_next_token(&token, "shards", 2_000).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(decode_next_token("%%%", "streams", 0).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(decode_next_token(&"A".repeat(2000), "streams", 0).unwrap_err().kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn pages_default_and_cap() {
        assert_eq!(page_size(None, 100, 1000), 100);
        assert_eq!(page_size(Some(5000), 100, 1000), 1000);
        assert_eq!(page_size(Some(7), 100, 1000), 7);
    }
}
