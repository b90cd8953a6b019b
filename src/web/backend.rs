//! Backends: the default JSON-over-HTTP contract, and JS callbacks for any other backend.
//!
//! Both speak the same request and answer shapes (camelCase JSON), documented in the README.

use super::{BACKEND_TIMEOUT_MS, RequestGuard, js_message, within};
use crate::checksum::{ChecksumAlgorithm, ObjectChecksum};
use crate::error::{ErrorCode, UploadError};
use crate::retry::Observed;
use crate::upload::{
    Backend, CompleteRequest, CompletedObject, CompletedPart, FileInfo, ListedPart, MultipartSession, SignPartsRequest,
    SignReason, SignedPart, SignedPost, SignedPut, SignedRequest,
};
use futures::future::try_join_all;
use gloo_net::http::Request;
use js_sys::{Function, Promise};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignPartRequest<'a> {
    key: &'a str,
    upload_id: &'a str,
    part_number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum_algorithm: Option<ChecksumAlgorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<&'a str>,
    reason: SignReason,
}

/// `{ parts: [...] }`, or the bare array, which callbacks often return.
#[derive(Deserialize)]
#[serde(untagged)]
enum PartsAnswer<T> {
    Wrapped { parts: Vec<T> },
    Bare(Vec<T>),
}

impl<T> PartsAnswer<T> {
    fn into_parts(self) -> Vec<T> {
        match self {
            PartsAnswer::Wrapped { parts } | PartsAnswer::Bare(parts) => parts,
        }
    }
}

/// A single-PUT answer. The HTTP contract always names the key; a callback may leave it out,
/// and then the key the caller asked for (or the file name) is used.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignPutAnswer {
    #[serde(default)]
    key: Option<String>,
    #[serde(flatten)]
    request: SignedRequest,
    #[serde(default)]
    display_url: Option<String>,
}

impl SignPutAnswer {
    fn into_signed_put(self, file: &FileInfo) -> SignedPut {
        let key = self.key.or_else(|| file.key.clone()).unwrap_or_else(|| file.filename.clone());
        SignedPut { key, request: self.request, display_url: self.display_url }
    }
}

/// Any answer at all: for requests whose answer carries nothing we need.
#[derive(Deserialize)]
struct Ignored {}

fn to_js<T: Serialize>(value: &T) -> JsValue {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).expect("request shapes are plain data")
}

pub(crate) fn backend_error(message: String) -> UploadError {
    UploadError::new(ErrorCode::BackendError, message)
}

/// The default backend: `POST {base}/multipart`, `/multipart/sign`, `/multipart/complete`,
/// `/multipart/abort` and `/put`, with JSON bodies.
pub(crate) struct HttpBackend {
    base: String,
    headers: Vec<(String, String)>,
}

impl HttpBackend {
    /// A backend at `base` (no trailing slash needed), sending `headers` (for example
    /// `Authorization`) with every request.
    pub(crate) fn new(base: &str, headers: Vec<(String, String)>) -> Self {
        HttpBackend { base: base.trim_end_matches('/').to_owned(), headers }
    }

    /// The API's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) async fn post<A: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<A, UploadError> {
        let url = format!("{}{path}", self.base);
        let what = format!("POST {url}");
        let guard = RequestGuard::new(BACKEND_TIMEOUT_MS);
        let body = js_sys::JSON::stringify(&to_js(body)).expect("plain data stringifies");
        let mut builder =
            Request::post(&url).abort_signal(Some(&guard.signal())).header("Content-Type", "application/json");
        for (name, value) in &self.headers {
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
        serde_wasm_bindgen::from_value(parsed)
            .map_err(|e| backend_error(format!("the backend's answer to {what} is not as expected: {e}")))
    }
}

impl Backend for HttpBackend {
    async fn create_multipart(&self, file: &FileInfo) -> Result<MultipartSession, UploadError> {
        self.post("/multipart", file).await
    }

    async fn sign_parts(
        &self,
        session: &MultipartSession,
        numbers: &[u32],
        checksums: Option<&[String]>,
        reason: SignReason,
    ) -> Result<Vec<SignedPart>, UploadError> {
        let request = SignPartsRequest::new(session, numbers, checksums, reason);
        self.post::<PartsAnswer<SignedPart>>("/multipart/sign", &request).await.map(PartsAnswer::into_parts)
    }

    async fn complete_multipart(
        &self,
        session: &MultipartSession,
        parts: &[CompletedPart],
        checksum: Option<&ObjectChecksum>,
    ) -> Result<CompletedObject, UploadError> {
        let request = CompleteRequest::new(session, parts, checksum);
        self.post("/multipart/complete", &request).await
    }

    async fn abort_multipart(&self, session: &MultipartSession) -> Result<(), UploadError> {
        self.post::<Ignored>("/multipart/abort", session).await.map(|_| ())
    }

    async fn list_parts(&self, session: &MultipartSession) -> Result<Vec<ListedPart>, UploadError> {
        self.post::<PartsAnswer<ListedPart>>("/multipart/list", session).await.map(PartsAnswer::into_parts)
    }

    async fn sign_put(&self, file: &FileInfo, _: SignReason) -> Result<SignedPut, UploadError> {
        self.post::<SignPutAnswer>("/put", file).await.map(|a| a.into_signed_put(file))
    }

    async fn sign_post(&self, file: &FileInfo, _: SignReason) -> Result<SignedPost, UploadError> {
        self.post("/post", file).await
    }
}

/// A backend made of the caller's functions, each taking one object and returning a value or a
/// Promise of one. Names follow Uppy's so that existing code ports easily.
#[derive(Default)]
pub(crate) struct CallbackBackend {
    pub(crate) create_multipart_upload: Option<Function>,
    pub(crate) sign_parts: Option<Function>,
    pub(crate) sign_part: Option<Function>,
    pub(crate) complete_multipart_upload: Option<Function>,
    pub(crate) abort_multipart_upload: Option<Function>,
    pub(crate) list_parts: Option<Function>,
    pub(crate) sign_put: Option<Function>,
    pub(crate) sign_post: Option<Function>,
}

impl CallbackBackend {
    /// Whether multipart uploads are possible: create, sign and complete are all given.
    pub(crate) fn supports_multipart(&self) -> bool {
        self.create_multipart_upload.is_some()
            && (self.sign_parts.is_some() || self.sign_part.is_some())
            && self.complete_multipart_upload.is_some()
    }

    pub(crate) async fn call<A: DeserializeOwned>(
        name: &str,
        function: Option<&Function>,
        argument: &impl Serialize,
    ) -> Result<A, UploadError> {
        let function = function.ok_or_else(|| {
            UploadError::new(
                ErrorCode::InvalidOption,
                format!("this upload needs the backend callback `{name}`, which was not given"),
            )
        })?;
        let returned = function.call1(&JsValue::UNDEFINED, &to_js(argument)).map_err(|thrown| {
            backend_error(format!("the `{name}` callback threw: {}", js_message(&thrown))).with_cause(thrown)
        })?;
        let settled = within(BACKEND_TIMEOUT_MS, JsFuture::from(Promise::resolve(&returned))).await;
        let value = match settled {
            None => {
                return Err(UploadError::new(
                    ErrorCode::BackendUnreachable,
                    format!("the `{name}` callback did not settle within {} s", BACKEND_TIMEOUT_MS / 1000),
                )
                .with_observed(Observed::TimedOut));
            }
            Some(Err(rejected)) => {
                let mut error = backend_error(format!("the `{name}` callback rejected: {}", js_message(&rejected)));
                error.observed = callback_observed(&rejected);
                return Err(error.with_cause(rejected));
            }
            Some(Ok(value)) => value,
        };
        serde_wasm_bindgen::from_value(value)
            .map_err(|e| backend_error(format!("the `{name}` callback returned something unexpected: {e}")))
    }
}

impl Backend for CallbackBackend {
    async fn create_multipart(&self, file: &FileInfo) -> Result<MultipartSession, UploadError> {
        Self::call("createMultipartUpload", self.create_multipart_upload.as_ref(), file).await
    }

    async fn sign_parts(
        &self,
        session: &MultipartSession,
        numbers: &[u32],
        checksums: Option<&[String]>,
        reason: SignReason,
    ) -> Result<Vec<SignedPart>, UploadError> {
        if self.sign_parts.is_some() || self.sign_part.is_none() {
            let request = SignPartsRequest::new(session, numbers, checksums, reason);
            let answer: PartsAnswer<SignedPart> = Self::call("signParts", self.sign_parts.as_ref(), &request).await?;
            return Ok(answer.into_parts());
        }
        try_join_all(numbers.iter().enumerate().map(|(i, &part_number)| async move {
            let checksum = checksums.map(|c| c[i].as_str());
            let request = SignPartRequest {
                key: &session.key,
                upload_id: &session.upload_id,
                part_number,
                checksum_algorithm: session.checksum_algorithm,
                checksum,
                reason,
            };
            let signed: SignedRequest = Self::call("signPart", self.sign_part.as_ref(), &request).await?;
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
        let request = CompleteRequest::new(session, parts, checksum);
        let answer: Option<CompletedObject> =
            Self::call("completeMultipartUpload", self.complete_multipart_upload.as_ref(), &request).await?;
        Ok(answer.unwrap_or_default())
    }

    async fn abort_multipart(&self, session: &MultipartSession) -> Result<(), UploadError> {
        if self.abort_multipart_upload.is_none() {
            return Err(UploadError::new(
                ErrorCode::InvalidOption,
                "no `abortMultipartUpload` callback was given, so the failed upload's parts stay in the \
                 bucket until a lifecycle rule removes them",
            ));
        }
        Self::call::<Option<Ignored>>("abortMultipartUpload", self.abort_multipart_upload.as_ref(), session)
            .await
            .map(|_| ())
    }

    async fn list_parts(&self, session: &MultipartSession) -> Result<Vec<ListedPart>, UploadError> {
        let answer: PartsAnswer<ListedPart> = Self::call("listParts", self.list_parts.as_ref(), session).await?;
        Ok(answer.into_parts())
    }

    async fn sign_put(&self, file: &FileInfo, _: SignReason) -> Result<SignedPut, UploadError> {
        Self::call::<SignPutAnswer>("signPut", self.sign_put.as_ref(), file).await.map(|a| a.into_signed_put(file))
    }

    async fn sign_post(&self, file: &FileInfo, _: SignReason) -> Result<SignedPost, UploadError> {
        Self::call("signPost", self.sign_post.as_ref(), file).await
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
