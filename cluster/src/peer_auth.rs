//! Authentication of the Raft peer network: a member proves to the member it dials that it
//! holds the cluster's peer key, before any Raft message is believed.
//!
//! The key is derived from the cluster secret every member shares (`sluiced --cluster-secret`,
//! `sluice_security::members`). On a connection (one direction: the dialer only writes):
//!
//! 1. the dialer sends its hello with `authenticated` set;
//! 2. the listener answers with [`PEER_NONCE_BYTES`] fresh random bytes;
//! 3. the dialer answers with `HMAC-SHA256(key, domain, from, to, nonce, binding)` ([`proof`]),
//!    where `binding` is the TLS session's channel binding (RFC 5705; empty without TLS);
//! 4. the listener checks it in constant time ([`verify`]) and only then reads frames.
//!
//! A proof answers one nonce, drawn fresh per connection, so a recorded handshake opens
//! nothing, and it names both ends, so it opens no other connection. A listener with a key
//! refuses a hello without the flag, and one without a key a hello with it: members must be
//! configured alike. It does not encrypt: with TLS between the members (`transport::PeerTls`)
//! the connection is private and the dialer knows it reached the member it dialed, and the
//! binding ties the proof to that one TLS session; without TLS an attacker on the path can read
//! a connection and write into it after the handshake.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::Hello;

/// Bytes of the listener's challenge.
pub const PEER_NONCE_BYTES: usize = 32;
/// Bytes of the dialer's proof (an HMAC-SHA256).
pub const PEER_PROOF_BYTES: usize = 32;
const DOMAIN: &[u8] = b"SLUICE-PEER-AUTH-1";
/// The RFC 5705 exporter label of the peer network's channel binding (the native protocol's
/// handshake has a label of its own, so a proof made for one is no answer in the other).
pub const PEER_CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-sluice-peer-auth";

/// The key members prove to each other that they hold.
#[derive(Clone)]
pub struct PeerKey([u8; 32]);

impl std::fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerKey([redacted])")
    }
}

impl Drop for PeerKey {
    fn drop(&mut self) {
        // Best effort: the compiler may not remove a write through a volatile pointer.
        for byte in &mut self.0 {
            // SAFETY: `byte` is a valid, aligned, exclusive reference.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

impl PeerKey {
    pub fn new(key: [u8; 32]) -> PeerKey {
        PeerKey(key)
    }

    fn mac(&self, hello: Hello, nonce: &[u8; PEER_NONCE_BYTES], binding: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(DOMAIN);
        mac.update(&hello.from.to_le_bytes());
        mac.update(&hello.to.to_le_bytes());
        mac.update(nonce);
        mac.update(&(binding.len() as u64).to_le_bytes());
        mac.update(binding);
        mac
    }
}

/// The dialer's answer to `nonce` on the connection `hello` opened, in the TLS session whose
/// channel binding is `binding` (empty without TLS).
pub fn proof(key: &PeerKey, hello: Hello, nonce: &[u8; PEER_NONCE_BYTES], binding: &[u8]) -> [u8; PEER_PROOF_BYTES] {
    key.mac(hello, nonce, binding).finalize().into_bytes().into()
}

/// Whether `proof` answers `nonce` on `hello`'s connection in the session bound to `binding`,
/// with `key` (constant time).
pub fn verify(
    key: &PeerKey,
    hello: Hello,
    nonce: &[u8; PEER_NONCE_BYTES],
    binding: &[u8],
    proof: &[u8; PEER_PROOF_BYTES],
) -> bool {
    key.mac(hello, nonce, binding).verify_slice(proof).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_answers_one_nonce_on_one_connection_with_one_key() {
        let key = PeerKey::new([7; 32]);
        let hello = Hello { from: 2, to: 1, authenticated: true };
        let nonce = [3; PEER_NONCE_BYTES];
        let binding = [9; 32];
        let answer = proof(&key, hello, &nonce, &binding);
        assert!(verify(&key, hello, &nonce, &binding, &answer));
        assert!(!verify(&PeerKey::new([8; 32]), hello, &nonce, &binding, &answer), "another key");
        assert!(!verify(&key, hello, &[4; PEER_NONCE_BYTES], &binding, &answer), "another nonce");
        assert!(!verify(&key, Hello { from: 3, ..hello }, &nonce, &binding, &answer), "another sender");
        assert!(!verify(&key, Hello { to: 3, ..hello }, &nonce, &binding, &answer), "another listener");
        assert!(!verify(&key, hello, &nonce, &[10; 32], &answer), "another TLS session");
        assert!(!verify(&key, hello, &nonce, &[], &answer), "no TLS session");
        let mut flipped = answer;
        flipped[31] ^= 1;
        assert!(!verify(&key, hello, &nonce, &binding, &flipped));
        assert_eq!(format!("{key:?}"), "PeerKey([redacted])");
    }
}
