//! The multipart flow: create, sign parts in batches, send parts in parallel, complete.

use super::attempt::{Interrupt, with_retries};
use super::hashing::{PartHashes, check_object, checksum_not_signed, signs_checksum};
use super::{
    Backend, CompletedPart, FileInfo, MultipartSession, Payload, ProgressReporter, RESUME_RECORD_MAX_AGE_MS,
    ResumeRecord, Runtime, SignReason, Source, StoredObject, Transport, UploadContext, etag_not_exposed,
};
use crate::checksum::ObjectChecksum;
use crate::error::{ErrorCode, UploadError};
use crate::plan::PartPlan;
use crate::progress::UploadState;
use crate::sigv4::is_expiring;
use crate::upload::SignedRequest;
use futures::future::try_join;
use futures::lock::Mutex;
use futures::{StreamExt, TryStreamExt, stream};
use std::collections::HashMap;

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
    let Some(record) = resume.store.load(&resume.fingerprint) else { return Ok(None) };
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
    let mut stored: Vec<CompletedPart> = listed
        .into_iter()
        .filter(|p| {
            (1..=plan.count).contains(&p.part_number) && {
                let range = plan.range(p.part_number);
                p.size == range.end - range.start && !p.etag.is_empty()
            }
        })
        .map(|p| CompletedPart { part_number: p.part_number, etag: p.etag, checksum: None })
        .collect();
    stored.sort_by_key(|p| p.part_number);
    stored.dedup_by_key(|p| p.part_number);
    Ok(Some((session, stored)))
}

/// Sends every part the store does not hold yet; the parts in order, with their checksums, and
/// the object checksum to complete with.
async fn send_parts<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    session: &MultipartSession,
    plan: PartPlan,
    stored_parts: Vec<CompletedPart>,
    progress: &ProgressReporter<'_, C>,
) -> Result<(Vec<CompletedPart>, Option<Verification>), UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let batch = u32::try_from(cx.concurrency * 2).unwrap_or(u32::MAX).max(MIN_SIGN_BATCH);
    let already: u64 = stored_parts.iter().map(|p| plan.range(p.part_number)).map(|r| r.end - r.start).sum();
    progress.already_stored(already);
    let missing: Vec<u32> =
        plan.numbers().filter(|n| stored_parts.binary_search_by_key(n, |p| p.part_number).is_err()).collect();
    // With checksums, parts are hashed one after another (the parts to send first), ahead of
    // the sending, which waits for each part's checksum to have it signed.
    let hashes = session.checksum_algorithm.map(|algorithm| {
        let stored = stored_parts.iter().map(|p| p.part_number);
        PartHashes::new(algorithm, missing.iter().copied().chain(stored).collect())
    });
    let hashing = async {
        match &hashes {
            Some(hashes) => hashes.run(cx, source, plan, progress).await,
            None => Ok(()),
        }
    };
    let signer = PartSigner {
        cx,
        progress,
        session,
        hashes: hashes.as_ref(),
        order: missing.clone(),
        batch,
        state: Mutex::default(),
    };
    let sending = stream::iter(missing)
        .map(|number| send_part(cx, source, &signer, plan, number, progress))
        .buffer_unordered(cx.concurrency)
        .try_collect::<Vec<CompletedPart>>();
    let (mut parts, ()) = try_join(sending, hashing).await?;
    parts.extend(stored_parts);
    parts.sort_by_key(|p| p.part_number);
    debug_assert_eq!(parts.len(), plan.count as usize);
    let Some(hashes) = hashes else { return Ok((parts, None)) };
    for part in &mut parts {
        part.checksum = Some(hashes.checksum_of(part.part_number).await);
    }
    hashes.check_part_etags(&parts)?;
    let verification =
        Verification { expected: hashes.object_checksum(plan.count), etag_comparable: hashes.etags_are_md5(&parts) };
    Ok((parts, Some(verification)))
}

/// What completion is checked against: the object checksum computed from the file, and whether
/// the store's multipart `ETag` can be compared with it (MD5 mode, parts not encrypted with KMS).
struct Verification {
    expected: ObjectChecksum,
    etag_comparable: bool,
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
    plan: PartPlan,
    number: u32,
    progress: &ProgressReporter<'_, C>,
) -> Result<CompletedPart, UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Runtime,
{
    let range = plan.range(number);
    let what = format!("part {number}");
    let outcome = with_retries(cx, progress, Interrupt::OnPause, |resign| {
        let (range, what) = (range.clone(), &what);
        async move {
            // A pause may have cut the last attempt short: take back what it had counted.
            progress.restart(number);
            let request = signer.request_for(number, resign).await?;
            let _slot = cx.budget.acquire().await;
            progress.set_state(UploadState::Uploading);
            let sent = |bytes| progress.sending(number, bytes);
            let outcome = cx.transport.send(&request, Payload::Put(source.slice(range)), what, &sent).await;
            if outcome.is_err() {
                progress.restart(number);
            }
            outcome
        }
    })
    .await?;
    let etag = outcome.etag.ok_or_else(|| etag_not_exposed(&what))?;
    signer.stored(number).await;
    progress.stored(number, range.end - range.start);
    Ok(CompletedPart { part_number: number, etag, checksum: None })
}

/// Fewest part URLs asked for in one signing request.
const MIN_SIGN_BATCH: u32 = 10;

/// Hands out part URLs, asking the backend for them a batch at a time.
struct PartSigner<'c, 'a, B, T, C> {
    cx: &'c UploadContext<'a, B, T, C>,
    progress: &'c ProgressReporter<'a, C>,
    session: &'c MultipartSession,
    /// The parts' checksums, to be signed in, when the upload has them.
    hashes: Option<&'c PartHashes>,
    /// The part numbers to send, in the order they are sent.
    order: Vec<u32>,
    batch: u32,
    state: Mutex<SignerState>,
}

#[derive(Default)]
struct SignerState {
    /// Signed, for parts not yet stored.
    ready: HashMap<u32, SignedRequest>,
    /// How many of `order` were ever signed.
    signed: usize,
}

impl<B: Backend, T, C: Runtime> PartSigner<'_, '_, B, T, C> {
    /// Forgets the URL of a part the store holds.
    async fn stored(&self, number: u32) {
        self.state.lock().await.ready.remove(&number);
    }

    /// The URL for part `number`: a fresh one when `resign` (the last one expired) or when the
    /// batch's URL is past (or near) its expiry, else from the batch, signing the next batch when
    /// it is not ready. Parts waiting for the same batch
    /// wait on the lock instead of asking again.
    async fn request_for(&self, number: u32, resign: bool) -> Result<SignedRequest, UploadError> {
        let mut state = self.state.lock().await;
        // A URL serves every attempt of its part until it expires: a 5xx, a reset or a stall
        // costs no signing.
        let cached = state.ready.get(&number).cloned();
        let expiring = cached.as_ref().is_some_and(|r| is_expiring(&r.url, self.cx.runtime.now_ms()));
        if let Some(request) = cached.filter(|_| !resign && !expiring) {
            return Ok(request);
        }
        let reason = if resign || expiring { SignReason::Expired } else { SignReason::First };
        let position = self.order.iter().position(|&n| n == number);
        // The next batch of never-signed parts, or this part alone when it was signed before.
        let (numbers, signed_after) = match position {
            Some(at) if at >= state.signed => {
                let end = (state.signed + self.batch as usize).max(at + 1).min(self.order.len());
                (self.order[state.signed..end].to_vec(), end)
            }
            _ => (vec![number], state.signed),
        };
        // With checksums, the batch is signed once all of it is hashed: hashing runs ahead in
        // `order`, so this costs the first batch a short wait and later ones none, and keeps
        // one signing request per batch however slow hashing is.
        let mut checksums = Vec::new();
        if let Some(hashes) = self.hashes {
            for &n in &numbers {
                checksums.push(hashes.checksum_of(n).await);
            }
        }
        let checksums = self.hashes.map(|_| checksums.as_slice());
        let sign = |_| self.cx.backend.sign_parts(self.session, &numbers, checksums, reason);
        let signed = with_retries(self.cx, self.progress, Interrupt::Never, sign).await?;
        state.signed = signed_after;
        for part in signed {
            let Some(i) = numbers.iter().position(|&n| n == part.part_number) else { continue };
            if let (Some(hashes), Some(checksums)) = (self.hashes, checksums)
                && !signs_checksum(&part.request, hashes.algorithm, &checksums[i])
            {
                return Err(checksum_not_signed(part.part_number, hashes.algorithm));
            }
            state.ready.insert(part.part_number, part.request);
        }
        state.ready.get(&number).cloned().ok_or_else(|| {
            UploadError::new(
                ErrorCode::BackendError,
                format!("the backend was asked to sign part {number} and did not return a URL for it"),
            )
        })
    }
}
