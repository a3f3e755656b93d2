//! hyper on glommio: the three runtime hooks hyper 1.x asks of its host, implemented over a
//! glommio executor, so that hyper's HTTP/1.1 and HTTP/2 state machines run on the core that
//! accepted the connection like everything else in `sluiced`.
//!
//! - [`Io`]: hyper's [`Read`]/[`Write`] over glommio's `TcpStream` (which speaks the `futures`
//!   `AsyncRead`/`AsyncWrite` traits), or any such stream (TLS); [`SocketIo`] the same over a
//!   socket, reading into hyper's buffer without zeroing it first.
//! - [`LocalExec`]: hyper's [`Executor`], spawning on the current glommio executor. HTTP/2 runs
//!   each stream as its own task through it. Nothing here is `Send`: tasks stay on this core.
//! - [`GlommioTimer`]: hyper's [`Timer`], over glommio's timers, for the HTTP/1.1 header-read
//!   timeout and HTTP/2 keep-alive pings.
//! - [`client_handshake`]: an HTTP/1.1 client connection on a connected stream, its connection
//!   task spawned on the current executor.
//!
//! This is the same shape as the "single-threaded" example in hyper's repository (an executor
//! that spawns `!Send` futures locally) and as hyper-util's `TokioIo`, with glommio in place of
//! tokio.

use futures_lite::{AsyncRead, AsyncWrite};
use hyper::rt::{Executor, Read, ReadBufCursor, Sleep, Timer, Write};
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// The HTTP/1.1 client handshake on a connected stream (TCP or TLS); hyper's connection task,
/// which reads and writes the socket while requests wait, is spawned on the current executor.
pub async fn client_handshake<T, B>(stream: T) -> hyper::Result<hyper::client::conn::http1::SendRequest<B>>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(Io(stream)).await?;
    glommio::spawn_local(async move {
        let _ = connection.await;
    })
    .detach();
    Ok(sender)
}

/// A byte stream (glommio's `TcpStream` in the daemon) as hyper's I/O.
pub struct Io<T>(pub T);

impl<T: AsyncRead + Unpin> Read for Io<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, mut buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        // `initialize_unfilled` zeroes only the bytes never initialized before (hyper reuses
        // its read buffer, so after the first reads this costs nothing).
        let unfilled = buf.initialize_unfilled();
        match Pin::new(&mut self.get_mut().0).poll_read(cx, unfilled) {
            Poll::Ready(Ok(read)) => {
                // SAFETY: `initialize_unfilled` initialised every byte of the unfilled part, and
                // `poll_read` reported filling `read` of them (at most the slice's length).
                unsafe { buf.advance(read) };
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> Write for Io<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}

/// A socket (glommio's `TcpStream`) as hyper's I/O, reading without zeroing first.
///
/// hyper hands [`Read::poll_read`] the uninitialised spare capacity of its read buffer, anew
/// for every read, so [`Io`] zeroes all of it each time (up to hyper's ~400 KiB read size on a
/// large body, however few bytes then arrive): 6% of `sluiced`'s CPU under HTTP PutRecords
/// (`bench/results/2026-12-02-http-path/`). Here the socket's bytes go straight into that
/// memory with a non-blocking `recv(2)`, which writes through a raw pointer and never makes
/// a reference to the uninitialised bytes; only when nothing is waiting does the stream's own
/// `poll_read` (on a small zeroed part) register for readiness and return `Pending`.
pub struct SocketIo<T>(pub T);

/// What [`SocketIo`] zeroes and hands to the stream when nothing is waiting in the socket:
/// a read that has to wait for readiness, so a small one (what arrives is read by the next
/// `recv` straight into hyper's buffer).
const WAITING_READ_BYTES: usize = 4096;

impl<T: AsyncRead + AsRawFd + Unpin> Read for SocketIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, mut buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // SAFETY: nothing below reads the slice or writes uninitialised bytes into it; `recv`
        // writes through the raw pointer only.
        let spare = unsafe { buf.as_mut() };
        if spare.is_empty() {
            return Poll::Ready(Ok(()));
        }
        // SAFETY: the pointer and length describe `spare`, writable memory hyper lends for
        // this call; the descriptor is the socket `this.0` owns, open while it lives.
        let read =
            unsafe { libc::recv(this.0.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), libc::MSG_DONTWAIT) };
        if read >= 0 {
            // SAFETY: `recv` initialised the first `read` bytes (at most `spare.len()`).
            unsafe { buf.advance(read as usize) };
            return Poll::Ready(Ok(()));
        }
        let error = io::Error::last_os_error();
        if !matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) {
            return Poll::Ready(Err(error));
        }
        let waiting = buf.remaining().min(WAITING_READ_BYTES);
        let unfilled = buf.initialize_unfilled_to(waiting);
        match Pin::new(&mut this.0).poll_read(cx, unfilled) {
            Poll::Ready(Ok(read)) => {
                // SAFETY: `initialize_unfilled_to` initialised the part, and `poll_read`
                // reported filling `read` of its bytes.
                unsafe { buf.advance(read) };
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> Write for SocketIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}

/// Spawns hyper's background tasks (HTTP/2 streams) on the current glommio executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalExec;

impl<F> Executor<F> for LocalExec
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        glommio::spawn_local(future).detach();
    }
}

/// hyper's timer over glommio's. Its sleeps must be created, polled and dropped on the
/// executor thread that created them; see [`LocalSleep`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GlommioTimer;

impl Timer for GlommioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(LocalSleep::new(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(LocalSleep::new(deadline.saturating_duration_since(Instant::now())))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        *sleep = self.sleep_until(new_deadline);
    }
}

/// A glommio timer wearing the `Send + Sync` that hyper's [`Sleep`] demands.
///
/// hyper requires `Send + Sync` of sleeps so that it can run on multi-threaded runtimes; here
/// every connection is a `!Send` task on one glommio executor, and hyper polls and drops its
/// sleeps inside that task, so a sleep never leaves the thread that created it. That is
/// checked, not assumed: polling or dropping on another thread panics (the assertion stays on
/// in release) instead of touching another executor's timer wheel.
pub struct LocalSleep {
    timer: Option<glommio::timer::Timer>,
    thread: ThreadId,
}

impl LocalSleep {
    fn new(duration: Duration) -> LocalSleep {
        LocalSleep { timer: Some(glommio::timer::Timer::new(duration)), thread: std::thread::current().id() }
    }

    fn assert_home_thread(&self) {
        assert_eq!(self.thread, std::thread::current().id(), "a glommio timer left the thread that created it");
    }
}

// SAFETY: the timer is only reachable through `poll` and `drop`, both of which assert that they
// run on the thread that created it (see the type's docs); so no other thread ever touches it.
unsafe impl Send for LocalSleep {}
// SAFETY: as for `Send`: there is no `&self` method that reaches the timer.
unsafe impl Sync for LocalSleep {}

impl Sleep for LocalSleep {}

impl Future for LocalSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.assert_home_thread();
        let this = self.get_mut();
        match this.timer.as_mut() {
            Some(timer) => Pin::new(timer).poll(cx).map(|_| ()),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for LocalSleep {
    fn drop(&mut self) {
        if self.timer.is_some() {
            self.assert_home_thread();
        }
    }
}
