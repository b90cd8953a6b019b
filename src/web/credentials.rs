//! The credentials mode: the backend hands out temporary credentials scoped to a key prefix, and
//! the page signs every S3 request itself (SigV4 in wasm) and talks to the store directly, with no
//! backend round trip per part. Credentials are fetched again before they expire, after the store
//! says they expired, and the clock is corrected from the store's when it says it is off.

use super::backend::{ContractBackend, Op, backend_error};
use super::js_data::FromJs;
use super::{BrowserRuntime, RequestGuard, StoreClock, StoreHeard, store_rejection};
use crate::checksum::{ChecksumAlgorithm, ChecksumType, ObjectChecksum, digest, hex};
use crate::error::UploadError;
use crate::grant::{Grant, GrantAnswer, Lesson};
use crate::object_rules::metadata_headers;
use crate::retry::Observed;
use crate::s3_xml::{all_listed_parts, complete_multipart_body, unescape, xml_text};
use crate::sigv4::{self, EMPTY_PAYLOAD_SHA256, Request as SigRequest, Scope};
use crate::upload::{
    Backend, CompletedObject, CompletedPart, FileInfo, ListedPart, MultipartSession, Runtime, SignReason, SignedPart,
    SignedPost, SignedPut, SignedRequest,
};
use futures::lock::Mutex;
use gloo_net::http::{Method, RequestBuilder};
use js_sys::Object;
use std::cell::RefCell;
use std::rc::Rc;

/// A [`Backend`] that signs every request in the page with temporary credentials.
pub(crate) struct CredentialsBackend {
    /// Where grants come from: `POST {base}/credentials`, or the `getCredentials` callback.
    source: ContractBackend,
    grant: RefCell<Option<Rc<Grant>>>,
    /// One fetch of credentials at a time.
    fetching: Mutex<()>,
    /// The store's clock, learnt from its refusals (shared with the transports).
    clock: Rc<StoreClock>,
    /// Whether the store has answered this uploader yet (shared with the transports).
    heard: Rc<StoreHeard>,
}

impl CredentialsBackend {
    /// A backend getting its credentials from `source`, keeping the store's time in `clock` and
    /// whether it answered in `heard`.
    pub(crate) fn new(source: ContractBackend, clock: Rc<StoreClock>, heard: Rc<StoreHeard>) -> Self {
        CredentialsBackend { source, grant: RefCell::new(None), fetching: Mutex::new(()), clock, heard }
    }

    /// Names the source in resume fingerprints.
    pub(crate) fn identity(&self) -> String {
        format!("credentials:{}", self.source.identity())
    }

    /// Now on the store's clock: this device's, corrected by what the store said of it.
    fn now_ms(&self) -> f64 {
        self.clock.now_ms()
    }

    /// The credentials to sign with: the current ones, or new ones when they are expiring, when
    /// `refresh` asks, or before the first request.
    async fn grant(&self, refresh: bool) -> Result<Rc<Grant>, UploadError> {
        let before = self.grant.borrow().clone();
        let _fetching = self.fetching.lock().await;
        let current = self.grant.borrow().clone();
        // Another request may have fetched new credentials while this one waited.
        let replaced = match (&before, &current) {
            (Some(a), Some(b)) => !Rc::ptr_eq(a, b),
            (None, Some(_)) => true,
            _ => false,
        };
        if let Some(grant) = current.filter(|g| (!refresh || replaced) && !g.is_expiring(self.now_ms())) {
            return Ok(grant);
        }
        let answer = self.source.ask(Op::Credentials, Object::new().into(), GrantAnswer::from_js).await?;
        let grant = Grant::from_answer(answer, self.now_ms())
            .map_err(|what| backend_error(format!("the backend's credentials are unusable: {what}")))?;
        let grant = Rc::new(grant);
        *self.grant.borrow_mut() = Some(grant.clone());
        Ok(grant)
    }

    /// Presigns `method` on `url` with `headers` with `grant`'s credentials.
    fn presign(
        &self,
        grant: &Grant,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
    ) -> Result<SignedRequest, UploadError> {
        let now_ms = self.now_ms();
        let lifetime_s = ((grant.url_expiry_ms(now_ms) - now_ms) / 1000.0).max(1.0) as u32;
        let request = SigRequest { method, url, headers: &headers };
        let scope = Scope { region: &grant.endpoint.region, service: "s3" };
        let signed = sigv4::presign(&request, &grant.credentials, scope, now_ms, lifetime_s)
            .ok_or_else(|| backend_error("the store's URL could not be signed".into()))?;
        Ok(SignedRequest { url: signed, headers: headers.into_iter().collect() })
    }

    /// Sends an S3 request signed with an `Authorization` header; the answer's body. An S3 error
    /// (even in a 200, as CompleteMultipartUpload may give) becomes an `UploadError`; an expired
    /// token drops the credentials and a skewed clock is corrected, both to be retried.
    async fn call(
        &self,
        method: Method,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<String>,
        what: &str,
    ) -> Result<String, UploadError> {
        let grant = self.grant(false).await?;
        let payload = body
            .as_deref()
            .map_or_else(|| EMPTY_PAYLOAD_SHA256.to_owned(), |b| hex(&digest(ChecksumAlgorithm::Sha256, b.as_bytes())));
        // Named in the error of a request the bucket's CORS rule blocks.
        let method_name = method.to_string();
        let request = SigRequest { method: &method_name, url, headers: &headers };
        let scope = Scope { region: &grant.endpoint.region, service: "s3" };
        let signed = sigv4::sign_headers(&request, &payload, &grant.credentials, scope, self.now_ms())
            .ok_or_else(|| backend_error("the store's URL could not be signed".into()))?;
        let guard = RequestGuard::new(super::BACKEND_TIMEOUT_MS);
        let mut builder = RequestBuilder::new(url).method(method).abort_signal(Some(&guard.signal()));
        for (name, value) in headers.iter().chain(&signed) {
            builder = builder.header(name, value);
        }
        let failed = |e: gloo_net::Error| backend_error(format!("could not build {what}: {e}"));
        let request = match body {
            Some(body) => builder.body(body).map_err(failed)?,
            None => builder.build().map_err(failed)?,
        };
        let response = request.send().await.map_err(|_| self.heard.unreachable(what, &method_name))?;
        self.heard.answered();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        guard.finish();
        if (200..300).contains(&status) && !text.contains("<Error>") {
            return Ok(text);
        }
        let status = if (200..300).contains(&status) { 500 } else { status };
        Err(self.on_rejection(store_rejection(status, &text, what, None), &text))
    }

    /// Learns from a rejection ([`lesson`]): expired or unknown credentials are dropped, and a
    /// skewed clock is set to the store's time; both are then worth signing again.
    fn on_rejection(&self, error: UploadError, body: &str) -> UploadError {
        let fetched_ms = self.grant.borrow().as_ref().map(|g| g.fetched_ms);
        match self.clock.learn(body, fetched_ms) {
            Lesson::FetchNew => {
                self.grant.borrow_mut().take();
                error.with_observed(Observed::SignerLearnt)
            }
            Lesson::BackendFault => {
                self.grant.borrow_mut().take();
                backend_error(format!(
                    "the store refused credentials the backend had just handed out: {}",
                    error.message
                ))
            }
            Lesson::ClockOffset(_) => error.with_observed(Observed::SignerLearnt),
            Lesson::None => error,
        }
    }

    /// A presigned GET for showing `key`, valid while the credentials are.
    async fn display_url(&self, key: &str) -> Result<String, UploadError> {
        let grant = self.grant(false).await?;
        Ok(self.presign(&grant, "GET", &grant.endpoint.object_url(key), Vec::new())?.url)
    }
}

/// The headers an object is created with: its type, metadata and, for a multipart upload, the
/// checksum algorithm.
fn object_headers(file: &FileInfo, creation: bool) -> Vec<(String, String)> {
    let mut headers = vec![("content-type".to_owned(), file.content_type.clone())];
    headers.extend(metadata_headers(&file.metadata));
    match (file.checksum_algorithm, &file.checksum) {
        (Some(algorithm), _) if creation => headers.extend(algorithm.creation_headers()),
        (Some(algorithm), Some(checksum)) => headers.push((algorithm.header().into(), checksum.clone())),
        _ => {}
    }
    headers
}

impl Backend for CredentialsBackend {
    async fn create_multipart(&self, file: &FileInfo) -> Result<MultipartSession, UploadError> {
        let grant = self.grant(false).await?;
        let key = grant.key_for(file.key.as_deref(), &file.filename, BrowserRuntime.random())?;
        let url = format!("{}?uploads", grant.endpoint.object_url(&key));
        let answer = self.call(Method::POST, &url, object_headers(file, true), None, "CreateMultipartUpload").await?;
        let upload_id = xml_text(&answer, "UploadId")
            .ok_or_else(|| backend_error("the store's CreateMultipartUpload answer has no UploadId".into()))?;
        Ok(MultipartSession { key, upload_id: unescape(upload_id), checksum_algorithm: file.checksum_algorithm })
    }

    async fn sign_parts(
        &self,
        session: &MultipartSession,
        numbers: &[u32],
        checksums: Option<&[String]>,
        reason: SignReason,
    ) -> Result<Vec<SignedPart>, UploadError> {
        let grant = self.grant(reason == SignReason::Expired).await?;
        let object = grant.endpoint.object_url(&session.key);
        let upload_id = sigv4::uri_encode(&session.upload_id, true);
        let mut parts = Vec::with_capacity(numbers.len());
        for (i, &part_number) in numbers.iter().enumerate() {
            let headers = match (session.checksum_algorithm, checksums) {
                (Some(algorithm), Some(checksums)) => vec![(algorithm.header().to_owned(), checksums[i].clone())],
                _ => Vec::new(),
            };
            let url = format!("{object}?partNumber={part_number}&uploadId={upload_id}");
            parts.push(SignedPart { part_number, request: self.presign(&grant, "PUT", &url, headers)? });
        }
        Ok(parts)
    }

    async fn complete_multipart(
        &self,
        session: &MultipartSession,
        parts: &[CompletedPart],
        checksum: Option<&ObjectChecksum>,
    ) -> Result<CompletedObject, UploadError> {
        let grant = self.grant(false).await?;
        let object = grant.endpoint.object_url(&session.key);
        let url = format!("{object}?uploadId={}", sigv4::uri_encode(&session.upload_id, true));
        let body = complete_multipart_body(parts, session.checksum_algorithm)
            .ok_or_else(|| backend_error("a part has no checksum to complete the upload with".into()))?;
        let mut headers = vec![("content-type".to_owned(), "application/xml".to_owned())];
        if let Some(checksum) = checksum.filter(|c| c.kind == ChecksumType::FullObject) {
            headers.push((checksum.algorithm.header().to_owned(), checksum.value.clone()));
            headers.push(("x-amz-checksum-type".to_owned(), "FULL_OBJECT".to_owned()));
        }
        let answer = self.call(Method::POST, &url, headers, Some(body), "CompleteMultipartUpload").await?;
        let element = session.checksum_algorithm.map(|a| format!("Checksum{}", a.as_str()));
        Ok(CompletedObject {
            key: Some(session.key.clone()),
            location: Some(object),
            etag: xml_text(&answer, "ETag").map(unescape),
            display_url: Some(self.display_url(&session.key).await?),
            checksum: element.and_then(|e| xml_text(&answer, &e).map(str::to_owned)),
            checksum_type: xml_text(&answer, "ChecksumType").map(str::to_owned),
        })
    }

    async fn abort_multipart(&self, session: &MultipartSession) -> Result<(), UploadError> {
        let grant = self.grant(false).await?;
        let url = format!(
            "{}?uploadId={}",
            grant.endpoint.object_url(&session.key),
            sigv4::uri_encode(&session.upload_id, true)
        );
        self.call(Method::DELETE, &url, Vec::new(), None, "AbortMultipartUpload").await.map(|_| ())
    }

    async fn list_parts(&self, session: &MultipartSession) -> Result<Vec<ListedPart>, UploadError> {
        let grant = self.grant(false).await?;
        let base = format!(
            "{}?uploadId={}",
            grant.endpoint.object_url(&session.key),
            sigv4::uri_encode(&session.upload_id, true)
        );
        let page = |marker: Option<u32>| {
            let url = match marker {
                Some(marker) => format!("{base}&part-number-marker={marker}"),
                None => base.clone(),
            };
            async move { self.call(Method::GET, &url, Vec::new(), None, "ListParts").await }
        };
        all_listed_parts(page, || backend_error("the store's ListParts answer could not be read".into())).await
    }

    async fn sign_put(&self, file: &FileInfo, reason: SignReason) -> Result<SignedPut, UploadError> {
        let grant = self.grant(reason == SignReason::Expired).await?;
        let key = grant.key_for(file.key.as_deref(), &file.filename, BrowserRuntime.random())?;
        let request = self.presign(&grant, "PUT", &grant.endpoint.object_url(&key), object_headers(file, false))?;
        let display_url = Some(self.display_url(&key).await?);
        Ok(SignedPut { key, request, display_url })
    }

    /// A form POST signed in the page, for files sent in one request: unlike a PUT, it needs no
    /// CORS preflight. The policy admits exactly this key, type, metadata, checksum and size.
    async fn sign_post(&self, file: &FileInfo, reason: SignReason) -> Result<SignedPost, UploadError> {
        let grant = self.grant(reason == SignReason::Expired).await?;
        let key = grant.key_for(file.key.as_deref(), &file.filename, BrowserRuntime.random())?;
        let mut fields = vec![("key".to_owned(), key.clone())];
        fields.extend(object_headers(file, false).into_iter().map(|(name, value)| match name.as_str() {
            "content-type" => ("Content-Type".to_owned(), value),
            _ => (name, value),
        }));
        let now_ms = self.now_ms();
        let expires_ms = grant.url_expiry_ms(now_ms);
        let scope = Scope { region: &grant.endpoint.region, service: "s3" };
        let bucket = grant.endpoint.bucket();
        let fields = sigv4::sign_post_form(fields, bucket, file.size, &grant.credentials, scope, now_ms, expires_ms);
        let display_url = Some(self.display_url(&key).await?);
        Ok(SignedPost { key: Some(key), url: grant.endpoint.bucket_url(), fields, display_url })
    }
}
