//! The security crate's limits, each with the reason for its value.

/// How far a request's signing time may be from the server's clock, either way (AWS: "the
/// request must reach AWS within five minutes of the time stamp in the request").
pub const CLOCK_SKEW_MS_MAX: i64 = 5 * 60 * 1000;

/// The longest a presigned URL may stay valid, `X-Amz-Expires` (AWS: one week, 604,800 s).
pub const PRESIGNED_EXPIRES_S_MAX: i64 = 7 * 24 * 3600;

/// Bytes of one `Authorization` header or of one query string the SigV4 parser looks at. The
/// longest real header (a session token is sent in its own header) is a few hundred bytes;
/// anything longer is refused before parsing, so a client cannot make the parser work hard.
pub const AUTHORIZATION_BYTES_MAX: usize = 8 * 1024;

/// Query strings of presigned URLs can carry a session token (up to ~2 KiB for STS tokens)
/// and the operation's own parameters.
pub const QUERY_BYTES_MAX: usize = 16 * 1024;

/// Headers named in `SignedHeaders`. botocore signs four or five; 64 is generous and bounds
/// the work of building the canonical request.
pub const SIGNED_HEADERS_MAX: usize = 64;

/// Derived SigV4 signing keys one verifier caches. One key serves one access key for one day
/// in one region and service, so this covers 1,024 active access keys; when full the cache is
/// emptied (deriving a key costs four HMACs, about 2 µs).
pub const SIGNING_KEY_CACHE_ENTRIES_MAX: usize = 1024;

/// Characters of a resource policy (Kinesis PutResourcePolicy: "The maximum size of the
/// policy is 20480 characters").
pub const RESOURCE_POLICY_CHARS_MAX: usize = 20_480;

/// Characters of one identity policy in the credentials file. IAM's managed-policy limit is
/// 6,144 characters; we allow the resource-policy size for both, one limit to remember.
pub const IDENTITY_POLICY_CHARS_MAX: usize = RESOURCE_POLICY_CHARS_MAX;

/// Statements in one policy document. The size limit bounds it anyway (a statement takes at
/// least ~40 characters); an explicit bound keeps evaluation cost obvious.
pub const POLICY_STATEMENTS_MAX: usize = 512;

/// Principals in one credentials file, and master keys in one key store: both are loaded whole
/// into memory and searched per request.
pub const PRINCIPALS_MAX: usize = 10_000;
pub const MASTER_KEYS_MAX: usize = 10_000;

/// Bytes of a credentials file, key-store file or TLS PEM file read at start-up or on SIGHUP.
pub const CONFIG_FILE_BYTES_MAX: u64 = 16 << 20;

/// Audit events queued between the request path and the audit thread. When full, further
/// events are counted as dropped (and the count written to the log) instead of blocking the
/// request: a slow disk must not stall the data path. 65,536 events of ~1 KiB is ~64 MiB at
/// worst, and absorbs minutes of control-plane calls at any realistic rate.
pub const AUDIT_EVENTS_QUEUED_MAX: usize = 65_536;

/// Size at which the audit file is rotated (`audit.log` → `audit.log.1` …).
pub const AUDIT_FILE_BYTES_MAX: u64 = 64 << 20;

/// Rotated audit files kept besides the live one; the oldest is deleted.
pub const AUDIT_FILES_KEPT: u32 = 9;

/// Bytes of the server's nonce in the native challenge-response: 256 bits, so a nonce never
/// repeats by chance and a recorded proof never answers a later challenge.
pub const CHALLENGE_NONCE_BYTES: usize = 32;

/// Seals (encrypted batches) under one data key before the sealer asks for a new one. The
/// nonce is a 64-bit counter, so it cannot repeat below 2^64; 2^32 keeps each key far inside
/// AES-GCM's usage bounds (NIST SP 800-38D) and makes rotation routine, not exceptional.
pub const DATA_KEY_SEALS_MAX: u64 = 1 << 32;

/// Bytes of one sealed batch's plaintext: the header stores it as u32, and the engine's
/// batches are at most a few MiB.
pub const SEALED_PLAINTEXT_BYTES_MAX: usize = u32::MAX as usize;

/// Bytes of an encryption context bound to a wrapped data key.
pub const ENCRYPTION_CONTEXT_BYTES_MAX: usize = 4096;

const _: () = assert!(AUTHORIZATION_BYTES_MAX <= QUERY_BYTES_MAX);
const _: () = assert!(IDENTITY_POLICY_CHARS_MAX <= RESOURCE_POLICY_CHARS_MAX);
