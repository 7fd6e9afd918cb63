//! In-process wake-ups for subscribers: a counter bumped on every append this process
//! makes or hears about.
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug)]
pub(crate) struct ChangeSignal {
    tx: watch::Sender<u64>,
}

impl ChangeSignal {
    pub(crate) fn new() -> Self {
        Self {
            tx: watch::Sender::new(0),
        }
    }

    pub(crate) fn bump(&self) {
        self.tx.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn marker(&self) -> u64 {
        *self.tx.borrow()
    }

    pub(crate) async fn wait(&self, seen: u64, timeout: Duration) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = tokio::time::timeout(timeout, rx.wait_for(|v| *v != seen)).await;
    }
}
