//! Hierarchical cancellation: cancelling a run cancels its jobs, cancelling
//! a job cancels its steps, never the other way round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    flag: AtomicBool,
    notify: Notify,
    children: Mutex<Vec<Weak<Inner>>>,
}

#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<Inner>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled with this one (and on its own).
    pub fn child(&self) -> Cancel {
        let c = Cancel::new();
        if let Ok(mut kids) = self.0.children.lock() {
            kids.retain(|w| w.strong_count() > 0);
            kids.push(Arc::downgrade(&c.0));
        }
        if self.is_cancelled() {
            c.cancel();
        }
        c
    }

    pub fn cancel(&self) {
        cancel_inner(&self.0);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let n = self.0.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            n.await;
        }
    }
}

fn cancel_inner(inner: &Arc<Inner>) {
    if inner.flag.swap(true, Ordering::SeqCst) {
        return;
    }
    inner.notify.notify_waiters();
    let kids: Vec<Arc<Inner>> = inner
        .children
        .lock()
        .map(|k| k.iter().filter_map(Weak::upgrade).collect())
        .unwrap_or_default();
    for k in kids {
        cancel_inner(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parent_cancels_child_not_reverse() {
        let run = Cancel::new();
        let job = run.child();
        let step = job.child();
        step.cancel();
        assert!(!job.is_cancelled());
        run.cancel();
        assert!(job.is_cancelled());
        job.cancelled().await;
        assert!(run.child().is_cancelled());
    }
}
