//! The Raft peer network with a peer key (`peer_auth`, `sluiced --cluster-secret`): a real
//! listener on loopback, and connections made by hand as a member, an impostor, a replayer
//! and a silent client would make them. Only the member's messages reach the group, and a
//! member's newest connection replaces its older ones.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use raft::eraftpb::{Message, MessageType};
use sluice_cluster::limits::{PEER_CONNECTIONS_MAX, PEER_HANDSHAKE_TIMEOUT_MS};
use sluice_cluster::peer_auth::{self, PeerKey, PEER_NONCE_BYTES};
use sluice_cluster::transport::{PeerNetwork, PeerSecurity, TransportStats};
use sluice_cluster::wire::{encode_hello, encode_peer_frame, GroupId, Hello};
use sluice_cluster::Input;

const KEY: [u8; 32] = [0x5a; 32];
const GROUP: GroupId = GroupId(1);

/// Node 1's peer network with `KEY`, on its own executor thread: its address, the heartbeats
/// its group received (by term), and a way to ask for its stats.
struct Listener {
    address: SocketAddr,
    received: mpsc::Receiver<u64>,
    ask: mpsc::Sender<mpsc::Sender<TransportStats>>,
}

fn listen() -> Listener {
    let port = sluice_testkit::free_port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let (received_tx, received) = mpsc::channel();
    let (ask, asks) = mpsc::channel::<mpsc::Sender<TransportStats>>();
    std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default().make().unwrap().run(async move {
            // Node 2 is a peer that is never up: its dialer retries in the background.
            let peers = [(2, SocketAddr::from(([127, 0, 0, 1], 1)))].into_iter().collect();
            let network =
                PeerNetwork::start(1, address, &peers, PeerSecurity { key: Some(PeerKey::new(KEY)), tls: None })
                    .unwrap();
            let (inbox, messages) = async_channel::bounded(16);
            network.register(GROUP, inbox);
            glommio::spawn_local(async move {
                while let Ok(Input::Message(message)) = messages.recv().await {
                    let _ = received_tx.send(message.term);
                }
            })
            .detach();
            loop {
                while let Ok(answer) = asks.try_recv() {
                    let _ = answer.send(network.stats());
                }
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        });
    });
    Listener { address, received, ask }
}

impl Listener {
    fn stats(&self) -> TransportStats {
        let (answer, stats) = mpsc::channel();
        self.ask.send(answer).unwrap();
        stats.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    fn connect(&self) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(self.address) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    return stream;
                }
                Err(error) => assert!(Instant::now() < deadline, "node 1 does not listen: {error}"),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `rejected` connections were refused.
    fn wait_rejected(&self, rejected: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.stats().connections_rejected < rejected {
            assert!(Instant::now() < deadline, "stats: {:?}", self.stats());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn heartbeat(term: u64) -> Vec<u8> {
    let message = Message { msg_type: MessageType::MsgHeartbeat, from: 2, to: 1, term, ..Default::default() };
    encode_peer_frame(GROUP, &message).unwrap()
}

/// Whether the listener closed `stream` (it reads end of file, or a reset), as opposed to
/// merely saying nothing for the read timeout.
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Err(error) => {
            matches!(error.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted)
        }
        Ok(_) => false,
    }
}

/// Member 2's hello.
const MEMBER_HELLO: Hello = Hello { from: 2, to: 1, authenticated: true };

/// Opens a connection as member 2: the hello and the proof of the key for the listener's
/// nonce (returned too).
fn connect_as_member(node: &Listener) -> (TcpStream, [u8; PEER_NONCE_BYTES]) {
    let mut member = node.connect();
    member.write_all(&encode_hello(MEMBER_HELLO)).unwrap();
    let mut nonce = [0; PEER_NONCE_BYTES];
    member.read_exact(&mut nonce).expect("the listener's challenge: the connection was taken");
    member.write_all(&peer_auth::proof(&PeerKey::new(KEY), MEMBER_HELLO, &nonce, &[])).unwrap();
    (member, nonce)
}

/// A member whose connections died without a word reaching the listener (a partition lost
/// their close) dials again, many times over: each new connection is heard, and closes the
/// one before. The listener once kept them all open until its limit refused the member.
#[test]
fn a_members_new_connection_replaces_its_old_one() {
    let node = listen();
    let (mut previous, _) = connect_as_member(&node);
    previous.write_all(&heartbeat(1)).unwrap();
    assert_eq!(node.received.recv_timeout(Duration::from_secs(10)), Ok(1));
    // Past the limit of connections open at once, the old ones left open by this side.
    let mut abandoned = Vec::new();
    for term in 2..=(PEER_CONNECTIONS_MAX as u64 + 2) {
        let (mut newest, _) = connect_as_member(&node);
        newest.write_all(&heartbeat(term)).unwrap();
        assert_eq!(node.received.recv_timeout(Duration::from_secs(10)), Ok(term), "connection {term} is heard");
        assert!(closed(&mut previous), "connection {} was not closed by {term}", term - 1);
        abandoned.push(std::mem::replace(&mut previous, newest));
    }
    let stats = node.stats();
    assert_eq!(stats.connections_superseded, PEER_CONNECTIONS_MAX as u64 + 1, "{stats:?}");
    assert_eq!(stats.connections_rejected, 0, "{stats:?}");
}

#[test]
fn only_a_peer_that_proves_the_key_is_heard() {
    let node = listen();
    let hello = MEMBER_HELLO;

    // A member: the hello, the proof for this connection's nonce, then a heartbeat.
    let (mut member, nonce) = connect_as_member(&node);
    member.write_all(&heartbeat(7)).unwrap();
    assert_eq!(node.received.recv_timeout(Duration::from_secs(10)), Ok(7), "the member's heartbeat arrives");

    // Without the flag: refused before anything is read.
    let mut unflagged = node.connect();
    unflagged.write_all(&encode_hello(Hello { authenticated: false, ..hello })).unwrap();
    let _ = unflagged.write_all(&heartbeat(8));
    assert!(closed(&mut unflagged));
    node.wait_rejected(1);

    // Another key.
    let mut impostor = node.connect();
    impostor.write_all(&encode_hello(hello)).unwrap();
    let mut fresh = [0; PEER_NONCE_BYTES];
    impostor.read_exact(&mut fresh).unwrap();
    assert_ne!(fresh, nonce, "each connection gets a nonce of its own");
    impostor.write_all(&peer_auth::proof(&PeerKey::new([0x5b; 32]), hello, &fresh, &[])).unwrap();
    let _ = impostor.write_all(&heartbeat(9));
    assert!(closed(&mut impostor));
    node.wait_rejected(2);

    // The member's proof replayed on a new connection: it answered another nonce.
    let mut replayer = node.connect();
    replayer.write_all(&encode_hello(hello)).unwrap();
    let mut ignored = [0; PEER_NONCE_BYTES];
    replayer.read_exact(&mut ignored).unwrap();
    replayer.write_all(&peer_auth::proof(&PeerKey::new(KEY), hello, &nonce, &[])).unwrap();
    let _ = replayer.write_all(&heartbeat(10));
    assert!(closed(&mut replayer));
    node.wait_rejected(3);

    // Silence: closed once the handshake's time is up.
    let started = Instant::now();
    let mut silent = node.connect();
    assert!(closed(&mut silent));
    assert!(started.elapsed() >= Duration::from_millis(PEER_HANDSHAKE_TIMEOUT_MS / 2), "closed too soon");
    node.wait_rejected(4);

    // None of theirs reached the group; the member's connection still works.
    member.write_all(&heartbeat(11)).unwrap();
    assert_eq!(node.received.recv_timeout(Duration::from_secs(10)), Ok(11));
    assert_eq!(node.received.try_recv(), Err(mpsc::TryRecvError::Empty));
}
