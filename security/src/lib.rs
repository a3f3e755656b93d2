//! Sluice's security machinery, as a library the daemon, the client and the CLI call into.
//!
//! Nothing here does network or data-path I/O, and nothing depends on the server's model of
//! Kinesis requests: each piece takes plain values (an HTTP request's parts, an action name
//! and resource ARNs, a batch of bytes) so the server can wire it in at one place per piece.
//! See `docs/security.md` for the threat model and how each piece is set up, and the crate's
//! section in `ARCHITECTURE.md` for how it is meant to be wired.
//!
//! - [`sigv4`]: AWS Signature Version 4, signing (for our clients) and verification (for the
//!   HTTP API) of `Authorization` headers and presigned query strings, with AWS's errors.
//! - [`credentials`]: the credentials file (`--credentials FILE`): principals, their keys and
//!   their identity policies. Secrets are [`secret::Secret`]s: redacted, wiped on drop.
//! - [`policy`]: IAM-style policy documents and their evaluation (explicit deny, then allow,
//!   else deny), with AWS's AccessDeniedException messages.
//! - [`kms`]: a local KMS-like key store (key ids, ARNs, aliases, states) and envelope
//!   encryption of record batches with AES-256-GCM.
//! - [`audit`]: the CloudTrail-shaped audit log, written by its own thread, never blocking.
//! - [`tls`]: rustls server and client configurations, reloadable on SIGHUP.
//! - [`challenge`]: the native protocol's connection authentication (challenge-response).
//! - [`members`]: cluster members' credentials, derived from the secret they share.
//! - [`limits`]: every bound of the crate, with its reason.

// `sluiced` uses sigv4, credentials (reloaded on SIGHUP), policy, audit and tls for its HTTP
// API, challenge and tls for its native protocol, kms for encryption at rest; the client crate
// and the `sluice` CLI sign with sigv4 over HTTP and answer the challenge natively.
// Unfinished: resource policies on queues (docs/security.md).

pub mod audit;
pub mod challenge;
pub mod credentials;
pub mod kms;
pub mod limits;
pub mod members;
pub mod policy;
pub mod secret;
pub mod sigv4;
pub mod timestamp;
#[cfg(feature = "tls")]
pub mod tls;

pub use secret::Secret;
