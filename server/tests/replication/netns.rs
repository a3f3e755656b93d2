//! A small network of namespaces for replication tests: one namespace per node, joined by a
//! bridge in a namespace of its own, and a veth from the test's namespace onto the same bridge
//! so the test reaches every node by its address (each end knows the others' MAC addresses:
//! no ARP). A node is partitioned away by taking its
//! bridge port down (nothing crosses, in either direction) and healed by bringing it back.
//!
//! Packet loss is a rule of nftables' in the node's namespace that drops a share of what
//! reaches its `eth0`, chosen at random (`numgen random`): so every link into a lossy node loses
//! that share, both its peers' messages and its clients' requests. A single link between two
//! nodes is cut by nftables rules too, in one of them (a partial partition: each still reaches
//! the third), and so is every link of a node one way only (it sends but hears nothing, or
//! hears but cannot send). Delay is `delay.rs`'s: this kernel has no netem qdisc and no tc classifiers,
//! and nftables cannot hold packets back.
//!
//! Needs root, iproute2's `ip` and nftables' `nft` (CI runs as root, and `scripts/test.sh`
//! installs nftables; so do these machines).

use std::net::Ipv4Addr;
use std::process::Command;

/// The namespaces' prefix: names are `PREFIX<pid>x<k>s` (the bridge) and `PREFIX<pid>x<k>n<i>`,
/// for the process's `k`-th network.
const PREFIX: &str = "slt";

/// Networks made by this process so far: two tests of one binary may build theirs at once
/// (with the pid alone they took the same names and subnet, and the second `ip netns add`
/// failed: "File exists").
static NETWORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub struct Network {
    tag: String,
    /// The subnet's first three octets, within 198.18.0.0/15 (RFC 2544's range for network
    /// tests, which no real network uses).
    subnet: [u8; 3],
    nodes: usize,
}

/// Runs `ip ARGS`, failing the test with what it printed.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip (iproute2; the test needs root)");
    assert!(
        out.status.success(),
        "ip {} failed (the test needs root, iproute2, and for packet loss nftables: apt-get install \
         nftables): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Network {
    /// Namespaces for `nodes` nodes, all connected.
    pub fn new(nodes: usize) -> Network {
        remove_stale();
        let pid = std::process::id();
        let k = NETWORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // One of the range's 512 /24s, a different one for each of this process's networks;
        // another process's first two take the same ones only if its pid is 256 · n away.
        let block = pid.wrapping_mul(2).wrapping_add(k) % 512;
        let network =
            Network { tag: format!("{PREFIX}{pid}x{k}"), subnet: [198, 18 + (block >> 8) as u8, block as u8], nodes };
        let switch = network.switch();
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        // The test's own way in: an address of the subnet on this namespace's side.
        let host = format!("{}h", network.tag);
        ip(&["link", "add", &host, "type", "veth", "peer", "name", "host", "netns", &switch]);
        ip(&["addr", "add", &format!("{}/24", network.address(0)), "dev", &host]);
        ip(&["link", "set", &host, "up"]);
        ip(&["-n", &switch, "link", "set", "host", "master", "br0", "up"]);
        for node in 1..=nodes {
            let namespace = network.namespace(node);
            ip(&["netns", "add", &namespace]);
            let port = format!("p{node}");
            ip(&["link", "add", "eth0", "netns", &namespace, "type", "veth", "peer", "name", &port, "netns", &switch]);
            ip(&["-n", &namespace, "addr", "add", &format!("{}/24", network.address(node)), "dev", "eth0"]);
            ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
            ip(&["-n", &namespace, "link", "set", "lo", "up"]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
        }
        // Each end knows every other's MAC address, permanently: learnt by ARP, a node cut off
        // and healed stayed unreachable for up to a second or two more (a resolution that
        // failed during the cut is retried once a second, `retrans_time_ms`), and the
        // partition test's elections right after a heal waited for it.
        let ends: Vec<(Option<String>, String)> = std::iter::once((None, host))
            .chain((1..=nodes).map(|node| (Some(network.namespace(node)), "eth0".to_owned())))
            .collect();
        let macs: Vec<String> = ends.iter().map(|(namespace, device)| mac(namespace.as_deref(), device)).collect();
        for (end, (namespace, device)) in ends.iter().enumerate() {
            for (other, mac) in macs.iter().enumerate().filter(|(other, _)| *other != end) {
                let address = network.address(other).to_string();
                let neighbour = ["neigh", "replace", &address, "lladdr", mac, "dev", device, "nud", "permanent"];
                match namespace {
                    None => ip(&neighbour),
                    Some(namespace) => ip(&[&["-n", namespace.as_str()], &neighbour[..]].concat()),
                }
            }
        }
        network
    }

    fn switch(&self) -> String {
        format!("{}s", self.tag)
    }

    /// Node `node`'s namespace (nodes count from 1).
    pub fn namespace(&self, node: usize) -> String {
        format!("{}n{node}", self.tag)
    }

    /// Node `node`'s address (0: the test's own).
    pub fn address(&self, node: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 1 + node as u8)
    }

    /// Cuts node `node` off from every other node and from the test.
    pub fn isolate(&self, node: usize) {
        ip(&["-n", &self.switch(), "link", "set", &format!("p{node}"), "down"]);
    }

    /// Connects node `node` again.
    pub fn heal(&self, node: usize) {
        ip(&["-n", &self.switch(), "link", "set", &format!("p{node}"), "up"]);
    }

    /// Node `node` drops `percent` % of the packets that reach it, at random, until
    /// [`Network::stop_losing`].
    pub fn lose(&self, node: usize, percent: u32) {
        let namespace = self.namespace(node);
        nft(&namespace, &["add", "table", "inet", LOSS_TABLE]);
        nft(
            &namespace,
            &["add", "chain", "inet", LOSS_TABLE, "input", "{ type filter hook input priority 0; policy accept; }"],
        );
        let share = percent.to_string();
        nft(
            &namespace,
            &[
                "add", "rule", "inet", LOSS_TABLE, "input", "iifname", "eth0", "numgen", "random", "mod", "100", "<",
                &share, "drop",
            ],
        );
    }

    /// Node `node` loses nothing again.
    pub fn stop_losing(&self, node: usize) {
        nft(&self.namespace(node), &["delete", "table", "inet", LOSS_TABLE]);
    }

    /// Cuts the link between nodes `node` and `other` alone, both ways (rules in `node`'s
    /// namespace: nothing from `other` comes in, nothing to it goes out); each still reaches
    /// every other node, and the test reaches both. Until [`Network::mend`].
    pub fn cut(&self, node: usize, other: usize) {
        self.drop_between(node, &[other], &[Way::Inbound, Way::Outbound]);
    }

    /// Cuts node `node` off from every other node one way only: with [`Way::Inbound`] nothing
    /// from them reaches it while what it sends reaches them; with [`Way::Outbound`] the
    /// reverse. The test reaches it both ways. Until [`Network::mend`].
    pub fn cut_one_way(&self, node: usize, way: Way) {
        let others: Vec<usize> = (1..=self.nodes).filter(|&other| other != node).collect();
        self.drop_between(node, &others, &[way]);
    }

    /// Cuts the link between nodes `node` and `other` one way only: with [`Way::Inbound`]
    /// nothing from `other` reaches `node` while what `node` sends reaches `other`; with
    /// [`Way::Outbound`] the reverse. Until [`Network::mend`] of `node`.
    pub fn cut_link_one_way(&self, node: usize, other: usize, way: Way) {
        self.drop_between(node, &[other], &[way]);
    }

    /// Rules in `node`'s namespace that drop its packets with `others`, each `ways`.
    fn drop_between(&self, node: usize, others: &[usize], ways: &[Way]) {
        let namespace = self.namespace(node);
        nft(&namespace, &["add", "table", "inet", CUT_TABLE]);
        for way in ways {
            let (chain, direction) = match way {
                Way::Inbound => ("input", "saddr"),
                Way::Outbound => ("output", "daddr"),
            };
            let spec = format!("{{ type filter hook {chain} priority 0; policy accept; }}");
            nft(&namespace, &["add", "chain", "inet", CUT_TABLE, chain, &spec]);
            for &other in others {
                let other = self.address(other).to_string();
                nft(&namespace, &["add", "rule", "inet", CUT_TABLE, chain, "ip", direction, &other, "drop"]);
            }
        }
    }

    /// Node `node`'s links are all whole again (after [`Network::cut`] or
    /// [`Network::cut_one_way`]).
    pub fn mend(&self, node: usize) {
        nft(&self.namespace(node), &["delete", "table", "inet", CUT_TABLE]);
    }
}

/// Which way a one-way cut drops packets ([`Network::cut_one_way`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// What the node receives from the others.
    Inbound,
    /// What it sends to them.
    Outbound,
}

/// Moves the calling thread into network namespace `namespace` (setns(2)); threads it
/// creates afterwards, and sockets it opens, belong to that namespace.
pub fn enter(namespace: &str) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/run/netns/{namespace}")).expect("the namespace's file");
    // SAFETY: setns(2) on a descriptor we own; it changes only this thread's namespace.
    let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
}

/// The MAC address of `device` in `namespace` (`None`: the test's own).
fn mac(namespace: Option<&str>, device: &str) -> String {
    let mut command = Command::new("ip");
    if let Some(namespace) = namespace {
        command.args(["-n", namespace]);
    }
    let out = command.args(["-o", "link", "show", "dev", device]).output().expect("run ip");
    let shown = String::from_utf8_lossy(&out.stdout);
    let mut words = shown.split_whitespace().skip_while(|word| *word != "link/ether");
    words.nth(1).unwrap_or_else(|| panic!("no MAC address for {device} in `ip link show`: {shown}")).to_owned()
}

/// The nftables table of [`Network::lose`]'s rule.
const LOSS_TABLE: &str = "sluice_loss";

/// The nftables table of [`Network::cut`]'s rules.
const CUT_TABLE: &str = "sluice_cut";

/// Runs `nft ARGS` in network namespace `namespace` (through `ip netns exec`).
fn nft(namespace: &str, args: &[&str]) {
    ip(&[&["netns", "exec", namespace, "nft"], args].concat());
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes its ends of the veths, and with them the other ends.
        for node in 1..=self.nodes {
            let _ = Command::new("ip").args(["netns", "delete", &self.namespace(node)]).status();
        }
        let _ = Command::new("ip").args(["netns", "delete", &self.switch()]).status();
    }
}

/// Deletes the namespaces of earlier runs whose process is gone (killed before its `Drop`).
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "delete", name]).status();
        }
    }
}
