//! Raft messages between nodes over TCP, on the glommio executor that hosts the groups.
//!
//! One [`PeerNetwork`] per executor (per node today; per core once groups live on the cores
//! that own their shards) carries the messages of every group it hosts, tagged with the group
//! (`wire`'s frames). Outgoing, each peer has a bounded queue of encoded frames and one task
//! that dials the peer, says hello, and writes whatever the queue holds in batches; a full
//! queue drops the new message instead of growing (Raft retransmits what a lossy network
//! loses), and a failed connection is dialed again after a backoff that doubles from
//! [`RECONNECT_BACKOFF_MS_MIN`] to [`RECONNECT_BACKOFF_MS_MAX`]. Incoming, an accept loop takes
//! at most [`PEER_CONNECTIONS_MAX`] connections and reads frames of at most
//! [`PEER_FRAME_BYTES_MAX`]; a connection that sends anything else (a bad hello, an oversized
//! or undecodable frame, a message claiming another sender) is closed. Decoded messages go to
//! their group's replica inbox, which validates them before raft-rs sees them (`replica`).
//! A peer holds one connection to a core at a time: once a new one from it has said hello,
//! its older ones are closed (their sender is gone: it restarted, or the connection died in a
//! partition and its close was lost), and keepalive probes close one whose peer never comes
//! back.
//!
//! Each connection carries one direction: a node dials every peer to send, and reads what its
//! peers dialed in. Nothing waits for an answer on a connection, so a peer that stops reading
//! costs only its own queue.
//!
//! Copies (`wire::CopyFrame`): a member restoring a snapshot asks a peer for the group's state
//! ([`PeerNetwork::fetch`]); the request travels on its connection, the host of the peer reads
//! it from [`PeerNetwork::copy_requests`] and answers ([`PeerNetwork::answer`]) on the peer's
//! own connection back, which carries the request's id. Lost either way, the asker times out.
//!
//! With [`PeerTls`] every connection is TLS (ALPN `sluice-raft/1`): the dialer verifies that
//! the listener's certificate names the address it dialed, against the cluster's CA bundle, and
//! everything after is private. With a [`PeerKey`] (from the cluster secret), a dialer proves it
//! holds the key before the listener reads any frame (`peer_auth`: a challenge, an HMAC answer
//! bound to the TLS session); without one any process that can reach the peer port and names a
//! member's id is believed. Either way a connection must open (TLS, hello, and proof) within
//! [`PEER_HANDSHAKE_TIMEOUT_MS`].
//!
//! Unfinished: the tasks run for the executor's life (no shutdown, which `sluiced` will need
//! for its drain).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use raft::eraftpb::Message;

use crate::limits::{
    CONNECT_TIMEOUT_MS, COPIES_PENDING_MAX, COPY_ANSWER_WAIT_MS, COPY_REQUESTS_QUEUED_MAX, PEER_CONNECTIONS_MAX,
    PEER_CONNECTION_STABLE_MS, PEER_FRAME_BYTES_MAX, PEER_HANDSHAKE_TIMEOUT_MS, PEER_KEEPALIVE_SECS,
    PEER_QUEUE_MESSAGES_MAX, PEER_REFUSAL_WARN_INTERVAL_MS, PEER_UNACKNOWLEDGED_MS_MAX, PEER_WRITE_BATCH_BYTES_MAX,
    RECONNECT_BACKOFF_MS_MAX, RECONNECT_BACKOFF_MS_MIN,
};
use crate::peer_auth::{self, PeerKey, PEER_CHANNEL_BINDING_LABEL, PEER_NONCE_BYTES, PEER_PROOF_BYTES};
use crate::replica::{Input, Transport};
use crate::wire::{
    decode_any_peer_frame, decode_hello, encode_copy_frame, encode_hello, encode_peer_frame, frame_body_bytes,
    CopyFrame, GroupId, Hello, PeerFrame, WireError, HELLO_BYTES, LENGTH_PREFIX_BYTES,
};
use sluice_security::tls::{ClientConfig, ReloadableServerConfig};

/// Listen backlog of the peer and client sockets: the connection limits are far below it.
const LISTEN_BACKLOG: i32 = 128;

/// Wait after a failed `accept` (out of descriptors, say) before the next, milliseconds.
const ACCEPT_RETRY_MS: u64 = 10;

/// A read buffer grown past this by one large frame is given back after it.
const READ_BUFFER_KEPT_BYTES_MAX: usize = 1 << 20;

/// What the network did since it started, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub frames_queued: u64,
    /// Frames dropped on the way out: a full queue, a peer not connected, a message too large.
    pub frames_dropped: u64,
    pub frames_received: u64,
    /// Frames read that no replica took: an unknown group or a full inbox.
    pub frames_undelivered: u64,
    pub connections_made: u64,
    pub connections_failed: u64,
    /// Incoming connections closed for a protocol error, or refused past
    /// [`PEER_CONNECTIONS_MAX`].
    pub connections_rejected: u64,
    /// Incoming connections closed because their peer opened a newer one.
    pub connections_superseded: u64,
}

/// One of this member's copy requests waiting for its answer.
struct PendingCopy {
    peer: u64,
    group: GroupId,
    from: u64,
    answer: async_channel::Sender<bytes::Bytes>,
}

/// A peer's request for a piece of a group's state (it restores a snapshot), for the host to
/// answer with [`PeerNetwork::answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRequest {
    pub group: GroupId,
    /// The member asking.
    pub peer: u64,
    pub id: u64,
    pub from: u64,
    /// At most this many bytes of the state (0 for a page of the log, `runs`).
    pub bytes_max: u32,
    /// A page of the group's log instead of its state ([`PeerNetwork::fetch_runs`]).
    pub runs: Option<RunsAsked>,
}

/// What a peer asks of a group's log kept in the journal: at most `count` entries from the
/// request's `from` on, up to the snapshot's entry `until_index` of `until_term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunsAsked {
    pub count: u32,
    pub until_index: u64,
    pub until_term: u64,
}

/// TLS between members: what a member offers the members that dial it, and how it checks
/// the members it dials.
#[derive(Clone)]
pub struct PeerTls {
    /// This member's certificate and key, with ALPN `sluice-raft/1`; each new connection takes
    /// the configuration current then (a reload changes it for the next ones).
    pub server: Arc<ReloadableServerConfig>,
    /// The cluster's CA bundle, with the same ALPN: a member's certificate must name the
    /// address this member dials it at.
    pub client: Arc<ClientConfig>,
}

/// How members prove themselves on the peer network: neither (a trusted network), either, or
/// both (what `sluiced` does with `--tls-cert` and `--cluster-secret`).
#[derive(Clone, Default)]
pub struct PeerSecurity {
    /// The key dialers prove they hold (`None`: peers are not authenticated).
    pub key: Option<PeerKey>,
    /// TLS on every connection (`None`: plain TCP).
    pub tls: Option<PeerTls>,
}

/// A connection, plain or TLS.
trait Duplex: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin {}
impl<T: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin> Duplex for T {}

/// The peer side of one node: its listener, and a queue and a dialer per peer.
#[derive(Clone)]
pub struct PeerNetwork {
    inner: Rc<Inner>,
}

struct Inner {
    node_id: u64,
    security: PeerSecurity,
    /// Each peer's outgoing queue, which its dialer writes; dropping it ends the dialer.
    queues: RefCell<BTreeMap<u64, async_channel::Sender<Vec<u8>>>>,
    groups: RefCell<HashMap<GroupId, async_channel::Sender<Input>>>,
    stats: Cell<TransportStats>,
    /// The peers this node's dialer holds an open connection to now.
    connected: RefCell<std::collections::BTreeSet<u64>>,
    /// Incoming connections open now (in their opening or past it).
    incoming: Cell<usize>,
    /// Each peer's newest incoming connection that said hello (a number of its own, and the
    /// only sender of a channel it watches: dropping the sender closes the connection).
    newest_incoming: RefCell<HashMap<u64, (u64, async_channel::Sender<()>)>>,
    next_incoming: Cell<u64>,
    /// Where peers' copy requests go, once the host serves them.
    copy_requests: RefCell<Option<async_channel::Sender<CopyRequest>>>,
    /// This member's copy requests waiting for an answer, by id.
    copies: RefCell<HashMap<u64, PendingCopy>>,
    next_copy: Cell<u64>,
    /// When a refused connection was last warned of, and how many were refused since.
    refusal_warned: Cell<Option<std::time::Instant>>,
    refusals_unwarned: Cell<u64>,
}

impl Inner {
    /// Whether a refused connection is warned of now (at most one warning per
    /// [`PEER_REFUSAL_WARN_INTERVAL_MS`]): the refusals not warned of since the last warning.
    fn refusal_to_warn(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let due = self
            .refusal_warned
            .get()
            .is_none_or(|at| now.duration_since(at) >= Duration::from_millis(PEER_REFUSAL_WARN_INTERVAL_MS));
        if !due {
            self.refusals_unwarned.set(self.refusals_unwarned.get() + 1);
            return None;
        }
        self.refusal_warned.set(Some(now));
        Some(self.refusals_unwarned.replace(0))
    }

    fn count(&self, change: impl FnOnce(&mut TransportStats)) {
        let mut stats = self.stats.get();
        change(&mut stats);
        self.stats.set(stats);
    }
}

/// A listening TCP socket with SO_REUSEADDR (glommio's own `bind` sets only SO_REUSEPORT):
/// a node restarted right after a crash must get its address back while the dead process's
/// connections linger in TIME_WAIT.
pub fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket nothing else owns; glommio
    // takes it over (and closes it) from here.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

impl PeerNetwork {
    /// Listens on `listen` for the peers and starts dialing each of `peers` (this node left
    /// out), each connection secured as `security` says. Must run on the glommio executor that
    /// hosts the groups.
    pub fn start(
        node_id: u64,
        listen: SocketAddr,
        peers: &BTreeMap<u64, SocketAddr>,
        security: PeerSecurity,
    ) -> io::Result<PeerNetwork> {
        let listener = bind(listen)?;
        let inner = Rc::new(Inner {
            node_id,
            security,
            queues: RefCell::new(BTreeMap::new()),
            groups: RefCell::new(HashMap::new()),
            stats: Cell::new(TransportStats::default()),
            connected: RefCell::new(std::collections::BTreeSet::new()),
            incoming: Cell::new(0),
            newest_incoming: RefCell::new(HashMap::new()),
            next_incoming: Cell::new(1),
            copy_requests: RefCell::new(None),
            copies: RefCell::new(HashMap::new()),
            next_copy: Cell::new(1),
            refusal_warned: Cell::new(None),
            refusals_unwarned: Cell::new(0),
        });
        let network = PeerNetwork { inner: inner.clone() };
        network.add_peers(peers);
        glommio::spawn_local(accept(inner, listener)).detach();
        Ok(network)
    }

    fn add_peers(&self, peers: &BTreeMap<u64, SocketAddr>) {
        for (&peer_id, &address) in peers {
            assert_ne!(peer_id, self.inner.node_id, "a node is not its own peer");
            let (sender, receiver) = async_channel::bounded(PEER_QUEUE_MESSAGES_MAX);
            self.inner.queues.borrow_mut().insert(peer_id, sender);
            glommio::spawn_local(dial(self.inner.clone(), peer_id, address, receiver)).detach();
        }
    }

    /// The peers from now on (this node left out), when the cluster's membership changed: a
    /// new peer is dialed and may dial in; a peer no longer listed is neither (its queued
    /// messages are dropped, its dialer ends); a peer whose address changed is dialed there.
    pub fn set_peers(&self, peers: &BTreeMap<u64, SocketAddr>, previous: &BTreeMap<u64, SocketAddr>) {
        let mut added = BTreeMap::new();
        for (peer_id, address) in peers {
            if previous.get(peer_id) != Some(address) {
                added.insert(*peer_id, *address);
            }
        }
        let mut queues = self.inner.queues.borrow_mut();
        for peer_id in previous.keys() {
            if peers.get(peer_id) != previous.get(peer_id) {
                // Dropping the only sender closes the queue: its dialer ends.
                queues.remove(peer_id);
            }
        }
        drop(queues);
        self.add_peers(&added);
    }

    /// Delivers the messages for `group` to `inbox` from now on.
    pub fn register(&self, group: GroupId, inbox: async_channel::Sender<Input>) {
        self.inner.groups.borrow_mut().insert(group, inbox);
    }

    /// Messages for `group` are dropped from now on (its replica stopped for good).
    pub fn unregister(&self, group: GroupId) {
        self.inner.groups.borrow_mut().remove(&group);
    }

    /// The transport a replica of `group` sends through.
    pub fn transport(&self, group: GroupId) -> PeerTransport {
        PeerTransport { inner: self.inner.clone(), group }
    }

    pub fn stats(&self) -> TransportStats {
        self.inner.stats.get()
    }

    /// Peers' copy requests from now on (before, they are dropped): the host answers each with
    /// [`PeerNetwork::answer`]. At most [`COPY_REQUESTS_QUEUED_MAX`] wait; more are dropped.
    pub fn copy_requests(&self) -> async_channel::Receiver<CopyRequest> {
        let (sender, receiver) = async_channel::bounded(COPY_REQUESTS_QUEUED_MAX);
        *self.inner.copy_requests.borrow_mut() = Some(sender);
        receiver
    }

    /// Answers a peer's copy request with `data` (at most `wire::COPY_DATA_BYTES_MAX` bytes);
    /// false if it could not be queued (the peer asks again).
    pub fn answer(&self, request: &CopyRequest, data: bytes::Bytes) -> bool {
        let copy = CopyFrame::Answer { id: request.id, from: request.from, data };
        self.queue_frame(request.peer, encode_copy_frame(request.group, &copy).ok())
    }

    /// Asks `peer` for group `group`'s state from position `from` on (at most `bytes_max`
    /// bytes of it) and waits for the answer: `None` if it could not be asked or did not
    /// answer within [`COPY_ANSWER_WAIT_MS`].
    pub async fn fetch(&self, peer: u64, group: GroupId, from: u64, bytes_max: u32) -> Option<bytes::Bytes> {
        self.ask(peer, group, from, |id| CopyFrame::Request { id, from, bytes_max }).await
    }

    /// Asks `peer` for a page of group `group`'s log, kept in the journal: at most `asked.count`
    /// entries from entry `from` on, up to the snapshot's entry (`journal_log::peer_runs`
    /// answers it there, [`crate::journal_log::answer_runs`]); waits as [`PeerNetwork::fetch`].
    pub async fn fetch_runs(&self, peer: u64, group: GroupId, from: u64, asked: RunsAsked) -> Option<bytes::Bytes> {
        let RunsAsked { count, until_index, until_term } = asked;
        self.ask(peer, group, from, |id| CopyFrame::Runs { id, from, count, until_index, until_term }).await
    }

    /// Sends the copy request `request` makes with its id to `peer` and waits for the answer.
    async fn ask(
        &self,
        peer: u64,
        group: GroupId,
        from: u64,
        request: impl FnOnce(u64) -> CopyFrame,
    ) -> Option<bytes::Bytes> {
        let inner = &self.inner;
        let id = inner.next_copy.get();
        inner.next_copy.set(id + 1);
        let (sender, answer) = async_channel::bounded(1);
        {
            let mut copies = inner.copies.borrow_mut();
            if copies.len() >= COPIES_PENDING_MAX {
                return None;
            }
            copies.insert(id, PendingCopy { peer, group, from, answer: sender });
        }
        let answered = if self.queue_frame(peer, encode_copy_frame(group, &request(id)).ok()) {
            futures_lite::future::or(async { answer.recv().await.ok() }, async {
                glommio::timer::sleep(Duration::from_millis(COPY_ANSWER_WAIT_MS)).await;
                None
            })
            .await
        } else {
            None
        };
        inner.copies.borrow_mut().remove(&id);
        answered
    }

    fn queue_frame(&self, peer: u64, frame: Option<Vec<u8>>) -> bool {
        let queued = match (self.inner.queues.borrow().get(&peer), frame) {
            (Some(queue), Some(frame)) => queue.try_send(frame).is_ok(),
            _ => false,
        };
        self.inner.count(|stats| if queued { stats.frames_queued += 1 } else { stats.frames_dropped += 1 });
        queued
    }

    /// Whether this node holds an open connection to `peer` now (it dialed and opened it, and
    /// the peer has not closed it): a peer that is down or cut off is not connected.
    pub fn is_connected(&self, peer: u64) -> bool {
        self.inner.connected.borrow().contains(&peer)
    }

    /// Incoming connections open now: at most one per peer once their openings are over.
    pub fn incoming_connections(&self) -> usize {
        self.inner.incoming.get()
    }
}

/// One group's way out to its peers.
pub struct PeerTransport {
    inner: Rc<Inner>,
    group: GroupId,
}

impl Transport for PeerTransport {
    fn send(&self, message: Message) {
        let queues = self.inner.queues.borrow();
        let Some(queue) = queues.get(&message.to) else {
            self.inner.count(|stats| stats.frames_dropped += 1);
            return;
        };
        // Too large cannot happen: the replica refuses entries that would make such a frame.
        let queued = encode_peer_frame(self.group, &message).ok().is_some_and(|frame| queue.try_send(frame).is_ok());
        self.inner.count(|stats| if queued { stats.frames_queued += 1 } else { stats.frames_dropped += 1 });
    }
}

/// Keeps a connection to one peer and writes its queue to it, for the executor's life.
async fn dial(inner: Rc<Inner>, peer_id: u64, address: SocketAddr, queue: async_channel::Receiver<Vec<u8>>) {
    let hello = Hello { from: inner.node_id, to: peer_id, authenticated: inner.security.key.is_some() };
    let mut backoff_ms = RECONNECT_BACKOFF_MS_MIN;
    // The batch being written when a connection died: written first on the next one when
    // that is made at once. Raft takes a message twice without harm, but a vote lost costs an
    // election round (the partition test saw pre-vote answers lost this way after a heal).
    let mut unsent: Vec<u8> = Vec::new();
    let mut connected_last_time = false;
    loop {
        if queue.is_closed() {
            // The peer left the cluster (`PeerNetwork::set_peers`).
            return;
        }
        if !connected_last_time {
            // What piled up while no connection could be made is stale (heartbeats, votes of
            // a term long gone); Raft sends again whatever still matters.
            let mut stale = u64::from(!unsent.is_empty());
            unsent.clear();
            while queue.try_recv().is_ok() {
                stale += 1;
            }
            inner.count(|stats| stats.frames_dropped += stale);
        }
        match TcpStream::connect_timeout(address, Duration::from_millis(CONNECT_TIMEOUT_MS)).await {
            Ok(stream) => {
                tune_peer_socket(&stream);
                let stream = match within_handshake(open(stream, address, hello, &inner.security)).await {
                    Ok(stream) => stream,
                    Err(error) => {
                        if inner.security.tls.is_some() {
                            // A certificate that does not verify shows here, not at the listener.
                            tracing::warn!(node = inner.node_id, peer = peer_id, %error, "could not open a peer connection");
                        }
                        connected_last_time = false;
                        inner.count(|stats| stats.connections_failed += 1);
                        glommio::timer::sleep(Duration::from_millis(backoff_ms)).await;
                        backoff_ms = (backoff_ms * 2).min(RECONNECT_BACKOFF_MS_MAX);
                        continue;
                    }
                };
                connected_last_time = true;
                inner.count(|stats| stats.connections_made += 1);
                inner.connected.borrow_mut().insert(peer_id);
                let opened = std::time::Instant::now();
                let (mut reader, mut writer) = futures_lite::io::split(stream);
                // The peer never writes on this connection: a read ends only when the peer
                // closes or resets it (it lost the connection in a partition, or restarted),
                // and the connection is then replaced at once, not at the next write, which
                // would be lost with it.
                let reset = async {
                    let mut byte = [0u8; 1];
                    let _ = reader.read(&mut byte).await;
                    Err(io::Error::from(io::ErrorKind::ConnectionReset))
                };
                let written = futures_lite::future::or(write_queue(&mut writer, &queue, &mut unsent), reset);
                let written = written.await;
                inner.connected.borrow_mut().remove(&peer_id);
                if written.is_ok() {
                    // The queue closed: the network is gone.
                    return;
                }
                // A connection that lived is dialed again at once (the peer restarted); one the
                // peer closed at once (it refuses this node) backs off as a failed dial does.
                if opened.elapsed() >= Duration::from_millis(PEER_CONNECTION_STABLE_MS) {
                    backoff_ms = RECONNECT_BACKOFF_MS_MIN;
                }
            }
            Err(_) => {
                connected_last_time = false;
                inner.count(|stats| stats.connections_failed += 1);
            }
        }
        glommio::timer::sleep(Duration::from_millis(backoff_ms)).await;
        backoff_ms = (backoff_ms * 2).min(RECONNECT_BACKOFF_MS_MAX);
    }
}

/// Options of every peer connection, either end. Raft's messages are small and
/// latency-bound: no Nagle delay. A connection whose data goes unacknowledged for
/// [`PEER_UNACKNOWLEDGED_MS_MAX`] is dropped (and dialed again) instead of waiting out TCP's
/// retransmission backoff after a partition heals; keepalive probes find an incoming
/// connection whose sender is gone. A socket refusing an option still works, worse: the first
/// refusal is warned of (one refused went unseen once, `PEER_KEEPALIVE_SECS`).
fn tune_peer_socket(stream: &impl AsRawFd) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(error) = try_tune_peer_socket(stream) {
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(%error, "a peer connection refused a socket option; dead connections may be found late");
        }
    }
}

fn try_tune_peer_socket(stream: &impl AsRawFd) -> io::Result<()> {
    use std::os::fd::BorrowedFd;
    // SAFETY: the descriptor belongs to `stream`, which outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let socket = socket2::SockRef::from(&fd);
    socket.set_tcp_nodelay(true)?;
    socket.set_tcp_user_timeout(Some(Duration::from_millis(PEER_UNACKNOWLEDGED_MS_MAX)))?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(PEER_KEEPALIVE_SECS))
        .with_interval(Duration::from_secs(PEER_KEEPALIVE_SECS));
    socket.set_tcp_keepalive(&keepalive)
}

/// The dialer's opening: TLS if configured (the peer's certificate must name `address`), the
/// hello, and with a key the answer to the listener's challenge.
async fn open(
    stream: TcpStream,
    address: SocketAddr,
    hello: Hello,
    security: &PeerSecurity,
) -> io::Result<Box<dyn Duplex>> {
    let (mut stream, binding): (Box<dyn Duplex>, Vec<u8>) = match &security.tls {
        None => (Box::new(stream), Vec::new()),
        Some(tls) => {
            let host = address.ip().to_string();
            let label = PEER_CHANNEL_BINDING_LABEL;
            let (stream, binding) =
                sluice_security::tls::connect_bound(tls.client.clone(), &host, stream, label).await?;
            (Box::new(stream), binding)
        }
    };
    stream.write_all(&encode_hello(hello)).await?;
    stream.flush().await?;
    if let Some(key) = &security.key {
        let mut nonce = [0; PEER_NONCE_BYTES];
        stream.read_exact(&mut nonce).await?;
        stream.write_all(&peer_auth::proof(key, hello, &nonce, &binding)).await?;
        stream.flush().await?;
    }
    Ok(stream)
}

/// `work`, or a timeout error once [`PEER_HANDSHAKE_TIMEOUT_MS`] have passed.
async fn within_handshake<T>(work: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    futures_lite::future::or(work, async {
        glommio::timer::sleep(Duration::from_millis(PEER_HANDSHAKE_TIMEOUT_MS)).await;
        Err(io::Error::from(io::ErrorKind::TimedOut))
    })
    .await
}

/// Writes `unsent` (if a batch was left from a connection that died), then the queue's frames
/// in batches, until the connection fails (the error; the batch being written stays in
/// `unsent`) or the queue closes (Ok).
async fn write_queue<W: futures_lite::AsyncWrite + Unpin>(
    stream: &mut W,
    queue: &async_channel::Receiver<Vec<u8>>,
    unsent: &mut Vec<u8>,
) -> io::Result<()> {
    loop {
        if unsent.is_empty() {
            let Ok(frame) = queue.recv().await else { return Ok(()) };
            *unsent = frame;
            while unsent.len() < PEER_WRITE_BATCH_BYTES_MAX {
                let Ok(frame) = queue.try_recv() else { break };
                unsent.extend_from_slice(&frame);
            }
        }
        stream.write_all(unsent).await?;
        stream.flush().await?;
        unsent.clear();
    }
}

async fn accept(inner: Rc<Inner>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                tune_peer_socket(&stream);
                if inner.incoming.get() >= PEER_CONNECTIONS_MAX {
                    inner.count(|stats| stats.connections_rejected += 1);
                    if let Some(suppressed) = inner.refusal_to_warn() {
                        tracing::warn!(
                            node = inner.node_id,
                            limit = PEER_CONNECTIONS_MAX,
                            suppressed,
                            "peer connection refused: too many open"
                        );
                    }
                    continue;
                }
                inner.incoming.set(inner.incoming.get() + 1);
                let inner = inner.clone();
                glommio::spawn_local(async move {
                    match read_peer(&inner, stream).await {
                        Err(ReadError::Wire(error)) => {
                            inner.count(|stats| stats.connections_rejected += 1);
                            if let Some(suppressed) = inner.refusal_to_warn() {
                                tracing::warn!(node = inner.node_id, %error, suppressed, "peer connection refused");
                            }
                        }
                        Err(ReadError::Tls(error)) => {
                            inner.count(|stats| stats.connections_rejected += 1);
                            if let Some(suppressed) = inner.refusal_to_warn() {
                                tracing::warn!(node = inner.node_id, %error, suppressed, "peer connection refused: its TLS handshake failed");
                            }
                        }
                        Ok(()) | Err(ReadError::Io) => {}
                    }
                    inner.incoming.set(inner.incoming.get() - 1);
                })
                .detach();
            }
            Err(_) => glommio::timer::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await,
        }
    }
}

/// Why a peer connection ended: its socket (the peer went away), or the protocol or its TLS
/// handshake (both counted).
enum ReadError {
    Io,
    Wire(WireError),
    Tls(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> ReadError {
        ReadError::Io
    }
}

impl From<WireError> for ReadError {
    fn from(error: WireError) -> ReadError {
        ReadError::Wire(error)
    }
}

/// The listener's side of a connection's opening: TLS if configured, the hello, from a peer to
/// this node, and with a key the proof that the dialer holds it.
async fn accept_hello(inner: &Inner, stream: TcpStream) -> Result<(Hello, Box<dyn Duplex>), ReadError> {
    let (mut stream, binding): (Box<dyn Duplex>, Vec<u8>) = match &inner.security.tls {
        None => (Box::new(stream), Vec::new()),
        Some(tls) => {
            let accepted =
                sluice_security::tls::accept_bound(tls.server.acceptor(), stream, PEER_CHANNEL_BINDING_LABEL);
            let (stream, binding) = accepted.await.map_err(ReadError::Tls)?;
            (Box::new(stream), binding)
        }
    };
    let mut hello = [0; HELLO_BYTES];
    stream.read_exact(&mut hello).await?;
    let hello = decode_hello(&hello)?;
    if hello.to != inner.node_id || !inner.queues.borrow().contains_key(&hello.from) {
        return Err(WireError::Hello("from a node that is not a peer, or to another node").into());
    }
    match (&inner.security.key, hello.authenticated) {
        (Some(key), true) => {
            let nonce: [u8; PEER_NONCE_BYTES] = rand::random();
            stream.write_all(&nonce).await?;
            stream.flush().await?;
            let mut proof = [0; PEER_PROOF_BYTES];
            stream.read_exact(&mut proof).await?;
            if !peer_auth::verify(key, hello, &nonce, &binding, &proof) {
                return Err(WireError::Hello("the peer's proof does not match this node's peer key").into());
            }
        }
        (None, false) => {}
        (Some(_), false) => return Err(WireError::Hello("a peer without the cluster secret").into()),
        (None, true) => return Err(WireError::Hello("a peer with a cluster secret this node lacks").into()),
    }
    Ok((hello, stream))
}

/// Reads one peer's connection until it ends or breaks the protocol.
async fn read_peer(inner: &Inner, stream: TcpStream) -> Result<(), ReadError> {
    let opened = futures_lite::future::or(accept_hello(inner, stream), async {
        glommio::timer::sleep(Duration::from_millis(PEER_HANDSHAKE_TIMEOUT_MS)).await;
        Err(WireError::Hello("no TLS handshake, hello or proof within the handshake timeout").into())
    });
    let (hello, stream) = opened.await?;
    // This is the peer's connection from now on: an older one is closed (its sender is gone).
    let (newest, superseded) = async_channel::bounded::<()>(1);
    let number = inner.next_incoming.get();
    inner.next_incoming.set(number + 1);
    if inner.newest_incoming.borrow_mut().insert(hello.from, (number, newest)).is_some() {
        inner.count(|stats| stats.connections_superseded += 1);
    }
    let read = read_frames(inner, hello, stream);
    let ended = futures_lite::future::or(read, async {
        let _ = superseded.recv().await;
        Ok(())
    })
    .await;
    let mut newest_incoming = inner.newest_incoming.borrow_mut();
    if newest_incoming.get(&hello.from).is_some_and(|(newest, _)| *newest == number) {
        newest_incoming.remove(&hello.from);
    }
    ended
}

/// Reads frames from peer `hello.from` until its connection ends or breaks the protocol.
async fn read_frames(inner: &Inner, hello: Hello, mut stream: Box<dyn Duplex>) -> Result<(), ReadError> {
    let mut body = Vec::new();
    loop {
        let mut prefix = [0; LENGTH_PREFIX_BYTES];
        stream.read_exact(&mut prefix).await?;
        let body_bytes = frame_body_bytes(prefix, PEER_FRAME_BYTES_MAX)?;
        body.resize(body_bytes, 0);
        stream.read_exact(&mut body).await?;
        let (group, frame) = decode_any_peer_frame(&body)?;
        if body.capacity() > READ_BUFFER_KEPT_BYTES_MAX {
            body = Vec::new();
        }
        let message = match frame {
            PeerFrame::Raft(message) => message,
            PeerFrame::Copy(copy) => {
                inner.count(|stats| stats.frames_received += 1);
                if !deliver_copy(inner, hello.from, group, copy) {
                    inner.count(|stats| stats.frames_undelivered += 1);
                }
                continue;
            }
        };
        if message.from != hello.from {
            return Err(WireError::Invalid(format!("node {} sent a message from {}", hello.from, message.from)).into());
        }
        inner.count(|stats| stats.frames_received += 1);
        // A full inbox loses the message, as a lossy network would.
        let delivered =
            inner.groups.borrow().get(&group).is_some_and(|inbox| inbox.try_send(Input::Message(message)).is_ok());
        if !delivered {
            inner.count(|stats| stats.frames_undelivered += 1);
        }
    }
}

/// A copy frame from `peer`: a request goes to the host (if it serves them and has room), an
/// answer to the fetch waiting for it, if it is the answer to what was asked of that peer.
fn deliver_copy(inner: &Inner, peer: u64, group: GroupId, copy: CopyFrame) -> bool {
    match copy {
        CopyFrame::Request { id, from, bytes_max } => {
            let request = CopyRequest { group, peer, id, from, bytes_max, runs: None };
            inner.copy_requests.borrow().as_ref().is_some_and(|requests| requests.try_send(request).is_ok())
        }
        CopyFrame::Runs { id, from, count, until_index, until_term } => {
            let runs = Some(RunsAsked { count, until_index, until_term });
            let request = CopyRequest { group, peer, id, from, bytes_max: 0, runs };
            inner.copy_requests.borrow().as_ref().is_some_and(|requests| requests.try_send(request).is_ok())
        }
        CopyFrame::Answer { id, from, data } => {
            let copies = inner.copies.borrow();
            match copies.get(&id) {
                Some(pending) if pending.peer == peer && pending.group == group && pending.from == from => {
                    pending.answer.try_send(data).is_ok()
                }
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option a peer socket gets is taken by the kernel, as asked: a keepalive interval
    /// below a second was once refused without anyone seeing it.
    #[test]
    fn peer_sockets_take_every_option() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        try_tune_peer_socket(&stream).unwrap();
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.tcp_nodelay().unwrap());
        assert_eq!(socket.tcp_user_timeout().unwrap(), Some(Duration::from_millis(PEER_UNACKNOWLEDGED_MS_MAX)));
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(PEER_KEEPALIVE_SECS));
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(PEER_KEEPALIVE_SECS));
    }
}
