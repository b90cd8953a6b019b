//! The `XMLHttpRequest` transport: per-byte upload progress, which `fetch` cannot give, and
//! stalls detected as what they are: no progress for `stall_timeout_ms`.

use super::{StoreClock, StoreHeard, clear_timeout, outcome, request_body, set_timeout};
use crate::error::{ErrorCode, UploadError};
use crate::retry::Observed;
use crate::upload::{Count, Payload, PutOutcome, SignedRequest, Transport};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, FormData, ProgressEvent, XmlHttpRequest};

/// Sends bodies with `XMLHttpRequest`, reporting bytes as they leave.
pub(crate) struct XhrTransport {
    pub(crate) stall_timeout_ms: u32,
    /// The store's clock, when the page signs what this sends (the credentials mode).
    pub(crate) store_clock: Option<Rc<StoreClock>>,
    /// Whether the store has answered this uploader yet.
    pub(crate) store_heard: Rc<StoreHeard>,
}

/// What the request's handlers have seen, shared with the sending task.
#[derive(Default)]
struct XhrSeen {
    /// Bytes of the body sent so far.
    sent: Cell<f64>,
    /// How the request ended, once it has (the first end counts).
    end: Cell<Option<XhrEnd>>,
    /// Counts the handlers' calls: the sending task looks again after each.
    events: Count,
}

/// How a request ended.
#[derive(Clone, Copy)]
enum XhrEnd {
    /// An HTTP answer arrived (any status).
    Answered,
    /// The request failed without an answer: network, CORS.
    Failed,
    /// No progress and no answer for the stall time.
    Stalled,
}

impl XhrSeen {
    /// Records how the request ended (unless it already had) and wakes the sending task.
    fn ended(&self, end: XhrEnd) {
        if self.end.get().is_none() {
            self.end.set(Some(end));
        }
        self.events.increment();
    }
}

/// Owns the request and its handlers; dropping it unhooks them and aborts an unfinished request.
struct XhrGuard {
    xhr: XmlHttpRequest,
    handlers: Vec<Closure<dyn FnMut(ProgressEvent)>>,
    stall: Closure<dyn FnMut()>,
    stall_timer: Cell<Option<JsValue>>,
    stall_timeout_ms: i32,
}

impl XhrGuard {
    /// Restarts the stall countdown (on every sign of progress).
    fn arm_stall_timer(&self) {
        if let Some(timer) = self.stall_timer.take() {
            clear_timeout(&timer);
        }
        self.stall_timer.set(Some(set_timeout(self.stall.as_ref().unchecked_ref(), self.stall_timeout_ms)));
    }
}

impl Drop for XhrGuard {
    fn drop(&mut self) {
        if let Some(timer) = self.stall_timer.take() {
            clear_timeout(&timer);
        }
        self.xhr.set_onload(None);
        self.xhr.set_onerror(None);
        if let Ok(upload) = self.xhr.upload() {
            upload.set_onprogress(None);
        }
        if self.xhr.ready_state() != XmlHttpRequest::DONE {
            let _ = self.xhr.abort();
        }
        self.handlers.clear();
    }
}

/// A handler of the request's events that records `end`.
fn on_end(seen: &Rc<XhrSeen>, end: XhrEnd) -> Closure<dyn FnMut(ProgressEvent)> {
    let seen = seen.clone();
    Closure::new(move |_: ProgressEvent| seen.ended(end))
}

impl Transport for XhrTransport {
    type Body = Blob;

    async fn send(
        &self,
        request: &SignedRequest,
        payload: Payload<'_, Blob>,
        what: &str,
        sent: &dyn Fn(u64),
    ) -> Result<PutOutcome, UploadError> {
        let failed = |message: String| UploadError::new(ErrorCode::PartUploadFailed, message);
        let build = |_| failed(format!("could not build the request for {what}"));
        let (body, _) = request_body(payload).map_err(build)?;
        let method = if body.is_instance_of::<FormData>() { "POST" } else { "PUT" };
        let xhr = XmlHttpRequest::new().map_err(build)?;
        xhr.open_with_async(method, &request.url, true).map_err(build)?;
        for (name, value) in &request.headers {
            xhr.set_request_header(name, value).map_err(build)?;
        }
        let seen = Rc::new(XhrSeen::default());
        let stall = {
            let seen = seen.clone();
            Closure::<dyn FnMut()>::new(move || seen.ended(XhrEnd::Stalled))
        };
        let progress = {
            let seen = seen.clone();
            Closure::new(move |e: ProgressEvent| {
                seen.sent.set(e.loaded());
                seen.events.increment();
            })
        };
        let guard = XhrGuard {
            handlers: vec![progress, on_end(&seen, XhrEnd::Answered), on_end(&seen, XhrEnd::Failed)],
            xhr,
            stall,
            stall_timer: Cell::new(None),
            stall_timeout_ms: i32::try_from(self.stall_timeout_ms).unwrap_or(i32::MAX),
        };
        let handler = |i: usize| Some(guard.handlers[i].as_ref().unchecked_ref());
        guard.xhr.upload().map_err(build)?.set_onprogress(handler(0));
        guard.xhr.set_onload(handler(1));
        guard.xhr.set_onerror(handler(2));
        guard.arm_stall_timer();
        match body.dyn_ref::<FormData>() {
            Some(form) => guard.xhr.send_with_opt_form_data(Some(form)),
            None => guard.xhr.send_with_opt_blob(body.dyn_ref::<Blob>()),
        }
        .map_err(build)?;

        let mut reported = 0.0;
        loop {
            seen.events.at_least(seen.events.get() + 1).await;
            // Bytes first: they may have left just before the answer came.
            if seen.sent.get() > reported {
                reported = seen.sent.get();
                sent(reported as u64);
                guard.arm_stall_timer();
            }
            match seen.end.get() {
                None => {}
                Some(XhrEnd::Answered) => break,
                Some(XhrEnd::Failed) => return Err(self.store_heard.unreachable(what, method)),
                Some(XhrEnd::Stalled) => {
                    let seconds = self.stall_timeout_ms / 1000;
                    return Err(
                        failed(format!("{what} made no progress for {seconds} s")).with_observed(Observed::TimedOut)
                    );
                }
            }
        }
        self.store_heard.answered();
        let status = guard.xhr.status().unwrap_or(0);
        let body = guard.xhr.response_text().ok().flatten().unwrap_or_default();
        let etag = guard.xhr.get_response_header("ETag").ok().flatten();
        outcome(status, etag, &body, request, what, self.store_clock.as_deref())
    }
}
