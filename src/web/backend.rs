//! The application's backend as the contract's operations: each a JSON request and a JSON
//! answer (camelCase, documented in docs/backend-contract.md), carried either over HTTP
//! (`POST {base}/multipart`, ...) or by the caller's functions (`createMultipartUpload`, ...).
//! One carrier, compiled once: each operation only builds its request and reads its answer.

use super::js_data::{FromJs, ToJs, parts_from_js, sign_part_to_js, sign_put_from_js};
use super::{BACKEND_TIMEOUT_MS, RequestGuard, js_message, within};
use crate::checksum::ObjectChecksum;
use crate::error::{ErrorCode, UploadError};
use crate::retry::Observed;
use crate::upload::{
    Backend, Budget, CompleteRequest, CompletedObject, CompletedPart, FileInfo, ListedPart, MultipartSession,
    SignPartsRequest, SignReason, SignedPart, SignedPost, SignedPut, SignedRequest,
};
use futures::future::try_join_all;
use gloo_net::http::Request;
use js_sys::{Function, Promise};
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
            Op::Credentials => "/credentials",
        }
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
            Op::Credentials => "getCredentials",
        }
    }

    /// Every operation, to look up callbacks by name.
    pub(crate) const ALL: [Op; 9] = [
        Op::CreateMultipart,
        Op::SignParts,
        Op::SignPart,
        Op::Complete,
        Op::Abort,
        Op::ListParts,
        Op::SignPut,
        Op::SignPost,
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

/// The contract, and how many of its calls are under way.
pub(crate) struct ContractBackend {
    carrier: Carrier,
    calls: Budget,
}

/// Who carries the contract: HTTP, or the caller's functions.
enum Carrier {
    /// `POST {base}{path}` with JSON bodies, with `headers` (for example `Authorization`).
    Http { base: String, headers: Vec<(String, String)> },
    /// The caller's functions, by operation ([`Op::ALL`] order), each taking one object and
    /// returning a value or a Promise of one; called as methods of `owner`, the object they were
    /// given on (a class instance's methods may use `this`).
    Callbacks { owner: JsValue, functions: [Option<Function>; 9] },
}

impl ContractBackend {
    /// The contract over HTTP at `base` (no trailing slash needed).
    pub(crate) fn http(base: &str, headers: Vec<(String, String)>) -> Self {
        let base = super::resolve_url(base).trim_end_matches('/').to_owned();
        ContractBackend { carrier: Carrier::Http { base, headers }, calls: Budget::new(CALLS_AT_ONCE) }
    }

    /// The contract carried by `functions` ([`Op::ALL`] order), methods of `owner`.
    pub(crate) fn callbacks(owner: JsValue, functions: [Option<Function>; 9]) -> Self {
        ContractBackend { carrier: Carrier::Callbacks { owner, functions }, calls: Budget::new(CALLS_AT_ONCE) }
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
        read(&answer).map_err(|e| {
            backend_error(match &self.carrier {
                Carrier::Http { base, .. } => {
                    format!("the backend's answer to POST {base}{} is not as expected: {e}", op.path())
                }
                Carrier::Callbacks { .. } => {
                    format!("the `{}` callback returned something unexpected: {e}", op.callback())
                }
            })
        })
    }

    /// Carries `request` for `op`, once fewer than [`CALLS_AT_ONCE`] calls are under way: the
    /// answer, parsed or settled. Not generic, so its future is compiled once.
    async fn carry(&self, op: Op, request: JsValue) -> Result<JsValue, UploadError> {
        let _place = self.calls.acquire(if matches!(op, Op::Abort) { 1 } else { 0 }).await;
        match &self.carrier {
            Carrier::Http { base, headers } => Self::post_json(base, headers, op.path(), request).await,
            Carrier::Callbacks { owner, .. } => Self::call_js(op.callback(), owner, self.callback(op), request).await,
        }
    }

    async fn post_json(
        base: &str,
        headers: &[(String, String)],
        path: &str,
        body: JsValue,
    ) -> Result<JsValue, UploadError> {
        let url = format!("{base}{path}");
        let what = format!("POST {url}");
        let guard = RequestGuard::new(BACKEND_TIMEOUT_MS);
        let body = js_sys::JSON::stringify(&body).expect("plain data stringifies");
        let mut builder =
            Request::post(&url).abort_signal(Some(&guard.signal())).header("Content-Type", "application/json");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(body).map_err(|e| backend_error(format!("could not build {what}: {e}")))?;
        let response = request.send().await.map_err(|_| {
            let (why, observed) = if guard.timed_out() {
                (format!("no answer within {} s", BACKEND_TIMEOUT_MS / 1000), Observed::TimedOut)
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

    /// Calls the callback `name`; what it returned, settled. Not generic, so its future is
    /// compiled once.
    async fn call_js(
        name: &str,
        owner: &JsValue,
        function: Option<&Function>,
        argument: JsValue,
    ) -> Result<JsValue, UploadError> {
        let function = function.ok_or_else(|| {
            UploadError::new(
                ErrorCode::InvalidOption,
                format!("this upload needs the backend callback `{name}`, which was not given"),
            )
        })?;
        let returned = function.call1(owner, &argument).map_err(|thrown| {
            backend_error(format!("the `{name}` callback threw: {}", js_message(&thrown))).with_cause(thrown)
        })?;
        let settled = within(BACKEND_TIMEOUT_MS, JsFuture::from(Promise::resolve(&returned))).await;
        match settled {
            None => Err(UploadError::new(
                ErrorCode::BackendUnreachable,
                format!("the `{name}` callback did not settle within {} s", BACKEND_TIMEOUT_MS / 1000),
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
        try_join_all(numbers.iter().enumerate().map(|(i, &part_number)| async move {
            let request = sign_part_to_js(session, part_number, checksums.map(|c| c[i].as_str()), reason);
            let signed = self.ask(Op::SignPart, request, SignedRequest::from_js).await?;
            Ok(SignedPart { part_number, request: signed })
        }))
        .await
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
