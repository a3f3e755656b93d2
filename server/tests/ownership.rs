//! One daemon per data directory and per listening address, with real `sluiced` processes
//! (issue 10). Before, a second daemon on the same data directory started and the two
//! corrupted its journals; on the same port, glommio's SO_REUSEPORT let it share the traffic
//! silently. Now the second one exits with status 1 and says why, naming the first.

mod common;

use common::{forward_stderr, free_port, run, Daemon};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Starts another `sluiced` and waits for it to exit on its own: its status and stderr.
fn second_daemon(data_dir: &Path, listen: SocketAddr, http_listen: SocketAddr) -> (ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--http-listen")
        .arg(http_listen.to_string())
        .arg("--metrics-listen")
        .arg("127.0.0.1:0")
        .arg("--cores")
        .arg("1")
        .arg("--log-level")
        .arg("warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluiced");
    let stderr = forward_stderr(&mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second sluiced did not exit: it runs next to the first");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, stderr.join().expect("stderr reader"))
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The first daemon still answers after the second one was refused.
fn still_serves(daemon: &Daemon) {
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = sluice_client::Client::connect(&endpoint).await.expect("connect");
        let streams = client.call(&sluice_client::ListStreamsInput::default()).await.expect("list streams");
        assert!(streams.stream_names.is_empty());
    });
}

#[test]
fn a_second_daemon_on_the_same_data_directory_and_ports_is_refused_naming_the_first() {
    let first = Daemon::start("kinesis", 1);
    let (status, stderr) = second_daemon(first.data_dir(), first.addr, first.http_addr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("PID {}", first.pid())), "names the first daemon: {stderr}");
    assert!(stderr.contains("is in use"), "{stderr}");
    still_serves(&first);
}

#[test]
fn a_second_daemon_on_other_ports_but_the_same_data_directory_is_refused() {
    let first = Daemon::start("kinesis", 1);
    let (status, stderr) = second_daemon(first.data_dir(), local(free_port()), local(free_port()));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("PID {}", first.pid())), "names the first daemon: {stderr}");
    still_serves(&first);
}

#[test]
fn a_second_daemon_on_the_same_port_with_another_data_directory_is_refused() {
    let first = Daemon::start("kinesis", 1);
    let other = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (status, stderr) = second_daemon(&other.path().join("data"), first.addr, local(free_port()));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("native protocol address {} is already in use", first.addr)), "{stderr}");
    let (status, stderr) = second_daemon(&other.path().join("data"), local(free_port()), first.http_addr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("HTTP address {} is already in use", first.http_addr)), "{stderr}");
    still_serves(&first);
}

#[test]
fn the_data_directory_is_free_again_once_its_daemon_is_killed() {
    let mut daemon = Daemon::start("kinesis", 1);
    let killed = daemon.pid();
    daemon.kill();
    // The kernel dropped the lock with the process: a new daemon starts on the directory.
    daemon.restart();
    assert_ne!(daemon.pid(), killed);
    let lock = std::fs::read_to_string(daemon.data_dir().join("sluiced.lock")).unwrap();
    assert_eq!(lock.trim(), daemon.pid().to_string(), "the lock file names the daemon that holds it");
    still_serves(&daemon);
}

/// The check after binding, for the race the probe cannot close: another process that bound
/// the port with SO_REUSEPORT after our probe. Here a Python process listens with
/// SO_REUSEPORT; this process then binds the same port as glommio does (which succeeds: that
/// is the silent sharing), and the check finds the other socket and names its process.
#[test]
fn a_socket_another_process_shares_with_us_is_found_and_named() {
    let port = free_port();
    let mut other = Command::new("python3")
        .arg("-c")
        .arg(
            "import socket, sys, time\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n\
             s.bind(('127.0.0.1', int(sys.argv[1])))\n\
             s.listen()\n\
             print('listening', flush=True)\n\
             time.sleep(60)\n",
        )
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(other.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "listening");
    let other_pid = other.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let address = local(port);
        let ours = glommio::net::TcpListener::bind(address).expect("SO_REUSEPORT lets us share the port");
        let shared = sluice_server::ownership::verify_listeners(&[("native protocol", address)]);
        // Our own sockets alone (two, as with two executors) pass.
        let alone = local(free_port());
        let (first, second) =
            (glommio::net::TcpListener::bind(alone).unwrap(), glommio::net::TcpListener::bind(alone).unwrap());
        let unshared = sluice_server::ownership::verify_listeners(&[("native protocol", alone)]);
        drop((ours, first, second));
        sender.send((shared.map_err(|e| e.to_string()), unshared.map_err(|e| e.to_string()))).unwrap();
    });
    let _ = other.kill();
    let _ = other.wait();
    let (shared, unshared) = receiver.recv().unwrap();
    let error = shared.expect_err("another process listens on our address");
    assert!(error.contains(&format!("process {other_pid}")), "names the other process: {error}");
    assert!(unshared.is_ok(), "{unshared:?}");
}

/// A daemon killed while clients hold connections open gets its addresses back at once when it
/// restarts: the dead one's connections linger (FIN_WAIT2 on the server's side while the client
/// keeps its end open, TIME_WAIT once it closes) and must not block the new listeners. Before,
/// glommio's bind (SO_REUSEPORT without SO_REUSEADDR) refused them for up to a minute, so a
/// supervisor's restart failed.
#[test]
fn a_daemon_killed_with_open_connections_restarts_on_its_addresses_at_once() {
    use std::io::{Read, Write};
    let mut daemon = Daemon::start("kinesis", 1);
    // A served request on a kept-alive connection: accepted by the daemon, open on both sides.
    let mut held = std::net::TcpStream::connect(daemon.http_addr).expect("connect");
    held.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = "{}";
    write!(
        held,
        "POST / HTTP/1.1\r\nHost: sluice\r\nX-Amz-Target: Kinesis_20131202.ListStreams\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = [0u8; 512];
    let read = held.read(&mut answer).expect("an answer");
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
    let mut native = std::net::TcpStream::connect(daemon.addr).expect("connect natively");
    native.write_all(&[0, 0, 0, 0]).ok();

    daemon.kill();
    let started = Instant::now();
    // Exactly the old addresses, with `held` still open: `spawn_on` gives up after a few quick
    // attempts, far less than the minute the lingering connections last.
    daemon.restart_on_same_addresses();
    eprintln!("restarted on the same addresses in {:?}", started.elapsed());
    drop((held, native));
}
