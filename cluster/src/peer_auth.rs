//! Authentication of the Raft peer network: a member proves to the member it dials that it
//! holds the cluster's peer key, before any Raft message is believed.
//!
//! The key is derived from the cluster secret every member shares (`sluiced --cluster-secret`,
//! `sluice_security::members`). On a connection (one direction: the dialer only writes):
//!
//! 1. the dialer sends its hello with `authenticated` set;
//! 2. the listener answers with [`PEER_NONCE_BYTES`] fresh random bytes;
//! 3. the dialer answers with `HMAC-SHA256(key, domain, from, to, nonce)` ([`proof`]);
//! 4. the listener checks it in constant time ([`verify`]) and only then reads frames.
//!
//! A proof answers one nonce, drawn fresh per connection, so a recorded handshake opens
//! nothing, and it names both ends, so it opens no other connection. A listener with a key
//! refuses a hello without the flag, and one without a key a hello with it: members must be
//! configured alike. What it does not do: encrypt, or protect a connection from an attacker on
//! the path between members, who can read it and write into it after the handshake; that needs
//! TLS between the members (not built; `docs/cluster.md`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::Hello;

/// Bytes of the listener's challenge.
pub const PEER_NONCE_BYTES: usize = 32;
/// Bytes of the dialer's proof (an HMAC-SHA256).
pub const PEER_PROOF_BYTES: usize = 32;
const DOMAIN: &[u8] = b"SLUICE-PEER-AUTH-1";

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

    fn mac(&self, hello: Hello, nonce: &[u8; PEER_NONCE_BYTES]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(DOMAIN);
        mac.update(&hello.from.to_le_bytes());
        mac.update(&hello.to.to_le_bytes());
        mac.update(nonce);
        mac
    }
}

/// The dialer's answer to `nonce` on the connection `hello` opened.
pub fn proof(key: &PeerKey, hello: Hello, nonce: &[u8; PEER_NONCE_BYTES]) -> [u8; PEER_PROOF_BYTES] {
    key.mac(hello, nonce).finalize().into_bytes().into()
}

/// Whether `proof` answers `nonce` on `hello`'s connection with `key` (constant time).
pub fn verify(key: &PeerKey, hello: Hello, nonce: &[u8; PEER_NONCE_BYTES], proof: &[u8; PEER_PROOF_BYTES]) -> bool {
    key.mac(hello, nonce).verify_slice(proof).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_answers_one_nonce_on_one_connection_with_one_key() {
        let key = PeerKey::new([7; 32]);
        let hello = Hello { from: 2, to: 1, authenticated: true };
        let nonce = [3; PEER_NONCE_BYTES];
        let answer = proof(&key, hello, &nonce);
        assert!(verify(&key, hello, &nonce, &answer));
        assert!(!verify(&PeerKey::new([8; 32]), hello, &nonce, &answer), "another key");
        assert!(!verify(&key, hello, &[4; PEER_NONCE_BYTES], &answer), "another nonce");
        assert!(!verify(&key, Hello { from: 3, ..hello }, &nonce, &answer), "another sender");
        assert!(!verify(&key, Hello { to: 3, ..hello }, &nonce, &answer), "another listener");
        let mut flipped = answer;
        flipped[31] ^= 1;
        assert!(!verify(&key, hello, &nonce, &flipped));
        assert_eq!(format!("{key:?}"), "PeerKey([redacted])");
    }
}
