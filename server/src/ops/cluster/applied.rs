//! What a group's applier shares with the proposers waiting on it (the metadata group and each
//! shard's group): the last Raft index applied, the outcomes of the latest applied entries
//! (bounded: a proposer takes its outcome as soon as its entry is applied), and a wake-up
//! whenever the index moves.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Applied<O> {
    index: Cell<u64>,
    waiters: RefCell<Vec<async_channel::Sender<()>>>,
    outcomes: RefCell<BTreeMap<u64, O>>,
    /// Outcomes kept for proposers that have not taken theirs yet; older ones are dropped.
    outcomes_kept_max: usize,
}

impl<O> Applied<O> {
    pub fn new(index: u64, outcomes_kept_max: usize) -> Self {
        Applied {
            index: Cell::new(index),
            waiters: RefCell::new(Vec::new()),
            outcomes: RefCell::new(BTreeMap::new()),
            outcomes_kept_max,
        }
    }

    /// The last index applied.
    pub fn index(&self) -> u64 {
        self.index.get()
    }

    /// Entry `index` is applied, with the outcome its proposer takes (if it has one).
    pub fn set(&self, index: u64, outcome: Option<O>) {
        self.index.set(index);
        if let Some(outcome) = outcome {
            let mut outcomes = self.outcomes.borrow_mut();
            outcomes.insert(index, outcome);
            while outcomes.len() > self.outcomes_kept_max {
                outcomes.pop_first();
            }
        }
        for waiter in self.waiters.borrow_mut().drain(..) {
            let _ = waiter.try_send(());
        }
    }

    /// Whether entry `index` was applied within `timeout`.
    pub async fn wait(&self, index: u64, timeout: Duration) -> bool {
        futures_lite::future::or(
            async {
                while self.index.get() < index {
                    let (waker, waiting) = async_channel::bounded(1);
                    self.waiters.borrow_mut().push(waker);
                    let _ = waiting.recv().await;
                }
                true
            },
            async {
                glommio::timer::sleep(timeout).await;
                false
            },
        )
        .await
    }

    /// The outcome of applied entry `index`, once: `None` if it had none or was dropped.
    pub fn take(&self, index: u64) -> Option<O> {
        self.outcomes.borrow_mut().remove(&index)
    }
}
