//! Waiting on shared state without a runtime: switches ([`Flag`]), counts ([`Count`]), and the
//! caller's abort and pause switches of one upload ([`UploadControl`]).

use crate::error::UploadError;
use futures::future::{Either, select};
use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Poll, Waker};

/// The wakers of futures waiting for a condition on some shared value.
#[derive(Debug, Default)]
pub(super) struct Waiters(RefCell<Vec<Waker>>);

impl Waiters {
    /// Wakes every waiter, to check its condition again.
    pub(super) fn wake_all(&self) {
        for waker in self.0.take() {
            waker.wake();
        }
    }

    /// Resolves once `ready()` holds; it is checked again after each `wake_all`.
    pub(super) async fn until(&self, ready: impl Fn() -> bool) {
        poll_fn(|cx| {
            if ready() {
                return Poll::Ready(());
            }
            let mut waiting = self.0.borrow_mut();
            if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }
}

/// An on/off switch that futures can wait on.
#[derive(Debug, Default)]
pub struct Flag {
    on: Cell<bool>,
    waiting: Waiters,
}

impl Flag {
    /// Turns the switch on or off, waking whoever waits for a change.
    pub fn set(&self, on: bool) {
        if self.on.replace(on) != on {
            self.waiting.wake_all();
        }
    }

    /// Whether the switch is on.
    pub fn is_on(&self) -> bool {
        self.on.get()
    }

    /// Resolves once the switch is `on` (at once if it already is).
    pub async fn until(&self, on: bool) {
        self.waiting.until(|| self.on.get() == on).await;
    }
}

/// A count that only grows, which futures can wait on.
#[derive(Debug, Default)]
pub struct Count {
    value: Cell<usize>,
    waiting: Waiters,
}

impl Count {
    /// Adds one, waking whoever waits.
    pub fn increment(&self) {
        self.value.set(self.value.get() + 1);
        self.waiting.wake_all();
    }

    /// The count now.
    pub fn get(&self) -> usize {
        self.value.get()
    }

    /// Resolves once the count is at least `n`.
    pub async fn at_least(&self, n: usize) {
        self.waiting.until(|| self.value.get() >= n).await;
    }
}

/// The caller's switches for one upload.
#[derive(Debug, Default)]
pub struct UploadControl {
    /// On once `abort()` was called: the work in progress is dropped (cancelling its requests)
    /// and the multipart flow tells the backend to abort the upload.
    pub aborted: Flag,
    /// On while paused: part requests in flight are cancelled, and no new ones start.
    pub paused: Flag,
}

impl UploadControl {
    /// Waits for `wait` unless the upload is aborted first (then `aborted`).
    pub(super) async fn wait_unless_aborted(&self, wait: impl Future<Output = ()>) -> Result<(), UploadError> {
        self.unless_aborted(async {
            wait.await;
            Ok(())
        })
        .await
    }

    /// Runs `work` unless the upload is aborted first; then `work` is dropped.
    pub async fn unless_aborted<T>(
        &self,
        work: impl Future<Output = Result<T, UploadError>>,
    ) -> Result<T, UploadError> {
        if self.aborted.is_on() {
            return Err(UploadError::aborted());
        }
        match select(pin!(work), pin!(self.aborted.until(true))).await {
            Either::Left((result, _)) => result,
            Either::Right(((), _)) => Err(UploadError::aborted()),
        }
    }
}
