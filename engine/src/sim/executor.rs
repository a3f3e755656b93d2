//! A single-threaded executor for the simulation: tasks are polled one at a time, the next one
//! picked at random (seeded) among those ready, so each seed explores another interleaving of
//! appends, commits, reads and retention, and replays it exactly.
//!
//! It has no timers and no I/O of its own: a task waits only for another task or for the
//! simulated disk, which completes every call after a few random yields. So "nothing ready but
//! the main task unfinished" is a deadlock (a lost wake-up in the journal), reported as such.

use super::rng::SimRng;
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

type BoxedTask = Pin<Box<dyn Future<Output = ()>>>;

/// Clones share one executor.
#[derive(Clone)]
pub struct SimExecutor {
    shared: Rc<Shared>,
}

struct Shared {
    tasks: RefCell<BTreeMap<u64, BoxedTask>>,
    ready: Arc<Ready>,
    next_id: Cell<u64>,
    rng: RefCell<SimRng>,
    polls: Cell<u64>,
}

/// Ids of the tasks woken since they were last polled. A `Waker` must be `Send + Sync`, hence
/// the mutex, which only this one thread ever takes.
#[derive(Default)]
struct Ready {
    ids: Mutex<BTreeSet<u64>>,
}

struct TaskWaker {
    id: u64,
    ready: Arc<Ready>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.ids.lock().expect("one thread").insert(self.id);
    }
}

/// How [`SimExecutor::run`] ended.
#[derive(Debug)]
pub enum RunOutcome<T> {
    Finished(T),
    /// `stop` said so (the simulated machine lost power).
    Stopped,
    /// No task was ready but the main one had not finished: a lost wake-up.
    Deadlock,
    /// More polls than the budget: a livelock.
    Exhausted,
}

/// A spawned task's result. Never resolves if the task was dropped (at shutdown only).
pub struct SimTask<T> {
    receiver: oneshot::Receiver<T>,
}

impl<T> Future for SimTask<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match Pin::new(&mut self.receiver).poll(cx) {
            Poll::Ready(Ok(value)) => Poll::Ready(value),
            Poll::Ready(Err(oneshot::Canceled)) | Poll::Pending => Poll::Pending,
        }
    }
}

impl SimExecutor {
    pub fn new(rng: SimRng) -> SimExecutor {
        SimExecutor {
            shared: Rc::new(Shared {
                tasks: RefCell::new(BTreeMap::new()),
                ready: Arc::new(Ready::default()),
                next_id: Cell::new(0),
                rng: RefCell::new(rng),
                polls: Cell::new(0),
            }),
        }
    }

    pub fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> SimTask<T> {
        let (sender, receiver) = oneshot::channel();
        let id = self.shared.next_id.get();
        self.shared.next_id.set(id + 1);
        let task: BoxedTask = Box::pin(async move {
            let _ = sender.send(future.await);
        });
        self.shared.tasks.borrow_mut().insert(id, task);
        self.shared.ready.ids.lock().expect("one thread").insert(id);
        SimTask { receiver }
    }

    /// Polls tasks until `main` finishes, `stop()` turns true (checked after every poll), no
    /// task is ready, or `polls_max` polls were spent.
    pub fn run<T: 'static>(
        &self,
        main: impl Future<Output = T> + 'static,
        stop: impl Fn() -> bool,
        polls_max: u64,
    ) -> RunOutcome<T> {
        let output: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let slot = output.clone();
        let _main = self.spawn(async move {
            let value = main.await;
            *slot.borrow_mut() = Some(value);
        });
        let mut spent = 0u64;
        loop {
            if let Some(value) = output.borrow_mut().take() {
                return RunOutcome::Finished(value);
            }
            if stop() {
                return RunOutcome::Stopped;
            }
            if spent == polls_max {
                return RunOutcome::Exhausted;
            }
            let id = {
                let mut ready = self.shared.ready.ids.lock().expect("one thread");
                if ready.is_empty() {
                    return RunOutcome::Deadlock;
                }
                let pick = self.shared.rng.borrow_mut().below(ready.len() as u64) as usize;
                let id = *ready.iter().nth(pick).expect("picked within bounds");
                ready.remove(&id);
                id
            };
            // A task woken after it finished: nothing to do.
            let Some(mut task) = self.shared.tasks.borrow_mut().remove(&id) else { continue };
            let waker = Waker::from(Arc::new(TaskWaker { id, ready: self.shared.ready.clone() }));
            spent += 1;
            self.shared.polls.set(self.shared.polls.get() + 1);
            if task.as_mut().poll(&mut Context::from_waker(&waker)).is_pending() {
                self.shared.tasks.borrow_mut().insert(id, task);
            }
        }
    }

    /// Polls spent so far, over every run.
    pub fn polls(&self) -> u64 {
        self.shared.polls.get()
    }

    /// Drops every task (as a process exit does), breaking the cycles between tasks and the
    /// journal they share. Dropping a task may spawn or wake others; those go too.
    pub fn shutdown(&self) {
        loop {
            let tasks = std::mem::take(&mut *self.shared.tasks.borrow_mut());
            if tasks.is_empty() {
                break;
            }
            drop(tasks);
        }
        self.shared.ready.ids.lock().expect("one thread").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tasks that each log their steps, yielding in between: the interleaving depends on
    /// the seed, and the same seed gives the same one.
    fn interleaving(seed: u64) -> Vec<(u32, u32)> {
        let executor = SimExecutor::new(SimRng::new(seed));
        let log = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..3)
            .map(|task| {
                let log = log.clone();
                executor.spawn(async move {
                    for step in 0..4 {
                        log.borrow_mut().push((task, step));
                        futures_lite::future::yield_now().await;
                    }
                })
            })
            .collect();
        let outcome = executor.run(
            async move {
                for task in tasks {
                    task.await;
                }
            },
            || false,
            1_000,
        );
        assert!(matches!(outcome, RunOutcome::Finished(())));
        executor.shutdown();
        let log = log.borrow().clone();
        log
    }

    #[test]
    fn the_schedule_is_a_function_of_the_seed() {
        assert_eq!(interleaving(3), interleaving(3));
        assert!((0..20).any(|seed| interleaving(seed) != interleaving(3)), "seeds explore other schedules");
    }

    #[test]
    fn a_lost_wake_up_is_reported_as_a_deadlock() {
        let executor = SimExecutor::new(SimRng::new(1));
        let (_sender, receiver) = oneshot::channel::<()>();
        let outcome = executor.run(receiver, || false, 1_000);
        assert!(matches!(outcome, RunOutcome::Deadlock));
        executor.shutdown();
    }
}
