//! The thread-per-core runtime: one pinned glommio executor per core, talking to the others
//! only through bounded mailboxes, and reading the routes snapshot without locks.
//!
//! - [`mailbox`]: work sent to another core and its answer ([`mailbox::Mailboxes::run_on`]),
//!   generic over the per-core context the work runs with.
//! - [`routes`]: the data plane's read-only view of the catalog, replaced whole on every change.
//! - [`shutdown`]: telling every core to stop, and waiting until all have.
//!
//! Layer: imports `kinesis` and `limits`. It knows nothing of the operations: the per-core
//! context (`ops::node::Node`) is a type parameter here.

pub mod cluster;
pub mod mailbox;
pub mod routes;
pub mod shutdown;

use crate::kinesis::throttle::LimitsProfile;
use crate::limits::Limits;
use sluice_model::Identity;
use sluice_security::audit::AuditLog;
use sluice_security::credentials::ReloadableCredentials;
use sluice_security::tls::ReloadableServerConfig;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// What a node is configured with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub cores: usize,
    /// `kinesis` enforces the per-shard quotas; `unlimited` does not.
    pub profile: LimitsProfile,
    /// Account quotas and server bounds.
    pub limits: Limits,
    /// The region and account in ARNs and messages.
    pub identity: Identity,
    /// How long the on-demand scaler measures demand before splitting hot shards.
    pub on_demand_window_ms: u64,
    /// Who may call, and where calls are recorded.
    pub security: Security,
    /// `--node-id` and `--peers`: the shards are replicated (`ops/cluster/`). `None`: one
    /// node alone, and none of the replicated code runs.
    pub cluster: Option<Arc<cluster::ClusterConfig>>,
}

/// The callers a node knows and its audit log (`--credentials`, `--audit-dir`). Without
/// credentials the node serves every caller anonymously (open mode).
#[derive(Clone, Default)]
pub struct Security {
    /// The principals of `--credentials` (reread on SIGHUP), or `None` for open mode.
    pub credentials: Option<Arc<ReloadableCredentials>>,
    /// The audit log's request side, if `--audit-dir` is set.
    pub audit: Option<AuditLog>,
    /// The HTTP listener's TLS configuration (`--tls-cert`, `--tls-key`; reloaded on SIGHUP).
    pub http_tls: Option<Arc<ReloadableServerConfig>>,
    /// The native listener's: the same certificate and key, ALPN `sluice/1`.
    pub native_tls: Option<Arc<ReloadableServerConfig>>,
    /// The master keys of encryption at rest (`--kms-keys` and the data directory's
    /// AWS-managed key); `None`: StartStreamEncryption answers KMSNotFoundException.
    pub keys: Option<Arc<sluice_security::kms::KeyStore>>,
    /// The cluster members' credentials (`--cluster-secret`), for forwarding with
    /// credentials (`ops/cluster/forward.rs`).
    pub members: Option<Arc<Members>>,
    /// How a member verifies another's native listener when it forwards over TLS
    /// (`--cluster-ca-bundle`, by default the `--tls-cert` file); `None` without TLS.
    pub member_tls: Option<Arc<sluice_security::tls::ClientConfig>>,
    /// TLS on the Raft peer network: the `--tls-cert` certificate with ALPN `sluice-raft/1`
    /// (reloaded on SIGHUP), and the members' verified as for forwarding; `None` without TLS.
    pub peer_tls: Option<sluice_cluster::transport::PeerTls>,
}

/// This member's credential and every member's, derived from the cluster secret.
pub struct Members {
    pub node_id: u64,
    pub secret: sluice_security::members::ClusterSecret,
    /// The members' principals, for verifying another member's handshake.
    pub store: sluice_security::credentials::CredentialStore,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("principals", &self.credentials.as_ref().map(|credentials| credentials.current().principals().len()))
            .field("audit", &self.audit.is_some())
            .field("http_tls", &self.http_tls.is_some())
            .field("native_tls", &self.native_tls.is_some())
            .field("master_keys", &self.keys.as_ref().map(|keys| keys.keys().len()))
            .field("members", &self.members.is_some())
            .field("member_tls", &self.member_tls.is_some())
            .field("peer_tls", &self.peer_tls.is_some())
            .finish()
    }
}
