//! One request's attempts: waiting out pauses and offline spells, retrying what the
//! [`RetryPolicy`](crate::retry::RetryPolicy) allows, and stopping at an abort.

use super::context::UploadContext;
use super::ports::Runtime;
use super::reporter::ProgressReporter;
use crate::error::UploadError;
use crate::progress::UploadState;
use crate::retry::{Backoff, NEVER_ANSWERED_BOUND_S, RetryAction};
use futures::future::{Either, select};
use std::future::Future;
use std::pin::pin;

/// Whether a pause cancels the request in flight.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Interrupt {
    /// Backend calls run to the end: cancelling a create or complete half-way could leave the
    /// backend and the store disagreeing.
    Never,
    /// PUTs of file bytes stop at once and are sent again on resume.
    OnPause,
}

/// Waits while the upload is paused or the browser is offline, reporting why.
async fn hold<B, T, C: Runtime>(cx: &UploadContext<'_, B, T, C>, progress: &ProgressReporter<'_, C>) {
    loop {
        if cx.control.paused.is_on() {
            progress.set_state(UploadState::Paused);
            cx.control.paused.until(false).await;
        } else if cx.offline.is_on() {
            progress.set_state(UploadState::WaitingForNetwork);
            cx.offline.until(false).await;
        } else {
            return;
        }
    }
}

/// Runs `attempt` until it succeeds, retrying transient failures as the [`RetryPolicy`](crate::retry::RetryPolicy) allows.
/// `attempt` is told whether to get a fresh URL first (the last one expired). Attempts that a
/// pause cut short, or that failed while the browser was offline, do not count as retries. A
/// store that has never answered gets [`NEVER_ANSWERED_BOUND_S`] (online), not the whole budget:
/// its silence is most likely a CORS refusal. While waiting to retry, the state is `retrying`. An
/// abort stops the waiting and the retrying, not an attempt under way: a failure then is
/// returned as it is, and one not yet begun is `aborted`.
pub(super) async fn with_retries<B, T, C, V, F>(
    cx: &UploadContext<'_, B, T, C>,
    progress: &ProgressReporter<'_, C>,
    interrupt: Interrupt,
    mut attempt: impl FnMut(bool) -> F,
) -> Result<V, UploadError>
where
    C: Runtime,
    F: Future<Output = Result<V, UploadError>>,
{
    let mut backoff = Backoff::new(cx.retry, cx.runtime.now_ms());
    let mut resign = false;
    // When the store's silence began (the start of the first attempt it did not answer).
    let mut silent_since = None;
    loop {
        cx.control.wait_unless_aborted(hold(cx, progress)).await?;
        let started_ms = cx.runtime.now_ms();
        let outcome = if interrupt == Interrupt::OnPause {
            match select(pin!(attempt(resign)), pin!(cx.control.paused.until(true))).await {
                Either::Left((outcome, _)) => outcome,
                Either::Right(((), _)) => continue,
            }
        } else {
            attempt(resign).await
        };
        let error = match outcome {
            Ok(value) => return Ok(value),
            Err(error) if cx.control.aborted.is_on() => return Err(error),
            Err(_) if cx.offline.is_on() => {
                silent_since = None;
                continue;
            }
            Err(error) => error,
        };
        let action = error.retry_action();
        if action == RetryAction::Fail {
            return Err(error);
        }
        resign = action == RetryAction::Resign;
        let now_ms = cx.runtime.now_ms();
        // What is left of the short bound for a silent store (unbounded otherwise).
        let mut left_ms = f64::INFINITY;
        if action == RetryAction::BackoffBriefly {
            let since = *silent_since.get_or_insert(started_ms);
            left_ms = f64::from(NEVER_ANSWERED_BOUND_S * 1000) - (now_ms - since);
            if left_ms <= 0.0 {
                return Err(error.context(&format!("no answer from the store in {NEVER_ANSWERED_BOUND_S} s")));
            }
        }
        match backoff.next_wait(now_ms, cx.runtime.random()) {
            Some(wait) => {
                progress.set_state(UploadState::Retrying);
                cx.control.wait_unless_aborted(cx.runtime.sleep(wait.min(left_ms))).await?
            }
            None => {
                let retries = backoff.retries();
                return Err(error.context(&format!("gave up after {retries} retries")));
            }
        }
    }
}
