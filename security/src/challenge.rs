//! The native protocol's connection authentication: a challenge-response over the same
//! credentials as SigV4, with no secret on the wire and no replay.
//!
//! 1. The server opens every connection with a [`Challenge`]: 32 fresh random bytes.
//! 2. The client answers with a [`Proof`]: its access key id, its clock, a nonce of its own,
//!    and `HMAC-SHA256(k, message)` where `k` is the SigV4 key derived from the secret for
//!    the proof's date, the region and the service `sluice`, and the message names both
//!    nonces, the access key id, the time, the session token's hash and the channel binding.
//! 3. The server checks the proof once ([`PendingChallenge::verify`] consumes the challenge)
//!    and answers with a [`ServerProof`], the HMAC of the nonces the other way round, which
//!    the client checks ([`ClientHandshake::check_server`]): each side learns the other knows
//!    the secret.
//!
//! Replay: a proof answers one server nonce, which the server draws fresh for each connection
//! and forgets after one use, so a recorded proof opens nothing. Clock skew beyond five
//! minutes is refused, as for SigV4. Relay: over plain TCP an active attacker in the middle can
//! pass the exchange through and then read the connection (nothing is encrypted); over TLS
//! both sides put the TLS exporter's output (RFC 5705, rustls'
//! `export_keying_material`, label [`CHANNEL_BINDING_LABEL`]) into `channel_binding`, which
//! binds the proof to that one TLS session and defeats a relay through a second session.
//!
//! The errors are SigV4's: UnrecognizedClientException for an unknown key or token,
//! ExpiredTokenException, InvalidSignatureException for a wrong proof or skewed clock.

use crate::credentials::{CredentialStore, Principal};
use crate::limits::{CHALLENGE_NONCE_BYTES, CLOCK_SKEW_MS_MAX};
use crate::secret::Secret;
use crate::sigv4::{hex, hmac_sha256, signing_key, AuthError, SigningCredentials};
use crate::timestamp::{amz_date, date_stamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The service name in the derived key's scope.
pub const SERVICE: &str = "sluice";
/// The TLS exporter label both sides use for channel binding.
pub const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-sluice-native-auth";
const CLIENT_DOMAIN: &str = "SLUICE-NATIVE-AUTH-1-CLIENT";
const SERVER_DOMAIN: &str = "SLUICE-NATIVE-AUTH-1-SERVER";

pub type Nonce = [u8; CHALLENGE_NONCE_BYTES];

fn fresh_nonce() -> Nonce {
    let mut nonce = [0u8; CHALLENGE_NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

/// What the server sends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    pub server_nonce: Nonce,
}

/// The client's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub access_key_id: String,
    pub timestamp_ms: i64,
    pub client_nonce: Nonce,
    /// The session token, if the credentials have one (as SigV4 sends it: in the clear, it is
    /// a bearer value the server compares, not a secret used for the MAC).
    pub session_token: Option<String>,
    pub mac: [u8; 32],
}

/// The server's answer to a good proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerProof {
    pub mac: [u8; 32],
}

struct Transcript<'a> {
    server_nonce: &'a Nonce,
    client_nonce: &'a Nonce,
    access_key_id: &'a str,
    timestamp_ms: i64,
    session_token: Option<&'a str>,
    channel_binding: &'a [u8],
}

impl Transcript<'_> {
    fn message(&self, domain: &str) -> Vec<u8> {
        let token_hash = self.session_token.map(|token| hex(&Sha256::digest(token.as_bytes()))).unwrap_or_default();
        format!(
            "{domain}\n{}\n{}\n{}\n{}\n{token_hash}\n{}",
            hex(self.server_nonce),
            hex(self.client_nonce),
            self.access_key_id,
            amz_date(self.timestamp_ms),
            hex(self.channel_binding)
        )
        .into_bytes()
    }

    fn key(&self, secret: &Secret, region: &str) -> crate::sigv4::SigningKey {
        signing_key(secret.expose(), &date_stamp(self.timestamp_ms), region, SERVICE)
    }
}

/// The server's side of one connection's handshake.
#[derive(Debug)]
pub struct PendingChallenge {
    challenge: Challenge,
    region: String,
}

impl PendingChallenge {
    /// A new challenge for a new connection.
    pub fn new(region: &str) -> PendingChallenge {
        PendingChallenge { challenge: Challenge { server_nonce: fresh_nonce() }, region: region.to_string() }
    }

    pub fn challenge(&self) -> Challenge {
        self.challenge
    }

    /// Checks the client's proof; the challenge is spent whatever the outcome.
    pub fn verify<'s>(
        self,
        proof: &Proof,
        store: &'s CredentialStore,
        channel_binding: &[u8],
        now_ms: i64,
    ) -> Result<(&'s Principal, ServerProof), AuthError> {
        let principal = store.principal(&proof.access_key_id).ok_or_else(AuthError::unrecognized)?;
        match (principal.session_token(), proof.session_token.as_deref()) {
            (None, None) => {}
            (Some(expected), Some(sent)) if bool::from(expected.expose().as_bytes().ct_eq(sent.as_bytes())) => {
                if principal.session_token_expires_ms().is_some_and(|expires| now_ms >= expires) {
                    return Err(AuthError::expired_token());
                }
            }
            _ => return Err(AuthError::unrecognized()),
        }
        let (date, now) = (amz_date(proof.timestamp_ms), amz_date(now_ms));
        if proof.timestamp_ms > now_ms + CLOCK_SKEW_MS_MAX {
            return Err(AuthError::invalid(format!(
                "Signature not yet current: {date} is still later than {} ({now} + 5 min.)",
                amz_date(now_ms + CLOCK_SKEW_MS_MAX)
            )));
        }
        if proof.timestamp_ms < now_ms - CLOCK_SKEW_MS_MAX {
            return Err(AuthError::invalid(format!(
                "Signature expired: {date} is now earlier than {} ({now} - 5 min.)",
                amz_date(now_ms - CLOCK_SKEW_MS_MAX)
            )));
        }
        let transcript = Transcript {
            server_nonce: &self.challenge.server_nonce,
            client_nonce: &proof.client_nonce,
            access_key_id: &proof.access_key_id,
            timestamp_ms: proof.timestamp_ms,
            session_token: proof.session_token.as_deref(),
            channel_binding,
        };
        let key = transcript.key(principal.secret_access_key(), &self.region);
        let expected = hmac_sha256(&*key, &transcript.message(CLIENT_DOMAIN));
        if !bool::from(expected.ct_eq(&proof.mac)) {
            return Err(AuthError::mismatch());
        }
        let server = ServerProof { mac: hmac_sha256(&*key, &transcript.message(SERVER_DOMAIN)) };
        Ok((principal, server))
    }
}

/// The client's side: what it needs to check the server's answer.
#[derive(Debug)]
pub struct ClientHandshake {
    expected_server_mac: [u8; 32],
}

impl ClientHandshake {
    /// Answers a challenge.
    pub fn respond(
        challenge: &Challenge,
        credentials: &SigningCredentials,
        region: &str,
        channel_binding: &[u8],
        now_ms: i64,
    ) -> (Proof, ClientHandshake) {
        let client_nonce = fresh_nonce();
        let session_token = credentials.session_token.as_ref().map(|token| token.expose().to_string());
        let transcript = Transcript {
            server_nonce: &challenge.server_nonce,
            client_nonce: &client_nonce,
            access_key_id: &credentials.access_key_id,
            timestamp_ms: now_ms,
            session_token: session_token.as_deref(),
            channel_binding,
        };
        let key = transcript.key(&credentials.secret_access_key, region);
        let mac = hmac_sha256(&*key, &transcript.message(CLIENT_DOMAIN));
        let expected_server_mac = hmac_sha256(&*key, &transcript.message(SERVER_DOMAIN));
        let proof = Proof {
            access_key_id: credentials.access_key_id.clone(),
            timestamp_ms: now_ms,
            client_nonce,
            session_token,
            mac,
        };
        (proof, ClientHandshake { expected_server_mac })
    }

    /// Whether the server proved it knows the secret too.
    pub fn check_server(&self, proof: &ServerProof) -> bool {
        bool::from(self.expected_server_mac.ct_eq(&proof.mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::AuthErrorKind;

    const NOW: i64 = 1_764_000_000_000;

    fn store() -> CredentialStore {
        CredentialStore::new(vec![
            Principal::new("alice", "123456789012", "AKIAALICE", Secret::new("alice-secret"), vec![]),
            Principal::new("temp", "123456789012", "ASIATEMP", Secret::new("temp-secret"), vec![])
                .with_session_token(Secret::new("token-1"), Some(NOW + 60_000)),
        ])
        .unwrap()
    }

    fn credentials(access_key_id: &str, secret: &str, token: Option<&str>) -> SigningCredentials {
        SigningCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret),
            session_token: token.map(Secret::new),
        }
    }

    #[test]
    fn both_sides_authenticate_each_other() {
        let store = store();
        let pending = PendingChallenge::new("us-east-1");
        let (proof, client) = ClientHandshake::respond(
            &pending.challenge(),
            &credentials("AKIAALICE", "alice-secret", None),
            "us-east-1",
            b"binding",
            NOW,
        );
        let (principal, server_proof) = pending.verify(&proof, &store, b"binding", NOW + 1_000).unwrap();
        assert_eq!(principal.name, "alice");
        assert!(client.check_server(&server_proof));
        assert!(!client.check_server(&ServerProof { mac: [0; 32] }));
        // Nothing secret travels: the proof holds no secret bytes.
        assert!(!format!("{proof:?}").contains("alice-secret"));
    }

    #[test]
    fn a_recorded_proof_does_not_answer_another_challenge() {
        let store = store();
        let alice = credentials("AKIAALICE", "alice-secret", None);
        let first = PendingChallenge::new("us-east-1");
        let (proof, _) = ClientHandshake::respond(&first.challenge(), &alice, "us-east-1", b"", NOW);
        first.verify(&proof, &store, b"", NOW).unwrap();
        let second = PendingChallenge::new("us-east-1");
        assert_ne!(second.challenge(), PendingChallenge::new("us-east-1").challenge());
        let replayed = second.verify(&proof, &store, b"", NOW).unwrap_err();
        assert_eq!(
            (replayed.kind, replayed.message.as_str()),
            (AuthErrorKind::InvalidSignature, crate::sigv4::SIGNATURE_MISMATCH)
        );
    }

    #[test]
    fn wrong_credentials_clocks_and_bindings_are_refused() {
        let store = store();
        let refuse = |credentials: SigningCredentials,
                      client_time: i64,
                      client_binding: &[u8],
                      server_binding: &[u8]| {
            let pending = PendingChallenge::new("us-east-1");
            let (proof, _) =
                ClientHandshake::respond(&pending.challenge(), &credentials, "us-east-1", client_binding, client_time);
            pending.verify(&proof, &store, server_binding, NOW).unwrap_err()
        };
        let error = refuse(credentials("AKIAALICE", "wrong", None), NOW, b"", b"");
        assert_eq!(error.kind, AuthErrorKind::InvalidSignature);
        let error = refuse(credentials("AKIANOBODY", "x", None), NOW, b"", b"");
        assert_eq!(
            (error.exception_name(), error.message.as_str()),
            ("UnrecognizedClientException", "The security token included in the request is invalid.")
        );
        let error = refuse(credentials("AKIAALICE", "alice-secret", None), NOW - CLOCK_SKEW_MS_MAX - 1_000, b"", b"");
        assert!(error.message.starts_with("Signature expired: "), "{}", error.message);
        let error = refuse(credentials("AKIAALICE", "alice-secret", None), NOW + CLOCK_SKEW_MS_MAX + 1_000, b"", b"");
        assert!(error.message.starts_with("Signature not yet current: "), "{}", error.message);
        let error = refuse(credentials("AKIAALICE", "alice-secret", None), NOW, b"session A", b"session B");
        assert_eq!(error.message, crate::sigv4::SIGNATURE_MISMATCH);
        let error = refuse(credentials("ASIATEMP", "temp-secret", None), NOW, b"", b"");
        assert_eq!(error.exception_name(), "UnrecognizedClientException");
        let error = refuse(credentials("ASIATEMP", "temp-secret", Some("token-2")), NOW, b"", b"");
        assert_eq!(error.exception_name(), "UnrecognizedClientException");
        // The token is good but past its expiry.
        let pending = PendingChallenge::new("us-east-1");
        let (proof, _) = ClientHandshake::respond(
            &pending.challenge(),
            &credentials("ASIATEMP", "temp-secret", Some("token-1")),
            "us-east-1",
            b"",
            NOW + 60_000,
        );
        let error = pending.verify(&proof, &store, b"", NOW + 60_000).unwrap_err();
        assert_eq!(
            (error.exception_name(), error.message.as_str()),
            ("ExpiredTokenException", "The security token included in the request is expired")
        );
        // Before its expiry it works, and a wrong region derives another key.
        let pending = PendingChallenge::new("us-east-1");
        let (proof, _) = ClientHandshake::respond(
            &pending.challenge(),
            &credentials("ASIATEMP", "temp-secret", Some("token-1")),
            "us-east-1",
            b"",
            NOW,
        );
        assert!(pending.verify(&proof, &store, b"", NOW).is_ok());
        let pending = PendingChallenge::new("us-east-1");
        let (proof, _) = ClientHandshake::respond(
            &pending.challenge(),
            &credentials("AKIAALICE", "alice-secret", None),
            "eu-west-1",
            b"",
            NOW,
        );
        assert_eq!(pending.verify(&proof, &store, b"", NOW).unwrap_err().kind, AuthErrorKind::InvalidSignature);
    }
}
