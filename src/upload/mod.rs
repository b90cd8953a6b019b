//! The upload orchestrator: single PUT and multipart flows, generic over where requests go.
//!
//! Nothing here touches the browser. The flows talk to a [`Backend`] (who authorizes), a
//! [`Transport`] (who sends bytes to the store), a [`Source`] (who cuts the file), a [`Runtime`]
//! (time, timers, chance) and a [`ResumeStore`] (what survives a reload), so they run under plain
//! `cargo test` with fakes and in the browser with the real edges in `crate::web`.
//!
//! - `wire`: the backend contract's requests and answers; `ports`: the traits above;
//!   `resume`: resume records.
//! - `wait`: switches and counts to wait on; `reporter`: progress reports; `attempt`: one
//!   request's retries, pauses and abort.
//! - `whole_file`: files sent in one request; `multipart`: the multipart flow, around `part`,
//!   one record per part; `hashing`: reading and hashing, and the whole-object check.

mod attempt;
mod hashing;
mod multipart;
mod part;
mod ports;
mod reporter;
mod resume;
mod wait;
mod whole_file;
mod wire;

pub use ports::{Backend, Payload, PutOutcome, Runtime, Source, Transport};
pub use reporter::ProgressReporter;
pub use resume::{RESUME_RECORD_MAX_AGE_MS, Resume, ResumeRecord, ResumeStore};
pub use wait::{Count, Flag, UploadControl};
pub use wire::{
    CompleteRequest, CompletedObject, CompletedPart, FileInfo, ListedPart, MultipartSession, SignPartsRequest,
    SignReason, SignedPart, SignedPost, SignedPut, SignedRequest, StoredObject,
};

use crate::checksum::ChecksumAlgorithm;
use crate::error::{ErrorCode, UploadError};
use crate::plan::{PlanOptions, UploadPlan, plan_upload};
use crate::retry::RetryPolicy;
use async_lock::Semaphore;
use futures::future::{Either, select};
use std::pin::pin;
use whole_file::{OneRequest, send_whole_file};

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
