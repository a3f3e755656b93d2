//! Work sent to another core. Whatever a request needs from another core runs there as a
//! *job*: a closure sent through that core's bounded mailbox, run with that core's context, its
//! result coming back on a oneshot channel. A full mailbox makes the sender wait:
//! back-pressure across cores instead of an unbounded queue.
//!
//! The context type `C` is the per-core state the work needs (`ops::node::Node`); this module
//! knows nothing of it. A job runs inside the tracing span it was sent from, so what it logs on
//! the other core names the request it serves.

use futures_channel::oneshot;
use sluice_model::KinesisError;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use tracing::Instrument as _;

/// Work sent to another core: runs there with that core's context.
pub type Job<C> = Box<dyn FnOnce(Rc<C>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// One bounded mailbox per core, shared by every core.
pub struct Mailboxes<C> {
    senders: Vec<async_channel::Sender<Job<C>>>,
}

impl<C: 'static> Mailboxes<C> {
    /// Mailboxes for `cores` cores of `capacity` jobs each, and the receiving end of each.
    pub fn new(cores: usize, capacity: usize) -> (Mailboxes<C>, Vec<async_channel::Receiver<Job<C>>>) {
        let (senders, receivers) = (0..cores).map(|_| async_channel::bounded(capacity)).unzip();
        (Mailboxes { senders }, receivers)
    }

    pub fn cores(&self) -> usize {
        self.senders.len()
    }

    /// Runs `work` on core `core` with its context and returns its result. On core `here` (the
    /// caller's, whose context is `context`) it runs inline; elsewhere it goes through that
    /// core's mailbox.
    pub async fn run_on<T, F, Fut>(&self, here: usize, context: &Rc<C>, core: usize, work: F) -> Result<T, KinesisError>
    where
        F: FnOnce(Rc<C>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if core == here {
            return Ok(work(context.clone()).await);
        }
        let (reply, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job<C> = Box::new(move |context| {
            Box::pin(
                async move {
                    let _ = reply.send(work(context).await);
                }
                .instrument(span),
            )
        });
        let mailbox = self.senders.get(core).ok_or_else(|| KinesisError::internal(format!("no core {core}")))?;
        mailbox.send(job).await.map_err(|_| KinesisError::internal("the node is shutting down"))?;
        result.await.map_err(|_| KinesisError::internal(format!("core {core} dropped the request")))
    }

    /// Queues `job` on every core, blocking while a mailbox is full. For the signal thread,
    /// which is no executor: it may block. A core whose mailbox is closed is already gone.
    pub fn broadcast_blocking(&self, job: impl Fn() -> Job<C>) {
        for mailbox in &self.senders {
            let _ = mailbox.send_blocking(job());
        }
    }
}

impl<C: 'static> Mailboxes<C> {
    /// Runs `work` on core `core` from a thread that is no executor (the metrics thread) and
    /// waits at most `timeout` for its answer. `None` if the mailbox is full (the core is
    /// saturated: the caller must not add to it by waiting), closed, or the answer is late.
    pub fn ask_blocking<T: Send + 'static>(
        &self,
        core: usize,
        work: impl FnOnce(Rc<C>) -> T + Send + 'static,
        timeout: std::time::Duration,
    ) -> Option<T> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let job: Job<C> = Box::new(move |context| {
            Box::pin(async move {
                let _ = reply.send(work(context));
            })
        });
        self.senders.get(core)?.try_send(job).ok()?;
        answer.recv_timeout(timeout).ok()
    }

    /// Jobs waiting in each core's mailbox now.
    pub fn depths(&self) -> Vec<usize> {
        self.senders.iter().map(async_channel::Sender::len).collect()
    }

    /// Jobs a mailbox holds at most.
    pub fn capacity(&self) -> usize {
        self.senders.first().and_then(async_channel::Sender::capacity).unwrap_or(0)
    }
}

/// Serves a core's mailbox: every job runs as its own task, so a long one (a subscription)
/// does not hold up the rest. `received` is told of each job (the cross-core jobs metric).
pub async fn serve<C: 'static>(context: Rc<C>, mailbox: async_channel::Receiver<Job<C>>, received: impl Fn(&C)) {
    while let Ok(job) = mailbox.recv().await {
        received(&context);
        glommio::spawn_local(job(context.clone())).detach();
    }
}
