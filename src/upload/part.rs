//! The part as the unit of a multipart upload: one record per part, which its data fills in one
//! way, plan → checksum → signed request → `ETag`, and the table of them that the hasher, the
//! signer, the senders and completion share.

use super::context::UploadContext;
use super::hashing::{self, unquoted};
use super::ports::{Runtime, Source};
use super::reporter::ProgressReporter;
use super::wait::Count;
use super::wire::{CompletedPart, SignedRequest};
use crate::checksum::{ChecksumAlgorithm, ObjectChecksum, PartDigest, hex, object_checksum};
use crate::error::{ErrorCode, UploadError};
use crate::plan::PartPlan;
use std::cell::RefCell;
use std::ops::Range;

/// One part of a multipart upload.
#[derive(Debug, Clone, Default)]
struct Part {
    /// Its checksum, once hashed (uploads with checksums).
    digest: Option<PartDigest>,
    /// The request signed for it, which every attempt reuses until it expires; dropped once the
    /// part is stored.
    signed: Option<SignedRequest>,
    /// What the store answered, once it holds the part (or listed it as held).
    etag: Option<String>,
}

/// The parts of one upload, by number. Borrowed only between awaits.
pub(super) struct Parts {
    plan: PartPlan,
    /// The checksum every part carries, when the upload has one.
    algorithm: Option<ChecksumAlgorithm>,
    parts: RefCell<Vec<Part>>,
    /// Parts in the order they are hashed and sent: the missing ones first, in part order, then
    /// those the store already holds (their checksums are needed for completion).
    order: Vec<u32>,
    /// Each part's place in `order` (index: number - 1).
    rank: Vec<usize>,
    /// How many of `order` are hashed.
    hashed: Count,
}

impl Parts {
    /// The parts of `plan`; `held` are those the store already holds, with their `ETag`s.
    pub(super) fn new(plan: PartPlan, algorithm: Option<ChecksumAlgorithm>, held: &[CompletedPart]) -> Self {
        let mut parts = vec![Part::default(); plan.count as usize];
        for stored in held {
            parts[stored.part_number as usize - 1].etag = Some(stored.etag.clone());
        }
        let (missing, stored): (Vec<u32>, Vec<u32>) =
            plan.numbers().partition(|&n| parts[n as usize - 1].etag.is_none());
        let order: Vec<u32> = missing.into_iter().chain(stored).collect();
        let mut rank = vec![0; order.len()];
        for (at, &n) in order.iter().enumerate() {
            rank[n as usize - 1] = at;
        }
        Parts { plan, algorithm, parts: RefCell::new(parts), order, rank, hashed: Count::default() }
    }

    /// The byte range of part `number`.
    pub(super) fn range(&self, number: u32) -> Range<u64> {
        self.plan.range(number)
    }

    /// The parts the store does not hold yet, in the order they are sent.
    pub(super) fn missing(&self) -> Vec<u32> {
        let parts = self.parts.borrow();
        self.order.iter().copied().filter(|&n| parts[n as usize - 1].etag.is_none()).collect()
    }

    /// Bytes of the parts the store already holds.
    pub(super) fn held_bytes(&self) -> u64 {
        let parts = self.parts.borrow();
        self.plan.numbers().filter(|&n| parts[n as usize - 1].etag.is_some()).map(|n| len(&self.range(n))).sum()
    }

    /// The checksum algorithm of the upload.
    pub(super) fn algorithm(&self) -> Option<ChecksumAlgorithm> {
        self.algorithm
    }

    /// Hashes every part in `order`, one after another with two chunks in memory at most,
    /// ahead of the senders, which wait for each part's checksum to have it signed.
    pub(super) async fn hash<B, T, S: Source, C: Runtime>(
        &self,
        cx: &UploadContext<'_, B, T, C>,
        source: &S,
        progress: &ProgressReporter<'_, C>,
    ) -> Result<(), UploadError> {
        let Some(algorithm) = self.algorithm else { return Ok(()) };
        let ranges: Vec<(u32, Range<u64>)> = self.order.iter().map(|&n| (n, self.range(n))).collect();
        hashing::hash_parts(cx, source, &ranges, algorithm, progress, |number, digest| {
            self.parts.borrow_mut()[number as usize - 1].digest = Some(digest);
            self.hashed.increment();
        })
        .await
    }

    /// Part `number`'s checksum (base64) once it is hashed; `None` without checksums.
    pub(super) async fn checksum(&self, number: u32) -> Option<String> {
        self.algorithm?;
        self.hashed.at_least(self.rank[number as usize - 1] + 1).await;
        self.parts.borrow()[number as usize - 1].digest.as_ref().map(PartDigest::base64)
    }

    /// How many parts are hashed: the first this many of the order they are hashed in.
    pub(super) fn hashed(&self) -> usize {
        self.hashed.get()
    }

    /// The request signed for part `number`, if any.
    pub(super) fn signed(&self, number: u32) -> Option<SignedRequest> {
        self.parts.borrow()[number as usize - 1].signed.clone()
    }

    /// Keeps the request signed for part `number`.
    pub(super) fn sign(&self, number: u32, request: SignedRequest) {
        self.parts.borrow_mut()[number as usize - 1].signed = Some(request);
    }

    /// Part `number` is stored with `etag`; its URL is not needed any more.
    pub(super) fn stored(&self, number: u32, etag: String) {
        let mut parts = self.parts.borrow_mut();
        let part = &mut parts[number as usize - 1];
        part.etag = Some(etag);
        part.signed = None;
    }

    /// Every part, in order, as CompleteMultipartUpload lists it. Call once all are stored.
    pub(super) fn completed(&self) -> Vec<CompletedPart> {
        let parts = self.parts.borrow();
        let completed = self.plan.numbers().zip(parts.iter()).map(|(number, part)| CompletedPart {
            part_number: number,
            etag: part.etag.clone().expect("every part is stored before completion"),
            checksum: part.digest.as_ref().map(PartDigest::base64),
        });
        completed.collect()
    }

    /// What completion is checked against, when the upload has checksums. In MD5 mode, a part
    /// whose `ETag` is not the MD5 of its bytes while others' are is refused here: KMS encryption
    /// changes every part's `ETag`, so one differing part means the store holds other bytes for
    /// it (on a store that does not check `Content-MD5`).
    pub(super) fn verification(&self) -> Result<Option<Verification>, UploadError> {
        let Some(algorithm) = self.algorithm else { return Ok(None) };
        let parts = self.parts.borrow();
        let digests: Vec<PartDigest> = parts.iter().filter_map(|p| p.digest.clone()).collect();
        let expected = object_checksum(algorithm, &digests, true);
        if algorithm != ChecksumAlgorithm::Md5 {
            return Ok(Some(Verification { expected, etag_comparable: false }));
        }
        let differing: Vec<(u32, &Part, String)> = self
            .plan
            .numbers()
            .zip(parts.iter())
            .filter_map(|(number, part)| {
                let md5 = hex(&part.digest.as_ref()?.digest);
                let etag = part.etag.as_deref().unwrap_or_default();
                (unquoted(etag) != md5).then_some((number, part, md5))
            })
            .collect();
        match differing.first() {
            Some((number, part, md5)) if differing.len() < parts.len() => Err(UploadError::new(
                ErrorCode::ChecksumMismatch,
                format!(
                    "the store holds part {number} with ETag {}, but the MD5 of its bytes is {md5} (the other \
                     parts' ETags are their MD5s): the part stored is not the file's; upload the file again",
                    unquoted(part.etag.as_deref().unwrap_or_default())
                ),
            )),
            _ => Ok(Some(Verification { expected, etag_comparable: differing.is_empty() })),
        }
    }
}

/// What completion is checked against: the object checksum computed from the file, and whether
/// the store's multipart `ETag` can be compared with it (MD5 mode, parts not encrypted with KMS).
pub(super) struct Verification {
    pub(super) expected: ObjectChecksum,
    pub(super) etag_comparable: bool,
}

fn len(range: &Range<u64>) -> u64 {
    range.end - range.start
}
