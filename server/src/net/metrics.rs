//! The metrics port (`--metrics-listen`): `GET /metrics` (Prometheus text format),
//! `GET /health/live` and `GET /health/ready`.
//!
//! Served by one small thread of its own, not by a core: it answers during recovery (live, not
//! yet ready) and while the cores are saturated. A scrape asks each core for a copy of its
//! figures through the core's mailbox (`ops::observe::snapshot`), so the cores count in plain
//! core-local cells and nothing is shared on their hot path; a core that cannot answer in
//! time (full mailbox) is reported from its previous answer, so counters never go backwards.
//! Connections are served one at a time, each bounded in bytes and time, and closed after one
//! answer: Prometheus and health checkers make one request per scrape.

use crate::limits::METRICS_WAIT_MS;
use crate::metrics::exposition::{self, BuildInfo};
use crate::metrics::request::{route, HeadError, Route};
use crate::metrics::{CoreSnapshot, NodeSnapshot};
use crate::ops::node::Shared;
use crate::ops::observe;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Serves the metrics port on a thread of its own until the process exits.
pub fn spawn(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new().name("sluice-metrics".to_owned()).spawn(move || {
        let mut scraper = Scraper { shared, last: Vec::new() };
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    if let Err(error) = scraper.serve(stream) {
                        tracing::debug!(%error, "metrics connection ended with an error");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics port: accept failed");
                    std::thread::sleep(Duration::from_millis(crate::limits::ACCEPT_RETRY_MS));
                }
            }
        }
    })?;
    Ok(())
}

struct Scraper {
    shared: Arc<Shared>,
    /// Each core's last answer, for a core that cannot answer a scrape in time.
    last: Vec<Option<CoreSnapshot>>,
}

impl Scraper {
    fn serve(&mut self, mut stream: TcpStream) -> std::io::Result<()> {
        let wait = Duration::from_millis(METRICS_WAIT_MS);
        stream.set_read_timeout(Some(wait))?;
        stream.set_write_timeout(Some(wait))?;
        let mut head = Vec::with_capacity(512);
        let mut buffer = [0u8; 1024];
        let route = loop {
            let read = stream.read(&mut buffer)?;
            if read == 0 {
                return Ok(());
            }
            head.extend_from_slice(&buffer[..read]);
            match route(&head) {
                Err(HeadError::Partial) => continue,
                other => break other,
            }
        };
        let health = &self.shared.health;
        let (status, content_type, body) = match route {
            Ok(Route::Metrics) => ("200 OK", exposition::CONTENT_TYPE, self.scrape()),
            Ok(Route::Live) => ("200 OK", "text/plain", "live\n".to_owned()),
            Ok(Route::Ready) if health.is_ready() => ("200 OK", "text/plain", "ready\n".to_owned()),
            Ok(Route::Ready) => ("503 Service Unavailable", "text/plain", format!("{}\n", health.describe())),
            Ok(Route::NotFound) => (
                "404 Not Found",
                "text/plain",
                "not found: this port serves /metrics, /health/live and /health/ready\n".to_owned(),
            ),
            Ok(Route::MethodNotAllowed) => ("405 Method Not Allowed", "text/plain", "only GET\n".to_owned()),
            Err(HeadError::TooLarge) => {
                ("431 Request Header Fields Too Large", "text/plain", "request head too large\n".to_owned())
            }
            Err(_) => ("400 Bad Request", "text/plain", "malformed request\n".to_owned()),
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        stream.write_all(body.as_bytes())?;
        stream.flush()
    }

    /// Every core's figures, merged and encoded.
    fn scrape(&mut self) -> String {
        let shared = &self.shared;
        let cores = shared.mailboxes.cores();
        self.last.resize(cores, None);
        let wait = Duration::from_millis(METRICS_WAIT_MS);
        let mut snapshot = NodeSnapshot { mailbox_depths: shared.mailboxes.depths(), ..Default::default() };
        for core in 0..cores {
            match shared.mailboxes.ask_blocking(core, |node| observe::snapshot(&node), wait) {
                Some(answer) => self.last[core] = Some(answer),
                None => snapshot.stale_cores += 1,
            }
            if let Some(answer) = &self.last[core] {
                snapshot.cores.push(answer.clone());
            }
        }
        let routes = shared.routes.load();
        snapshot.enhanced = routes
            .streams
            .values()
            .filter(|stream| !stream.meta.shard_level_metrics.is_empty())
            .map(|stream| (stream.meta.name.clone(), stream.meta.shard_level_metrics.clone()))
            .collect();
        if let Some(delivery) = shared.delivery_metrics.get() {
            snapshot.delivery_streams = delivery.samples(shared.now_ms());
        }
        let keys = shared.config.security.keys.as_deref();
        let metas = routes.streams.values().map(|stream| &stream.meta);
        snapshot.encrypted_streams_without_master_key =
            crate::ops::sealing::streams_without_master_key(keys, metas).len() as u64;
        snapshot.mailbox_capacity = shared.mailboxes.capacity();
        snapshot.uptime = shared.started.elapsed();
        snapshot.ready = shared.health.is_ready();
        (snapshot.disk_free_bytes, snapshot.disk_total_bytes) = disk_space(&shared.config.data_dir);
        exposition::render(snapshot, BuildInfo::of_this_build())
    }
}

/// Free and total bytes of the file system holding `dir`; zeros if it cannot be read.
fn disk_space(dir: &Path) -> (u64, u64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return (0, 0) };
    // SAFETY: `path` is a valid NUL-terminated string; statvfs writes only into `stats`.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return (0, 0);
    }
    let block = stats.f_frsize as u64;
    (stats.f_bavail as u64 * block, stats.f_blocks as u64 * block)
}
