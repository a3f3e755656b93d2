//! A native connection's queue of response frames, shared by the handshake
//! (`native_auth.rs`) and the requests after it (`native.rs`).

use crate::limits::RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX;
use glommio::channels::local_channel;
use glommio::sync::{Semaphore, StaticPermit};
use std::rc::Rc;

/// A connection's queue of response frames, bounded in frames and in bytes: a client that
/// does not read its answers stops the requests that produce them, instead of growing memory.
pub struct Outbound {
    frames: local_channel::LocalSender<(Vec<u8>, StaticPermit)>,
    budget: Rc<Semaphore>,
}

impl Outbound {
    /// The queue feeding the connection's writer task, with the byte budget of
    /// [`RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX`].
    pub fn new(frames: local_channel::LocalSender<(Vec<u8>, StaticPermit)>) -> Outbound {
        Outbound { frames, budget: Rc::new(Semaphore::new(RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX as u64)) }
    }

    /// Reserves room for a response of up to `bytes` before computing it, so that requests
    /// whose answers the client does not read stop being executed. The reservation is held
    /// until the frame has been written.
    pub async fn reserve(&self, bytes: usize) -> Result<StaticPermit, ()> {
        // A response larger than the whole budget takes all of it, so it goes out alone.
        let units = bytes.clamp(1, RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX) as u64;
        self.budget.acquire_static_permit(units).await.map_err(|_| ())
    }

    /// Queues a frame computed under `reservation`.
    pub async fn send_reserved(&self, frame: Vec<u8>, reservation: StaticPermit) -> Result<(), ()> {
        self.frames.send((frame, reservation)).await.map_err(|_| ())
    }

    /// Reserves room for `frame` and queues it; waits while the queue is full. Fails once the
    /// connection is gone.
    pub async fn send(&self, frame: Vec<u8>) -> Result<(), ()> {
        let reservation = self.reserve(frame.len()).await?;
        self.send_reserved(frame, reservation).await
    }
}
