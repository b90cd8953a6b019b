//! The multipart flow: create, sign parts in batches, send parts in parallel, complete.

use super::{
    Backend, Clock, CompletedPart, FileInfo, MultipartSession, ProgressReporter, Source, StoredObject, Transport,
    UploadContext, etag_not_exposed,
};
use crate::error::{ErrorCode, UploadError};
use crate::plan::PartPlan;
use crate::progress::UploadState;
use crate::upload::SignedRequest;
use futures::lock::Mutex;
use futures::{StreamExt, TryStreamExt, stream};
use std::collections::HashMap;

/// Runs a whole multipart upload. On any failure after the upload was created, every part in
/// flight is dropped (which cancels its request) and the backend is asked to abort the upload.
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
    C: Clock,
{
    let session = cx.abort.guard(cx.backend.create_multipart(file)).await?;
    progress.set_key(&session.key);
    match cx.abort.guard(send_and_complete(cx, source, &session, plan, progress)).await {
        Ok(stored) => Ok(stored),
        Err(err) => match cx.backend.abort_multipart(&session).await {
            Ok(()) => Err(err),
            Err(abort_err) => Err(err.context(&format!(
                "(aborting multipart upload {} also failed: {}; it may need to be aborted by a \
                 lifecycle rule)",
                session.upload_id, abort_err.message
            ))),
        },
    }
}

async fn send_and_complete<B, T, S, C>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    session: &MultipartSession,
    plan: PartPlan,
    progress: &ProgressReporter<'_, C>,
) -> Result<StoredObject, UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Clock,
{
    let batch = u32::try_from(cx.concurrency * 2).unwrap_or(u32::MAX).max(MIN_SIGN_BATCH);
    let signer = PartSigner::new(cx.backend, session, plan.count, batch);
    let mut parts: Vec<CompletedPart> = stream::iter(plan.numbers())
        .map(|number| send_part(cx, source, &signer, plan, number, progress))
        .buffer_unordered(cx.concurrency)
        .try_collect()
        .await?;
    parts.sort_by_key(|p| p.part_number);
    debug_assert_eq!(parts.len(), plan.count as usize);

    progress.set_state(UploadState::Completing);
    let completed = cx.backend.complete_multipart(session, &parts).await?;
    Ok(StoredObject {
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
    signer: &PartSigner<'_, B>,
    plan: PartPlan,
    number: u32,
    progress: &ProgressReporter<'_, C>,
) -> Result<CompletedPart, UploadError>
where
    B: Backend,
    T: Transport,
    S: Source<Body = T::Body>,
    C: Clock,
{
    let request = signer.request_for(number).await?;
    let range = plan.range(number);
    let what = format!("part {number}");
    let outcome = {
        let _slot = cx.budget.acquire().await;
        progress.set_state(UploadState::Uploading);
        cx.transport.put(&request, source.slice(range.clone()), &what).await?
    };
    let etag = outcome.etag.ok_or_else(|| etag_not_exposed(&what))?;
    progress.add(range.end - range.start);
    Ok(CompletedPart { part_number: number, etag })
}

/// Fewest part URLs asked for in one signing request.
const MIN_SIGN_BATCH: u32 = 10;

/// Hands out part URLs, asking the backend for them a batch at a time.
struct PartSigner<'a, B> {
    backend: &'a B,
    session: &'a MultipartSession,
    count: u32,
    batch: u32,
    state: Mutex<SignerState>,
}

struct SignerState {
    /// Signed and not yet used.
    ready: HashMap<u32, SignedRequest>,
    /// Lowest part number never signed.
    next_unsigned: u32,
}

impl<'a, B: Backend> PartSigner<'a, B> {
    fn new(backend: &'a B, session: &'a MultipartSession, count: u32, batch: u32) -> Self {
        PartSigner {
            backend,
            session,
            count,
            batch,
            state: Mutex::new(SignerState { ready: HashMap::new(), next_unsigned: 1 }),
        }
    }

    /// The URL for part `number`; signs the next batch when it is not ready. Parts waiting for
    /// the same batch wait on the lock instead of asking again.
    async fn request_for(&self, number: u32) -> Result<SignedRequest, UploadError> {
        let mut state = self.state.lock().await;
        if let Some(request) = state.ready.remove(&number) {
            return Ok(request);
        }
        let numbers: Vec<u32> = if number < state.next_unsigned {
            vec![number]
        } else {
            let first = state.next_unsigned;
            let last = (first + self.batch - 1).max(number).min(self.count);
            (first..=last).collect()
        };
        let signed = self.backend.sign_parts(self.session, &numbers).await?;
        state.next_unsigned = state.next_unsigned.max(numbers[numbers.len() - 1] + 1);
        for part in signed {
            if numbers.contains(&part.part_number) {
                state.ready.insert(part.part_number, part.request);
            }
        }
        state.ready.remove(&number).ok_or_else(|| {
            UploadError::new(
                ErrorCode::BackendError,
                format!("the backend was asked to sign part {number} and did not return a URL for it"),
            )
        })
    }
}
