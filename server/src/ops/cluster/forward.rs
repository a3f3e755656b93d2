//! Forwarding: a node that does not lead the shard a write goes to (or the catalog, for the
//! catalog changes that are metadata commands, `meta::COMMAND_OPERATIONS`) sends the request to the member that does and relays its
//! answer, so clients need one address (issue 13).
//!
//! Where: in the one dispatch (`ops::dispatch`), after the request was validated and its
//! caller authorized here, and before it runs. Whichever protocol it came by, the request goes
//! on as a model `Request` over the native protocol to the leader's `--listen` port (given in
//! `--peers` as `/native@HOST:PORT`), wrapped in a ForwardedRequest that names its caller
//! (`sluice_protocol::native::encode_forwarded`), and the leader's model answer (its `Response`
//! or its error, per record for PutRecords) comes back and is encoded in the client's
//! protocol. So an HTTP request is checked (SigV4) on the node it reached, whose Host header
//! it was signed for, and is not re-signed; forwarding the HTTP bytes to the leader's HTTP port
//! instead would need a second HTTP client in the daemon and would not carry native requests.
//!
//! With credentials: the members authenticate to each other with keys derived from the secret
//! they share (`--cluster-secret`, `sluice_security::members`), by the native protocol's own
//! handshake. The leader serves a ForwardedRequest only on a connection a member opened, as
//! the caller it names, looked up in the leader's own credentials file and authorized again
//! there (`net::native_auth::forwarded_caller`); the caller's address and transport travel
//! with it for `aws:SourceIp` and `aws:SecureTransport`. Both nodes record the call in their
//! audit logs, under the same request id. Without the secret such a cluster does not forward.
//!
//! At most once: a ForwardedRequest is never forwarded again: at a node that does not lead
//! (any more) it is refused with `ErrorKind::NotLeader` (whole, or each PutRecords record
//! whose shard that node does not lead), naming the leader, and a ForwardedRequest cannot
//! carry another. NotLeader is certain: nothing of what it refuses was stored
//! (`sluice_cluster::host::AppendError::NotLeader`).
//!
//! Which leader: from the node's [`LeaderTable`](crate::runtime::cluster::LeaderTable), which
//! every core refreshes from the groups it hosts as soon as one's leader changes; no
//! cross-core hop and no lock to decide. A stale entry is never a wrong write: Raft decides,
//! not the table. A client's request whose group has no leader known here waits for one first
//! ([`leader_known`]). One whose leader could not take it and certainly stored nothing of it
//! waits up to [`LEADER_WAIT_MS`] for the table to name another leader, and goes there once
//! ([`leader_moved`], `dispatch::routed`; a split PutRecords' records too): the leader could
//! not be reached (connecting or the handshake failed: it died or is cut off, and nothing was
//! sent, [`Unsent`]), or refused it as not its leader (NotLeader: a leadership transfer, an
//! election this node had not heard of yet; this node's own refusal too). Through a follower,
//! a leader's SIGKILL failed every write until the election was over, each at once; and every
//! leadership transfer under writes (leader balancing) failed a call or two. A client never
//! sees NotLeader: it hears the retriable InternalFailure (`ErrorKind::for_client`).
//!
//! Bounded: per core and member at most [`FORWARDS_IN_FLIGHT_PER_PEER_MAX`] requests (each on
//! a connection of its own from a pool), connecting within [`FORWARD_CONNECT_TIMEOUT_MS`] and
//! answered within [`FORWARD_ANSWER_WAIT_MS`]; past either, or when the connection fails, the
//! client gets a retriable InternalFailure (the write may still have been stored: as with any
//! timeout, Kinesis' at-least-once contract). A connection is kept for the next request only
//! after a whole answer was read from it, and used again only if the member has not closed it
//! meanwhile (a member that died or restarted did; [`Connection::open`]).
//!
//! Clients that know the leaders need none of this: DescribeStreamRoutes (`ops/routes.rs`)
//! gives them the same table, and `sluice_client::RoutedClient` writes to the leaders
//! directly; each forward counts in `sluice_forwarded_requests_total`, which shows how often
//! clients did not.
//!
//! Reads are not forwarded: a node serves GetRecords, GetShardIterator, Describe* and List*
//! from its own applied log and catalog (`docs/replication.md`). A forwarded catalog change
//! is answered once this node applied it too, and a catalog read first catches up with the
//! commit the catalog's leader confirms (`dispatch::catalog_read`: linearizable).
//!
//! With TLS on the native listener, a member forwards over TLS, verifying the leader's
//! certificate for the address `--peers` names with `--cluster-ca-bundle` (by default the
//! node's own `--tls-cert` file), and binds its member proof to that session.
//!
//! An AUTO-distribution stream's records may go to any of its open shards: a node that leads
//! some serves them there (`ops::records` picks among the shards it leads), one that leads none
//! forwards the request to a member that does.
//!
//! A PutRecords whose records go to shards led by different members is split by leader
//! ([`split_put_records`]): each leader gets its records (a shard's records stay together and
//! in order, as a shard has one leader), this node serves those it leads or whose leader it
//! does not know, all at once, and the answers are put back in the request's order
//! ([`merge_put_records`]). A part that gets no answer fails its records with the retriable
//! per-record InternalFailure, as Kinesis fails records it could not store.
//!
//! Every catalog change has a native form, so every one is forwarded. A request the native
//! protocol cannot carry (a frame past its size limit, an enum spelling this build does not
//! know) is answered here with a retriable InternalFailure naming the leader and its
//! addresses.

use crate::limits::{
    FORWARDS_IN_FLIGHT_PER_PEER_MAX, FORWARD_ANSWER_WAIT_MS, FORWARD_CONNECT_TIMEOUT_MS, LEADER_POLL_MS, LEADER_WAIT_MS,
};
use crate::ops::auth::Caller;
use crate::ops::cluster::{is_delivery_operation, meta, DELIVERY_GROUP, META_GROUP};
use crate::ops::node::Node;
use crate::runtime::routes::{ShardRoute, StreamRoute};
use bytes::{Bytes, BytesMut};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use sluice_engine::catalog::RecordDistribution;
use sluice_engine::routing::HashKey;
use sluice_model::{
    KinesisError, PutRecordInput, PutRecordsInput, PutRecordsOutput, PutRecordsResultEntry, Request, Response,
};
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::native::handshake::{self, AuthenticateFields, HandshakeResponse};
use sluice_protocol::native::{self, ResponseMessage};
use sluice_security::challenge::{Challenge, ClientHandshake, ServerProof};
use sluice_security::sigv4::SigningCredentials;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes read from a forwarding connection at a time: answers to writes are small.
const READ_CHUNK_BYTES: usize = 16 << 10;

/// A handshake frame's builder capacity: a key id, a nonce and a MAC.
const HANDSHAKE_BUILDER_BYTES: usize = 512;

/// A builder's starting capacity for a forwarded request besides its records' bytes.
const REQUEST_BUILDER_BYTES_INITIAL: usize = 1024;

/// Where a request came from, as far as forwarding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client: forwarded to the leader if this node does not lead.
    Client,
    /// Another member forwarded it: served here or refused, never forwarded again.
    Forwarded,
}

/// Whether this node forwards at all: in cluster mode; with credentials, only when the members
/// can authenticate to each other (`--cluster-secret`); with TLS, over TLS.
fn enabled(node: &Node) -> bool {
    let security = &node.shared.config.security;
    node.shared.config.cluster.is_some()
        && (security.credentials.is_none() || security.members.is_some())
        && (security.native_tls.is_none() || security.member_tls.is_some())
}

/// Where a request runs, as far as forwarding cares.
enum Destination<'a> {
    /// Wherever it arrives: a read, or a write to a stream this node does not know.
    Here,
    /// At the leader of a group: the catalog's or the delivery state's.
    Group(u64),
    /// At the leaders of its records' shards.
    Records(Arc<StreamRoute>, RecordKeys<'a>),
}

/// The records of a write, for their keys.
#[derive(Clone, Copy)]
enum RecordKeys<'a> {
    One(&'a PutRecordInput),
    Many(&'a PutRecordsInput),
}

impl<'a> RecordKeys<'a> {
    fn len(self) -> usize {
        match self {
            RecordKeys::One(_) => 1,
            RecordKeys::Many(input) => input.records.len(),
        }
    }

    /// Each record's explicit hash key and partition key.
    fn each(self) -> impl Iterator<Item = (Option<&'a sluice_model::HashKey>, Option<&'a str>)> {
        let (one, many) = match self {
            RecordKeys::One(input) => (Some((input.explicit_hash_key.as_ref(), input.partition_key.as_deref())), None),
            RecordKeys::Many(input) => (None, Some(input.records.iter())),
        };
        let many =
            many.into_iter().flatten().map(|entry| (entry.explicit_hash_key.as_ref(), entry.partition_key.as_deref()));
        one.into_iter().chain(many)
    }
}

fn destination<'a>(node: &Node, request: &'a Request) -> Destination<'a> {
    let records = |route: Option<Arc<StreamRoute>>, keys| match route {
        Some(route) => Destination::Records(route, keys),
        None => Destination::Here,
    };
    match request {
        Request::PutRecord(input) => {
            records(route(node, input.stream_name.as_deref(), input.stream_arn.as_ref()), RecordKeys::One(input))
        }
        Request::PutRecords(input) => {
            records(route(node, input.stream_name.as_deref(), input.stream_arn.as_ref()), RecordKeys::Many(input))
        }
        // A queue's tags are the delivery state's.
        Request::TagResource(input) if node.identity().queue_of(input.resource_arn.as_str()).is_ok() => {
            Destination::Group(DELIVERY_GROUP.0)
        }
        Request::UntagResource(input) if node.identity().queue_of(input.resource_arn.as_str()).is_ok() => {
            Destination::Group(DELIVERY_GROUP.0)
        }
        _ if meta::is_command(request.operation().name()) => Destination::Group(META_GROUP.0),
        // Reads too: the leader's state has every change acknowledged.
        _ if is_delivery_operation(request.operation().name()) => Destination::Group(DELIVERY_GROUP.0),
        _ => Destination::Here,
    }
}

/// Where a client's request runs, as far as forwarding cares ([`runs_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsAt {
    /// Here, as nothing else: the leader is unknown or cannot be forwarded to, or the request
    /// is a read.
    Here,
    /// Here, as this node (its id) leads where it goes, as far as it knows, and another member
    /// could take it if it turns out not to.
    Leader(u64),
    /// At another member, which leads where it goes.
    Member(u64),
}

/// Where `request` runs: at the leader of the catalog for a metadata command, of the record's
/// shard for PutRecord, of the records' shard for a PutRecords that [`split_put_records`] left
/// whole (all its records go to one member); here when this node leads or the leader is
/// unknown or unreachable, or the request is a read.
pub fn runs_at(node: &Node, request: &Request) -> RunsAt {
    let Some(cluster) = node.shared.config.cluster.as_ref().filter(|_| enabled(node)) else {
        return RunsAt::Here;
    };
    match leader_of(node, request) {
        Some(leader) if leader == cluster.node_id && forwards_to_any(node) => RunsAt::Leader(leader),
        Some(leader) if leader != cluster.node_id && reachable(node, leader) => RunsAt::Member(leader),
        _ => RunsAt::Here,
    }
}

/// The member `request` is forwarded to ([`runs_at`]), if any.
pub fn target(node: &Node, request: &Request) -> Option<u64> {
    match runs_at(node, request) {
        RunsAt::Member(leader) => Some(leader),
        RunsAt::Here | RunsAt::Leader(_) => None,
    }
}

/// The member leading where `request` goes, this one included, as far as this node knows.
fn leader_of(node: &Node, request: &Request) -> Option<u64> {
    match destination(node, request) {
        Destination::Here => None,
        Destination::Group(group) => node.shared.leaders.leader(group),
        Destination::Records(route, keys) => {
            keys.each().find_map(|(explicit, partition_key)| record_leader(node, &route, explicit, partition_key))
        }
    }
}

/// Waits, up to [`LEADER_WAIT_MS`], until this node knows the leader of each group `request`
/// goes to (its records' shards', the catalog's, the delivery state's), before [`target`]
/// decides where it runs: a write to a new stream's shards, or one that arrives during an
/// election, is forwarded or served once the leader is elected instead of refused with a
/// retriable InternalFailure (a member alone would only know that no one leads yet). A
/// group this node does not host yet (a new stream's, started shortly after the catalog has
/// it) counts as one without a leader. A node that can forward to no other member does not
/// wait: its clients find the leader themselves, from the error naming it, and a wait would
/// only delay that (`docs/replication.md`, "Forwarding").
pub async fn leader_known(node: &Node, request: &Request) {
    // Cheapest first: nearly every request has its leaders known.
    if !enabled(node) || !awaits_leader(node, request) || !forwards_to_any(node) {
        return;
    }
    within_leader_wait(|| !awaits_leader(node, request)).await;
}

/// Whether `holds` came true within [`LEADER_WAIT_MS`], looked at every [`LEADER_POLL_MS`]
/// (the cores publish a new leader as soon as they see it).
async fn within_leader_wait(holds: impl Fn() -> bool) -> bool {
    let waited = Instant::now();
    let wait = Duration::from_millis(LEADER_WAIT_MS);
    loop {
        if holds() {
            return true;
        }
        if waited.elapsed() >= wait {
            return false;
        }
        glommio::timer::sleep(Duration::from_millis(LEADER_POLL_MS)).await;
    }
}

/// Whether a group `request` goes to has no leader this node knows.
fn awaits_leader(node: &Node, request: &Request) -> bool {
    match destination(node, request) {
        Destination::Here => false,
        Destination::Group(group) => node.shared.leaders.leader(group).is_none(),
        Destination::Records(route, keys) => {
            // Every open shard led, as nearly always: with no more shards than records, looking
            // at each shard is cheaper than routing each record (an MD5 of its key).
            let led = |(_, shard): (_, ShardRoute)| node.shared.leaders.leader(shard.uid).is_some();
            if route.open_shards().len() <= keys.len() && route.open_shards().all(led) {
                return false;
            }
            if route.meta.distribution == RecordDistribution::Auto {
                // Whatever their keys, the records go to any open shard with a leader: one
                // answer for all of them, not one look at every shard per record.
                return keys.len() > 0
                    && route.open_shards().len() > 0
                    && record_leader(node, &route, None, None).is_none();
            }
            keys.each().any(|(explicit, partition_key)| {
                // A key no open shard holds is the request's own error, found where it runs.
                shard_of(&route, explicit, partition_key).is_some()
                    && record_leader(node, &route, explicit, partition_key).is_none()
            })
        }
    }
}

/// The member leading the shard a record goes to (`None`: unknown). An AUTO-distribution
/// stream's records go to any shard: to this node's when it leads one of the stream's open
/// shards (`ops::records` then picks among those), else to the leader of the first open shard
/// with a leader known.
fn record_leader(
    node: &Node,
    route: &StreamRoute,
    explicit_hash_key: Option<&sluice_model::HashKey>,
    partition_key: Option<&str>,
) -> Option<u64> {
    if route.meta.distribution == RecordDistribution::Auto {
        let node_id = node.shared.config.cluster.as_ref()?.node_id;
        let leaders: Vec<u64> =
            route.open_shards().filter_map(|(_, shard)| node.shared.leaders.leader(shard.uid)).collect();
        return if leaders.contains(&node_id) { Some(node_id) } else { leaders.first().copied() };
    }
    node.shared.leaders.leader(shard_of(route, explicit_hash_key, partition_key)?)
}

/// The uid of the open shard a record goes to, by its keys (any open shard, for an
/// AUTO-distribution stream; `None`: no open shard holds its key).
fn shard_of(
    route: &StreamRoute,
    explicit_hash_key: Option<&sluice_model::HashKey>,
    partition_key: Option<&str>,
) -> Option<u64> {
    if route.meta.distribution == RecordDistribution::Auto {
        return route.open_shards().next().map(|(_, shard)| shard.uid);
    }
    let key = match explicit_hash_key {
        Some(key) => HashKey(key.0),
        None => HashKey::from_partition_key(partition_key.unwrap_or_default()),
    };
    Some(route.shard_for(key)?.uid)
}

/// The member leading shard `uid`, if it is another one this node can forward to: where a
/// GetShardIterator this member cannot answer yet goes (`dispatch::shard_iterator`).
pub fn shard_leader_elsewhere(node: &Node, uid: u64) -> Option<u64> {
    let cluster = node.shared.config.cluster.as_ref()?;
    let leader = node.shared.leaders.leader(uid)?;
    (leader != cluster.node_id && reachable(node, leader)).then_some(leader)
}

/// Whether another member has a native address to forward to.
fn forwards_to_any(node: &Node) -> bool {
    let own = node.shared.config.cluster.as_ref().map(|cluster| cluster.node_id);
    crate::ops::cluster::members(node).iter().any(|(&id, member)| Some(id) != own && member.native.is_some())
}

/// Whether member `leader` has a native address to forward to.
fn reachable(node: &Node, leader: u64) -> bool {
    crate::ops::cluster::members(node).get(&leader).is_some_and(|member| member.native.is_some())
}

/// One part of a split PutRecords: the member it goes to (`None`: served here), its request,
/// and the index of each of its records in the original request.
pub type PutRecordsPart = (Option<u64>, PutRecordsInput, Vec<usize>);

/// A PutRecords split by the member leading each record's shard.
#[derive(Debug)]
pub struct PutRecordsSplit {
    /// The records of the request.
    pub record_count: usize,
    /// One part per member.
    pub parts: Vec<PutRecordsPart>,
}

/// `input` split by leader, if its records go to more than one member (this node counting as
/// one); `None`: it goes whole to one place, as [`target`] says.
pub fn split_put_records(node: &Node, input: &PutRecordsInput) -> Option<PutRecordsSplit> {
    if !enabled(node) {
        return None;
    }
    let cluster = node.shared.config.cluster.as_ref()?;
    let route = route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    if route.meta.distribution == RecordDistribution::Auto {
        return None;
    }
    let mut parts: Vec<PutRecordsPart> = Vec::new();
    for (index, entry) in input.records.iter().enumerate() {
        let leader = record_leader(node, &route, entry.explicit_hash_key.as_ref(), entry.partition_key.as_deref());
        let to = leader.filter(|&leader| leader != cluster.node_id && reachable(node, leader));
        let part = match parts.iter().position(|(known, _, _)| *known == to) {
            Some(part) => part,
            None => {
                let request = PutRecordsInput {
                    records: Vec::new(),
                    stream_name: input.stream_name.clone(),
                    stream_arn: input.stream_arn.clone(),
                };
                parts.push((to, request, Vec::new()));
                parts.len() - 1
            }
        };
        parts[part].1.records.push(entry.clone());
        parts[part].2.push(index);
    }
    (parts.len() > 1).then_some(PutRecordsSplit { record_count: input.records.len(), parts })
}

/// The answer to a split PutRecords, in the request's order, from each part's answer. A part
/// that failed whole fails each of its records with the per-record error (throttling stays
/// throttling; anything else is a retriable InternalFailure with the part's message).
pub fn merge_put_records(
    record_count: usize,
    answers: Vec<(Vec<usize>, Result<Response, KinesisError>)>,
) -> PutRecordsOutput {
    let mut records: Vec<Option<PutRecordsResultEntry>> = vec![None; record_count];
    let mut encryption_type = None;
    for (indexes, answer) in answers {
        let output = match answer {
            Ok(Response::PutRecords(output)) if output.records.len() == indexes.len() => Ok(output),
            Ok(other) => Err(KinesisError::internal(format!(
                "A forwarded part of this PutRecords got an answer of another shape ({}); retry",
                other.operation().name()
            ))),
            Err(error) => Err(error),
        };
        match output {
            Ok(output) => {
                encryption_type = encryption_type.or(output.encryption_type);
                for (index, entry) in indexes.into_iter().zip(output.records) {
                    records[index] = Some(entry);
                }
            }
            Err(error) => {
                for index in indexes {
                    records[index] = Some(PutRecordsResultEntry::failed(error.clone()));
                }
            }
        }
    }
    let records: Vec<PutRecordsResultEntry> =
        records.into_iter().map(|entry| entry.expect("every record is in exactly one part")).collect();
    let failed = records.iter().filter(|entry| entry.error_code.is_some()).count();
    PutRecordsOutput { failed_record_count: Some(failed as i32), records, encryption_type }
}

/// Whether `request` writes to, or asks an iterator of, a stream this node's catalog does not
/// have: one created through another member a moment ago, which this node has not applied
/// yet (`dispatch::routed` then catches up with the catalog's leader first), or none at all.
pub fn names_unknown_stream(node: &Node, request: &Request) -> bool {
    let (name, arn) = match request {
        Request::PutRecord(input) => (input.stream_name.as_deref(), input.stream_arn.as_ref()),
        Request::PutRecords(input) => (input.stream_name.as_deref(), input.stream_arn.as_ref()),
        Request::GetShardIterator(input) => (input.stream_name.as_deref(), input.stream_arn.as_ref()),
        _ => return false,
    };
    route(node, name, arn).is_none()
}

/// The stream a write names, from the routes (`None`: the request itself will say what is wrong).
fn route(node: &Node, name: Option<&str>, arn: Option<&sluice_model::StreamArn>) -> Option<Arc<StreamRoute>> {
    let name = node.identity().resolve_stream(name, arn).ok()?;
    node.routes().streams.get(name).cloned()
}

/// Sends `request` of `caller` to member `leader` and returns its answer, or a retriable
/// InternalFailure saying why there is none.
pub async fn forward(node: &Node, leader: u64, caller: &Caller, request: &Request) -> Result<Response, KinesisError> {
    forward_once(node, leader, caller, request).await.unwrap_or_else(|Unsent(error)| Err(error))
}

/// A forward that never left this node: the leader could not be reached (connecting, or the
/// handshake, failed: it died or is cut off), so nothing of the request was sent, and it may go
/// to another leader. The error is the client's if it goes nowhere else.
pub struct Unsent(pub KinesisError);

/// [`forward`], telling a request that was not sent ([`Unsent`]) from one that was.
pub async fn forward_once(
    node: &Node,
    leader: u64,
    caller: &Caller,
    request: &Request,
) -> Result<Result<Response, KinesisError>, Unsent> {
    let members = crate::ops::cluster::members(node);
    let address = members.get(&leader).and_then(|member| member.native).ok_or_else(|| {
        Unsent(KinesisError::internal(format!("node {leader} has no native address to forward to; retry")))
    })?;
    let operation = request.operation().name();
    let metrics = &node.metrics;
    metrics.forwarded_requests.set(metrics.forwarded_requests.get() + 1);
    let pool = pool(leader, address);
    let correlation_id = next_correlation_id();
    let bytes = REQUEST_BUILDER_BYTES_INITIAL + payload_bytes(request);
    let mut builder = FlatBufferBuilder::with_capacity(bytes);
    let mut wrapper = FlatBufferBuilder::with_capacity(bytes + REQUEST_BUILDER_BYTES_INITIAL);
    let frame = native::encode_request(&mut builder, correlation_id, request).and_then(|inner| {
        native::encode_forwarded(&mut wrapper, correlation_id, caller.carried().as_ref(), inner).map_err(Into::into)
    });
    let frame = frame.map_err(|error: native::EncodeError| {
        // A request the native protocol cannot carry cannot travel to the leader: the client
        // is told where it is.
        let addresses = members.get(&leader).map(crate::ops::cluster::member_addresses).unwrap_or_default();
        KinesisError::internal(format!(
            "{operation} cannot be forwarded to node {leader} ({addresses}), which leads it ({error}): \
             send it there"
        ))
    });
    let frame = match frame {
        Ok(frame) => frame,
        Err(error) => return Ok(Err(error)),
    };
    let exchanged = future::or(async { Some(pool.exchange(node, frame, correlation_id).await) }, async {
        glommio::timer::sleep(Duration::from_millis(FORWARD_ANSWER_WAIT_MS)).await;
        None
    })
    .await;
    let failure = match exchanged {
        Some(Ok(ResponseMessage::Response(response))) => return Ok(Ok(response)),
        Some(Ok(ResponseMessage::Error(error))) => return Ok(Err(error)),
        Some(Ok(_)) => "it answered with a subscription's event".to_string(),
        Some(Err(Failure::Lost(why))) => why,
        Some(Err(Failure::Unsent(why))) => {
            tracing::debug!(leader, %address, operation, %why, "forwarding could not reach the leader");
            return Err(Unsent(KinesisError::internal(format!(
                "This node could not forward {operation} to node {leader} ({address}), which leads it as far as \
                 this node knows: {why}. Nothing was sent; retry"
            ))));
        }
        None => format!("no answer within {FORWARD_ANSWER_WAIT_MS} ms"),
    };
    tracing::debug!(leader, %address, operation, %failure, "forwarding failed");
    Ok(Err(KinesisError::internal(format!(
        "This node forwarded {operation} to node {leader} ({address}), which leads it as far as this node \
         knows, and got no answer: {failure}. A write may or may not have been stored; retry"
    ))))
}

/// After a forward to `leader` could not be sent ([`Unsent`]): waits up to
/// [`LEADER_WAIT_MS`] for this node to learn that another member (or this one) leads where
/// `request` goes, and says whether it did. A leader that died or was cut off is replaced by
/// an election within a second or so; the request then goes to the new one instead of failing.
pub async fn leader_moved(node: &Node, request: &Request, leader: u64) -> bool {
    within_leader_wait(|| leader_of(node, request).is_some_and(|now| now != leader)).await
}

/// Waits, up to [`LEADER_WAIT_MS`], until this node knows a leader other than `from` for the
/// shard of each record of `input`, and says for each whether it does: where a split
/// PutRecords' records that `from` did not take go (`dispatch`). A leadership handover moves
/// many shards at once (leader balancing), and each election ends on its own.
pub async fn record_leaders_moved(node: &Node, input: &PutRecordsInput, from: u64) -> Vec<bool> {
    let Some(route) = route(node, input.stream_name.as_deref(), input.stream_arn.as_ref()) else {
        return vec![false; input.records.len()];
    };
    let moved = |entry: &sluice_model::PutRecordsRequestEntry| {
        record_leader(node, &route, entry.explicit_hash_key.as_ref(), entry.partition_key.as_deref())
            .is_some_and(|now| now != from)
    };
    within_leader_wait(|| input.records.iter().all(moved)).await;
    input.records.iter().map(moved).collect()
}

/// The bytes of records a request carries (the builder's capacity, to avoid regrowing it).
fn payload_bytes(request: &Request) -> usize {
    match request {
        Request::PutRecord(input) => input.data.len() + input.partition_key.as_ref().map_or(0, String::len),
        Request::PutRecords(input) => input
            .records
            .iter()
            .map(|entry| entry.data.len() + entry.partition_key.as_ref().map_or(0, String::len) + 64)
            .sum(),
        _ => 0,
    }
}

thread_local! {
    /// This core's connections to each member it forwards to.
    static POOLS: RefCell<HashMap<u64, Rc<PeerPool>>> = RefCell::new(HashMap::new());
    static NEXT_CORRELATION_ID: Cell<u64> = const { Cell::new(1) };
}

fn next_correlation_id() -> u64 {
    NEXT_CORRELATION_ID.with(|next| {
        let id = next.get();
        // From 1: 0 is the server refusing the connection.
        next.set(id.checked_add(1).unwrap_or(1));
        id
    })
}

fn pool(leader: u64, address: SocketAddr) -> Rc<PeerPool> {
    POOLS.with(|pools| {
        pools
            .borrow_mut()
            .entry(leader)
            .or_insert_with(|| {
                Rc::new(PeerPool {
                    address,
                    idle: RefCell::new(Vec::new()),
                    turns: Semaphore::new(FORWARDS_IN_FLIGHT_PER_PEER_MAX as u64),
                })
            })
            .clone()
    })
}

/// One core's connections to one member: idle ones kept for reuse, and a turn per request in
/// flight.
struct PeerPool {
    address: SocketAddr,
    idle: RefCell<Vec<Connection>>,
    turns: Semaphore,
}

struct Connection {
    /// Plain TCP, or TLS to a member whose native listener has it.
    stream: Box<dyn Duplex>,
    /// The TCP socket under `stream` (which owns it), to see whether the member closed it.
    socket: RawFd,
    /// Bytes read past the last answer (none, on a connection used one request at a time).
    buffer: BytesMut,
}

/// A byte stream both ways: a `TcpStream`, or TLS over one.
trait Duplex: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin {}
impl<T: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin> Duplex for T {}

/// Why an exchange with a member has no answer.
enum Failure {
    /// Nothing of the request left: no connection, or its handshake failed.
    Unsent(String),
    /// The request may have reached the member.
    Lost(String),
}

impl PeerPool {
    /// The most recently used idle connection the member has not closed; those it closed are
    /// dropped. One it closed while idle (it died or restarted since) would fail after the
    /// request left, and the client would hear that its write may or may not have been stored.
    fn idle_open(&self) -> Option<Connection> {
        std::iter::from_fn(|| self.idle.borrow_mut().pop()).find(Connection::open)
    }

    /// Sends one request frame and reads its answer, on an idle connection or a new one.
    async fn exchange(&self, node: &Node, frame: &[u8], correlation_id: u64) -> Result<ResponseMessage, Failure> {
        let _turn = self.turns.acquire_permit(1).await.map_err(|error| Failure::Unsent(error.to_string()))?;
        let connection = match self.idle_open() {
            Some(connection) => connection,
            None => self.connect(node).await.map_err(Failure::Unsent)?,
        };
        self.ask(connection, frame, correlation_id).await.map_err(Failure::Lost)
    }

    /// A new connection to the member, over TLS and authenticated as this member when the
    /// node is configured so.
    async fn connect(&self, node: &Node) -> Result<Connection, String> {
        let timeout = Duration::from_millis(FORWARD_CONNECT_TIMEOUT_MS);
        let stream =
            TcpStream::connect_timeout(self.address, timeout).await.map_err(|error| format!("connect: {error}"))?;
        let _ = stream.set_nodelay(true);
        let socket = stream.as_raw_fd();
        let security = &node.shared.config.security;
        let (stream, binding): (Box<dyn Duplex>, Vec<u8>) = match &security.member_tls {
            None => (Box::new(stream), Vec::new()),
            Some(config) => {
                // The member's certificate must name the address --peers gives it.
                let host = self.address.ip().to_string();
                let connected = future::or(
                    async { Some(sluice_security::tls::connect(config.clone(), &host, stream).await) },
                    async {
                        glommio::timer::sleep(timeout).await;
                        None
                    },
                );
                match connected.await {
                    Some(Ok((stream, binding))) => (Box::new(stream), binding),
                    Some(Err(error)) => return Err(format!("TLS: {error}")),
                    None => return Err(format!("TLS: no handshake within {FORWARD_CONNECT_TIMEOUT_MS} ms")),
                }
            }
        };
        let mut connection = Connection { stream, socket, buffer: BytesMut::new() };
        // With credentials the leader serves forwarded requests only to a member.
        if security.credentials.is_some() {
            let members = security.members.as_ref().ok_or("no cluster secret")?;
            let credentials = members.secret.credentials(members.node_id);
            connection.authenticate(&credentials, node.identity().region(), &binding, node.now_ms()).await?;
        }
        Ok(connection)
    }

    /// Sends `frame` on `connection` and reads its answer; the connection is kept for the next
    /// request once a whole answer was read from it.
    async fn ask(
        &self,
        mut connection: Connection,
        frame: &[u8],
        correlation_id: u64,
    ) -> Result<ResponseMessage, String> {
        connection.send(frame).await?;
        let answer = connection.read_frame().await?;
        let decoded = native::decode_response(&answer)
            .map_err(|error| format!("its answer does not decode: {error}"))?
            .ok_or("its answer is not a whole frame")?;
        if decoded.correlation_id != correlation_id {
            // Correlation id 0 is the server refusing the connection (e.g. a bad frame).
            return Err(match decoded.message {
                Ok(ResponseMessage::Error(error)) => format!("it refused the connection: {}", error.message),
                _ => format!("it answered correlation id {} to {correlation_id}", decoded.correlation_id),
            });
        }
        let message = decoded.message.map_err(|error| format!("its answer does not decode: {error}"))?;
        if connection.buffer.is_empty() {
            self.idle.borrow_mut().push(connection);
        }
        Ok(message)
    }
}

impl Connection {
    /// Whether an idle connection is still open at the member's end: nothing at all has
    /// arrived on it since its last answer, not even its end (what a member's kernel sends
    /// for it when it dies) or a reset. Asked of the kernel without waiting (`MSG_PEEK`), so
    /// nothing is taken from the stream.
    fn open(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: `socket` is the descriptor `stream` owns, open while `self` is; recv writes
        // at most the one byte it is given, and MSG_DONTWAIT keeps it from blocking the core.
        let peeked = unsafe { libc::recv(self.socket, (&raw mut byte).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
        peeked < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
    }

    /// Writes a whole frame (and flushes what TLS holds back).
    async fn send(&mut self, frame: &[u8]) -> Result<(), String> {
        self.stream.write_all(frame).await.map_err(|error| format!("send: {error}"))?;
        self.stream.flush().await.map_err(|error| format!("send: {error}"))
    }

    /// The native handshake (Hello, Authenticate) as member `credentials`, its proof bound to
    /// the TLS session by `binding` (empty over plain TCP).
    async fn authenticate(
        &mut self,
        credentials: &SigningCredentials,
        region: &str,
        binding: &[u8],
        now_ms: i64,
    ) -> Result<(), String> {
        let mut fbb = FlatBufferBuilder::with_capacity(HANDSHAKE_BUILDER_BYTES);
        let hello = handshake::encode_hello(&mut fbb, 1).map_err(|error| error.to_string())?.to_vec();
        self.send(&hello).await?;
        let server_nonce = match self.handshake_answer().await? {
            HandshakeResponse::Hello { server_nonce, authentication_required: true } => server_nonce,
            HandshakeResponse::Hello { authentication_required: false, .. } => return Ok(()),
            HandshakeResponse::Refused(error) => return Err(format!("it refused the handshake: {}", error.message)),
            HandshakeResponse::Authenticated { .. } => return Err("it answered Hello out of turn".into()),
        };
        let (proof, expected) =
            ClientHandshake::respond(&Challenge { server_nonce }, credentials, region, binding, now_ms);
        let fields = AuthenticateFields {
            access_key_id: proof.access_key_id,
            timestamp_ms: proof.timestamp_ms,
            client_nonce: proof.client_nonce,
            session_token: proof.session_token,
            mac: proof.mac,
        };
        fbb.reset();
        let frame = handshake::encode_authenticate(&mut fbb, 2, &fields).map_err(|error| error.to_string())?.to_vec();
        self.send(&frame).await?;
        match self.handshake_answer().await? {
            HandshakeResponse::Authenticated { server_mac, .. }
                if expected.check_server(&ServerProof { mac: server_mac }) =>
            {
                Ok(())
            }
            HandshakeResponse::Authenticated { .. } => Err("it does not know the cluster secret".into()),
            HandshakeResponse::Refused(error) => Err(format!(
                "it refused this member's key (is --cluster-secret the same on every member?): {}",
                error.message
            )),
            HandshakeResponse::Hello { .. } => Err("it sent a second challenge".into()),
        }
    }

    async fn handshake_answer(&mut self) -> Result<HandshakeResponse, String> {
        let frame = self.read_frame().await?;
        match handshake::decode_handshake_response(&frame) {
            Ok(Some((_, answer))) => Ok(answer),
            Ok(None) => Err("its handshake answer is cut short".into()),
            Err(error) => Err(format!("its handshake answer does not decode: {error:?}")),
        }
    }

    /// The next whole frame; an error if the connection ends first or the frame is too large
    /// (`frame_len` checks the prefix against `FRAME_BYTES_MAX` before anything is reserved).
    async fn read_frame(&mut self) -> Result<Bytes, String> {
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            let wanted = match sluice_protocol::frame_len(&self.buffer) {
                Ok(Some(len)) if self.buffer.len() >= len => return Ok(self.buffer.split_to(len).freeze()),
                Ok(Some(len)) => len - self.buffer.len(),
                // The prefix is not in yet: the answer is one frame, nothing follows it.
                Ok(None) => READ_CHUNK_BYTES,
                Err(error) => return Err(format!("its answer's frame is refused: {error}")),
            };
            // No more than the frame still needs.
            let room = wanted.min(chunk.len());
            let read = self.stream.read(&mut chunk[..room]).await;
            match read {
                Ok(0) => return Err("it closed the connection".to_string()),
                Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
                Err(error) => return Err(format!("receive: {error}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn connection(stream: TcpStream) -> Connection {
        let socket = stream.as_raw_fd();
        Connection { stream: Box::new(stream), socket, buffer: BytesMut::new() }
    }

    /// An idle connection is open while the member keeps its end and says nothing; not once
    /// the member closed its end (as its kernel does when it is killed) or sent anything
    /// unasked. The pool hands out the newest open one and drops the closed ones it passes:
    /// before, it handed out the newest, and a follower's first forward to a restarted leader
    /// failed with "it closed the connection" (a CI run of the forwarding test).
    #[test]
    fn an_idle_connection_the_member_closed_is_dropped_not_used() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                // The member's end is a blocking std socket: dropping it closes it at once.
                let member = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let address = member.local_addr().unwrap();
                let mut ends = Vec::new();
                let mut connections = Vec::new();
                for _ in 0..4 {
                    connections.push(connection(TcpStream::connect(address).await.unwrap()));
                    ends.push(member.accept().unwrap().0);
                }
                assert!(connections.iter().all(Connection::open));
                // The oldest stays open; the second is closed, the third reset by data it
                // did not ask for, the newest closed.
                ends[2].write_all(b"unasked").unwrap();
                let newest = ends.pop();
                drop(newest);
                drop(ends.remove(1));
                let kept = connections[0].socket;
                let gone = |connection: &Connection| {
                    // Loopback delivers the end within the close call; a bounded wait anyway.
                    (0..100).any(|_| {
                        let open = connection.open();
                        if open {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        !open
                    })
                };
                assert!(connections[1..].iter().all(gone));
                assert!(connections[0].open());
                let pool = PeerPool {
                    address,
                    idle: RefCell::new(connections),
                    turns: Semaphore::new(FORWARDS_IN_FLIGHT_PER_PEER_MAX as u64),
                };
                let handed = pool.idle_open().expect("the open connection");
                assert_eq!(handed.socket, kept);
                assert!(pool.idle.borrow().is_empty(), "the closed connections are dropped");
                assert!(pool.idle_open().is_none());
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
