//! The credentials mode: the backend hands out temporary credentials scoped to a key prefix, and
//! the page signs every S3 request itself (SigV4 in wasm) and talks to the store directly, with no
//! backend round trip per part. Credentials are fetched again before they expire, after the store
//! says they expired, and the clock is corrected from the store's when it says it is off.

use super::backend::{CallbackBackend, HttpBackend, backend_error};
use super::{RequestGuard, store_rejection, store_unreachable};
use crate::checksum::{ChecksumAlgorithm, ChecksumType, ObjectChecksum, digest, hex};
use crate::endpoint::{Endpoint, EndpointOptions};
use crate::error::{ErrorCode, UploadError};
use crate::object_rules::{check_key, check_prefix, metadata_headers, safe_file_name};
use crate::retry::RetryAction;
use crate::s3_xml::{all_listed_parts, complete_multipart_body, unescape, xml_text};
use crate::sigv4::{self, Credentials, EMPTY_PAYLOAD_SHA256, Request as SigRequest, Scope, iso_8601_ms};
use crate::upload::{
    Backend, CompletedObject, CompletedPart, FileInfo, ListedPart, MultipartSession, SignReason, SignedPart,
    SignedPost, SignedPut, SignedRequest,
};
use futures::lock::Mutex;
use gloo_net::http::{Method, RequestBuilder};
use js_sys::Function;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Where grants come from.
pub(crate) enum GrantSource {
    /// `POST {base}/credentials` of the JSON contract.
    Http(HttpBackend),
    /// The `getCredentials` callback.
    Callback(Function),
}

/// A grant as the backend answers it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrantAnswer {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
    expiration: String,
    region: String,
    bucket: String,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    force_path_style: bool,
    #[serde(default)]
    accelerate: bool,
    #[serde(default)]
    dualstack: bool,
    key_prefix: String,
}

/// Temporary credentials in use.
struct Grant {
    credentials: Credentials,
    /// When they expire, on the store's clock (ms).
    expires_ms: f64,
    /// When they were fetched, on the store's clock (ms).
    fetched_ms: f64,
    endpoint: Endpoint,
    key_prefix: String,
}

impl Grant {
    /// Whether to fetch new credentials before signing at `now_ms`: within 5 minutes of expiry, or
    /// past half their life when they are short-lived.
    fn is_expiring(&self, now_ms: f64) -> bool {
        let margin = (5.0 * 60_000.0_f64).min((self.expires_ms - self.fetched_ms) / 2.0);
        now_ms >= self.expires_ms - margin
    }
}

/// Credentials refused within this long of being fetched are the backend's fault, not age's.
const FRESH_GRANT_MS: f64 = 10_000.0;

/// How long the page's own presigned URLs last (part PUTs, single PUTs): 15 minutes, and never
/// past the credentials.
const URL_LIFETIME_S: f64 = 900.0;

/// A [`Backend`] that signs every request in the page with temporary credentials.
pub(crate) struct CredentialsBackend {
    source: GrantSource,
    grant: RefCell<Option<Rc<Grant>>>,
    /// One fetch of credentials at a time.
    fetching: Mutex<()>,
    /// Added to the local clock to get the store's, learned from `RequestTimeTooSkewed`.
    clock_offset_ms: Cell<f64>,
}

impl CredentialsBackend {
    /// A backend getting its credentials from `source`.
    pub(crate) fn new(source: GrantSource) -> Self {
        CredentialsBackend {
            source,
            grant: RefCell::new(None),
            fetching: Mutex::new(()),
            clock_offset_ms: Cell::new(0.0),
        }
    }

    /// Names the source in resume fingerprints.
    pub(crate) fn identity(&self) -> String {
        match &self.source {
            GrantSource::Http(http) => format!("credentials:{}", http.base()),
            GrantSource::Callback(_) => "credentials:callback".into(),
        }
    }

    fn now_ms(&self) -> f64 {
        js_sys::Date::now() + self.clock_offset_ms.get()
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
        let answer: GrantAnswer = match &self.source {
            GrantSource::Http(http) => http.post("/credentials", &BTreeMap::<String, String>::new()).await?,
            GrantSource::Callback(get) => CallbackBackend::call("getCredentials", Some(get), &()).await?,
        };
        let grant = Rc::new(self.checked(answer)?);
        *self.grant.borrow_mut() = Some(grant.clone());
        Ok(grant)
    }

    /// The grant `answer` describes, or a `backend_error` saying what is wrong (never quoting
    /// the secret or the token).
    fn checked(&self, answer: GrantAnswer) -> Result<Grant, UploadError> {
        let bad = |what: &str| backend_error(format!("the backend's credentials are unusable: {what}"));
        if answer.access_key_id.is_empty() || answer.secret_access_key.is_empty() {
            return Err(bad("`accessKeyId` and `secretAccessKey` must not be empty"));
        }
        let expires_ms = iso_8601_ms(&answer.expiration)
            .ok_or_else(|| bad(&format!("`expiration` {:?} is not an ISO 8601 time", answer.expiration)))?;
        // Credentials that look expired may only mean this device's clock is off: the store's
        // answer (RequestTimeTooSkewed, or ExpiredToken) tells.
        let now_ms = self.now_ms();
        check_prefix(&answer.key_prefix).map_err(|e| bad(&format!("`keyPrefix`: {e}")))?;
        let endpoint = Endpoint::new(&EndpointOptions {
            bucket: &answer.bucket,
            region: &answer.region,
            endpoint: answer.endpoint.as_deref(),
            force_path_style: answer.force_path_style,
            accelerate: answer.accelerate,
            dualstack: answer.dualstack,
        })
        .map_err(|e| bad(&e))?;
        Ok(Grant {
            credentials: Credentials {
                access_key_id: answer.access_key_id,
                secret_access_key: answer.secret_access_key,
                session_token: answer.session_token.filter(|t| !t.is_empty()),
            },
            expires_ms,
            fetched_ms: now_ms,
            endpoint,
            key_prefix: answer.key_prefix,
        })
    }

    /// Presigns `method` on `url` with `headers` with `grant`'s credentials.
    fn presign(
        &self,
        grant: &Grant,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
    ) -> Result<SignedRequest, UploadError> {
        let lifetime_s = URL_LIFETIME_S.min((grant.expires_ms - self.now_ms()) / 1000.0).max(1.0) as u32;
        let request = SigRequest { method, url, headers: &headers };
        let scope = Scope { region: &grant.endpoint.region, service: "s3" };
        let signed = sigv4::presign(&request, &grant.credentials, scope, self.now_ms(), lifetime_s)
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
        let response = request.send().await.map_err(|_| store_unreachable(what, &method_name))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if (200..300).contains(&status) && !text.contains("<Error>") {
            return Ok(text);
        }
        let status = if (200..300).contains(&status) { 500 } else { status };
        Err(self.on_rejection(store_rejection(status, &text, what, None), &text))
    }

    /// Learns from a rejection: an expired or unknown token drops the credentials, and a skewed
    /// clock is set to the store's time; both are then worth signing again.
    fn on_rejection(&self, error: UploadError, body: &str) -> UploadError {
        match xml_text(body, "Code") {
            Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" | "InvalidAccessKeyId") => {
                let grant = self.grant.borrow_mut().take();
                if grant.is_some_and(|g| self.now_ms() - g.fetched_ms < FRESH_GRANT_MS) {
                    // Refused as soon as they were handed out: new ones will not be better.
                    return backend_error(format!(
                        "the store refused credentials the backend had just handed out: {}",
                        error.message
                    ));
                }
                error.with_retry(RetryAction::Resign)
            }
            Some("RequestTimeTooSkewed") => {
                if let Some(server_ms) = xml_text(body, "ServerTime").and_then(iso_8601_ms) {
                    self.clock_offset_ms.set(server_ms - js_sys::Date::now());
                }
                error.with_retry(RetryAction::Resign)
            }
            _ => error,
        }
    }

    /// The key of `file`: the requested one under the grant's prefix, or a fresh one there.
    fn key_for(file: &FileInfo, grant: &Grant) -> Result<String, UploadError> {
        match &file.key {
            Some(key) => {
                check_key(key).map_err(|e| UploadError::new(ErrorCode::InvalidOption, e.0))?;
                Ok(format!("{}{key}", grant.key_prefix))
            }
            None => {
                let folder = (js_sys::Math::random() * 2f64.powi(52)) as u64;
                Ok(format!("{}{folder:013x}/{}", grant.key_prefix, safe_file_name(&file.filename)))
            }
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
        let key = Self::key_for(file, &grant)?;
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
        let key = Self::key_for(file, &grant)?;
        let request = self.presign(&grant, "PUT", &grant.endpoint.object_url(&key), object_headers(file, false))?;
        let display_url = Some(self.display_url(&key).await?);
        Ok(SignedPut { key, request, display_url })
    }

    /// A form POST signed in the page, for files sent in one request: unlike a PUT, it needs no
    /// CORS preflight. The policy admits exactly this key, type, metadata, checksum and size.
    async fn sign_post(&self, file: &FileInfo, reason: SignReason) -> Result<SignedPost, UploadError> {
        let grant = self.grant(reason == SignReason::Expired).await?;
        let key = Self::key_for(file, &grant)?;
        let mut fields = vec![("key".to_owned(), key.clone())];
        fields.extend(object_headers(file, false).into_iter().map(|(name, value)| match name.as_str() {
            "content-type" => ("Content-Type".to_owned(), value),
            _ => (name, value),
        }));
        let now_ms = self.now_ms();
        let expires_ms = grant.expires_ms.min(now_ms + URL_LIFETIME_S * 1000.0);
        let scope = Scope { region: &grant.endpoint.region, service: "s3" };
        let bucket = grant.endpoint.bucket();
        let fields = sigv4::sign_post_form(fields, bucket, file.size, &grant.credentials, scope, now_ms, expires_ms);
        let display_url = Some(self.display_url(&key).await?);
        Ok(SignedPost { key: Some(key), url: grant.endpoint.bucket_url(), fields, display_url })
    }
}
