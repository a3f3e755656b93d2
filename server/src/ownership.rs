//! One daemon per data directory, and no listening address shared with another process.
//!
//! Two `sluiced` on one data directory both start and, appending to the same journals,
//! corrupt them; two on one port split its traffic silently, because glommio binds every
//! listener with SO_REUSEPORT (issue 10). So, before the daemon reads anything:
//!
//! - [`lock_data_dir`] takes an exclusive `flock` on `LOCK_FILE` in the data directory and
//!   writes the daemon's PID into it. The kernel drops the lock when the process dies, however
//!   it dies, so there is no stale lock to clean up. A second daemon is refused, naming the
//!   first one's PID.
//! - [`probe_listeners`] binds each address once *without* SO_REUSEPORT (and closes it again):
//!   if any other socket listens there, that bind fails, whatever options the other socket
//!   has. Then the executors bind with SO_REUSEPORT, as glommio does.
//! - [`verify_listeners`], once every executor is listening, checks in `/proc/net/tcp{,6}`
//!   that every socket listening on those addresses belongs to this process.
//!
//! The race: the probe cannot hold its socket while the executors bind (a socket without
//! SO_REUSEPORT in the group makes their binds fail), so another process could bind in the
//! window between the probe and the executors. Then both share the port until the check
//! after binding: the daemon that started second sees the other's socket and exits with an
//! error (if both start at the same instant, both may exit). A connection that arrives in that
//! window can be accepted by the daemon that then exits, and is reset; traffic is never split
//! silently. The data directory lock has no such window: `flock` is atomic.

use anyhow::Context;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file in the data directory; it holds the PID of the daemon that owns it.
pub const LOCK_FILE: &str = "sluiced.lock";

/// The data directory's lock: held until this value is dropped or the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the data directory for this process, or says which process has it.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    let path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; it only reads the arguments.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::WouldBlock {
            return Err(error).with_context(|| format!("lock {}", path.display()));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = match holder.trim() {
            // The other daemon has the lock but has not written its PID yet.
            "" => "another sluiced (its PID is not recorded yet)".to_string(),
            pid => format!("another sluiced, PID {pid}"),
        };
        anyhow::bail!(
            "data directory {} is in use by {holder} (lock file {}); two daemons on one data directory would corrupt it: stop the other one or choose another --data-dir",
            data_dir.display(),
            path.display()
        );
    }
    file.set_len(0).with_context(|| format!("truncate {}", path.display()))?;
    file.rewind().with_context(|| format!("rewind {}", path.display()))?;
    writeln!(file, "{}", std::process::id()).with_context(|| format!("write {}", path.display()))?;
    Ok(DataDirLock { _file: file, path })
}

/// Fails if another socket listens on any of `addresses` (`(what, address)` pairs, for the
/// message). Port 0 asks for a free port and is not probed.
pub fn probe_listeners(addresses: &[(&str, SocketAddr)]) -> anyhow::Result<()> {
    for &(what, address) in addresses {
        if address.port() == 0 {
            continue;
        }
        // std sets SO_REUSEADDR but never SO_REUSEPORT: any listening socket there refuses it.
        match std::net::TcpListener::bind(address) {
            Ok(probe) => drop(probe),
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => anyhow::bail!(
                "{what} address {address} is already in use by another process; choose another address (--listen, --http-listen) or stop that process"
            ),
            Err(error) => return Err(error).with_context(|| format!("{what} address {address}")),
        }
    }
    Ok(())
}

/// Fails if a socket of another process listens on any of `addresses` (this process must
/// listen on them already). Names the other process when `/proc` says which it is. Without a
/// readable `/proc/net/tcp` (not Linux) it checks nothing and says so in the log.
pub fn verify_listeners(addresses: &[(&str, SocketAddr)]) -> anyhow::Result<()> {
    let own = own_socket_inodes();
    for &(what, address) in addresses {
        if address.port() == 0 {
            continue;
        }
        let table = if address.is_ipv4() { "/proc/net/tcp" } else { "/proc/net/tcp6" };
        let Ok(text) = std::fs::read_to_string(table) else {
            tracing::warn!(table, "cannot read the socket table: not checking who else listens on {address}");
            continue;
        };
        let foreign = listening_inodes(&text, address).into_iter().find(|inode| !own.contains(inode));
        if let Some(inode) = foreign {
            let holder =
                socket_owner(inode).map_or_else(|| "another process".to_string(), |pid| format!("process {pid}"));
            anyhow::bail!(
                "{what} address {address} is also listened on by {holder} (SO_REUSEPORT would split the traffic between us): refusing to share it"
            );
        }
    }
    Ok(())
}

/// Whether process `pid` holds a socket listening on `address` (seen from its own network
/// namespace, `/proc/PID/net/tcp{,6}`). Test harnesses use it to tell their daemon's listener
/// from another process's on a port they picked.
pub fn listens_on(pid: u32, address: SocketAddr) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let table = proc.join(if address.is_ipv4() { "net/tcp" } else { "net/tcp6" });
    let Ok(text) = std::fs::read_to_string(table) else { return false };
    let own = socket_inodes_of(&proc.join("fd"));
    listening_inodes(&text, address).into_iter().any(|inode| own.contains(&inode))
}

/// Inodes of the sockets listening (state 0A) on `address`'s port at that address or at the
/// wildcard address of its family, from the text of `/proc/net/tcp` or `/proc/net/tcp6`.
fn listening_inodes(table: &str, address: SocketAddr) -> Vec<u64> {
    let mut inodes = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(&"0A"), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else { continue };
        let Some((ip, port)) = parse_local_address(local) else { continue };
        let overlaps = ip == address.ip() || ip.is_unspecified() || address.ip().is_unspecified();
        if port == address.port() && overlaps {
            if let Ok(inode) = inode.parse() {
                inodes.push(inode);
            }
        }
    }
    inodes
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word of the address
/// printed as a native-endian number, the port as a number.
fn parse_local_address(text: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Inodes of this process's sockets.
fn own_socket_inodes() -> BTreeSet<u64> {
    socket_inodes_of(Path::new("/proc/self/fd"))
}

fn socket_inodes_of(fd_dir: &Path) -> BTreeSet<u64> {
    let Ok(entries) = std::fs::read_dir(fd_dir) else { return BTreeSet::new() };
    entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The PID of the process holding socket `inode`, if `/proc` lets us see it.
fn socket_owner(inode: u64) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        socket_inodes_of(&entry.path().join("fd")).contains(&inode).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_addresses_parse() {
        let v4 = parse_local_address("0100007F:1F90").unwrap();
        assert_eq!(v4, ("127.0.0.1".parse().unwrap(), 8080));
        let any6 = parse_local_address("00000000000000000000000000000000:11D7").unwrap();
        assert_eq!(any6, ("::".parse().unwrap(), 4567));
        let loopback6 = parse_local_address("00000000000000000000000001000000:11D8").unwrap();
        assert_eq!(loopback6, ("::1".parse().unwrap(), 4568));
        assert!(parse_local_address("garbage").is_none());
    }

    #[test]
    fn only_listening_sockets_on_the_address_or_its_wildcard_count() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:11D8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0
   1: 00000000:11D8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0
   2: 0100007F:11D8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0
   3: 0100007F:11D9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0
   4: 0200007F:11D8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0";
        assert_eq!(listening_inodes(table, "127.0.0.1:4568".parse().unwrap()), [111, 222]);
        assert_eq!(listening_inodes(table, "0.0.0.0:4568".parse().unwrap()), [111, 222, 555]);
    }

    #[test]
    fn a_listener_is_found_among_its_own_process_s_sockets_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        assert!(listens_on(std::process::id(), address));
        // Another process (init), and a connection instead of a listener.
        assert!(!listens_on(1, address));
        let client = std::net::TcpStream::connect(address).unwrap();
        assert!(!listens_on(std::process::id(), client.local_addr().unwrap()));
        drop(listener);
        assert!(!listens_on(std::process::id(), address));
    }

    #[test]
    fn a_second_lock_on_a_data_directory_is_refused_naming_the_first_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_data_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&first.path).unwrap(), format!("{}\n", std::process::id()));
        // flock locks belong to the open file description: a second open in this same process
        // conflicts like another process would.
        let error = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains(&format!("PID {}", std::process::id())) && error.contains("in use"), "{error}");
        drop(first);
        lock_data_dir(dir.path()).expect("free again once the first lock is dropped");
    }
}
