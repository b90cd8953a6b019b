//! Files sent in one request: a presigned PUT, or an HTML-form POST under a signed policy.

use super::attempt::{Interrupt, with_retries};
use super::{
    Backend, FileInfo, Payload, ProgressReporter, Runtime, SignReason, SignedPost, SignedPut, SignedRequest, Source,
    StoredObject, Transport, UploadContext, hashing, without_query,
};
use crate::checksum::{PartDigest, object_checksum};
use crate::error::{ErrorCode, UploadError};
use crate::progress::UploadState;
use crate::sigv4::is_expiring;
use std::cell::RefCell;
use std::collections::BTreeMap;

pub(super) async fn single_put<B, T, S, C>(
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
pub(super) async fn post_form<B, T, S, C>(
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
