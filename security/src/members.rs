//! Cluster members' credentials, for the requests one member forwards to another
//! (`--cluster-secret FILE`, docs/cluster.md).
//!
//! Every member is configured with the same secret. From it each derives one credential per
//! member, `SLUICEMEMBER<node id>` with the secret `hex(HMAC-SHA256(cluster secret,
//! "sluice member key " + node id))`, and authenticates to another member's native listener
//! with its own as any client does (the challenge-response of [`crate::challenge`], with no
//! secret on the wire). A connection so authenticated may carry the requests of clients the
//! member already authenticated; the leader serves each as that client.
//!
//! The same secret gives the Raft peer network its key ([`ClusterSecret::peer_key`]): a member
//! dialing another proves it holds it before any Raft message is believed.
//!
//! What the secret protects: whoever holds it can act as any member, and so as any client of
//! the credentials file. It belongs with the data directory's keys, readable by the daemon
//! alone (`chmod 600`), and the same on every member. Members' keys never appear in the
//! credentials file; its principals may not use the prefix.

pub use crate::credentials::{is_member_key, MEMBER_KEY_PREFIX};
use crate::credentials::{read_bounded, CredentialStore, CredentialsError, Principal, ReadError};
use crate::secret::Secret;
use crate::sigv4::{hex, hmac_sha256, SigningCredentials};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The shortest cluster secret, in bytes after trimming: 32 hex characters are 128 bits.
pub const CLUSTER_SECRET_BYTES_MIN: usize = 32;
const MEMBER_KEY_DOMAIN: &str = "sluice member key ";
const PEER_KEY_DOMAIN: &str = "sluice peer network key";
const AWS_MANAGED_KEY_DOMAIN: &str = "sluice cluster aws-managed kinesis key";
const RELAY_KEY_DOMAIN: &str = "sluice relay key ";
/// The account members' principals name in their ARNs (they hold no policies; the account
/// only shows in logs).
const MEMBER_ACCOUNT_ID: &str = "000000000000";

#[derive(Debug, thiserror::Error)]
pub enum ClusterSecretError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: the cluster secret must be one line of at least {CLUSTER_SECRET_BYTES_MIN} bytes (e.g. `openssl rand -hex 32`), and this file is {problem}")]
    Shape { path: PathBuf, problem: String },
}

/// The secret every member shares.
#[derive(Clone)]
pub struct ClusterSecret(Secret);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret([redacted])")
    }
}

impl ClusterSecret {
    /// Reads the secret from `path`: one line (surrounding whitespace is not part of it).
    pub fn load(path: &Path) -> Result<ClusterSecret, ClusterSecretError> {
        let text = read_bounded(path).map_err(|error| match error {
            ReadError::Io(source) => ClusterSecretError::Io { path: path.to_path_buf(), source },
            ReadError::TooLarge => ClusterSecretError::Shape { path: path.to_path_buf(), problem: "too large".into() },
        })?;
        ClusterSecret::parse(&text).map_err(|problem| ClusterSecretError::Shape { path: path.to_path_buf(), problem })
    }

    /// The secret of a file's text, or what is wrong with it.
    pub fn parse(text: &str) -> Result<ClusterSecret, String> {
        let secret = text.trim();
        if secret.lines().count() > 1 {
            return Err("more than one line".into());
        }
        if secret.len() < CLUSTER_SECRET_BYTES_MIN {
            return Err(format!("{} bytes long", secret.len()));
        }
        Ok(ClusterSecret(Secret::new(secret)))
    }

    /// Member `node_id`'s credential, as it signs its handshake.
    pub fn credentials(&self, node_id: u64) -> SigningCredentials {
        SigningCredentials {
            access_key_id: member_key_id(node_id),
            secret_access_key: self.member_secret(node_id),
            session_token: None,
        }
    }

    /// The members' principals (no policies: a member's own requests are denied; it may only
    /// carry its clients'), for verifying their handshakes.
    pub fn store(&self, node_ids: impl IntoIterator<Item = u64>) -> Result<CredentialStore, CredentialsError> {
        let principals = node_ids.into_iter().map(|node_id| {
            let name = format!("sluice-member-{node_id}");
            Principal::new(&name, MEMBER_ACCOUNT_ID, &member_key_id(node_id), self.member_secret(node_id), Vec::new())
        });
        CredentialStore::new(principals.collect())
    }

    /// The key of the Raft peer network, which every member proves it holds when it dials
    /// another (`sluice_cluster::peer_auth`).
    pub fn peer_key(&self) -> [u8; 32] {
        hmac_sha256(self.0.expose().as_bytes(), PEER_KEY_DOMAIN.as_bytes())
    }

    /// The material of the cluster's AWS-managed key (`alias/aws/kinesis`): the same on every
    /// member, so that a record one member sealed opens on every other (`kms::derive`).
    pub fn aws_managed_key_material(&self) -> crate::secret::SecretBytes {
        crate::secret::SecretBytes::new(
            hmac_sha256(self.0.expose().as_bytes(), AWS_MANAGED_KEY_DOMAIN.as_bytes()).to_vec(),
        )
    }

    /// What member `node_id` attaches to a call it relays to another member over HTTP to vouch
    /// for what only it saw of the call (`vouched`: the client's address and transport) and
    /// to tie that to this call alone (its signed headers, among `vouched`): hex HMAC-SHA256
    /// under a key derived from the secret for that member. Each part is length-prefixed, so
    /// that no two lists of parts make one message.
    pub fn relay_proof(&self, node_id: u64, vouched: &[&str]) -> String {
        hex(&self.relay_mac(node_id, vouched))
    }

    /// Whether `proof` is [`ClusterSecret::relay_proof`] of member `node_id` for `vouched`
    /// (compared in constant time).
    pub fn verify_relay_proof(&self, node_id: u64, vouched: &[&str], proof: &str) -> bool {
        let expected = hex(&self.relay_mac(node_id, vouched));
        bool::from(expected.as_bytes().ct_eq(proof.as_bytes()))
    }

    fn relay_mac(&self, node_id: u64, vouched: &[&str]) -> [u8; 32] {
        let key = hmac_sha256(self.0.expose().as_bytes(), format!("{RELAY_KEY_DOMAIN}{node_id}").as_bytes());
        let mut message = Vec::new();
        for part in vouched {
            message.extend_from_slice(&(part.len() as u64).to_le_bytes());
            message.extend_from_slice(part.as_bytes());
        }
        hmac_sha256(&key, &message)
    }

    fn member_secret(&self, node_id: u64) -> Secret {
        let mac = hmac_sha256(self.0.expose().as_bytes(), format!("{MEMBER_KEY_DOMAIN}{node_id}").as_bytes());
        Secret::new(hex(&mac))
    }
}

/// The access key id of member `node_id`'s credential.
pub fn member_key_id(node_id: u64) -> String {
    format!("{MEMBER_KEY_PREFIX}{node_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::{ClientHandshake, PendingChallenge, ServerProof};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_short_or_multi_line_secret_is_refused() {
        assert!(ClusterSecret::parse("short").unwrap_err().contains("5 bytes"));
        assert!(ClusterSecret::parse(&format!("{SECRET}\n{SECRET}")).unwrap_err().contains("more than one line"));
        assert!(ClusterSecret::parse(&format!("  {SECRET}\n")).is_ok());
    }

    #[test]
    fn a_member_proves_itself_to_another_with_the_same_secret_only() {
        let ours = ClusterSecret::parse(SECRET).unwrap();
        let theirs = ClusterSecret::parse(&SECRET.replace('0', "1")).unwrap();
        let store = ours.store([1, 2, 3]).unwrap();
        let now = 1_800_000_000_000;
        for (secret, accepted) in [(&ours, true), (&theirs, false)] {
            let pending = PendingChallenge::new("us-east-1");
            let (proof, client) =
                ClientHandshake::respond(&pending.challenge(), &secret.credentials(2), "us-east-1", b"", now);
            match pending.verify(&proof, &store, b"", now) {
                Ok((principal, server)) => {
                    assert!(accepted);
                    assert_eq!(principal.access_key_id, "SLUICEMEMBER2");
                    assert!(principal.policies.is_empty());
                    assert!(client.check_server(&ServerProof { mac: server.mac }));
                }
                Err(_) => assert!(!accepted),
            }
        }
        // Each member's key is its own.
        assert_ne!(ours.credentials(1).secret_access_key, ours.credentials(2).secret_access_key);
        assert!(is_member_key("SLUICEMEMBER7") && !is_member_key("AKIDALICE"));
    }

    #[test]
    fn the_aws_managed_key_is_the_clusters_own() {
        let ours = ClusterSecret::parse(SECRET).unwrap();
        let again = ClusterSecret::parse(SECRET).unwrap();
        let theirs = ClusterSecret::parse(&SECRET.replace('0', "1")).unwrap();
        assert_eq!(ours.aws_managed_key_material().expose(), again.aws_managed_key_material().expose());
        assert_ne!(ours.aws_managed_key_material().expose(), theirs.aws_managed_key_material().expose());
        assert_ne!(ours.aws_managed_key_material().expose(), &ours.peer_key()[..], "a key of its own");
    }

    #[test]
    fn a_relay_proof_holds_for_its_member_its_parts_and_the_secret_alone() {
        let ours = ClusterSecret::parse(SECRET).unwrap();
        let theirs = ClusterSecret::parse(&SECRET.replace('0', "1")).unwrap();
        let vouched = ["203.0.113.9", "tls", "AWS4-HMAC-SHA256 Credential=AKID/..."];
        let proof = ours.relay_proof(2, &vouched);
        assert!(ours.verify_relay_proof(2, &vouched, &proof));
        assert!(!ours.verify_relay_proof(3, &vouched, &proof), "another member's");
        assert!(!theirs.verify_relay_proof(2, &vouched, &proof), "another cluster's");
        assert!(!ours.verify_relay_proof(2, &["198.51.100.1", vouched[1], vouched[2]], &proof), "another client");
        // Parts are not run together: "ab" + "c" is not "a" + "bc".
        assert!(!ours.verify_relay_proof(2, &["203.0.113.9t", "ls", vouched[2]], &proof));
        assert!(!ours.verify_relay_proof(2, &vouched, &proof[1..]));
    }
}
