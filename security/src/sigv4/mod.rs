//! AWS Signature Version 4, both directions: [`Signer`] signs requests (for Sluice's own
//! clients and tests), [`Verifier`] checks the `Authorization` header or the presigned query
//! string of a request that arrived, against a [`CredentialStore`](crate::credentials::CredentialStore).
//!
//! How the server is meant to call it, once per HTTP request:
//!
//! ```text
//! let request = HttpRequest::from_http(&request);          // method, raw path/query, headers
//! let signed = SignedRequest::parse(&request)?;             // Missing/IncompleteSignature
//! let principal = verifier.check_before_body(&signed, &store, now_ms)?;   // before reading the body
//! …read the body…
//! let principal = verifier.verify(&signed, &request, &body, &store, options)?;
//! ```
//!
//! Every refusal is an [`AuthError`] carrying AWS's exception name, status and text.

mod canonical;
mod error;
mod parse;
mod sign;
mod verify;

pub use canonical::{
    canonical_query, canonical_request, canonical_uri, credential_scope, hex, hmac_sha256, normalize_path,
    payload_hash, signature, signing_key, string_to_sign, uri_encode, HttpRequest, SigningKey,
};
pub use error::{AuthError, AuthErrorKind, SIGNATURE_MISMATCH, TOKEN_EXPIRED, TOKEN_INVALID};
pub use parse::{is_presigned, query_pairs, AuthorizationHeader, CredentialScope, PresignedQuery};
pub use sign::{Payload, SignError, Signer, SigningCredentials};
pub use verify::{SignedRequest, Verifier, VerifyOptions};

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash a client sends (in `x-amz-content-sha256`) when it does not sign the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The service name Kinesis requests are signed for.
pub const KINESIS_SERVICE: &str = "kinesis";
/// Headers a signer leaves unsigned: proxies and SDK middleware change them in flight
/// (botocore's `SIGNED_HEADERS_BLACKLIST`).
pub const UNSIGNED_HEADERS: [&str; 4] = ["authorization", "expect", "user-agent", "x-amzn-trace-id"];
