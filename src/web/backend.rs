//! The application's backend as the contract's operations: each a JSON request and a JSON
//! answer (camelCase, documented in docs/backend-contract.md), carried either over HTTP
//! (`POST {base}/multipart`, ...) or by the caller's functions (`createMultipartUpload`, ...).
//! One carrier, compiled once: each operation only builds its request and reads its answer.

use super::js_data::{Fields, FromJs, ToJs, parts_from_js, sign_part_to_js, sign_put_from_js};
use super::{BACKEND_TIMEOUT_MS, COMPLETE_TIMEOUT_MS, RequestGuard, js_message, within};
use crate::checksum::ObjectChecksum;
use crate::error::{ErrorCode, UploadError};
use crate::retry::Observed;
use crate::upload::{
    Backend, Budget, CompleteRequest, CompletedObject, CompletedPart, FileInfo, ListedPart, MOST_FILES_PER_BATCH,
    MultipartSession, SignPartsRequest, SignReason, SignedPart, SignedPost, SignedPut, SignedRequest, SignedWhole,
};
use futures::channel::oneshot;
use futures::stream::{FuturesUnordered, TryStreamExt};
use gloo_net::http::Request;
use js_sys::{Function, Promise};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// One operation of the contract.
#[derive(Clone, Copy)]
pub(crate) enum Op {
    CreateMultipart,
    SignParts,
    /// One part: callbacks only, for backends that sign one part at a time.
    SignPart,
    Complete,
    Abort,
    ListParts,
    SignPut,
    SignPost,
    /// Many files, each to go up in one request, signed in one call.
    SignFiles,
    Credentials,
}

impl Op {
    /// The HTTP contract's path, after the base URL.
    fn path(self) -> &'static str {
        match self {
            Op::CreateMultipart => "/multipart",
            Op::SignParts | Op::SignPart => "/multipart/sign",
            Op::Complete => "/multipart/complete",
            Op::Abort => "/multipart/abort",
            Op::ListParts => "/multipart/list",
            Op::SignPut => "/put",
            Op::SignPost => "/post",
            Op::SignFiles => "/files",
            Op::Credentials => "/credentials",
        }
    }

    /// How long the backend has to answer it.
    fn timeout_ms(self) -> u32 {
        if matches!(self, Op::Complete) { COMPLETE_TIMEOUT_MS } else { BACKEND_TIMEOUT_MS }
    }

    /// The callback's name (Uppy's names, so that existing code ports easily).
    pub(crate) fn callback(self) -> &'static str {
        match self {
            Op::CreateMultipart => "createMultipartUpload",
            Op::SignParts => "signParts",
            Op::SignPart => "signPart",
            Op::Complete => "completeMultipartUpload",
            Op::Abort => "abortMultipartUpload",
            Op::ListParts => "listParts",
            Op::SignPut => "signPut",
            Op::SignPost => "signPost",
            Op::SignFiles => "signFiles",
            Op::Credentials => "getCredentials",
        }
    }

    /// Every operation, to look up callbacks by name.
    pub(crate) const ALL: [Op; 10] = [
        Op::CreateMultipart,
        Op::SignParts,
        Op::SignPart,
        Op::Complete,
        Op::Abort,
        Op::ListParts,
        Op::SignPut,
        Op::SignPost,
        Op::SignFiles,
        Op::Credentials,
    ];
}

pub(crate) fn backend_error(message: String) -> UploadError {
    UploadError::new(ErrorCode::BackendError, message)
}

/// A single-PUT answer as a [`SignedPut`]. The HTTP contract always names the key; a callback
/// may leave it out, and then the key the caller asked for (or the file name) is used.
fn signed_put(answer: &JsValue, file: &FileInfo) -> Result<SignedPut, String> {
    let (key, request, display_url) = sign_put_from_js(answer)?;
    let key = key.or_else(|| file.key.clone()).unwrap_or_else(|| file.filename.clone());
    Ok(SignedPut { key, request, display_url })
}

/// Backend calls one uploader makes at once; the others wait, aborts first. A browser opens at
/// most 6 HTTP/1.1 connections to a host, so more only queue inside it, and thousands at once (a
/// folder of small files) exhaust its request slots ("Failed to fetch") and keep the page busy
/// for seconds creating them.
const CALLS_AT_ONCE: usize = 6;

/// Most times a file joins the batch queue: each time the upload that took it into a call may
/// end before the call does (dropping it), and then the file is signed alone with `/put`.
const TIMES_QUEUED: usize = 3;

/// The contract, how many of its calls are under way, and the files waiting to be signed
/// together.
pub(crate) struct ContractBackend {
    carrier: Carrier,
    calls: Budget,
    batch: RefCell<FileBatching>,
}

/// Files whose one request waits to be signed ([`Op::SignFiles`]). Each file joins the queue,
/// then waits for a call place; whoever gets one signs the files queued by then (its own among
/// them), up to [`MOST_FILES_PER_BATCH`], in one call, and the others find theirs signed. Files
/// started together are signed together, and while every place is busy the waiting files
/// gather: no timer, no delay.
#[derive(Default)]
struct FileBatching {
    waiting: Vec<WaitingFile>,
    next: u64,
    /// The HTTP backend answered `/files` with 404 or 405: it predates it, so `/put` serves.
    unsupported: bool,
}

struct WaitingFile {
    id: u64,
    request: JsValue,
    answer: oneshot::Sender<BatchAnswer>,
}

/// What a batch call gave one file.
enum BatchAnswer {
    /// The backend's answer for it: a PUT or a form.
    Signed(JsValue),
    Refused(UploadError),
    /// The backend has no `/files`: sign it alone.
    Unsupported,
}

impl FileBatching {
    /// Queues `request`: its number, and where its answer comes.
    fn join(&mut self, request: JsValue) -> (u64, oneshot::Receiver<BatchAnswer>) {
        let (answer, receiver) = oneshot::channel();
        let id = self.next;
        self.next += 1;
        self.waiting.push(WaitingFile { id, request, answer });
        (id, receiver)
    }

    /// The files to sign with file `id`: the oldest queued, at most [`MOST_FILES_PER_BATCH`],
    /// `id` always among them (files whose uploads ended meanwhile are dropped); nothing if
    /// another call took `id` already.
    fn take(&mut self, id: u64) -> Vec<WaitingFile> {
        self.waiting.retain(|w| !w.answer.is_canceled());
        let Some(at) = self.waiting.iter().position(|w| w.id == id) else { return Vec::new() };
        if at < MOST_FILES_PER_BATCH {
            let count = self.waiting.len().min(MOST_FILES_PER_BATCH);
            return self.waiting.drain(..count).collect();
        }
        let own = self.waiting.remove(at);
        let mut taken: Vec<WaitingFile> = self.waiting.drain(..MOST_FILES_PER_BATCH - 1).collect();
        taken.push(own);
        taken
    }
}

/// Who carries the contract: HTTP, or the caller's functions.
enum Carrier {
    /// `POST {base}{path}` with JSON bodies, with `headers` (for example `Authorization`).
    Http { base: String, headers: Vec<(String, String)> },
    /// The caller's functions, by operation ([`Op::ALL`] order), each taking one object and
    /// returning a value or a Promise of one; called as methods of `owner`, the object they were
    /// given on (a class instance's methods may use `this`).
    Callbacks { owner: JsValue, functions: [Option<Function>; 10] },
}

impl ContractBackend {
    /// The contract over HTTP at `base` (no trailing slash needed).
    pub(crate) fn http(base: &str, headers: Vec<(String, String)>) -> Self {
        let base = super::resolve_url(base).trim_end_matches('/').to_owned();
        ContractBackend::new(Carrier::Http { base, headers })
    }

    /// The contract carried by `functions` ([`Op::ALL`] order), methods of `owner`.
    pub(crate) fn callbacks(owner: JsValue, functions: [Option<Function>; 10]) -> Self {
        ContractBackend::new(Carrier::Callbacks { owner, functions })
    }

    fn new(carrier: Carrier) -> Self {
        ContractBackend { carrier, calls: Budget::new(CALLS_AT_ONCE), batch: RefCell::default() }
    }

    /// The callback for `op`, if given.
    pub(crate) fn callback(&self, op: Op) -> Option<&Function> {
        match &self.carrier {
            Carrier::Http { .. } => None,
            Carrier::Callbacks { functions, .. } => functions[op as usize].as_ref(),
        }
    }

    /// Whether `op` can be carried: always over HTTP; with callbacks, when its function is given.
    pub(crate) fn offers(&self, op: Op) -> bool {
        matches!(self.carrier, Carrier::Http { .. }) || self.callback(op).is_some()
    }

    /// Whether multipart uploads are possible: create, sign and complete are all offered.
    pub(crate) fn supports_multipart(&self) -> bool {
        self.offers(Op::CreateMultipart)
            && (self.offers(Op::SignParts) || self.offers(Op::SignPart))
            && self.offers(Op::Complete)
    }

    /// Names the backend in resume fingerprints and messages.
    pub(crate) fn identity(&self) -> String {
        match &self.carrier {
            Carrier::Http { base, .. } => base.clone(),
            Carrier::Callbacks { .. } => "callbacks".into(),
        }
    }

    /// Carries `request` for `op`, and reads the answer with `read`.
    pub(crate) async fn ask<A>(
        &self,
        op: Op,
        request: JsValue,
        read: impl FnOnce(&JsValue) -> Result<A, String>,
    ) -> Result<A, UploadError> {
        let answer = self.carry(op, request).await?;
        self.read(op, &answer, read)
    }

    /// `answer` to `op`, read with `read`; what is wrong with it, said as the backend's error.
    fn read<A>(
        &self,
        op: Op,
        answer: &JsValue,
        read: impl FnOnce(&JsValue) -> Result<A, String>,
    ) -> Result<A, UploadError> {
        read(answer).map_err(|e| self.unexpected(op, e))
    }

    /// The error for an answer to `op` that is not as the contract says (`e`: how).
    fn unexpected(&self, op: Op, e: String) -> UploadError {
        backend_error(match &self.carrier {
            Carrier::Http { base, .. } => {
                format!("the backend's answer to POST {base}{} is not as expected: {e}", op.path())
            }
            Carrier::Callbacks { .. } => format!("the `{}` callback returned something unexpected: {e}", op.callback()),
        })
    }

    /// Carries `request` for `op`, once fewer than [`CALLS_AT_ONCE`] calls are under way: the
    /// answer, parsed or settled. Not generic, so its future is compiled once.
    async fn carry(&self, op: Op, request: JsValue) -> Result<JsValue, UploadError> {
        let _place = self.calls.acquire(if matches!(op, Op::Abort) { 1 } else { 0 }).await;
        self.carry_now(op, request).await
    }

    /// Carries `request` for `op` at once (the caller holds a call place).
    async fn carry_now(&self, op: Op, request: JsValue) -> Result<JsValue, UploadError> {
        match &self.carrier {
            Carrier::Http { base, headers } => Self::post_json(base, headers, op, request).await,
            Carrier::Callbacks { owner, .. } => Self::call_js(op, owner, self.callback(op), request).await,
        }
    }

    async fn post_json(
        base: &str,
        headers: &[(String, String)],
        op: Op,
        body: JsValue,
    ) -> Result<JsValue, UploadError> {
        let url = format!("{base}{}", op.path());
        let what = format!("POST {url}");
        let timeout_ms = op.timeout_ms();
        let guard = RequestGuard::new(timeout_ms);
        let body = js_sys::JSON::stringify(&body).expect("plain data stringifies");
        let mut builder =
            Request::post(&url).abort_signal(Some(&guard.signal())).header("Content-Type", "application/json");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(body).map_err(|e| backend_error(format!("could not build {what}: {e}")))?;
        let response = request.send().await.map_err(|_| {
            let (why, observed) = if guard.timed_out() {
                (format!("no answer within {} s", timeout_ms / 1000), Observed::TimedOut)
            } else {
                let why = "the network failed, the server is down, or its CORS rules do not allow this page";
                (why.to_owned(), Observed::Network)
            };
            UploadError::new(ErrorCode::BackendUnreachable, format!("could not reach the backend ({what}): {why}"))
                .with_observed(observed)
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|_| backend_error(format!("the answer to {what} could not be read")).with_status(status))?;
        guard.finish();
        let parsed = js_sys::JSON::parse(&text).ok();
        if !response.ok() {
            let said = parsed
                .as_ref()
                .and_then(|v| js_sys::Reflect::get(v, &"error".into()).ok())
                .and_then(|v| v.as_string())
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            return Err(backend_error(format!("the backend answered {what} with HTTP {status}{said}"))
                .with_status(status)
                .with_observed(Observed::status(status)));
        }
        let Some(parsed) = parsed else {
            return Err(backend_error(format!(
                "the backend answered {what} with something that is not JSON; check that the backend URL \
                 points at the upload API"
            )));
        };
        Ok(parsed)
    }

    /// Calls `op`'s callback; what it returned, settled within `op`'s time. Not generic, so its future is
    /// compiled once.
    async fn call_js(
        op: Op,
        owner: &JsValue,
        function: Option<&Function>,
        argument: JsValue,
    ) -> Result<JsValue, UploadError> {
        let (name, timeout_ms) = (op.callback(), op.timeout_ms());
        let function = function.ok_or_else(|| {
            UploadError::new(
                ErrorCode::InvalidOption,
                format!("this upload needs the backend callback `{name}`, which was not given"),
            )
        })?;
        let returned = function.call1(owner, &argument).map_err(|thrown| {
            backend_error(format!("the `{name}` callback threw: {}", js_message(&thrown))).with_cause(thrown)
        })?;
        let settled = within(timeout_ms, JsFuture::from(Promise::resolve(&returned))).await;
        match settled {
            None => Err(UploadError::new(
                ErrorCode::BackendUnreachable,
                format!("the `{name}` callback did not settle within {} s", timeout_ms / 1000),
            )
            .with_observed(Observed::TimedOut)),
            Some(Err(rejected)) => {
                let mut error = backend_error(format!("the `{name}` callback rejected: {}", js_message(&rejected)));
                error.observed = callback_observed(&rejected);
                Err(error.with_cause(rejected))
            }
            Some(Ok(value)) => Ok(value),
        }
    }
}

impl ContractBackend {
    /// Whether single-request files are signed together: the backend offers [`Op::SignFiles`]
    /// (HTTP: until it answers 404).
    fn batches(&self) -> bool {
        self.offers(Op::SignFiles) && !self.batch.borrow().unsupported
    }

    /// `file` signed with the files queued with it, or alone as a PUT where the backend turns
    /// out to have no `/files`.
    async fn sign_batched(&self, file: &FileInfo, reason: SignReason) -> Result<SignedWhole, UploadError> {
        // A file whose batch call was dropped (its caller's upload ended) queues again.
        for _ in 0..TIMES_QUEUED {
            if !self.batches() {
                break;
            }
            let (id, receiver) = self.batch.borrow_mut().join(file.to_js());
            let place = self.calls.acquire(0).await;
            let taken = self.batch.borrow_mut().take(id);
            if !taken.is_empty() {
                self.sign_batch(taken).await;
            }
            drop(place);
            match receiver.await {
                Ok(BatchAnswer::Signed(answer)) => return self.read(Op::SignFiles, &answer, |a| signed_whole(a, file)),
                Ok(BatchAnswer::Refused(error)) => return Err(error),
                Ok(BatchAnswer::Unsupported) => break,
                Err(oneshot::Canceled) => continue,
            }
        }
        Ok(SignedWhole::Put(self.sign_put(file, reason).await?))
    }

    /// Signs the files of `taken` in one call, and gives each its answer.
    async fn sign_batch(&self, taken: Vec<WaitingFile>) {
        let answers = if self.batches() {
            self.call_batch(&taken).await
        } else {
            // A call under way before this one found that the backend has no `/files`.
            Ok(taken.iter().map(|_| BatchAnswer::Unsupported).collect())
        };
        let answers = answers.unwrap_or_else(|e| taken.iter().map(|_| BatchAnswer::Refused(e.clone())).collect());
        for (waiting, answer) in taken.into_iter().zip(answers) {
            let _ = waiting.answer.send(answer); // its upload may have ended meanwhile
        }
    }

    /// `POST {base}/files` (or `signFiles`) for the files of `taken`: an answer for each. A 404
    /// or 405 over HTTP marks `/files` missing, and answers every file [`BatchAnswer::Unsupported`].
    async fn call_batch(&self, taken: &[WaitingFile]) -> Result<Vec<BatchAnswer>, UploadError> {
        let files = taken.iter().map(|w| w.request.clone()).collect::<js_sys::Array>();
        let request = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&request, &"files".into(), &files);
        match self.carry_now(Op::SignFiles, request.into()).await {
            Err(e) if matches!(self.carrier, Carrier::Http { .. }) && matches!(e.status, Some(404 | 405)) => {
                self.batch.borrow_mut().unsupported = true;
                Ok(taken.iter().map(|_| BatchAnswer::Unsupported).collect())
            }
            Err(e) => Err(e),
            Ok(answer) => self.read(Op::SignFiles, &answer, |answer| batch_answers(answer, taken.len())),
        }
    }
}

/// The answers of `POST {base}/files` (`{ files: [...] }`) to `count` files: each a PUT or a
/// form, or `{ error, status? }`, a refusal of that file alone.
fn batch_answers(answer: &JsValue, count: usize) -> Result<Vec<BatchAnswer>, String> {
    let files = Fields::of(answer)?.value("files");
    if !js_sys::Array::is_array(&files) {
        return Err("`files` must be an array of answers, one per file, in order".into());
    }
    let files = js_sys::Array::from(&files);
    if files.length() as usize != count {
        return Err(format!("`files` has {} answers for {count} files", files.length()));
    }
    let mut answers = Vec::with_capacity(count);
    for each in files.iter() {
        let f = Fields::of(&each)?;
        answers.push(match f.opt_string("error")? {
            None => BatchAnswer::Signed(each),
            Some(message) => {
                let status = f.opt_whole("status", 599)?.map_or(400, |s| s as u16);
                let error = backend_error(format!("the backend refused the file: {message}")).with_status(status);
                BatchAnswer::Refused(error.with_observed(Observed::status(status)))
            }
        });
    }
    Ok(answers)
}

/// A single-request file's answer: a form when it has `fields`, else a PUT.
fn signed_whole(answer: &JsValue, file: &FileInfo) -> Result<SignedWhole, String> {
    if Fields::of(answer)?.value("fields").is_undefined() {
        Ok(SignedWhole::Put(signed_put(answer, file)?))
    } else {
        Ok(SignedWhole::Form(SignedPost::from_js(answer)?))
    }
}

impl Backend for ContractBackend {
    async fn create_multipart(&self, file: &FileInfo) -> Result<MultipartSession, UploadError> {
        self.ask(Op::CreateMultipart, file.to_js(), MultipartSession::from_js).await
    }

    async fn sign_parts(
        &self,
        session: &MultipartSession,
        numbers: &[u32],
        checksums: Option<&[String]>,
        reason: SignReason,
    ) -> Result<Vec<SignedPart>, UploadError> {
        if self.offers(Op::SignParts) || !self.offers(Op::SignPart) {
            let request = SignPartsRequest::new(session, numbers, checksums, reason).to_js();
            return self.ask(Op::SignParts, request, parts_from_js).await;
        }
        // In the order they are signed (the caller matches them by number): `try_join_all`
        // would keep the order at the cost of a second kind of future set in the `.wasm`.
        let signing = numbers.iter().enumerate().map(|(i, &part_number)| async move {
            let request = sign_part_to_js(session, part_number, checksums.map(|c| c[i].as_str()), reason);
            let signed = self.ask(Op::SignPart, request, SignedRequest::from_js).await?;
            Ok(SignedPart { part_number, request: signed })
        });
        signing.collect::<FuturesUnordered<_>>().try_collect().await
    }

    async fn complete_multipart(
        &self,
        session: &MultipartSession,
        parts: &[CompletedPart],
        checksum: Option<&ObjectChecksum>,
    ) -> Result<CompletedObject, UploadError> {
        let request = CompleteRequest::new(session, parts, checksum).to_js();
        self.ask(Op::Complete, request, CompletedObject::from_js).await
    }

    async fn abort_multipart(&self, session: &MultipartSession) -> Result<(), UploadError> {
        if !self.offers(Op::Abort) {
            return Err(UploadError::new(
                ErrorCode::InvalidOption,
                "no `abortMultipartUpload` callback was given, so the failed upload's parts stay in the \
                 bucket until a lifecycle rule removes them",
            ));
        }
        self.ask(Op::Abort, session.to_js(), |_| Ok(())).await
    }

    async fn list_parts(&self, session: &MultipartSession) -> Result<Vec<ListedPart>, UploadError> {
        self.ask(Op::ListParts, session.to_js(), parts_from_js).await
    }

    async fn sign_put(&self, file: &FileInfo, _: SignReason) -> Result<SignedPut, UploadError> {
        self.ask(Op::SignPut, file.to_js(), |answer| signed_put(answer, file)).await
    }

    async fn sign_post(&self, file: &FileInfo, _: SignReason) -> Result<SignedPost, UploadError> {
        self.ask(Op::SignPost, file.to_js(), SignedPost::from_js).await
    }

    /// Signs `file` with the files queued with it (see [`FileBatching`]), where the backend
    /// offers `/files` (`signFiles`); else alone, as a PUT. Boxed, so that its state machine is
    /// compiled once, not into each caller's.
    async fn sign_whole(&self, file: &FileInfo, reason: SignReason) -> Result<SignedWhole, UploadError> {
        let batched: Pin<Box<dyn Future<Output = Result<SignedWhole, UploadError>> + '_>> =
            Box::pin(self.sign_batched(file, reason));
        batched.await
    }
}

/// What a callback's rejection says of the request behind it: a `TypeError` (what `fetch`
/// rejects with when the network fails), or an error with a numeric HTTP `status`.
fn callback_observed(rejected: &JsValue) -> Option<Observed> {
    if rejected.is_instance_of::<js_sys::TypeError>() {
        return Some(Observed::Network);
    }
    let status = js_sys::Reflect::get(rejected, &"status".into()).ok().and_then(|s| s.as_f64());
    status.filter(|s| (100.0..600.0).contains(s)).map(|s| Observed::status(s as u16))
}
