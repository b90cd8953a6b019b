//! The multipart flow: create, sign parts in batches, send parts in parallel, complete.

use super::attempt::{Interrupt, with_retries};
use super::context::UploadContext;
use super::hashing::{check_object, checksum_not_signed, signs_checksum};
use super::part::{Parts, Verification};
use super::ports::{Backend, Payload, Runtime, Source, Transport};
use super::reporter::ProgressReporter;
use super::resume::{RESUME_RECORD_MAX_AGE_MS, ResumeRecord};
use super::wire::{CompletedPart, FileInfo, MultipartSession, SignReason, SignedRequest, StoredObject};
use crate::error::{ErrorCode, UploadError};
use crate::plan::PartPlan;
use crate::progress::UploadState;
use crate::sigv4::is_expiring;
use futures::future::try_join;
use futures::lock::Mutex;
use futures::{StreamExt, TryStreamExt, stream};

/// Runs a whole multipart upload. An abort cancels what can be cancelled and no more: a
/// creation, once sent, is awaited and the upload it made aborted; parts in flight are dropped
/// (which cancels their requests) and the upload aborted; a completion, once sent, decides the
/// outcome. On any failure after creation, the backend is asked to abort the upload.
pub(super) async fn run<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    file: &FileInfo,
    plan: PartPlan,
    progress: &ProgressReporter<'_, C>,
) -> Result<StoredObject, UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let (session, stored_parts) = match cx.control.unless_aborted(resumed(cx, plan, progress)).await? {
        Some(resumed) => resumed,
        None => {
            let file = &FileInfo { checksum_algorithm: cx.checksum, part_size: Some(plan.part_size), ..file.clone() };
            let create = with_retries(cx, progress, Interrupt::Never, |_| cx.backend.create_multipart(file));
            let session = create.await?;
            if let Some(resume) = &cx.resume {
                let record = ResumeRecord {
                    key: session.key.clone(),
                    upload_id: session.upload_id.clone(),
                    part_size: plan.part_size,
                    created_ms: cx.runtime.now_ms(),
                    checksum_algorithm: session.checksum_algorithm,
                };
                resume.store.save(&resume.fingerprint, &record);
            }
            (session, Vec::new())
        }
    };
    progress.set_key(&session.key);
    let sent = cx.control.unless_aborted(send_parts(cx, source, &session, plan, stored_parts, progress)).await;
    let outcome = match sent {
        Ok((parts, expected)) => complete(cx, &session, plan, &parts, expected, progress).await,
        Err(err) => Err(err),
    };
    if let Some(resume) = &cx.resume {
        // Finished, failed or aborted: either way this upload is not to be resumed.
        resume.store.remove(&resume.fingerprint);
    }
    match outcome {
        Ok(stored) => Ok(stored),
        Err(mut err) => {
            if let Err(abort_err) = cx.backend.abort_multipart(&session).await {
                err.message.push_str(&format!(
                    " (aborting multipart upload {} also failed: {}; a lifecycle rule must remove its parts)",
                    session.upload_id, abort_err.message
                ));
            }
            Err(err)
        }
    }
}

/// The upload this file was already part-way through on an earlier page load, with the parts the
/// store holds that fit this plan; `None` to start afresh (no record, a stale or different one,
/// or a backend that cannot list parts any more).
async fn resumed<B, T, C>(
    cx: &UploadContext<'_, B, T, C>,
    plan: PartPlan,
    progress: &ProgressReporter<'_, C>,
) -> Result<Option<(MultipartSession, Vec<CompletedPart>)>, UploadError>
where
    B: Backend,
    C: Runtime,
{
    let Some(resume) = &cx.resume else { return Ok(None) };
    let Some(record) = resume.found.clone() else { return Ok(None) };
    let fresh = cx.runtime.now_ms() - record.created_ms < RESUME_RECORD_MAX_AGE_MS;
    if !fresh || record.part_size != plan.part_size {
        resume.store.remove(&resume.fingerprint);
        return Ok(None);
    }
    let session = MultipartSession {
        key: record.key,
        upload_id: record.upload_id,
        checksum_algorithm: record.checksum_algorithm,
    };
    let Ok(listed) = with_retries(cx, progress, Interrupt::Never, |_| cx.backend.list_parts(&session)).await else {
        resume.store.remove(&resume.fingerprint);
        return Ok(None);
    };
    // In number order, each number once (the first listed). Stores list in order, so each part
    // goes at the end; a binary search keeps any order right without a sort in the `.wasm`.
    let mut stored: Vec<CompletedPart> = Vec::new();
    for p in listed {
        let whole = (1..=plan.count).contains(&p.part_number) && {
            let range = plan.range(p.part_number);
            p.size == range.end - range.start
        };
        if !whole || p.etag.is_empty() {
            continue;
        }
        if let Err(at) = stored.binary_search_by_key(&p.part_number, |s| s.part_number) {
            stored.insert(at, CompletedPart { part_number: p.part_number, etag: p.etag, checksum: None });
        }
    }
    Ok(Some((session, stored)))
}

/// Sends every part the store does not hold yet (hashing them first, when the upload has
/// checksums); the parts as completion lists them, and what completion is checked against.
async fn send_parts<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    session: &MultipartSession,
    plan: PartPlan,
    held: Vec<CompletedPart>,
    progress: &ProgressReporter<'_, C>,
) -> Result<(Vec<CompletedPart>, Option<Verification>), UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let parts = Parts::new(plan, session.checksum_algorithm, &held);
    progress.already_stored(parts.held_bytes());
    let missing = parts.missing();
    let batch = u32::try_from(cx.concurrency * 2).unwrap_or(u32::MAX).max(MIN_SIGN_BATCH);
    let signer =
        PartSigner { cx, progress, session, parts: &parts, order: missing.clone(), batch, signed: Mutex::new(0) };
    let sending = stream::iter(missing)
        .map(|number| send_part(cx, source, &signer, number, progress))
        .buffer_unordered(cx.concurrency)
        .try_collect::<Vec<()>>();
    try_join(sending, parts.hash(cx, source, progress)).await?;
    Ok((parts.completed(), parts.verification()?))
}

/// Completes the upload. Not cancelled by an abort: once sent, its answer decides.
async fn complete<B, T, C>(
    cx: &UploadContext<'_, B, T, C>,
    session: &MultipartSession,
    plan: PartPlan,
    parts: &[CompletedPart],
    verification: Option<Verification>,
    progress: &ProgressReporter<'_, C>,
) -> Result<StoredObject, UploadError>
where
    B: Backend,
    C: Runtime,
{
    progress.set_state(UploadState::Completing);
    let expected = verification.as_ref().map(|v| &v.expected);
    let complete = |_| cx.backend.complete_multipart(session, parts, expected);
    let completed = with_retries(cx, progress, Interrupt::Never, complete).await?;
    if let Some(verification) = &verification {
        check_object(&verification.expected, &completed, verification.etag_comparable)?;
    }
    Ok(StoredObject {
        checksum: verification.map(|v| v.expected),
        key: completed.key.unwrap_or_else(|| session.key.clone()),
        location: completed.location,
        etag: completed.etag,
        display_url: completed.display_url,
        size: plan.size,
        upload_id: Some(session.upload_id.clone()),
        parts: Some(plan.count),
    })
}

async fn send_part<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    signer: &PartSigner<'_, '_, B, T, C>,
    number: u32,
    progress: &ProgressReporter<'_, C>,
) -> Result<(), UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let range = signer.parts.range(number);
    let what = format!("part {number}");
    let outcome = with_retries(cx, progress, Interrupt::OnPause, |resign| {
        let (range, what) = (range.clone(), &what);
        async move {
            // A pause may have cut the last attempt short: take back what it had counted.
            progress.restart(number);
            let request = signer.request_for(number, resign).await?;
            let bytes = range.end - range.start;
            cx.send_to_store(&request, Payload::Put(source.slice(range)), number, bytes, what, progress).await
        }
    })
    .await?;
    let etag = outcome.etag.ok_or_else(|| etag_not_exposed(&what))?;
    signer.parts.stored(number, etag);
    progress.stored(number, range.end - range.start);
    Ok(())
}

/// Fewest part URLs asked for in one signing request.
const MIN_SIGN_BATCH: u32 = 10;

/// Hands out part URLs, asking the backend for them a batch at a time, and keeping each in its
/// part's record.
struct PartSigner<'c, 'a, B, T, C> {
    cx: &'c UploadContext<'a, B, T, C>,
    progress: &'c ProgressReporter<'a, C>,
    session: &'c MultipartSession,
    parts: &'c Parts,
    /// The part numbers to send, in the order they are sent.
    order: Vec<u32>,
    batch: u32,
    /// How many of `order` were ever signed; held while a batch is signed, so parts waiting
    /// for the same batch wait on the lock instead of asking again.
    signed: Mutex<usize>,
}

impl<B: Backend, T, C: Runtime> PartSigner<'_, '_, B, T, C> {
    /// The URL for part `number`: the one its record holds, which serves every attempt until
    /// it expires (a 5xx, a reset or a stall costs no signing); a fresh one when `resign` (the
    /// store refused the last as expired) or it is past (or near) its expiry; else the next
    /// batch's.
    async fn request_for(&self, number: u32, resign: bool) -> Result<SignedRequest, UploadError> {
        let mut signed = self.signed.lock().await;
        let cached = self.parts.signed(number);
        let expiring = cached.as_ref().is_some_and(|r| is_expiring(&r.url, self.cx.runtime.now_ms()));
        if let Some(request) = cached.filter(|_| !resign && !expiring) {
            return Ok(request);
        }
        let reason = if resign || expiring { SignReason::Expired } else { SignReason::First };
        let position = self.order.iter().position(|&n| n == number);
        // With checksums, a part is signed once it is hashed, with the parts after it that are
        // hashed by then: the first is sent as soon as it is hashed, and later batches fill up
        // as hashing runs ahead of sending.
        let checksum = self.parts.checksum(number).await;
        let hashed = if checksum.is_some() { self.parts.hashed() } else { self.order.len() };
        // The next batch of never-signed parts, or this part alone when it was signed before.
        let (numbers, signed_after) = match position {
            Some(at) if at >= *signed => {
                let end = (*signed + self.batch as usize).min(hashed).max(at + 1).min(self.order.len());
                (self.order[*signed..end].to_vec(), end)
            }
            _ => (vec![number], *signed),
        };
        let mut checksums = Vec::new();
        for &n in &numbers {
            checksums.extend(self.parts.checksum(n).await);
        }
        let algorithm = self.parts.algorithm();
        let checksums = algorithm.map(|_| checksums.as_slice());
        let sign = |_| self.cx.backend.sign_parts(self.session, &numbers, checksums, reason);
        let answer = with_retries(self.cx, self.progress, Interrupt::Never, sign).await?;
        *signed = signed_after;
        for part in answer {
            let Some(i) = numbers.iter().position(|&n| n == part.part_number) else { continue };
            if let (Some(algorithm), Some(checksums)) = (algorithm, checksums)
                && !signs_checksum(&part.request, algorithm, &checksums[i])
            {
                return Err(checksum_not_signed(part.part_number, algorithm));
            }
            self.parts.sign(part.part_number, part.request);
        }
        self.parts.signed(number).ok_or_else(|| {
            UploadError::new(
                ErrorCode::BackendError,
                format!("the backend was asked to sign part {number} and did not return a URL for it"),
            )
        })
    }
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
