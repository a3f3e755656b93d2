//! The signing side: what Sluice's clients (and tests) do before sending a request.

use super::canonical::{
    canonical_query, canonical_request, credential_scope, payload_hash, signature, signing_key, string_to_sign,
    uri_encode, HttpRequest,
};
use super::{ALGORITHM, UNSIGNED_HEADERS, UNSIGNED_PAYLOAD};
use crate::limits::PRESIGNED_EXPIRES_S_MAX;
use crate::secret::Secret;
use crate::timestamp::{amz_date, date_stamp};

/// What a client signs with.
#[derive(Debug, Clone)]
pub struct SigningCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// The payload line of the canonical request.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The body, hashed into the signature (what botocore does over plain HTTP).
    Bytes(&'a [u8]),
    /// `UNSIGNED-PAYLOAD`, announced in `x-amz-content-sha256` (only sensible over TLS).
    Unsigned,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the request has no host header to sign")]
    MissingHost,
    #[error("X-Amz-Expires of {expires_s} s is outside 1..={PRESIGNED_EXPIRES_S_MAX}")]
    Expires { expires_s: i64 },
}

/// Signs requests for one region and service.
#[derive(Debug, Clone)]
pub struct Signer {
    pub credentials: SigningCredentials,
    pub region: String,
    pub service: String,
}

impl Signer {
    pub fn new(credentials: SigningCredentials, region: impl Into<String>, service: impl Into<String>) -> Signer {
        Signer { credentials, region: region.into(), service: service.into() }
    }

    /// The headers to add to `request` (replacing any of the same name): `x-amz-date`, the
    /// session token if any, `x-amz-content-sha256` for an unsigned payload, and
    /// `authorization`. Every header of `request` but [`UNSIGNED_HEADERS`] is signed.
    pub fn sign(
        &self,
        request: &HttpRequest<'_>,
        payload: Payload<'_>,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, SignError> {
        let date = amz_date(now_ms);
        let mut added: Vec<(String, String)> = vec![("x-amz-date".into(), date.clone())];
        if let Some(token) = &self.credentials.session_token {
            added.push(("x-amz-security-token".into(), token.expose().to_string()));
        }
        let hash = match payload {
            Payload::Bytes(body) => payload_hash(body),
            Payload::Unsigned => {
                added.push(("x-amz-content-sha256".into(), UNSIGNED_PAYLOAD.into()));
                UNSIGNED_PAYLOAD.to_string()
            }
        };
        let replaced = |name: &str| added.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let mut headers: Vec<(&str, &[u8])> =
            request.headers.iter().filter(|(name, _)| !replaced(name)).copied().collect();
        headers.extend(added.iter().map(|(name, value)| (name.as_str(), value.as_bytes())));
        let signing = HttpRequest { headers, ..request.clone() };
        let mut names: Vec<String> = signing
            .headers
            .iter()
            .map(|(name, _)| name.to_ascii_lowercase())
            .filter(|name| !UNSIGNED_HEADERS.contains(&name.as_str()))
            .collect();
        names.sort();
        names.dedup();
        if !names.iter().any(|name| name == "host") {
            return Err(SignError::MissingHost);
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let canonical = canonical_request(&signing, &canonical_query(request.query, None), &names, &hash);
        let scope = credential_scope(&date_stamp(now_ms), &self.region, &self.service);
        let key =
            signing_key(self.credentials.secret_access_key.expose(), &date_stamp(now_ms), &self.region, &self.service);
        let signature = signature(&key, &string_to_sign(&date, &scope, &canonical));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            self.credentials.access_key_id,
            names.join(";")
        );
        added.push(("authorization".into(), authorization));
        Ok(added)
    }

    /// A presigned URL's query string for `request` (its own query parameters first, then the
    /// SigV4 ones), valid for `expires_s` seconds from `now_ms`. Signs the `host` header and
    /// any other header of `request`, and the payload as [`Signer::sign`] does.
    pub fn presign(
        &self,
        request: &HttpRequest<'_>,
        payload: Payload<'_>,
        expires_s: i64,
        now_ms: i64,
    ) -> Result<String, SignError> {
        if !(1..=PRESIGNED_EXPIRES_S_MAX).contains(&expires_s) {
            return Err(SignError::Expires { expires_s });
        }
        let date = amz_date(now_ms);
        let scope = credential_scope(&date_stamp(now_ms), &self.region, &self.service);
        let mut names: Vec<String> = request
            .headers
            .iter()
            .map(|(name, _)| name.to_ascii_lowercase())
            .filter(|name| !UNSIGNED_HEADERS.contains(&name.as_str()))
            .collect();
        names.sort();
        names.dedup();
        if !names.iter().any(|name| name == "host") {
            return Err(SignError::MissingHost);
        }
        let mut auth = vec![
            ("X-Amz-Algorithm", ALGORITHM.to_string()),
            ("X-Amz-Credential", format!("{}/{scope}", self.credentials.access_key_id)),
            ("X-Amz-Date", date.clone()),
            ("X-Amz-Expires", expires_s.to_string()),
            ("X-Amz-SignedHeaders", names.join(";")),
        ];
        if let Some(token) = &self.credentials.session_token {
            auth.push(("X-Amz-Security-Token", token.expose().to_string()));
        }
        let auth_query: Vec<String> = auth.iter().map(|(key, value)| format!("{key}={}", uri_encode(value))).collect();
        let mut query = request.query.to_string();
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&auth_query.join("&"));
        let hash = match payload {
            Payload::Bytes(body) => payload_hash(body),
            Payload::Unsigned => UNSIGNED_PAYLOAD.to_string(),
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let canonical = canonical_request(request, &canonical_query(&query, None), &names, &hash);
        let key =
            signing_key(self.credentials.secret_access_key.expose(), &date_stamp(now_ms), &self.region, &self.service);
        let signature = signature(&key, &string_to_sign(&date, &scope, &canonical));
        query.push_str(&format!("&X-Amz-Signature={signature}"));
        Ok(query)
    }
}
