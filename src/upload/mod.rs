//! The upload orchestrator: single PUT and multipart flows, generic over where requests go.
//!
//! Nothing here touches the browser. The flows talk to a [`Backend`] (who authorizes), a
//! [`Transport`] (who sends bytes to the store), a [`Source`] (who cuts the file), a [`Runtime`]
//! (time, timers, chance) and a [`ResumeStore`] (what survives a reload), so they run under plain
//! `cargo test` with fakes and in the browser with the real edges in `crate::web`.

mod hashing;
mod multipart;

use crate::checksum::{ChecksumAlgorithm, ObjectChecksum, PartDigest, object_checksum};
use crate::error::{ErrorCode, UploadError};
use crate::plan::{PlanOptions, UploadPlan, plan_upload};
use crate::progress::{MIN_REPORT_INTERVAL_MS, ProgressSnapshot, ProgressTracker, UploadState};
use crate::retry::{Backoff, RetryAction, RetryPolicy};
use crate::sigv4::is_expiring;
use async_lock::Semaphore;
use futures::future::{Either, select};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::ops::Range;
use std::pin::pin;
use std::task::{Poll, Waker};

/// What the backend is asked to authorize: the file as the browser sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// File name (`File.name`), or `"blob"` for a plain `Blob`.
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type the object is stored with.
    pub content_type: String,
    /// The key the caller would like; the backend has the last word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// User metadata (`x-amz-meta-*`), for the backend to sign or set.
    pub metadata: BTreeMap<String, String>,
    /// The checksum algorithm the parts will carry; the backend creates the upload with it (and
    /// echoes it) or leaves checksums out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// The file's checksum (base64), for a single PUT: the backend signs it into the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// For a multipart upload, the size of every part but the last: with it the backend knows
    /// each part's exact length and can sign it (`Content-Length`), so no part can be larger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
}

/// A multipart upload the backend created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultipartSession {
    /// Object key chosen by the backend.
    pub key: String,
    /// S3 upload id.
    pub upload_id: String,
    /// The checksum algorithm the backend created the upload with. When set, every part must
    /// carry a checksum the backend signed; when absent, the backend does not do checksums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// A presigned request: the URL and the headers that were signed with it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SignedRequest {
    /// Presigned URL. A secret: never logged, never put in an error.
    pub url: String,
    /// Headers to send exactly as given (they are part of the signature).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// One presigned part URL.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// Where and how to send it.
    #[serde(flatten)]
    pub request: SignedRequest,
}

/// A presigned single PUT.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPut {
    /// Object key chosen by the backend.
    pub key: String,
    /// Where and how to send the file.
    #[serde(flatten)]
    pub request: SignedRequest,
    /// A URL to show the object once stored (a presigned GET), if the backend gives one.
    #[serde(default)]
    pub display_url: Option<String>,
}

/// A signed POST policy: the form to post the file with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPost {
    /// Object key chosen by the backend (the form's `key` field when not given).
    #[serde(default)]
    pub key: Option<String>,
    /// The bucket URL the form is posted to.
    pub url: String,
    /// Form fields (policy, signature, credential, key, ...), sent in this order before the file.
    #[serde(deserialize_with = "fields_in_order")]
    pub fields: Vec<(String, String)>,
    /// A URL to show the object once stored (a presigned GET), if the backend gives one.
    #[serde(default)]
    pub display_url: Option<String>,
}

/// Reads a JSON object of form fields keeping the order of its keys (a map would sort them).
fn fields_in_order<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, String)>, D::Error> {
    struct InOrder;
    impl<'de> serde::de::Visitor<'de> for InOrder {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of form fields with string values")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut fields = Vec::new();
            while let Some(field) = map.next_entry()? {
                fields.push(field);
            }
            Ok(fields)
        }
    }
    deserializer.deserialize_map(InOrder)
}

/// A part the store accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// The `ETag` the store answered with.
    pub etag: String,
    /// The part's checksum (base64), when the upload has a checksum algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// A part the store already holds, as `listParts` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// Its `ETag`.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What the browser remembers of a multipart upload, so that it can be resumed after a reload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeRecord {
    /// Object key.
    pub key: String,
    /// S3 upload id.
    pub upload_id: String,
    /// Part size the upload was planned with; a different plan cannot reuse its parts.
    pub part_size: u64,
    /// When the upload was created (ms, the runtime's clock).
    pub created_ms: f64,
    /// The upload's checksum algorithm; parts must go on carrying the same.
    #[serde(default)]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// How long a resume record is trusted: 7 days, the usual period of an
/// `AbortIncompleteMultipartUpload` lifecycle rule, after which the parts are gone anyway.
pub const RESUME_RECORD_MAX_AGE_MS: f64 = 7.0 * 24.0 * 3600.0 * 1000.0;

/// Where resume records are kept (browser storage). Failures are swallowed by implementations:
/// a full or forbidden storage must never break an upload.
pub trait ResumeStore {
    /// The record kept under `fingerprint`, if any.
    fn load(&self, fingerprint: &str) -> Option<ResumeRecord>;
    /// Keeps `record` under `fingerprint`.
    fn save(&self, fingerprint: &str, record: &ResumeRecord);
    /// Forgets the record under `fingerprint`.
    fn remove(&self, fingerprint: &str);
}

/// Resumption for one upload: where records live, and the file's fingerprint.
pub struct Resume<'a> {
    /// The record store.
    pub store: &'a dyn ResumeStore,
    /// Identifies the file (and backend) across page loads.
    pub fingerprint: String,
}

/// What the backend says about the finished object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletedObject {
    /// Object key, when the backend repeats it.
    #[serde(default)]
    pub key: Option<String>,
    /// Object URL (no signature).
    #[serde(default)]
    pub location: Option<String>,
    /// Object `ETag`.
    #[serde(default)]
    pub etag: Option<String>,
    /// A URL to show the object (a presigned GET), if the backend gives one.
    #[serde(default)]
    pub display_url: Option<String>,
    /// The object checksum the store reported when it assembled the object (base64, with `-N`
    /// when composite), as the backend passes it on.
    #[serde(default)]
    pub checksum: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE`, as the store reported it.
    #[serde(default)]
    pub checksum_type: Option<String>,
}

/// The result of a finished upload, as `upload.done` resolves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredObject {
    /// Object key.
    pub key: String,
    /// Object URL without any signature.
    pub location: Option<String>,
    /// Object `ETag`, when the store exposes it.
    pub etag: Option<String>,
    /// Presigned GET URL for showing the object, when the backend gives one.
    pub display_url: Option<String>,
    /// Bytes stored.
    pub size: u64,
    /// S3 upload id, for multipart uploads.
    pub upload_id: Option<String>,
    /// Number of parts, for multipart uploads.
    pub parts: Option<u32>,
    /// The object's checksum as computed from the file, when the store checked the bytes against
    /// checksums; `None` when the backend did not sign any.
    pub checksum: Option<ObjectChecksum>,
}

/// Why a request is being signed: a backend that holds credentials (the credentials mode)
/// refreshes them only when the store refused the last URL as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SignReason {
    /// The first URL for this request.
    First,
    /// The last URL expired, or the store refused it as expired (or its credentials as such).
    Expired,
}

/// The application's backend: it decides keys and limits and signs requests.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// Starts a multipart upload for `file`.
    async fn create_multipart(&self, file: &FileInfo) -> Result<MultipartSession, UploadError>;
    /// Presigns `UploadPart` for each of `numbers`, with `checksums[i]` (base64) signed into the
    /// URL of `numbers[i]` when the upload has a checksum algorithm.
    async fn sign_parts(
        &self,
        session: &MultipartSession,
        numbers: &[u32],
        checksums: Option<&[String]>,
        reason: SignReason,
    ) -> Result<Vec<SignedPart>, UploadError>;
    /// Assembles the object from `parts` (sorted by number); `checksum` is the object checksum
    /// the store is to check the assembled object against.
    async fn complete_multipart(
        &self,
        session: &MultipartSession,
        parts: &[CompletedPart],
        checksum: Option<&ObjectChecksum>,
    ) -> Result<CompletedObject, UploadError>;
    /// Abandons the upload so the store frees its parts.
    async fn abort_multipart(&self, session: &MultipartSession) -> Result<(), UploadError>;
    /// The parts the store already holds for the upload.
    async fn list_parts(&self, session: &MultipartSession) -> Result<Vec<ListedPart>, UploadError>;
    /// Presigns a single `PutObject` for `file`.
    async fn sign_put(&self, file: &FileInfo, reason: SignReason) -> Result<SignedPut, UploadError>;
    /// Signs a POST policy for an HTML-form upload of `file`.
    async fn sign_post(&self, file: &FileInfo, reason: SignReason) -> Result<SignedPost, UploadError>;
}

/// What the store answered to a PUT or a form POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The `ETag`, or `None` when the browser cannot read it.
    pub etag: Option<String>,
}

/// What a request carries to the store.
pub enum Payload<'a, B> {
    /// `PUT` with a slice of the file as the body.
    Put(B),
    /// `POST` of an HTML form: the `fields` in order, then the file (POST policy uploads).
    Form {
        /// Form fields, sent before the file.
        fields: &'a [(String, String)],
        /// The file name the form gives the file.
        filename: &'a str,
        /// The file.
        file: B,
    },
}

/// Sends bytes to the store.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// A request body: a slice of the file, never a copy of its bytes.
    type Body;
    /// Sends `payload` to the presigned `request` (its URL and headers). `what` names the
    /// request in errors ("part 3", "the file"), since the URL may not appear there. A transport
    /// that can see upload progress calls `sent` with the bytes of the body sent so far.
    async fn send(
        &self,
        request: &SignedRequest,
        payload: Payload<'_, Self::Body>,
        what: &str,
        sent: &dyn Fn(u64),
    ) -> Result<PutOutcome, UploadError>;
}

/// The file being uploaded.
#[allow(async_fn_in_trait)]
pub trait Source {
    /// What a slice of it is, as the transport sends it.
    type Body;
    /// Size in bytes.
    fn size(&self) -> u64;
    /// The bytes in `range`, as a body.
    fn slice(&self, range: Range<u64>) -> Self::Body;
    /// Reads the bytes in `range` into `into` (replacing its contents), for hashing.
    async fn read(&self, range: Range<u64>, into: &mut Vec<u8>) -> Result<(), UploadError>;
}

/// Time and chance, as the orchestrator needs them.
#[allow(async_fn_in_trait)]
pub trait Runtime {
    /// Milliseconds since some fixed origin.
    fn now_ms(&self) -> f64;
    /// Resolves after `ms` milliseconds.
    async fn sleep(&self, ms: f64);
    /// A number uniform in `[0, 1)`, for backoff jitter.
    fn random(&self) -> f64;
}

/// What one upload needs from the uploader that runs it.
pub struct UploadContext<'a, B, T, C> {
    /// Who authorizes.
    pub backend: &'a B,
    /// Who sends.
    pub transport: &'a T,
    /// The uploader-wide request budget, shared by all files.
    pub budget: &'a Semaphore,
    /// Most requests this one file may have in flight.
    pub concurrency: usize,
    /// Part size and threshold.
    pub plan_options: PlanOptions,
    /// Time and chance.
    pub runtime: &'a C,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
    /// The caller's abort and pause switches for this upload.
    pub control: &'a UploadControl,
    /// On while the browser is offline (shared by every upload of an uploader).
    pub offline: &'a Flag,
    /// How to resume this upload after a reload; `None` turns resumption off.
    pub resume: Option<Resume<'a>>,
    /// The checksum every part carries, or `None` for none.
    pub checksum: Option<ChecksumAlgorithm>,
    /// Which files go up as one HTML-form POST under a signed policy instead of presigned PUTs.
    pub post_forms: PostForms,
}

/// Which files are sent as HTML-form POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostForms {
    /// None: single PUTs and multipart uploads.
    Never,
    /// Files small enough for one request. A form POST is a CORS "simple request": unlike a
    /// PUT, it needs no preflight, so it saves a round trip per file.
    SmallFiles,
    /// Every file (up to 5 GiB).
    Always,
}

/// The wakers of futures waiting for a condition on some shared value.
#[derive(Debug, Default)]
struct Waiters(RefCell<Vec<Waker>>);

impl Waiters {
    /// Wakes every waiter, to check its condition again.
    fn wake_all(&self) {
        for waker in self.0.take() {
            waker.wake();
        }
    }

    /// Resolves once `ready()` holds; it is checked again after each `wake_all`.
    async fn until(&self, ready: impl Fn() -> bool) {
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
    async fn wait_unless_aborted(&self, wait: impl Future<Output = ()>) -> Result<(), UploadError> {
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

/// Progress of one upload, shared by the parts in flight. Borrowed only between awaits.
pub struct ProgressReporter<'a, C> {
    tracker: RefCell<ProgressTracker>,
    key: RefCell<Option<String>>,
    runtime: &'a C,
    sink: &'a dyn Fn(&ProgressSnapshot, Option<&str>),
    /// On while a report is held back by the throttle.
    held: Flag,
}

impl<'a, C: Runtime> ProgressReporter<'a, C> {
    /// A reporter for `total` bytes that hands reports to `sink` (with the key, once known).
    pub fn new(total: u64, runtime: &'a C, sink: &'a dyn Fn(&ProgressSnapshot, Option<&str>)) -> Self {
        ProgressReporter {
            tracker: RefCell::new(ProgressTracker::new(total, runtime.now_ms())),
            key: RefCell::new(None),
            runtime,
            sink,
            held: Flag::default(),
        }
    }

    fn set_key(&self, key: &str) {
        *self.key.borrow_mut() = Some(key.to_owned());
    }

    /// Parts a resumed upload finds already stored.
    fn already_stored(&self, bytes: u64) {
        self.tracker.borrow_mut().already_stored(bytes);
        self.emit();
    }

    /// `bytes` more of the file were read and hashed.
    fn hashed(&self, bytes: u64) {
        self.tracker.borrow_mut().hashed(bytes);
        self.emit();
    }

    fn sending(&self, part: u32, sent: u64) {
        self.tracker.borrow_mut().sending(part, sent, self.runtime.now_ms());
        self.emit();
    }

    fn stored(&self, part: u32, bytes: u64) {
        self.tracker.borrow_mut().stored(part, bytes, self.runtime.now_ms());
        self.emit();
    }

    /// Takes back what a failed or interrupted attempt of `part` had sent.
    fn restart(&self, part: u32) {
        self.tracker.borrow_mut().restart(part);
    }

    /// Moves to `state` and reports it.
    pub fn set_state(&self, state: UploadState) {
        self.tracker.borrow_mut().set_state(state);
        self.emit();
    }

    fn emit(&self) {
        let report = self.tracker.borrow_mut().report(self.runtime.now_ms());
        match report {
            Some(snapshot) => {
                self.held.set(false);
                let key = self.key.borrow().clone();
                (self.sink)(&snapshot, key.as_deref());
            }
            None => self.held.set(true),
        }
    }

    /// Sends a report the throttle held back once it is due. Without this, the last figures
    /// before progress stops (a stall, a pause, a slow part) would never reach the page.
    /// Runs until dropped.
    async fn send_held_reports(&self) -> std::convert::Infallible {
        loop {
            self.held.until(true).await;
            self.runtime.sleep(MIN_REPORT_INTERVAL_MS).await;
            if self.held.is_on() {
                self.emit();
            }
        }
    }
}

/// Uploads `source` as described by `file`, reporting through `progress`.
///
/// Plans the upload, then runs a single PUT or the multipart flow. When a multipart upload was
/// created and anything fails, the backend is asked to abort it before the error is returned, so
/// no orphaned upload is left behind.
pub async fn upload_file<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    file: &FileInfo,
    progress: &ProgressReporter<'_, C>,
) -> Result<StoredObject, UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let work = async {
        if cx.post_forms == PostForms::Always {
            return cx.control.unless_aborted(post_form(cx, source, file, progress)).await;
        }
        match plan_upload(source.size(), &cx.plan_options)? {
            UploadPlan::SinglePut { .. } if cx.post_forms == PostForms::SmallFiles => {
                cx.control.unless_aborted(post_form(cx, source, file, progress)).await
            }
            UploadPlan::SinglePut { size } => {
                cx.control.unless_aborted(single_put(cx, source, file, size, progress)).await
            }
            UploadPlan::Multipart(plan) => multipart::run(cx, source, file, plan, progress).await,
        }
    };
    match select(pin!(work), pin!(progress.send_held_reports())).await {
        Either::Left((result, _)) => result,
        Either::Right((never, _)) => match never {},
    }
}

async fn single_put<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    file: &FileInfo,
    size: u64,
    progress: &ProgressReporter<'_, C>,
) -> Result<StoredObject, UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let (file, digest) = hash_whole_file(cx, source, file, progress).await?;
    let file = &file;
    // The URL is signed inside the attempt, so an expired one (refused, or past its expiry
    // before it is sent) is replaced by a fresh one on the retry.
    let signed: RefCell<Option<SignedPut>> = RefCell::new(None);
    let (signed, outcome) = with_retries(cx, progress, Interrupt::OnPause, |resign| {
        let signed = &signed;
        async move {
            let current = signed.borrow().clone();
            let expiring = current.as_ref().is_some_and(|p| is_expiring(&p.request.url, cx.runtime.now_ms()));
            let put = match current.filter(|_| !resign && !expiring) {
                Some(put) => put,
                None => {
                    let reason = if resign || expiring { SignReason::Expired } else { SignReason::First };
                    let put = cx.backend.sign_put(file, reason).await?;
                    progress.set_key(&put.key);
                    *signed.borrow_mut() = Some(put.clone());
                    put
                }
            };
            progress.restart(1);
            let _slot = cx.budget.acquire().await;
            progress.set_state(UploadState::Uploading);
            let sent = |bytes| progress.sending(1, bytes);
            let request = with_content_type(&put.request, &file.content_type);
            let outcome = cx.transport.send(&request, Payload::Put(source.slice(0..size)), "the file", &sent).await;
            if outcome.is_err() {
                progress.restart(1);
            }
            Ok((put, outcome?))
        }
    })
    .await?;
    progress.stored(1, size);
    // The store checked the bytes only if the backend signed the checksum (else it was not sent).
    let checksum = cx
        .checksum
        .zip(digest)
        .filter(|(algorithm, digest)| hashing::signs_checksum(&signed.request, *algorithm, &digest.base64()));
    Ok(StoredObject {
        checksum: checksum.map(|(algorithm, digest)| object_checksum(algorithm, &[digest], false)),
        location: Some(without_query(&signed.request.url)),
        key: signed.key,
        etag: outcome.etag,
        display_url: signed.display_url,
        size,
        upload_id: None,
        parts: None,
    })
}

/// `request` with the content type the file was declared with, unless the backend's headers
/// name one: a backend that signs the type into the URL (boto3's `ContentType`) and answers with
/// the URL alone needs the page to send exactly it, and a slice of a `Blob` carries no type.
fn with_content_type(request: &SignedRequest, content_type: &str) -> SignedRequest {
    let mut request = request.clone();
    if !request.headers.keys().any(|name| name.eq_ignore_ascii_case("content-type")) {
        request.headers.insert("content-type".to_owned(), content_type.to_owned());
    }
    request
}

/// Hashes the whole file (when checksums are on) before its one request is signed, since the
/// checksum is signed in; the file described with its checksum, and the digest.
async fn hash_whole_file<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    file: &FileInfo,
    progress: &ProgressReporter<'_, C>,
) -> Result<(FileInfo, Option<PartDigest>), UploadError>
where
    S: Source,
    C: Runtime,
{
    let mut digest = None;
    if let Some(algorithm) = cx.checksum {
        let whole = [(1, 0..source.size())];
        hashing::hash_parts(cx, source, &whole, algorithm, progress, |_, d| digest = Some(d)).await?;
    }
    let checksum = digest.as_ref().map(|d| d.base64());
    Ok((FileInfo { checksum_algorithm: cx.checksum, checksum, ..file.clone() }, digest))
}

/// Most bytes one POST can store (S3's limit for a single upload).
const MAX_POST_SIZE: u64 = 5 << 30;

/// Uploads the whole file as one HTML-form POST under a policy the backend signs; the store
/// checks the policy (key prefix, size range, content type, expiry).
async fn post_form<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    file: &FileInfo,
    progress: &ProgressReporter<'_, C>,
) -> Result<StoredObject, UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let size = source.size();
    if size > MAX_POST_SIZE {
        return Err(UploadError::new(
            ErrorCode::FileTooLarge,
            format!("the file is {size} bytes; a form POST stores at most 5 GiB (use presigned multipart uploads)"),
        ));
    }
    let (file, digest) = hash_whole_file(cx, source, file, progress).await?;
    let file = &file;
    let signed: RefCell<Option<SignedPost>> = RefCell::new(None);
    let (post, outcome) = with_retries(cx, progress, Interrupt::OnPause, |resign| {
        let signed = &signed;
        async move {
            let current = signed.borrow().clone();
            let post = match current.filter(|_| !resign) {
                Some(post) => post,
                None => {
                    let reason = if resign { SignReason::Expired } else { SignReason::First };
                    let post = cx.backend.sign_post(file, reason).await?;
                    *signed.borrow_mut() = Some(post.clone());
                    post
                }
            };
            if let Some(key) = post.key.as_ref().or(form_field(&post, "key")) {
                progress.set_key(key);
            }
            progress.restart(1);
            let _slot = cx.budget.acquire().await;
            progress.set_state(UploadState::Uploading);
            let form = Payload::Form { fields: &post.fields, filename: &file.filename, file: source.slice(0..size) };
            let request = SignedRequest { url: post.url.clone(), headers: BTreeMap::new() };
            let sent = |bytes| progress.sending(1, bytes);
            let outcome = cx.transport.send(&request, form, "the file", &sent).await;
            if outcome.is_err() {
                progress.restart(1);
            }
            Ok((post, outcome?))
        }
    })
    .await?;
    progress.stored(1, size);
    let key = post.key.clone().or_else(|| form_field(&post, "key").cloned()).unwrap_or_default();
    // The store checked the bytes only if the policy carries the checksum (else it was not sent).
    let checksum = cx
        .checksum
        .zip(digest)
        .filter(|(algorithm, digest)| form_field(&post, algorithm.header()) == Some(&digest.base64()));
    Ok(StoredObject {
        location: Some(crate::endpoint::object_url_in(&post.url, &key)),
        key,
        etag: outcome.etag,
        display_url: post.display_url,
        size,
        upload_id: None,
        parts: None,
        checksum: checksum.map(|(algorithm, digest)| object_checksum(algorithm, &[digest], false)),
    })
}

/// The value of the form field `name` (case-insensitive, as S3 reads field names).
fn form_field<'a>(post: &'a SignedPost, name: &str) -> Option<&'a String> {
    post.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// Whether a pause cancels the request in flight.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Interrupt {
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

/// Runs `attempt` until it succeeds, retrying transient failures as the [`RetryPolicy`] allows.
/// `attempt` is told whether to get a fresh URL first (the last one expired). Attempts that a
/// pause cut short, or that failed while the browser was offline, do not count as retries. An
/// abort stops the waiting and the retrying, not an attempt under way: a failure then is
/// returned as it is, and one not yet begun is `aborted`.
async fn with_retries<B, T, C, V, F>(
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
    loop {
        cx.control.wait_unless_aborted(hold(cx, progress)).await?;
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
            Err(_) if cx.offline.is_on() => continue,
            Err(error) if error.retry == RetryAction::Fail => return Err(error),
            Err(error) => error,
        };
        resign = error.retry == RetryAction::Resign;
        match backoff.next_wait(cx.runtime.now_ms(), cx.runtime.random()) {
            Some(wait) => cx.control.wait_unless_aborted(cx.runtime.sleep(wait)).await?,
            None => {
                let retries = backoff.retries();
                return Err(error.context(&format!("gave up after {retries} retries")));
            }
        }
    }
}

/// The object URL of a presigned URL: everything before the query, which holds the signature.
fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

/// The error for a part whose `ETag` the browser could not read.
fn etag_not_exposed(what: &str) -> UploadError {
    UploadError::new(
        ErrorCode::EtagNotExposed,
        format!(
            "the store accepted {what} but the browser cannot read its ETag header, which \
             CompleteMultipartUpload needs: add \"ETag\" to ExposeHeaders in the bucket's CORS \
             configuration"
        ),
    )
}

#[cfg(test)]
mod tests;
