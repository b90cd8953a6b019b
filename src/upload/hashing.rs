//! Hashing parts before they are signed, and checking what the store says of the whole object.

use super::{CompletedObject, CompletedPart, Count, ProgressReporter, Runtime, SignedRequest, Source, UploadContext};
use crate::checksum::{ChecksumAlgorithm, Hasher, ObjectChecksum, PartDigest, hex, object_checksum};
use crate::error::{ErrorCode, UploadError};
use crate::plan::PartPlan;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

/// Bytes read and hashed at a time. Reading a chunk yields to the page, and hashing one takes a
/// few milliseconds even with SHA-256, so the page never freezes; only a chunk per file is held.
pub(super) const HASH_CHUNK: u64 = 1 << 20;

/// Hashes the bytes of `range`, a chunk at a time, waiting while the upload is paused.
pub(super) async fn hash_range<B, T, S: Source, C: Runtime>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    range: Range<u64>,
    algorithm: ChecksumAlgorithm,
    progress: &ProgressReporter<'_, C>,
    buffer: &mut Vec<u8>,
) -> Result<PartDigest, UploadError> {
    let mut hasher = Hasher::new(algorithm);
    let mut at = range.start;
    while at < range.end {
        cx.control.paused.until(false).await;
        let end = (at + HASH_CHUNK).min(range.end);
        source.read(at..end, buffer).await?;
        if buffer.len() as u64 != end - at {
            return Err(UploadError::new(
                ErrorCode::InvalidFile,
                format!("reading bytes {at}..{end} of the file gave {} bytes; was it changed?", buffer.len()),
            ));
        }
        hasher.update(buffer);
        progress.hashed(end - at);
        at = end;
    }
    Ok(PartDigest { digest: hasher.finish(), len: range.end - range.start })
}

/// The parts' checksums of a multipart upload, computed one part after another ahead of the
/// sending, which waits for them.
pub(super) struct PartHashes {
    pub(super) algorithm: ChecksumAlgorithm,
    /// Parts in the order they are hashed: those to send first, in the order they are sent.
    order: Vec<u32>,
    digests: RefCell<HashMap<u32, PartDigest>>,
    /// How many of `order` are hashed.
    done: Count,
}

impl PartHashes {
    /// Hashes for `order`'s parts with `algorithm`.
    pub(super) fn new(algorithm: ChecksumAlgorithm, order: Vec<u32>) -> Self {
        PartHashes { algorithm, order, digests: RefCell::default(), done: Count::default() }
    }

    /// Hashes every part in order. Reading one chunk at a time keeps memory at one chunk.
    pub(super) async fn run<B, T, S: Source, C: Runtime>(
        &self,
        cx: &UploadContext<'_, B, T, C>,
        source: &S,
        plan: PartPlan,
        progress: &ProgressReporter<'_, C>,
    ) -> Result<(), UploadError> {
        let mut buffer = Vec::new();
        for &number in &self.order {
            let digest = hash_range(cx, source, plan.range(number), self.algorithm, progress, &mut buffer).await?;
            self.digests.borrow_mut().insert(number, digest);
            self.done.increment();
        }
        Ok(())
    }

    /// Part `number`'s checksum (base64), once it is hashed.
    pub(super) async fn checksum_of(&self, number: u32) -> String {
        let position = self.order.iter().position(|&n| n == number).expect("every part is hashed");
        self.done.at_least(position + 1).await;
        self.digests.borrow()[&number].base64()
    }

    /// The object checksum of the parts, in part order. Call once every part is hashed.
    pub(super) fn object_checksum(&self, count: u32) -> ObjectChecksum {
        let digests = self.digests.borrow();
        let parts: Vec<PartDigest> = (1..=count).map(|n| digests[&n].clone()).collect();
        object_checksum(self.algorithm, &parts, true)
    }

    /// Whether every part's `ETag` is the hex MD5 of its bytes, as on stores that do not encrypt
    /// with KMS: only then is a multipart `ETag` the MD5 of the part MD5s.
    pub(super) fn etags_are_md5(&self, parts: &[CompletedPart]) -> bool {
        let digests = self.digests.borrow();
        self.algorithm == ChecksumAlgorithm::Md5
            && parts.iter().all(|p| digests.get(&p.part_number).is_some_and(|d| unquoted(&p.etag) == hex(&d.digest)))
    }
}

/// Whether `request` was signed with `checksum` in `algorithm`'s header: only then may the
/// header be sent (S3 refuses unsigned `x-amz-*` headers on presigned requests).
pub(super) fn signs_checksum(request: &SignedRequest, algorithm: ChecksumAlgorithm, checksum: &str) -> bool {
    request.headers.iter().any(|(name, value)| name.eq_ignore_ascii_case(algorithm.header()) && value == checksum)
}

/// The error for a part URL signed without the part's checksum.
pub(super) fn checksum_not_signed(number: u32, algorithm: ChecksumAlgorithm) -> UploadError {
    UploadError::new(
        ErrorCode::BackendError,
        format!(
            "the backend created the upload with {} checksums but signed part {number} without its \
             checksum: it must return the `{}` header it signed, with the value it was given",
            algorithm.as_str(),
            algorithm.header()
        ),
    )
}

/// Compares the object checksum the store reported with the one computed from the file.
/// `etag_comparable` says whether, in MD5 mode, the multipart `ETag` is MD5-based. A store that
/// reports nothing, or a checksum of another type, is not contradicting.
pub(super) fn check_object(
    expected: &ObjectChecksum,
    completed: &CompletedObject,
    etag_comparable: bool,
) -> Result<(), UploadError> {
    let reported = if expected.algorithm == ChecksumAlgorithm::Md5 {
        completed.etag.as_deref().filter(|_| etag_comparable).map(unquoted)
    } else {
        let same_type = match completed.checksum_type.as_deref() {
            Some(kind) => kind.eq_ignore_ascii_case(expected.kind.as_str()),
            // Without a type, a composite value is the one with the `-N` suffix.
            None => completed.checksum.as_deref().is_some_and(|v| v.contains('-') == expected.value.contains('-')),
        };
        completed.checksum.as_deref().filter(|_| same_type)
    };
    match reported {
        Some(value) if value != expected.value => Err(UploadError::new(
            ErrorCode::ChecksumMismatch,
            format!(
                "the store assembled an object whose {} {} is {value}, but the file's is {}: the stored \
                 object is not this file; delete it and upload again",
                expected.algorithm.as_str(),
                if expected.algorithm == ChecksumAlgorithm::Md5 { "ETag" } else { "checksum" },
                expected.value
            ),
        )),
        _ => Ok(()),
    }
}

fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}
