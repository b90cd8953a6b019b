//! Reading and hashing parts of the file before they are signed, and checking what the store
//! says of the whole object.

use super::context::UploadContext;
use super::ports::{Runtime, Source};
use super::reporter::ProgressReporter;
use super::wire::{CompletedObject, SignedRequest};
use crate::checksum::{ChecksumAlgorithm, Hasher, ObjectChecksum, PartDigest};
use crate::error::{ErrorCode, UploadError};
use futures::FutureExt;
use futures::future::try_join;
use std::ops::Range;

/// Bytes read and hashed at a time: large enough that reading the file costs few reads from the
/// browser's blob store (a whole default part: measured, 1 MiB chunks cut a 1 GiB upload from
/// 70-76 to 52-62 MiB/s), small enough that hashing one chunk stays below a 50 ms long task
/// (8 MiB: 20 ms with SHA-256 at 400 MiB/s, 5 ms with CRC32C). Two chunks are held per file: the
/// one being hashed and the next, read meanwhile.
pub(super) const HASH_CHUNK: u64 = 8 << 20;

/// Files an uploader hashes at once before sending each in one request (what
/// [`UploadContext::hashing`] allows): 4 × up to two 8 MiB chunks, at most 64 MiB, whatever
/// the number of files added together; more would not hash faster on a few cores.
pub const FILES_HASHED_AT_ONCE: usize = 4;

/// Bytes hashed in one task: about 1 ms of CRC32C, 3 ms of SHA-256. Between them the page's
/// main thread runs whatever else is queued (input, rendering, the upload's own requests).
const HASH_SLICE: usize = 1 << 20;

/// Hashes the byte ranges of `parts` in order, a chunk at a time, reading the next chunk while
/// the current one is hashed (a slice a task), and waiting between chunks while the upload is
/// paused. Calls `hashed` with each part's digest as soon as it is complete.
pub(super) async fn hash_parts<B, T, S: Source, C: Runtime>(
    cx: &UploadContext<'_, B, T, C>,
    source: &S,
    parts: &[(u32, Range<u64>)],
    algorithm: ChecksumAlgorithm,
    progress: &ProgressReporter<'_, C>,
    mut hashed: impl FnMut(u32, PartDigest),
) -> Result<(), UploadError> {
    // Every chunk, as (part, range, last of its part).
    let chunks: Vec<(u32, Range<u64>, bool)> = parts
        .iter()
        .flat_map(|(number, range)| {
            let starts = (range.start..range.end.max(range.start + 1)).step_by(HASH_CHUNK as usize);
            starts.map(move |at| {
                let end = (at + HASH_CHUNK).min(range.end);
                (*number, at..end, end >= range.end)
            })
        })
        .collect();
    let (mut current, mut next) = (Vec::new(), Vec::new());
    if let Some((_, first, _)) = chunks.first() {
        read_chunk(source, first.clone(), &mut current).await?;
    }
    let mut hasher = Hasher::new(algorithm);
    for (i, (number, range, last)) in chunks.iter().enumerate() {
        cx.control.paused.until(false).await;
        let hash = async {
            for slice in current.chunks(HASH_SLICE) {
                cx.runtime.next_task().await;
                hasher.update(slice);
            }
            progress.hashed(range.end - range.start);
        };
        match chunks.get(i + 1) {
            // The read starts when first polled, before the hashing runs: they overlap.
            Some((_, following, _)) => {
                try_join(read_chunk(source, following.clone(), &mut next), hash.map(Ok)).await?;
            }
            None => hash.await,
        }
        if *last {
            let part = parts.iter().find(|(n, _)| n == number).map_or(0, |(_, r)| r.end - r.start);
            let digest = std::mem::replace(&mut hasher, Hasher::new(algorithm)).finish();
            hashed(*number, PartDigest { digest, len: part });
        }
        std::mem::swap(&mut current, &mut next);
    }
    Ok(())
}

/// Reads `range` of the file into `into`, checking that all of it came.
async fn read_chunk<S: Source>(source: &S, range: Range<u64>, into: &mut Vec<u8>) -> Result<(), UploadError> {
    source.read(range.clone(), into).await?;
    if into.len() as u64 != range.end - range.start {
        return Err(UploadError::new(
            ErrorCode::InvalidFile,
            format!(
                "reading bytes {}..{} of the file gave {} bytes; was it changed?",
                range.start,
                range.end,
                into.len()
            ),
        ));
    }
    Ok(())
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

/// An `ETag` without its quotes.
pub(super) fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}
