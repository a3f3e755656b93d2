//! Liveness and readiness, as the metrics port answers them (`/health/live`,
//! `/health/ready`): live while the process serves the port at all; ready from the moment
//! recovery is done and every listener is up until shutdown begins.

use std::sync::atomic::{AtomicU8, Ordering};

const STARTING: u8 = 0;
const READY: u8 = 1;
const STOPPING: u8 = 2;

/// The node's readiness, set by the daemon and read by the metrics thread.
#[derive(Debug, Default)]
pub struct Health(AtomicU8);

impl Health {
    /// Recovery finished and every listener is up.
    pub fn set_ready(&self) {
        // Never back from stopping: a shutdown that began stays visible.
        let _ = self.0.compare_exchange(STARTING, READY, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Shutdown began: load balancers should stop sending.
    pub fn set_stopping(&self) {
        self.0.store(STOPPING, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst) == READY
    }

    /// What `/health/ready` says besides its status code.
    pub fn describe(&self) -> &'static str {
        match self.0.load(Ordering::SeqCst) {
            STARTING => "starting: recovering or opening listeners",
            READY => "ready",
            _ => "stopping",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_between_start_and_stop() {
        let health = Health::default();
        assert!(!health.is_ready());
        health.set_ready();
        assert!(health.is_ready());
        health.set_stopping();
        health.set_ready();
        assert!(!health.is_ready(), "a stopping node never becomes ready again");
    }
}
