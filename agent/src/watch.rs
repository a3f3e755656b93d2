//! Wake-ups for the flows: inotify (through `notify`) where it works, polling where not.
//!
//! Each flow has a [`Wake`]: a one-slot channel its thread waits on, and a flag saying the
//! directory changed shape (a file created, removed or renamed), which calls for a rescan
//! rather than just reading on. Data written to a file only wakes the flow to read. If inotify
//! cannot watch a flow's directory (no inotify, too many watches, the directory does not exist
//! yet), the flow polls every `minTimeBetweenFilePollsMillis`; every flow also rescans every
//! `maxTimeBetweenFileTrackerRefreshMillis` whatever inotify says (its queue can overflow, and
//! network filesystems send no events).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher as _};

/// One flow's wake-up.
#[derive(Debug)]
pub struct Wake {
    sender: Sender<()>,
    receiver: Receiver<()>,
    needs_scan: AtomicBool,
    watched: AtomicBool,
}

impl Wake {
    pub fn new() -> Arc<Wake> {
        let (sender, receiver) = bounded(1);
        Arc::new(Wake { sender, receiver, needs_scan: AtomicBool::new(true), watched: AtomicBool::new(false) })
    }

    /// Wakes the flow; `scan` if the directory changed shape.
    pub fn wake(&self, scan: bool) {
        if scan {
            self.needs_scan.store(true, Ordering::Release);
        }
        // One pending wake-up is enough: the flow reads everything when it wakes.
        let _ = self.sender.try_send(());
    }

    /// The channel the flow waits on.
    pub fn receiver(&self) -> &Receiver<()> {
        &self.receiver
    }

    /// Takes the rescan flag.
    pub fn take_scan(&self) -> bool {
        self.needs_scan.swap(false, Ordering::AcqRel)
    }

    /// Whether inotify watches this flow's directory (if not, the flow polls).
    pub fn is_watched(&self) -> bool {
        self.watched.load(Ordering::Acquire)
    }
}

/// The inotify watcher of all flows; dropping it stops it.
pub struct Watcher {
    _inner: Option<notify::RecommendedWatcher>,
}

impl Watcher {
    /// Watches each flow's directory. Flows whose directory cannot be watched poll.
    pub fn start(flows: &[(PathBuf, Arc<Wake>)], disabled: bool) -> Watcher {
        if disabled {
            tracing::info!("inotify disabled: flows poll their files");
            return Watcher { _inner: None };
        }
        let targets: Vec<(PathBuf, Arc<Wake>)> = flows.to_vec();
        let handler_targets = targets.clone();
        let handler = move |result: notify::Result<notify::Event>| {
            let event = match result {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(%error, "inotify error; rescanning every flow");
                    for (_, wake) in &handler_targets {
                        wake.wake(true);
                    }
                    return;
                }
            };
            let scan = event.need_rescan()
                || !matches!(event.kind, EventKind::Modify(ModifyKind::Data(_)) | EventKind::Access(_));
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for (dir, wake) in &handler_targets {
                if event.need_rescan() || event.paths.iter().any(|p| p.parent() == Some(dir.as_path())) {
                    wake.wake(scan);
                }
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "inotify unavailable: flows poll their files");
                return Watcher { _inner: None };
            }
        };
        let mut done: Vec<&Path> = Vec::new();
        for (dir, wake) in &targets {
            if done.contains(&dir.as_path()) {
                wake.watched.store(true, Ordering::Release);
                continue;
            }
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    wake.watched.store(true, Ordering::Release);
                    done.push(dir);
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot watch directory: polling it");
                }
            }
        }
        // Flows sharing a directory share its watch.
        for (dir, wake) in &targets {
            if done.contains(&dir.as_path()) {
                wake.watched.store(true, Ordering::Release);
            }
        }
        Watcher { _inner: Some(watcher) }
    }
}
