//! Shutting down: the signal that every core's listeners and connections watch, and the
//! count of cores still serving, which every core waits on before closing its journal (any
//! core may forward appends to any other until all have drained).
//!
//! Both are event-driven: a closed channel wakes its waiters, nobody polls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Node-wide shutdown state, shared by every core.
pub struct Shutdown {
    requested: AtomicBool,
    /// One sender per core still serving; a core drops its own when it has drained, and the
    /// receivers see the channel close once every core has.
    serving: Mutex<Vec<Option<async_channel::Sender<()>>>>,
    all_drained: async_channel::Receiver<()>,
}

impl Shutdown {
    pub fn new(cores: usize) -> Shutdown {
        let (sender, all_drained) = async_channel::bounded(1);
        let serving = (0..cores).map(|_| Some(sender.clone())).collect();
        Shutdown { requested: AtomicBool::new(false), serving: Mutex::new(serving), all_drained }
    }

    /// Whether the node is shutting down (long-running tasks check it between steps).
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Marks the node as shutting down. The caller then wakes each core's [`CoreSignal`].
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Core `core` has drained its connections: waits until every core has.
    pub async fn finish_serving(&self, core: usize) {
        let own = self.serving.lock().expect("no core panics holding this lock").get_mut(core).and_then(Option::take);
        drop(own);
        // Nothing is ever sent: `recv` returns once the last sender is gone.
        let _ = self.all_drained.recv().await;
    }
}

/// One core's shutdown signal: closed once, when the node starts shutting down; every
/// listener and connection of the core waits on it.
pub struct CoreSignal {
    sender: async_channel::Sender<()>,
    receiver: async_channel::Receiver<()>,
}

impl Default for CoreSignal {
    fn default() -> CoreSignal {
        let (sender, receiver) = async_channel::bounded(1);
        CoreSignal { sender, receiver }
    }
}

impl CoreSignal {
    /// Wakes every waiter of this core.
    pub fn trigger(&self) {
        self.sender.close();
    }

    /// Resolves once the core is shutting down.
    pub async fn triggered(&self) {
        let _ = self.receiver.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_wait_until_the_last_one_drained() {
        let shutdown = std::sync::Arc::new(Shutdown::new(2));
        let first = shutdown.clone();
        let waiter = std::thread::spawn(move || futures_lite::future::block_on(first.finish_serving(0)));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "core 1 still serves");
        futures_lite::future::block_on(shutdown.finish_serving(1));
        waiter.join().unwrap();
    }
}
