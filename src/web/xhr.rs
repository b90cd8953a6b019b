//! The `XMLHttpRequest` transport: per-byte upload progress, which `fetch` cannot give, and
//! stalls detected as what they are: no progress for `stall_timeout_ms`.

use super::{StoreClock, StoreHeard, clear_timeout, outcome, request_body, set_timeout};
use crate::error::{ErrorCode, UploadError};
use crate::retry::Observed;
use crate::upload::{Payload, PutOutcome, SignedRequest, Transport};
use futures::StreamExt;
use futures::channel::mpsc::{UnboundedSender, unbounded};
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

/// What the request's handlers tell the sending task.
enum XhrEvent {
    /// Bytes of the body sent so far.
    Progress(f64),
    /// An HTTP answer arrived (any status).
    Answered,
    /// The request failed without an answer: network, CORS.
    Failed,
    /// No progress and no answer for the stall time.
    Stalled,
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

fn on(tx: &UnboundedSender<XhrEvent>, event: fn(&ProgressEvent) -> XhrEvent) -> Closure<dyn FnMut(ProgressEvent)> {
    let tx = tx.clone();
    Closure::new(move |e: ProgressEvent| {
        let _ = tx.unbounded_send(event(&e));
    })
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
        let (tx, mut events) = unbounded();
        let stall = {
            let tx = tx.clone();
            Closure::<dyn FnMut()>::new(move || {
                let _ = tx.unbounded_send(XhrEvent::Stalled);
            })
        };
        let guard = XhrGuard {
            handlers: vec![
                on(&tx, |e| XhrEvent::Progress(e.loaded())),
                on(&tx, |_| XhrEvent::Answered),
                on(&tx, |_| XhrEvent::Failed),
            ],
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

        loop {
            match events.next().await {
                Some(XhrEvent::Progress(bytes)) => {
                    sent(bytes as u64);
                    guard.arm_stall_timer();
                }
                Some(XhrEvent::Answered) => break,
                Some(XhrEvent::Failed) | None => return Err(self.store_heard.unreachable(what, method)),
                Some(XhrEvent::Stalled) => {
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
