//! One node of a replicated log: one Raft group (raft-rs) on the durable log, its peers over
//! TCP, and a tiny client interface (append, acknowledged once committed by a quorum and
//! durable; read by index; status). The raw Raft layer, for testing it end to end with real
//! processes (`cluster/tests/nodes.rs`); Sluice's streams are not served here.
//!
//! ```sh
//! sluice-cluster-node --node-id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//!     --data /var/lib/sluice-node1 --client 127.0.0.1:7101
//! ```
//!
//! The client protocol is `sluice_cluster::wire`'s `ClientRequest` / `ClientResponse`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use rand::Rng;
use sluice_cluster::durable_log::DurableLog;
use sluice_cluster::host::{AppendError, GroupHost, GroupHostConfig};
use sluice_cluster::limits::{CLIENT_CONNECTIONS_MAX, CLIENT_FRAME_BYTES_MAX, ELECTION_TICKS, TICK_INTERVAL_MS};
use sluice_cluster::replica::ReplicaConfig;
use sluice_cluster::transport::{bind, PeerNetwork, PeerSecurity};
use sluice_cluster::wire::{frame_body_bytes, ClientRequest, ClientResponse, FailReason, GroupId, LENGTH_PREFIX_BYTES};
use sluice_engine::storage::DmaStorage;

/// The one group this binary hosts.
const GROUP: GroupId = GroupId(1);

#[derive(Parser, Debug)]
#[command(about = "One node of a Raft-replicated log (the raw replication layer of Sluice)")]
struct Args {
    /// This node's id (not 0): one of the ids in --peers.
    #[arg(long)]
    node_id: u64,
    /// Every member, this node included: `1=HOST:PORT,2=HOST:PORT,...`. This node listens
    /// for its peers on its own entry's address.
    #[arg(long)]
    peers: String,
    /// Directory of the Raft log and hard state (created if missing; on a disk with O_DIRECT).
    #[arg(long)]
    data: PathBuf,
    /// Address of the client interface.
    #[arg(long)]
    client: SocketAddr,
    /// Real time per Raft tick, milliseconds.
    #[arg(long, default_value_t = TICK_INTERVAL_MS)]
    tick_ms: u64,
}

fn parse_peers(text: &str) -> anyhow::Result<BTreeMap<u64, SocketAddr>> {
    let mut peers = BTreeMap::new();
    for member in text.split(',').filter(|member| !member.is_empty()) {
        let (id, address) = member.split_once('=').ok_or_else(|| anyhow!("peer `{member}` is not ID=HOST:PORT"))?;
        let id: u64 = id.trim().parse().with_context(|| format!("peer id `{id}`"))?;
        let address: SocketAddr = address.trim().parse().with_context(|| format!("peer address `{address}`"))?;
        if id == 0 || peers.insert(id, address).is_some() {
            bail!("peer id {id} is 0 or given twice");
        }
    }
    Ok(peers)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.tick_ms == 0 {
        bail!("--tick-ms must be at least 1");
    }
    let members = parse_peers(&args.peers)?;
    let listen = *members.get(&args.node_id).ok_or_else(|| anyhow!("--node-id {} is not in --peers", args.node_id))?;
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("sluice-cluster-node")
        .spawn(move || async move { run(args, members, listen).await })
        .map_err(|error| anyhow!("start the executor: {error}"))?;
    executor.join().map_err(|error| anyhow!("the executor failed: {error:?}"))?
}

async fn run(args: Args, members: BTreeMap<u64, SocketAddr>, listen: SocketAddr) -> anyhow::Result<()> {
    let mut peers = members.clone();
    peers.remove(&args.node_id);
    let network =
        // Unauthenticated peers: this binary is for tests on loopback (sluiced authenticates
        // them with the cluster secret).
        PeerNetwork::start(args.node_id, listen, &peers, PeerSecurity::default()).with_context(|| format!("listen for peers on {listen}"))?;
    // raft-rs draws each election's timeout from `election_ticks` (as in sluiced).
    let mut random = rand::thread_rng();
    let config = GroupHostConfig {
        group: GROUP,
        replica: ReplicaConfig {
            id: args.node_id,
            voters: members.keys().copied().collect(),
            members: members.keys().copied().collect(),
            election_ticks: ELECTION_TICKS..2 * ELECTION_TICKS,
            dir: args.data.clone(),
            entry_cache_bytes: sluice_cluster::limits::ENTRY_CACHE_BYTES,
            segment_bytes: sluice_cluster::limits::LOG_SEGMENT_BYTES,
            // Its clients read the log itself, which is never compacted.
            laggard_held_bytes_max: None,
            // Elections as raft-rs runs them: the kill test measures failover, not first leaders.
            campaigns_when_new: false,
            commit_saved_every_ticks: sluice_cluster::limits::COMMIT_SAVED_EVERY_TICKS,
        },
        tick_interval: Duration::from_millis(args.tick_ms),
        boot_nonce: random.gen(),
        leader_changed: None,
    };
    let opened = DurableLog::open_for(DmaStorage, &config.replica)
        .await
        .with_context(|| format!("open the raft state in {}", args.data.display()))?;
    let (host, replica) = GroupHost::start(opened, config, network.transport(GROUP), None)?;
    network.register(GROUP, host.inbox());
    let clients = bind(args.client).with_context(|| format!("listen for clients on {}", args.client))?;
    glommio::spawn_local(serve_clients(host, clients)).detach();
    println!("node {} ready: peers on {listen}, clients on {}", args.node_id, args.client);
    // The replica runs until its storage fails; then the node must stop (fail-stop) and be
    // restarted from its disk.
    replica.await.context("the replica stopped")?;
    Ok(())
}

async fn serve_clients(host: GroupHost, listener: glommio::net::TcpListener) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    loop {
        let Ok(stream) = listener.accept().await else {
            glommio::timer::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if open.get() >= CLIENT_CONNECTIONS_MAX {
            continue;
        }
        open.set(open.get() + 1);
        let (host, open) = (host.clone(), open.clone());
        glommio::spawn_local(async move {
            let _ = serve_client(&host, stream).await;
            open.set(open.get() - 1);
        })
        .detach();
    }
}

/// Answers one client's requests, one at a time, until it hangs up or sends garbage (which
/// is answered with an `Invalid` failure, then the connection closed).
async fn serve_client(host: &GroupHost, mut stream: TcpStream) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut body = Vec::new();
    loop {
        let mut prefix = [0; LENGTH_PREFIX_BYTES];
        stream.read_exact(&mut prefix).await?;
        let request = match frame_body_bytes(prefix, CLIENT_FRAME_BYTES_MAX) {
            Ok(body_bytes) => {
                body.resize(body_bytes, 0);
                stream.read_exact(&mut body).await?;
                ClientRequest::decode(&body)
            }
            Err(error) => Err(error),
        };
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                let refusal = ClientResponse::Failed { reason: FailReason::Invalid, message: error.to_string() };
                stream.write_all(&refusal.encode()).await?;
                return Ok(());
            }
        };
        let response = answer(host, request).await;
        stream.write_all(&response.encode()).await?;
    }
}

async fn answer(host: &GroupHost, request: ClientRequest) -> ClientResponse {
    match request {
        ClientRequest::Append(data) => match host.append(data).await {
            Ok(appended) => ClientResponse::Appended { index: appended.index, term: appended.term },
            Err(AppendError::NotLeader { leader }) => ClientResponse::NotLeader { leader },
            Err(error) => {
                let reason = match error {
                    AppendError::Size { .. } => FailReason::Invalid,
                    AppendError::Busy { .. } => FailReason::Busy,
                    AppendError::Timeout { .. } => FailReason::Timeout,
                    AppendError::LeadershipLost | AppendError::NotLeader { .. } => FailReason::LeadershipLost,
                };
                ClientResponse::Failed { reason, message: error.to_string() }
            }
        },
        ClientRequest::Read { from, count_max } => {
            let commit = host.status().commit;
            ClientResponse::Entries { first: from.max(1), commit, entries: host.read(from, count_max as usize).await }
        }
        ClientRequest::Status => ClientResponse::Status(host.status()),
    }
}
