//! hyper on glommio: the three runtime hooks hyper 1.x asks of its host, implemented over a
//! glommio executor, so that hyper's HTTP/1.1 and HTTP/2 state machines run on the core that
//! accepted the connection like everything else in `sluiced`.
//!
//! - [`Io`]: hyper's [`Read`]/[`Write`] over glommio's `TcpStream` (which speaks the `futures`
//!   `AsyncRead`/`AsyncWrite` traits).
//! - [`LocalExec`]: hyper's [`Executor`], spawning on the current glommio executor. HTTP/2 runs
//!   each stream as its own task through it. Nothing here is `Send`: tasks stay on this core.
//! - [`GlommioTimer`]: hyper's [`Timer`], over glommio's timers, for the HTTP/1.1 header-read
//!   timeout and HTTP/2 keep-alive pings.
//!
//! This is the same shape as the "single-threaded" example in hyper's repository (an executor
//! that spawns `!Send` futures locally) and as hyper-util's `TokioIo`, with glommio in place of
//! tokio.

use futures_lite::{AsyncRead, AsyncWrite};
use hyper::rt::{Executor, Read, ReadBufCursor, Sleep, Timer, Write};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

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
