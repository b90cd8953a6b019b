//! The orchestrator's ports: who authorizes ([`Backend`]), who sends ([`Transport`]), what is
//! sent ([`Source`]), and time and chance ([`Runtime`]). The browser edges implement them in
//! `crate::web`; the tests with fakes.

use super::wire::{
    CompletedObject, CompletedPart, FileInfo, ListedPart, MultipartSession, SignReason, SignedPart, SignedPost,
    SignedPut, SignedRequest, SignedWhole,
};
use crate::checksum::ObjectChecksum;
use crate::error::UploadError;
use std::ops::Range;

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
    /// Signs `file`'s one request in the presigned mode: a PUT, or a form POST where the
    /// backend answers with one. By default a PUT ([`Backend::sign_put`]).
    async fn sign_whole(&self, file: &FileInfo, reason: SignReason) -> Result<SignedWhole, UploadError> {
        Ok(SignedWhole::Put(self.sign_put(file, reason).await?))
    }
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
    /// Resolves in a task of its own, after what else is queued: long work (hashing) awaits it
    /// between pieces, so that a page's main thread never runs one long task.
    async fn next_task(&self);
}
