//! What the integration tests of several crates share and cannot import from each other's
//! `tests/` directories. A dev-dependency only: nothing here is built into a binary.

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use socket2::{Domain, Socket, Type};

/// How many ports below the kernel's ephemeral range [`free_port`] picks from, at most.
const SPAN: u32 = 20_000;

/// Ports under this are left alone: well-known services, and what root-only daemons bind.
const LOWEST: u16 = 1_024;

/// A port no socket holds now (not even a connection lingering in TIME_WAIT), for a process a
/// test starts later (a daemon, a peer node, an S3 server).
///
/// Not the kernel's choice for port 0: that comes from the ephemeral range, where every
/// outbound connection on the machine and every other test's bind(0) also draw, so between
/// the choice and the child's bind another socket can take it (CI saw "Address already in
/// use" from a cluster node and an S3 gateway that never came up). A client retrying a connect
/// to an ephemeral port nobody listens on can even be given that very port and connect to
/// itself. Below the range only another listener choosing this way can take the port.
///
/// Within one test process a port is handed out once only: the tests of a binary run in
/// parallel, and between one test's choice and its daemon's bind another test could choose
/// the same free port (CI saw a cluster node refuse to share its native port with another
/// test's node, whose peer-port run had been checked free before the first node bound). Other
/// processes choosing this way draw at random from up to 20,000 ports.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `count` different free ports, as [`free_port`] chooses them.
pub fn free_ports(count: usize) -> Vec<u16> {
    let mut ports = Vec::with_capacity(count);
    while ports.len() < count {
        ports.push(free_port_run(1));
    }
    ports
}

/// The first of `length` consecutive ports nobody listens on now, chosen as [`free_port`]
/// chooses: for a process that listens on a port and the ports after it (a cluster member's
/// peer port, plus one per core after the first).
pub fn free_port_run(length: usize) -> u16 {
    assert!(length >= 1, "a run of no port");
    let ephemeral_low = ephemeral_low();
    let span = SPAN.min(u32::from(ephemeral_low.saturating_sub(LOWEST)));
    assert!(span as usize > 4 * length + 1_000, "too few ports below the ephemeral range ({ephemeral_low})");
    let seeds = RandomState::new();
    let mut draw = 0u64;
    loop {
        draw += 1;
        let mut hasher = seeds.build_hasher();
        hasher.write_u64(draw);
        // The run ends below the ephemeral range.
        let first = ephemeral_low - length as u16 - (hasher.finish() % u64::from(span - length as u32)) as u16;
        let run = first..first + length as u16;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if run.clone().any(|port| handed_out.contains(&port)) {
            continue;
        }
        // Held until the whole run is known free.
        let probes: Option<Vec<Socket>> = run.clone().map(bound_alone).collect();
        if probes.is_some() {
            handed_out.extend(run);
            return first;
        }
    }
}

/// A socket bound to `port` on 127.0.0.1 without SO_REUSEADDR or SO_REUSEPORT, if the kernel
/// lets it: then no socket holds the port, not even one in TIME_WAIT, and a later bind of any
/// kind succeeds. std's `TcpListener::bind` sets SO_REUSEADDR, so it passes over the TIME_WAIT
/// connections a killed daemon leaves on its port for a minute; a test that then bound the port
/// with SO_REUSEPORT alone (as glommio's bind does) was refused "Address already in use" (CI
/// saw it in the ownership test, right after the cluster tests had killed their nodes).
fn bound_alone(port: u16) -> Option<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into()).ok()?;
    Some(socket)
}

/// Every port [`free_port_run`] has handed out in this process.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The first port of the kernel's ephemeral range (Linux's default when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A test certificate authority, and one certificate it issued for `localhost` and 127.0.0.1,
/// with that certificate's key (all PEM).
pub struct TestCa {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `common_name`, with fresh keys.
    pub fn new(common_name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, common_name);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key")).expect("a CA");
        let key = KeyPair::generate().expect("a key");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let cert = CertificateParams::new(names).expect("valid names").signed_by(&key, &ca).expect("a certificate");
        TestCa { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// Writes what a server serves, `cert.pem` and `key.pem`, into `dir` (replacing them).
    pub fn install(&self, dir: &Path) {
        std::fs::write(dir.join("cert.pem"), &self.cert_pem).expect("write cert.pem");
        std::fs::write(dir.join("key.pem"), &self.key_pem).expect("write key.pem");
    }

    /// [`TestCa::install`], and the CA's certificate as `ca.pem`.
    pub fn write(&self, dir: &Path) {
        self.install(dir);
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).expect("write ca.pem");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports = free_ports(64);
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 64, "{ports:?}");
        for port in ports {
            assert!((LOWEST..ephemeral_low()).contains(&port), "{port}");
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("a chosen port is free once released");
        }
    }

    #[test]
    fn a_port_a_connection_lingers_on_in_time_wait_is_not_free() {
        use std::io::Read;
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // The server's side closes first, so its end (on `port`) goes to TIME_WAIT once the
        // client's FIN arrives.
        drop(listener.accept().unwrap());
        drop(listener);
        assert_eq!(client.read(&mut [0; 1]).unwrap(), 0, "the server closed");
        drop(client);
        // The client's FIN reaches the server's socket asynchronously; the probe refuses the
        // port once it does (a probe with SO_REUSEADDR never would, and this fails).
        let start = std::time::Instant::now();
        while bound_alone(port).is_some() {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "the probe still takes {port}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "std's bind (SO_REUSEADDR) passes over it");
    }

    #[test]
    fn a_port_is_handed_out_once_even_once_it_is_free_again() {
        let run = free_port_run(3);
        let singles = free_ports(200);
        for port in singles {
            assert!(!(run..run + 3).contains(&port), "{port} is in the run {run}..{}", run + 3);
        }
        let next = free_port_run(3);
        assert!(next + 3 <= run || run + 3 <= next, "runs {run} and {next} overlap");
    }
}
