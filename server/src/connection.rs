//! Native-protocol connections: accept, read frames, answer them concurrently, write answers.
//!
//! Each connection has one reader (this task), one writer task fed by a bounded queue, and a
//! task per request in flight. Requests in flight are bounded in count and bytes; when either
//! bound is reached the reader stops reading and TCP pushes back on the client.

use crate::limits::{
    CONNECTIONS_PER_CORE_MAX, RECEIVE_CHUNK_BYTES, REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX,
    REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION_MAX, RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX, RESPONSE_FRAMES_QUEUED_MAX,
    SHUTDOWN_DRAIN_MS,
};
use crate::native;
use crate::node::Core;
use bytes::BytesMut;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::{Semaphore, StaticPermit};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Accepts native connections until shutdown, then waits (boundedly) for them to drain.
pub async fn serve(core: Rc<Core>, listener: TcpListener) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            core.shutdown_requested().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                if open.get() >= CONNECTIONS_PER_CORE_MAX {
                    tracing::warn!(core = core.id, "connection limit reached; closing a new connection");
                    drop(stream);
                    continue;
                }
                open.set(open.get() + 1);
                let (core, open) = (core.clone(), open.clone());
                glommio::spawn_local(async move {
                    if let Err(error) = connection(core, stream).await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
    let deadline = std::time::Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS);
    while open.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    if open.get() > 0 {
        tracing::warn!(
            core = core.id,
            connections = open.get(),
            "closing connections still busy after the drain period"
        );
    }
}

/// A connection's queue of response frames, bounded in frames and in bytes: a client that
/// does not read its answers stops the requests that produce them, instead of growing memory.
pub struct Outbound {
    frames: local_channel::LocalSender<(Vec<u8>, StaticPermit)>,
    budget: Rc<Semaphore>,
}

impl Outbound {
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

async fn connection(core: Rc<Core>, stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let (frames, queued) = local_channel::new_bounded::<(Vec<u8>, StaticPermit)>(RESPONSE_FRAMES_QUEUED_MAX);
    let sink = Outbound { frames, budget: Rc::new(Semaphore::new(RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX as u64)) };
    let writer_task = glommio::spawn_local(async move {
        while let Some((frame, permit)) = queued.recv().await {
            let written = writer.write_all(&frame).await;
            drop((frame, permit));
            if written.is_err() {
                break;
            }
        }
        let _ = writer.close().await;
    });
    let requests = Rc::new(Semaphore::new(REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX as u64));
    let bytes = Rc::new(Semaphore::new(REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION_MAX as u64));
    let sink = Rc::new(sink);
    let mut buffer = BytesMut::with_capacity(RECEIVE_CHUNK_BYTES);
    'read: loop {
        // Answer every whole frame in the buffer.
        let wanted = loop {
            match sluice_protocol::frame_len(&buffer) {
                Ok(Some(len)) if buffer.len() >= len => {
                    let frame = buffer.split_to(len).freeze();
                    let request = requests.acquire_static_permit(1).await.map_err(closed)?;
                    let held = bytes.acquire_static_permit(len as u64).await.map_err(closed)?;
                    let (core, sink) = (core.clone(), sink.clone());
                    glommio::spawn_local(async move {
                        native::handle(&core, frame, &sink).await;
                        drop((request, held));
                    })
                    .detach();
                }
                Ok(Some(len)) => break len - buffer.len(),
                Ok(None) => break 1,
                Err(error) => {
                    // Nothing after a bad length prefix can be trusted: answer and close.
                    let error =
                        crate::error::ServiceError::new(crate::error::ErrorKind::Serialization, error.to_string());
                    let _ = sink.send(native::error_frame(0, &error)).await;
                    break 'read;
                }
            }
        };
        let start = buffer.len();
        buffer.resize(start + wanted.max(RECEIVE_CHUNK_BYTES), 0);
        let read = future::or(async { Some(reader.read(&mut buffer[start..]).await) }, async {
            core.shutdown_requested().await;
            None
        })
        .await;
        match read {
            Some(Ok(0)) | None => {
                buffer.truncate(start);
                break;
            }
            Some(Ok(read)) => buffer.truncate(start + read),
            Some(Err(error)) => {
                buffer.truncate(start);
                tracing::debug!(%error, "read failed");
                break;
            }
        }
    }
    // Let the requests in flight finish and their answers go out, then close.
    let _ = requests.acquire(REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX as u64).await;
    drop(sink);
    writer_task.await;
    Ok(())
}

fn closed(_: glommio::GlommioError<()>) -> std::io::Error {
    std::io::Error::other("connection semaphore closed")
}
