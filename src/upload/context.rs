//! What one upload needs from the uploader that runs it.

use super::budget::{Budget, Pacer};
use super::ports::{Payload, PutOutcome, Runtime, Transport};
use super::reporter::ProgressReporter;
use super::resume::Resume;
use super::wait::{Flag, UploadControl};
use super::wire::SignedRequest;
use crate::checksum::ChecksumAlgorithm;
use crate::error::UploadError;
use crate::plan::PlanOptions;
use crate::progress::UploadState;
use crate::retry::RetryPolicy;

/// What one upload needs from the uploader that runs it.
pub struct UploadContext<'a, B, T, C> {
    /// Who authorizes.
    pub backend: &'a B,
    /// Who sends.
    pub transport: &'a T,
    /// The uploader-wide request budget, shared by all files, adapted to the store.
    pub budget: &'a Budget,
    /// The uploader-wide budget of files hashed at once before their one request
    /// ([`FILES_HASHED_AT_ONCE`](super::FILES_HASHED_AT_ONCE)): each holds up to two chunks of
    /// the file in memory, so many small files added at once do not all sit in memory together.
    pub hashing: &'a Budget,
    /// This upload's place in the budget's queue: higher goes first.
    pub priority: i32,
    /// The uploader-wide bandwidth cap.
    pub pacer: &'a Pacer,
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

impl<B, T: Transport, C: Runtime> UploadContext<'_, B, T, C> {
    /// Sends `payload` (`bytes` of the file, part `number`; 1 for a file in one request) to the
    /// store: under the bandwidth cap and the request budget, which learns from how it went. Its
    /// bytes count as they leave, and are taken back if it fails.
    pub(super) async fn send_to_store(
        &self,
        request: &SignedRequest,
        payload: Payload<'_, T::Body>,
        number: u32,
        bytes: u64,
        what: &str,
        progress: &ProgressReporter<'_, C>,
    ) -> Result<PutOutcome, UploadError> {
        let wait_ms = self.pacer.book(bytes, self.runtime.now_ms());
        if wait_ms > 0.0 {
            self.runtime.sleep(wait_ms).await;
        }
        let slot = self.budget.acquire(self.priority).await;
        progress.set_state(UploadState::Uploading);
        let sent = |so_far| progress.sending(number, so_far);
        let outcome = self.transport.send(request, payload, what, &sent).await;
        slot.learn(&outcome);
        if outcome.is_err() {
            progress.restart(number);
        }
        outcome
    }
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
