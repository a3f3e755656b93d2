//! SigV4 errors with AWS's exception names, HTTP statuses and message texts.

use std::fmt;

/// The AWS exceptions a request's authentication can end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    /// No `Authorization` header and no `X-Amz-Algorithm` query parameter.
    MissingAuthenticationToken,
    /// An `Authorization` header or presigned query that lacks a part or is malformed.
    IncompleteSignature,
    /// A signature that does not match, is too old or too new, or is scoped wrongly.
    InvalidSignature,
    /// An access key id (or session token) that no credentials file entry holds.
    UnrecognizedClient,
    /// A session token past its expiry.
    ExpiredToken,
}

impl AuthErrorKind {
    /// The `__type` of the error answer.
    pub fn exception_name(self) -> &'static str {
        match self {
            AuthErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthErrorKind::IncompleteSignature => "IncompleteSignatureException",
            AuthErrorKind::InvalidSignature => "InvalidSignatureException",
            AuthErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            AuthErrorKind::ExpiredToken => "ExpiredTokenException",
        }
    }

    /// The HTTP status: AWS answers every one of these with 400 on the JSON protocols
    /// (kinesalite, which copied AWS's answers, and SDK logs agree).
    pub fn http_status(self) -> u16 {
        400
    }
}

/// A refused request: the exception and AWS's message. Messages name access key ids,
/// dates and signatures (none of which is secret), never a secret key or a session token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AuthError {
    pub kind: AuthErrorKind,
    pub message: String,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.exception_name(), self.message)
    }
}

/// AWS's text for a signature that does not match.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
/// AWS's text for an unknown access key id or session token.
pub const TOKEN_INVALID: &str = "The security token included in the request is invalid.";
/// AWS's text for an expired session token.
pub const TOKEN_EXPIRED: &str = "The security token included in the request is expired";

impl AuthError {
    pub fn new(kind: AuthErrorKind, message: impl Into<String>) -> AuthError {
        AuthError { kind, message: message.into() }
    }

    pub fn missing() -> AuthError {
        AuthError::new(AuthErrorKind::MissingAuthenticationToken, "Missing Authentication Token")
    }

    pub fn incomplete(message: impl Into<String>) -> AuthError {
        AuthError::new(AuthErrorKind::IncompleteSignature, message)
    }

    pub fn invalid(message: impl Into<String>) -> AuthError {
        AuthError::new(AuthErrorKind::InvalidSignature, message)
    }

    pub fn mismatch() -> AuthError {
        AuthError::invalid(SIGNATURE_MISMATCH)
    }

    pub fn unrecognized() -> AuthError {
        AuthError::new(AuthErrorKind::UnrecognizedClient, TOKEN_INVALID)
    }

    pub fn expired_token() -> AuthError {
        AuthError::new(AuthErrorKind::ExpiredToken, TOKEN_EXPIRED)
    }

    pub fn exception_name(&self) -> &'static str {
        self.kind.exception_name()
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}
