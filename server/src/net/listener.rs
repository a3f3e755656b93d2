//! One accept loop for every listener of a core: bounded (connections beyond the limit are
//! accepted and closed at once) and drained at shutdown (the connections in flight get
//! `shutdown_drain_ms` to finish, tracked by a glommio `Gate`, then the core goes on without
//! them).

use crate::limits::{
    ACCEPT_RETRY_MS, CLIENT_KEEPALIVE_IDLE_SECS, CLIENT_KEEPALIVE_INTERVAL_SECS, CLIENT_KEEPALIVE_PROBES,
    LISTEN_BACKLOG,
};
use crate::metrics::Protocol;
use crate::ops::node::Node;
use futures_lite::future;
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Gate;
use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

/// A listening socket for this core on `address`. SO_REUSEPORT lets every core of this process
/// listen on the one address (no other process may: `ownership.rs` checks). SO_REUSEADDR too,
/// which glommio's own `TcpListener::bind` does not set: without it, a daemon restarted right
/// after a crash is refused its address for as long as the dead one's connections linger in
/// FIN_WAIT2 or TIME_WAIT (up to a minute), so a supervisor's restart would fail.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket that nothing else owns; glommio
    // takes it over (and closes it) from here.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// Turns keepalive probes on for a client connection ([`CLIENT_KEEPALIVE_IDLE_SECS`]), so one
/// whose client is gone without a word is closed. Best effort: a socket refusing it still
/// serves; the first refusal is warned of.
fn keep_alive(stream: &impl AsRawFd, protocol: &'static str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(error) = try_keep_alive(stream) {
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(%error, protocol, "a client connection refused keepalive; a vanished client holds it open");
        }
    }
}

fn try_keep_alive(stream: &impl AsRawFd) -> std::io::Result<()> {
    use std::os::fd::BorrowedFd;
    // SAFETY: the descriptor belongs to `stream`, which outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(CLIENT_KEEPALIVE_IDLE_SECS))
        .with_interval(Duration::from_secs(CLIENT_KEEPALIVE_INTERVAL_SECS))
        .with_retries(CLIENT_KEEPALIVE_PROBES);
    socket2::SockRef::from(&fd).set_tcp_keepalive(&keepalive)
}

/// Accepts connections on `listener` until the node shuts down, serving each with `connection`;
/// then waits (boundedly) for them to finish. `protocol` names the listener in logs.
pub async fn serve<F, Fut>(node: Rc<Node>, listener: TcpListener, protocol: &'static str, connection: F)
where
    F: Fn(Rc<Node>, TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let limits = node.limits().clone();
    let gate = Gate::new();
    let open = Rc::new(Cell::new(0usize));
    let metric_protocol = if protocol == "native" { Protocol::Native } else { Protocol::Http };
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            node.signal.triggered().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                keep_alive(&stream, protocol);
                if open.get() >= limits.connections_per_core_max {
                    tracing::warn!(core = node.id, protocol, "connection limit reached; closing a new connection");
                    drop(stream);
                    continue;
                }
                open.set(open.get() + 1);
                node.metrics.connection(metric_protocol, true);
                let (served, open, counted) = (connection(node.clone(), stream), open.clone(), node.clone());
                let spawned = gate.spawn(async move {
                    served.await;
                    open.set(open.get() - 1);
                    counted.metrics.connection(metric_protocol, false);
                });
                match spawned {
                    Ok(task) => {
                        task.detach();
                    }
                    Err(error) => tracing::warn!(%error, protocol, "could not serve a connection"),
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%error, protocol, "accept failed");
                glommio::timer::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
            }
        }
    }
    drop(listener);
    let drained = future::or(async { gate.close().await.is_ok() }, async {
        glommio::timer::sleep(Duration::from_millis(limits.shutdown_drain_ms)).await;
        false
    })
    .await;
    if !drained {
        tracing::warn!(
            core = node.id,
            protocol,
            connections = open.get(),
            "closing connections still busy after the drain period"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel takes the keepalive settings as asked (it refuses what it cannot count in
    /// seconds, and that refusal went unseen once on the peer connections).
    #[test]
    fn client_connections_are_probed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        try_keep_alive(&stream).unwrap();
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(CLIENT_KEEPALIVE_IDLE_SECS));
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(CLIENT_KEEPALIVE_INTERVAL_SECS));
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), CLIENT_KEEPALIVE_PROBES);
    }
}
