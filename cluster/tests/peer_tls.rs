//! The Raft peer network over TLS (`transport::PeerTls`, what `sluiced --tls-cert` gives a
//! cluster): real peer networks on loopback, each on its own executor thread, with a proxy
//! between two of them that records every byte the dialer sent.
//!
//! - With TLS and the peer key, a member's append arrives, and the recorded bytes do not hold
//!   its entry's data; without TLS (the control) they do, so the check can fail.
//! - A member trusting another CA never connects (it refuses the listener's certificate), and
//!   none of its messages arrive.
//! - A dialer speaking plain TCP to a TLS listener is refused.
//! - A dialer that is no member where it dials backs off between refusals.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, Message, MessageType};
use sluice_cluster::peer_auth::PeerKey;
use sluice_cluster::transport::{PeerNetwork, PeerSecurity, PeerTls, TransportStats};
use sluice_cluster::wire::{encode_hello, GroupId, Hello};
use sluice_cluster::{Input, Transport};
use sluice_security::tls::{client_config, ReloadableServerConfig, ALPN_PEER};
use sluice_testkit::TestCa;

const KEY: [u8; 32] = [0x6c; 32];
const GROUP: GroupId = GroupId(3);
/// The data of the entry node 2 appends: it must not cross the wire in the clear.
const SECRET_DATA: &[u8] = b"entry data that only the members may read";

/// One node's peer network on its own executor thread.
struct Node {
    /// The messages its group received.
    received: mpsc::Receiver<Message>,
    /// Messages for it to send.
    send: mpsc::Sender<Message>,
    ask: mpsc::Sender<mpsc::Sender<TransportStats>>,
}

impl Node {
    fn start(id: u64, listen: SocketAddr, peers: BTreeMap<u64, SocketAddr>, security: PeerSecurity) -> Node {
        let (received_tx, received) = mpsc::channel();
        let (send, to_send) = mpsc::channel::<Message>();
        let (ask, asks) = mpsc::channel::<mpsc::Sender<TransportStats>>();
        std::thread::spawn(move || {
            glommio::LocalExecutorBuilder::default().make().unwrap().run(async move {
                let network = PeerNetwork::start(id, listen, &peers, security).unwrap();
                let (inbox, messages) = async_channel::bounded(64);
                network.register(GROUP, inbox);
                glommio::spawn_local(async move {
                    while let Ok(Input::Message(message)) = messages.recv().await {
                        let _ = received_tx.send(*message);
                    }
                })
                .detach();
                let transport = network.transport(GROUP);
                loop {
                    while let Ok(message) = to_send.try_recv() {
                        transport.send(message);
                    }
                    while let Ok(answer) = asks.try_recv() {
                        let _ = answer.send(network.stats());
                    }
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
            });
        });
        Node { received, send, ask }
    }

    fn stats(&self) -> TransportStats {
        let (answer, stats) = mpsc::channel();
        self.ask.send(answer).unwrap();
        stats.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    /// Sends `message` every 100 ms until `to` received one, which it returns.
    fn deliver(&self, to: &Node, message: &Message) -> Message {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.send.send(message.clone()).unwrap();
            if let Ok(received) = to.received.recv_timeout(Duration::from_millis(100)) {
                return received;
            }
            assert!(Instant::now() < deadline, "never arrived; sender {:?}, receiver {:?}", self.stats(), to.stats());
        }
    }

    fn wait_for(&self, what: &str, done: impl Fn(&TransportStats) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let stats = self.stats();
            if done(&stats) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {stats:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn address(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A proxy on its own port to `target` that keeps every byte its clients send.
fn recording_proxy(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind(address(sluice_testkit::free_port())).unwrap();
    let proxy = listener.local_addr().unwrap();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let kept = recorded.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(target) else { continue };
            let (mut client_back, mut server_in) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client_back);
            });
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = client.read(&mut buffer) {
                    // Kept before it is passed on: what arrived was recorded.
                    kept.lock().unwrap().extend_from_slice(&buffer[..read]);
                    if read == 0 || server_in.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (proxy, recorded)
}

fn append() -> Message {
    let entry = Entry { term: 2, index: 8, data: SECRET_DATA.to_vec().into(), ..Default::default() };
    let mut message = Message { msg_type: MessageType::MsgAppend, from: 2, to: 1, term: 2, ..Default::default() };
    message.log_term = 2;
    message.index = 7;
    message.entries = vec![entry].into();
    message
}

fn tls(ca: &TestCa, dir: &std::path::Path, trusted_ca_pem: &str) -> PeerTls {
    ca.install(dir);
    let server = ReloadableServerConfig::load(&dir.join("cert.pem"), &dir.join("key.pem"), &ALPN_PEER).unwrap();
    PeerTls {
        server: Arc::new(server),
        client: Arc::new(client_config(trusted_ca_pem.as_bytes(), &ALPN_PEER).unwrap()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Node 1 listens, node 2 dials it through a recording proxy; node 2's append must arrive.
/// Returns what the proxy recorded.
fn append_through_proxy(security: impl Fn(&std::path::Path) -> PeerSecurity) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (one_dir, two_dir) = (dir.path().join("1"), dir.path().join("2"));
    std::fs::create_dir_all(&one_dir).unwrap();
    std::fs::create_dir_all(&two_dir).unwrap();
    let ports = sluice_testkit::free_ports(2);
    let (one, two) = (address(ports[0]), address(ports[1]));
    let (proxy, recorded) = recording_proxy(one);
    let node_one = Node::start(1, one, [(2, two)].into_iter().collect(), security(&one_dir));
    let node_two = Node::start(2, two, [(1, proxy)].into_iter().collect(), security(&two_dir));
    let received = node_two.deliver(&node_one, &append());
    assert_eq!(received.get_entries()[0].get_data(), SECRET_DATA, "the entry arrives intact");
    let bytes = recorded.lock().unwrap().clone();
    bytes
}

#[test]
fn peer_connections_over_tls_are_private() {
    let ca = Arc::new(TestCa::new("Sluice peer test CA"));
    let with_tls = {
        let ca = ca.clone();
        append_through_proxy(move |dir| PeerSecurity {
            key: Some(PeerKey::new(KEY)),
            tls: Some(tls(&ca, dir, &ca.ca_pem)),
        })
    };
    assert!(!with_tls.is_empty(), "the proxy saw the connection");
    assert!(!contains(&with_tls, SECRET_DATA), "the entry's data crossed in the clear over TLS");
    // TLS 1.3 records: handshake (22), then application data (23).
    assert_eq!(with_tls[0], 22, "the connection opened with a TLS handshake");

    let plain = append_through_proxy(|_| PeerSecurity { key: Some(PeerKey::new(KEY)), tls: None });
    assert!(contains(&plain, SECRET_DATA), "the control: without TLS the data is readable on the wire");
}

#[test]
fn a_member_trusting_another_ca_or_speaking_plain_tcp_is_not_heard() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Sluice peer test CA");
    let other = TestCa::new("Another CA");
    let ports = sluice_testkit::free_ports(3);
    let (one, two, three) = (address(ports[0]), address(ports[1]), address(ports[2]));
    let dirs: Vec<_> = (1..=3).map(|id| dir.path().join(id.to_string())).collect();
    for path in &dirs {
        std::fs::create_dir_all(path).unwrap();
    }
    let security = |dir: &std::path::Path, trusted: &str| PeerSecurity {
        key: Some(PeerKey::new(KEY)),
        tls: Some(tls(&ca, dir, trusted)),
    };
    let node_one = Node::start(1, one, [(2, two), (3, three)].into_iter().collect(), security(&dirs[0], &ca.ca_pem));
    // Node 3 holds the key and a certificate of the cluster's CA, but trusts another CA.
    let node_three = Node::start(3, three, [(1, one)].into_iter().collect(), security(&dirs[2], &other.ca_pem));
    let from_three = Message { from: 3, ..append() };
    for _ in 0..20 {
        node_three.send.send(from_three.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    node_three.wait_for("node 3 refuses node 1's certificate", |stats| {
        stats.connections_failed >= 1 && stats.connections_made == 0
    });
    node_one.wait_for("node 1 counts the failed handshakes", |stats| stats.connections_rejected >= 1);

    // A dialer that skips TLS: its hello is not a TLS handshake.
    let rejected = node_one.stats().connections_rejected;
    let mut plain = TcpStream::connect(one).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    plain.write_all(&encode_hello(Hello { from: 2, to: 1, authenticated: true })).unwrap();
    let mut byte = [0u8; 64];
    // The listener answers with a TLS alert, or just closes.
    loop {
        match plain.read(&mut byte) {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    node_one.wait_for("node 1 refuses the plain dialer", |stats| stats.connections_rejected > rejected);

    // Node 2, configured right, is heard; nothing of node 3's ever was.
    let node_two = Node::start(2, two, [(1, one)].into_iter().collect(), security(&dirs[1], &ca.ca_pem));
    let received = node_two.deliver(&node_one, &append());
    assert_eq!(received.from, 2);
    while let Ok(message) = node_one.received.try_recv() {
        assert_eq!(message.from, 2, "a message of node 3 arrived");
    }
}

/// A node that is not a member where it dials (a new member before the admin call adds it, or
/// one removed and still running) is refused at each connection; it backs off as after a
/// failed dial instead of dialing again every few milliseconds (it did, hundreds of times a
/// second, each refusal a warning).
#[test]
fn a_dialer_refused_as_no_member_backs_off() {
    let ports = sluice_testkit::free_ports(2);
    let (one, nine) = (address(ports[0]), address(ports[1]));
    let plain = || PeerSecurity { key: None, tls: None };
    let node_one = Node::start(1, one, [(2, address(1))].into_iter().collect(), plain());
    let _node_nine = Node::start(9, nine, [(1, one)].into_iter().collect(), plain());
    node_one.wait_for("node 1 refuses node 9", |stats| stats.connections_rejected >= 1);
    std::thread::sleep(Duration::from_secs(3));
    let refused = node_one.stats().connections_rejected;
    // Dials 10, 20, 40, … ms apart up to 500 ms: about a dozen in these 3 s.
    assert!(refused <= 25, "node 9 was refused {refused} times in about 3 s");
}
