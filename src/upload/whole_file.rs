//! Files sent in one request: a presigned PUT, or an HTML-form POST under a signed policy.

use super::attempt::{Interrupt, with_retries};
use super::context::UploadContext;
use super::hashing;
use super::ports::{Backend, Payload, Runtime, Source, Transport};
use super::reporter::ProgressReporter;
use super::wire::{FileInfo, SignReason, SignedPost, SignedRequest, SignedWhole, StoredObject};
use crate::checksum::{ChecksumAlgorithm, PartDigest, object_checksum};
use crate::endpoint::object_url_in;
use crate::error::{ErrorCode, UploadError};
use crate::sigv4::is_expiring;
use crate::string_map::StringMap;
use std::cell::RefCell;

/// How a file sent in one request goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OneRequest {
    /// A presigned `PutObject`, or the form POST a backend answers with instead.
    Put,
    /// An HTML-form POST under a policy the backend signs; the store checks the policy (key
    /// prefix, size, content type, expiry).
    Form,
}

impl SignedWhole {
    /// The object key, when known before the upload.
    fn key(&self) -> Option<&str> {
        match self {
            SignedWhole::Put(put) => Some(&put.key),
            SignedWhole::Form(post) => post.key.as_deref().or(form_field(post, "key").map(String::as_str)),
        }
    }

    /// Whether the URL is expired or about to be (a policy's expiry is not in its URL).
    fn expiring(&self, now_ms: f64) -> bool {
        matches!(self, SignedWhole::Put(put) if is_expiring(&put.request.url, now_ms))
    }

    /// Whether the store is to check the bytes against `checksum`: only if the backend signed
    /// it in (else it was not sent).
    fn carries(&self, algorithm: ChecksumAlgorithm, checksum: &str) -> bool {
        match self {
            SignedWhole::Put(put) => hashing::signs_checksum(&put.request, algorithm, checksum),
            SignedWhole::Form(post) => form_field(post, algorithm.header()).is_some_and(|v| v == checksum),
        }
    }

    /// The stored object's URL, without any signature.
    fn location(&self) -> String {
        match self {
            SignedWhole::Put(put) => without_query(&put.request.url),
            SignedWhole::Form(post) => object_url_in(&post.url, self.key().unwrap_or_default()),
        }
    }

    fn display_url(self) -> Option<String> {
        match self {
            SignedWhole::Put(put) => put.display_url,
            SignedWhole::Form(post) => post.display_url,
        }
    }
}

/// Uploads the whole file in one request, `how` says which, hashing it first when checksums
/// are on (the checksum is signed in). The request is signed inside the attempt, so an expired
/// one (refused, or past its expiry before it is sent) is replaced on the retry; any other
/// retry reuses it.
pub(super) async fn send_whole_file<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    file: &FileInfo,
    how: OneRequest,
    progress: &ProgressReporter<'_, C>,
) -> Result<StoredObject, UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let size = source.size();
    if how == OneRequest::Form && size > MAX_POST_SIZE {
        return Err(UploadError::new(
            ErrorCode::FileTooLarge,
            format!("the file is {size} bytes; a form POST stores at most 5 GiB (use presigned multipart uploads)"),
        ));
    }
    let (file, digest) = hash_whole_file(cx, source, file, progress).await?;
    let file = &file;
    let signed: RefCell<Option<SignedWhole>> = RefCell::new(None);
    let (signed, outcome) = with_retries(cx, progress, Interrupt::OnPause, |resign| {
        let signed = &signed;
        async move {
            let current = signed.borrow().clone();
            let expiring = current.as_ref().is_some_and(|s| s.expiring(cx.runtime.now_ms()));
            let chosen = match current.filter(|_| !resign && !expiring) {
                Some(chosen) => chosen,
                None => {
                    let reason = if resign || expiring { SignReason::Expired } else { SignReason::First };
                    let fresh = match how {
                        OneRequest::Put => cx.backend.sign_whole(file, reason).await?,
                        OneRequest::Form => SignedWhole::Form(cx.backend.sign_post(file, reason).await?),
                    };
                    if let Some(key) = fresh.key() {
                        progress.set_key(key);
                    }
                    *signed.borrow_mut() = Some(fresh.clone());
                    fresh
                }
            };
            progress.restart(1);
            let body = source.slice(0..size);
            let (request, payload) = match &chosen {
                SignedWhole::Put(put) => (with_content_type(&put.request, &file.content_type), Payload::Put(body)),
                SignedWhole::Form(post) => (
                    SignedRequest { url: post.url.clone(), headers: StringMap::new() },
                    Payload::Form { fields: &post.fields, filename: &file.filename, file: body },
                ),
            };
            let outcome = cx.send_to_store(&request, payload, 1, size, "the file", progress).await?;
            Ok((chosen, outcome))
        }
    })
    .await?;
    progress.stored(1, size);
    let checksum = cx.checksum.zip(digest).filter(|(algorithm, digest)| signed.carries(*algorithm, &digest.base64()));
    Ok(StoredObject {
        checksum: checksum.map(|(algorithm, digest)| object_checksum(algorithm, &[digest], false)),
        location: Some(signed.location()),
        key: signed.key().unwrap_or_default().to_owned(),
        etag: outcome.etag,
        display_url: signed.display_url(),
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
        let _place = cx.hashing.acquire(cx.priority).await;
        let whole = [(1, 0..source.size())];
        hashing::hash_parts(cx, source, &whole, algorithm, progress, |_, d| digest = Some(d)).await?;
    }
    let checksum = digest.as_ref().map(|d| d.base64());
    Ok((FileInfo { checksum_algorithm: cx.checksum, checksum, ..file.clone() }, digest))
}

/// Most bytes one POST can store (S3's limit for a single upload).
const MAX_POST_SIZE: u64 = 5 << 30;

/// The value of the form field `name` (case-insensitive, as S3 reads field names).
fn form_field<'a>(post: &'a SignedPost, name: &str) -> Option<&'a String> {
    post.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The object URL of a presigned URL: everything before the query, which holds the signature.
fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}
