//! The verifying side: the HTTP API's check of every request.

use super::canonical::{
    canonical_query, canonical_request, credential_scope, payload_hash, signature, signing_key, string_to_sign,
    HttpRequest, SigningKey,
};
use super::error::AuthError;
use super::parse::{is_presigned, AuthorizationHeader, CredentialScope, PresignedQuery};
use super::UNSIGNED_PAYLOAD;
use crate::credentials::{CredentialStore, Principal};
use crate::limits::{CLOCK_SKEW_MS_MAX, SIGNING_KEY_CACHE_ENTRIES_MAX};
use crate::timestamp::{amz_date, parse_amz_date, parse_http_date};
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// Where a request carried its signature, parsed but not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    form: Form,
    /// The request time as given (`X-Amz-Date`, the `Date` header, or the query's).
    date_text: String,
    /// The request time, if it parsed.
    date_ms: Option<i64>,
    /// `X-Amz-Security-Token` (header or query), if sent.
    security_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    Header(AuthorizationHeader),
    Query(PresignedQuery),
}

impl SignedRequest {
    /// Finds and parses the request's signature: MissingAuthenticationTokenException when
    /// there is none, InvalidSignatureException when there are two, IncompleteSignatureException
    /// when one lacks a part.
    pub fn parse(request: &HttpRequest<'_>) -> Result<SignedRequest, AuthError> {
        let header = request.header_values("authorization").next();
        let presigned = is_presigned(request.query);
        match (header, presigned) {
            (None, false) => Err(AuthError::missing()),
            (Some(_), true) => Err(AuthError::invalid(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
            )),
            (Some(header), false) => {
                let header = String::from_utf8_lossy(header);
                let amz_date = request.header("x-amz-date");
                let date = request.header("date");
                let parsed = AuthorizationHeader::parse(&header, amz_date.is_some() || date.is_some())?;
                let (date_text, date_ms) = match (amz_date, date) {
                    (Some(text), _) => (text.to_string(), parse_amz_date(text)),
                    (None, Some(text)) => (text.to_string(), parse_amz_date(text).or_else(|| parse_http_date(text))),
                    (None, None) => unreachable!("the parser reports a missing date"),
                };
                Ok(SignedRequest {
                    form: Form::Header(parsed),
                    date_text,
                    date_ms,
                    security_token: request.header("x-amz-security-token").map(str::to_string),
                })
            }
            (None, true) => {
                let parsed = PresignedQuery::parse(request.query)?;
                Ok(SignedRequest {
                    date_text: parsed.date.clone(),
                    date_ms: parse_amz_date(&parsed.date),
                    security_token: parsed.security_token.clone(),
                    form: Form::Query(parsed),
                })
            }
        }
    }

    /// The access key id the request claims.
    pub fn access_key_id(&self) -> &str {
        &self.credential().access_key_id
    }

    /// Whether the signature came in a presigned query string.
    pub fn is_presigned(&self) -> bool {
        matches!(self.form, Form::Query(_))
    }

    fn credential(&self) -> &CredentialScope {
        match &self.form {
            Form::Header(header) => &header.credential,
            Form::Query(query) => &query.credential,
        }
    }

    fn signed_headers(&self) -> &[String] {
        match &self.form {
            Form::Header(header) => &header.signed_headers,
            Form::Query(query) => &query.signed_headers,
        }
    }

    fn signature(&self) -> &str {
        match &self.form {
            Form::Header(header) => &header.signature,
            Form::Query(query) => &query.signature,
        }
    }
}

/// What a verification needs besides the request.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// The server's clock, epoch milliseconds.
    pub now_ms: i64,
    /// Whether the request came over TLS. `UNSIGNED-PAYLOAD` is accepted only then: over plain
    /// TCP anyone on the path could change an unsigned body.
    pub secure_transport: bool,
}

/// Verifies SigV4 signatures for one region and service, caching derived signing keys. One
/// per core (the cache's lock is then never contended), or shared: it is `Sync`.
#[derive(Debug)]
pub struct Verifier {
    region: String,
    service: String,
    keys: Mutex<HashMap<String, (u64, SigningKey)>>,
}

impl Verifier {
    pub fn new(region: impl Into<String>, service: impl Into<String>) -> Verifier {
        Verifier { region: region.into(), service: service.into(), keys: Mutex::new(HashMap::new()) }
    }

    /// Parses and verifies in one call (for callers that have the whole body already).
    pub fn authenticate<'s>(
        &self,
        request: &HttpRequest<'_>,
        body: &[u8],
        store: &'s CredentialStore,
        options: VerifyOptions,
    ) -> Result<&'s Principal, AuthError> {
        let signed = SignedRequest::parse(request)?;
        self.verify(&signed, request, body, store, options)
    }

    /// Every check that does not need the body: the date's format, the access key, the
    /// session token, the credential scope and the clock skew. A server calls it before it
    /// reads (and reserves memory for) the body.
    pub fn check_before_body<'s>(
        &self,
        signed: &SignedRequest,
        store: &'s CredentialStore,
        now_ms: i64,
    ) -> Result<&'s Principal, AuthError> {
        let Some(date_ms) = signed.date_ms else {
            return Err(AuthError::incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
                signed.date_text
            )));
        };
        let credential = signed.credential();
        let principal = store.principal(&credential.access_key_id).ok_or_else(AuthError::unrecognized)?;
        check_session_token(principal, signed.security_token.as_deref(), now_ms)?;
        if credential.terminator != "aws4_request" {
            return Err(AuthError::invalid(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
                credential.terminator
            )));
        }
        if credential.service != self.service {
            return Err(AuthError::invalid(format!(
                "Credential should be scoped to correct service: '{}'. ",
                self.service
            )));
        }
        if credential.region != self.region {
            return Err(AuthError::invalid(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                credential.region
            )));
        }
        let request_date = amz_date(date_ms);
        if credential.date != request_date[..8] {
            return Err(AuthError::invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                credential.date,
                &request_date[..8],
                request_date
            )));
        }
        check_time(signed, date_ms, now_ms)?;
        if !signed.signed_headers().iter().any(|name| name == "host" || name == ":authority") {
            return Err(AuthError::invalid(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        Ok(principal)
    }

    /// The whole verification: [`Verifier::check_before_body`], then the payload hash and the
    /// signature (compared in constant time).
    pub fn verify<'s>(
        &self,
        signed: &SignedRequest,
        request: &HttpRequest<'_>,
        body: &[u8],
        store: &'s CredentialStore,
        options: VerifyOptions,
    ) -> Result<&'s Principal, AuthError> {
        let principal = self.check_before_body(signed, store, options.now_ms)?;
        let hash = match request.header("x-amz-content-sha256") {
            Some(UNSIGNED_PAYLOAD) if options.secure_transport => UNSIGNED_PAYLOAD.to_string(),
            Some(UNSIGNED_PAYLOAD) => {
                return Err(AuthError::invalid("UNSIGNED-PAYLOAD is accepted only over HTTPS; sign the payload"));
            }
            Some(declared) => {
                let actual = payload_hash(body);
                if !bool::from(declared.as_bytes().ct_eq(actual.as_bytes())) {
                    return Err(AuthError::invalid(
                        "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    ));
                }
                actual
            }
            None => payload_hash(body),
        };
        let signed_headers: Vec<&str> = signed.signed_headers().iter().map(String::as_str).collect();
        let query = match &signed.form {
            Form::Header(_) => canonical_query(request.query, None),
            Form::Query(_) => canonical_query(request.query, Some("X-Amz-Signature")),
        };
        let canonical = canonical_request(request, &query, &signed_headers, &hash);
        let credential = signed.credential();
        let scope = credential_scope(&credential.date, &self.region, &self.service);
        let date = amz_date(signed.date_ms.expect("checked before the body"));
        let to_sign = string_to_sign(&date, &scope, &canonical);
        let expected = self.with_key(principal, &credential.date, |key| signature(key, &to_sign));
        if bool::from(expected.as_bytes().ct_eq(signed.signature().as_bytes())) {
            Ok(principal)
        } else {
            Err(AuthError::mismatch())
        }
    }

    /// Runs `f` with the principal's signing key for `date`, derived once per day and cached.
    fn with_key<T>(&self, principal: &Principal, date: &str, f: impl FnOnce(&[u8; 32]) -> T) -> T {
        let cache_key = format!("{}/{date}", principal.access_key_id);
        let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((generation, key)) = keys.get(&cache_key) {
            if *generation == principal.generation() {
                return f(key);
            }
        }
        if keys.len() >= SIGNING_KEY_CACHE_ENTRIES_MAX {
            keys.clear();
        }
        let key = signing_key(principal.secret_access_key().expose(), date, &self.region, &self.service);
        let result = f(&key);
        keys.insert(cache_key, (principal.generation(), key));
        result
    }

    /// Derived keys cached now (for tests and metrics).
    pub fn cached_keys(&self) -> usize {
        self.keys.lock().map(|keys| keys.len()).unwrap_or(0)
    }
}

fn check_session_token(principal: &Principal, sent: Option<&str>, now_ms: i64) -> Result<(), AuthError> {
    match (principal.session_token(), sent) {
        (None, None) => Ok(()),
        (Some(expected), Some(sent)) if bool::from(expected.expose().as_bytes().ct_eq(sent.as_bytes())) => {
            if principal.session_token_expires_ms().is_some_and(|expires| now_ms >= expires) {
                Err(AuthError::expired_token())
            } else {
                Ok(())
            }
        }
        _ => Err(AuthError::unrecognized()),
    }
}

fn check_time(signed: &SignedRequest, date_ms: i64, now_ms: i64) -> Result<(), AuthError> {
    let (date, now) = (amz_date(date_ms), amz_date(now_ms));
    if date_ms > now_ms + CLOCK_SKEW_MS_MAX {
        return Err(AuthError::invalid(format!(
            "Signature not yet current: {date} is still later than {} ({now} + 5 min.)",
            amz_date(now_ms + CLOCK_SKEW_MS_MAX)
        )));
    }
    match &signed.form {
        Form::Query(PresignedQuery { expires_s: Some(expires_s), .. }) => {
            if now_ms > date_ms + expires_s * 1000 {
                return Err(AuthError::invalid(format!(
                    "Signature expired: {date} is now earlier than {} ({now} - {expires_s} sec.)",
                    amz_date(now_ms - expires_s * 1000)
                )));
            }
        }
        _ => {
            if date_ms < now_ms - CLOCK_SKEW_MS_MAX {
                return Err(AuthError::invalid(format!(
                    "Signature expired: {date} is now earlier than {} ({now} - 5 min.)",
                    amz_date(now_ms - CLOCK_SKEW_MS_MAX)
                )));
            }
        }
    }
    Ok(())
}
