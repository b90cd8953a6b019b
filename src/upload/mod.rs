//! The upload orchestrator: single PUT and multipart flows, generic over where requests go.
//!
//! Nothing here touches the browser. The flows talk to a [`Backend`] (who authorizes), a
//! [`Transport`] (who sends bytes to the store), a [`Source`] (who cuts the file), a [`Runtime`]
//! (time, timers, chance) and a [`ResumeStore`] (what survives a reload), so they run under plain
//! `cargo test` with fakes and in the browser with the real edges in `crate::web`.
//!
//! - `wire`: the backend contract's requests and answers; `ports`: the traits above;
//!   `resume`: resume records.
//! - `context`: what one upload needs from its uploader; `budget`: the uploader-wide request
//!   budget, adapted to the store; `wait`: switches and counts to wait on; `reporter`: progress
//!   reports; `attempt`: one request's retries, pauses and abort.
//! - `whole_file`: files sent in one request; `multipart`: the multipart flow, around `part`,
//!   one record per part; `hashing`: reading and hashing, and the whole-object check.

mod attempt;
mod budget;
mod context;
mod hashing;
mod multipart;
mod part;
mod ports;
mod reporter;
mod resume;
mod wait;
mod whole_file;
mod wire;

pub use budget::{Budget, Pacer, Slot};
pub use context::{PostForms, UploadContext};
pub use hashing::FILES_HASHED_AT_ONCE;
pub use ports::{Backend, Payload, PutOutcome, Runtime, Source, Transport};
pub use reporter::ProgressReporter;
pub use resume::{RESUME_RECORD_MAX_AGE_MS, Resume, ResumeRecord, ResumeStore};
pub use wait::{Count, Flag, UploadControl};
pub use wire::{
    CompleteRequest, CompletedObject, CompletedPart, FileBatch, FileInfo, ListedPart, MOST_FILES_PER_BATCH,
    MultipartSession, SignPartsRequest, SignReason, SignedPart, SignedPost, SignedPut, SignedRequest, SignedWhole,
    StoredObject,
};

use crate::error::UploadError;
use crate::plan::{UploadPlan, plan_upload};
use futures::future::{Either, select};
use std::pin::pin;
use whole_file::{OneRequest, send_whole_file};

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
            return cx.control.unless_aborted(send_whole_file(cx, source, file, OneRequest::Form, progress)).await;
        }
        match plan_upload(source.size(), &cx.plan_options)? {
            UploadPlan::SinglePut { .. } => {
                let how = if cx.post_forms == PostForms::SmallFiles { OneRequest::Form } else { OneRequest::Put };
                cx.control.unless_aborted(send_whole_file(cx, source, file, how, progress)).await
            }
            UploadPlan::Multipart(plan) => multipart::run(cx, source, file, plan, progress).await,
        }
    };
    match select(pin!(work), pin!(progress.send_held_reports())).await {
        Either::Left((result, _)) => result,
        Either::Right((never, _)) => match never {},
    }
}

#[cfg(test)]
mod tests;
