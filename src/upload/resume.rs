//! What survives a page reload: the record of a multipart upload under way, and where it is kept.

use crate::checksum::ChecksumAlgorithm;

/// What the browser remembers of a multipart upload, so that it can be resumed after a reload.
#[derive(Debug, Clone, PartialEq)]
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
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// How long a resume record is trusted: 7 days, the usual period of an
/// `AbortIncompleteMultipartUpload` lifecycle rule, after which the parts are gone anyway.
pub const RESUME_RECORD_MAX_AGE_MS: f64 = 7.0 * 24.0 * 3600.0 * 1000.0;

/// Where resume records are kept (browser storage). Failures are swallowed by implementations:
/// a full or forbidden storage must never break an upload. Reading is done before the upload
/// starts (browser storage may answer asynchronously), into [`Resume::found`].
pub trait ResumeStore {
    /// Keeps `record` under `fingerprint`.
    fn save(&self, fingerprint: &str, record: &ResumeRecord);
    /// Forgets the record under `fingerprint`.
    fn remove(&self, fingerprint: &str);
}

/// Resumption for one upload: where records live, the file's fingerprint, and the record found
/// under it when the upload started.
pub struct Resume<'a> {
    /// The record store.
    pub store: &'a dyn ResumeStore,
    /// Identifies the file (and backend) across page loads.
    pub fingerprint: String,
    /// The record kept under `fingerprint` when the upload started, if any.
    pub found: Option<ResumeRecord>,
}
