//! Delay between nodes, for replication tests: this kernel has no netem qdisc (nor tc
//! classifiers, nor nftables' `queue`), but it has iptables' NFQUEUE target and netfilter's
//! queue to userspace. A rule in a node's namespace hands every TCP packet it receives from
//! another node to a queue; a thread of the test, bound to that queue from inside the
//! namespace (`nfq`, netlink without libnetfilter_queue), holds each packet for the delay and
//! then lets it in (its verdict: accept). Packets pass in the order they came, so each link
//! gets a constant one-way delay, both ways when every node has a [`Delay`]. The test's own
//! traffic to the nodes is not delayed.
//!
//! Held on the way in, not out: a packet held on its way out still counts against its
//! socket's TCP small queues, which then send a few packets per delay (0.6 MB/s over a 20 ms
//! delay, measured with a Python sender between two namespaces; held on the way in, as netem
//! lets go of a packet's socket, about 12 MB/s, which the thread's polling bounds).
//!
//! Needs root and iptables (`iptables-legacy`: NFQUEUE through nftables needs a kernel
//! module these machines lack; `scripts/test.sh` installs iptables).

use nfq::{Queue, Verdict};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The queue the rule hands packets to (queues are per namespace).
const QUEUE: u16 = 0;
/// Most packets the kernel holds for the queue; past it a packet goes on undelayed (fail-open)
/// rather than being dropped.
const QUEUE_PACKETS_MAX: u32 = 65_536;
/// How long the thread sleeps when nothing is due sooner: the delay's granularity. The queue's
/// socket must be read often enough not to overflow (`nfq` does not lend its descriptor to
/// poll): with 1 ms the link above carried 5 MB/s.
const TICK: Duration = Duration::from_micros(200);

/// A one-way delay on what one node receives from the others, until dropped.
pub struct Delay {
    namespace: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Delay {
    /// Delays by `one_way` every TCP packet that namespace `namespace` receives from `from`.
    pub fn start(namespace: &str, from: &[Ipv4Addr], one_way: Duration) -> Delay {
        let stop = Arc::new(AtomicBool::new(false));
        let (bound, bound_rx) = mpsc::channel();
        let thread = {
            let (namespace, stop) = (namespace.to_owned(), stop.clone());
            std::thread::spawn(move || hold(&namespace, one_way, &stop, bound))
        };
        bound_rx.recv().expect("the delay thread bound its queue");
        // Only once the queue is bound: a packet queued to no one would be dropped.
        for address in from {
            iptables(
                namespace,
                &["-A", "INPUT", "-p", "tcp", "-s", &address.to_string(), "-j", "NFQUEUE", "--queue-num", "0"],
            );
        }
        Delay { namespace: namespace.to_owned(), stop, thread: Some(thread) }
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        // No more packets queued; then the thread lets every held one go and unbinds.
        iptables(&self.namespace, &["-F", "INPUT"]);
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The delay thread: enters `namespace`, binds the queue, says so on `bound`, then holds each
/// packet for `one_way` until `stop`.
fn hold(namespace: &str, one_way: Duration, stop: &AtomicBool, bound: mpsc::Sender<()>) {
    // The queue's netlink socket, opened next, belongs to the namespace it is opened in.
    super::netns::enter(namespace);
    let mut queue = Queue::open().expect("open a netfilter queue socket");
    queue.bind(QUEUE).expect("bind the netfilter queue");
    // Metadata only: the packet's id is all a verdict needs.
    queue.set_copy_range(QUEUE, 0).expect("set the queue's copy range");
    queue.set_queue_max_len(QUEUE, QUEUE_PACKETS_MAX).expect("set the queue's length");
    queue.set_fail_open(QUEUE, true).expect("set the queue fail-open");
    queue.set_nonblocking(true);
    bound.send(()).expect("the test waits for the queue");
    let mut held = VecDeque::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        loop {
            match queue.recv() {
                Ok(packet) => held.push_back((Instant::now() + one_way, packet)),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => panic!("receive from the netfilter queue: {error}"),
            }
        }
        let now = Instant::now();
        while let Some((due, _)) = held.front() {
            if *due > now && !stopping {
                break;
            }
            let (_, mut packet) = held.pop_front().expect("looked at");
            packet.set_verdict(Verdict::Accept);
            queue.verdict(packet).expect("let a held packet go");
        }
        if stopping {
            let _ = queue.unbind(QUEUE);
            return;
        }
        let next = held.front().map_or(TICK, |(due, _)| due.saturating_duration_since(now));
        std::thread::sleep(next.min(TICK));
    }
}

/// Runs `iptables-legacy ARGS` in network namespace `namespace`.
fn iptables(namespace: &str, args: &[&str]) {
    let out = Command::new("ip")
        .args([&["netns", "exec", namespace, "iptables-legacy"], args].concat())
        .output()
        .expect("run ip (iproute2; the test needs root)");
    assert!(
        out.status.success(),
        "iptables-legacy {} in {namespace} failed (the delay needs iptables: apt-get install iptables): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
