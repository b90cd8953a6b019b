//! Part planning: how a file of a given size is cut into S3 upload parts.
//!
//! Pure arithmetic over the S3 multipart rules, with no browser types, so every edge is tested
//! natively. S3 allows 1 to 10,000 parts per upload, each 5 MiB to 5 GiB except the last, and
//! objects up to 5 TiB. A 0-byte object cannot be uploaded in parts at all.

use crate::error::{ErrorCode, UploadError};
use std::ops::Range;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;
/// One gibibyte.
pub const GIB: u64 = 1024 * MIB;
/// One tebibyte.
pub const TIB: u64 = 1024 * GIB;

/// Smallest part S3 accepts, except for the last part of an upload.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// Largest part S3 accepts.
pub const MAX_PART_SIZE: u64 = 5 * GIB;
/// Most parts one multipart upload may have.
pub const MAX_PARTS: u64 = 10_000;
/// Largest object S3 stores.
pub const MAX_OBJECT_SIZE: u64 = 5 * TIB;

/// Default part size: S3's minimum. Small parts give parallelism early and lose little on a retry;
/// the planner grows the size for files that would otherwise need more than 10,000 parts.
pub const DEFAULT_PART_SIZE: u64 = MIN_PART_SIZE;
/// Default size up to which a file goes up in one presigned PUT: one default part. Larger files
/// gain from parallel parts; a single PUT saves the create and complete round trips.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = MIN_PART_SIZE;

/// How one file is uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadPlan {
    /// One presigned `PutObject` with the whole file as the body.
    SinglePut {
        /// File size in bytes.
        size: u64,
    },
    /// A multipart upload cut into equal parts (the last may be shorter).
    Multipart(PartPlan),
}

/// The parts of a multipart upload: `count` parts of `part_size` bytes, the last one shorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    /// File size in bytes.
    pub size: u64,
    /// Size of every part but the last.
    pub part_size: u64,
    /// Number of parts, 1 to 10,000.
    pub count: u32,
}

impl PartPlan {
    /// Byte range of part `number` (1-based, as S3 numbers parts).
    ///
    /// # Panics
    /// If `number` is 0 or greater than `count`: callers only ask for parts of the plan.
    pub fn range(&self, number: u32) -> Range<u64> {
        assert!(number >= 1 && number <= self.count, "part {number} is outside the plan");
        let start = u64::from(number - 1) * self.part_size;
        start..(start + self.part_size).min(self.size)
    }

    /// Part numbers of the plan, 1-based, in order.
    pub fn numbers(&self) -> impl Iterator<Item = u32> + use<> {
        1..=self.count
    }
}

/// What the user asked for; `None` means "choose for me".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Requested part size in bytes.
    pub part_size: Option<u64>,
    /// Files up to this size go up in one PUT.
    pub multipart_threshold: Option<u64>,
}

impl PlanOptions {
    /// Checks the options against S3's limits before any file is seen.
    pub fn validate(&self) -> Result<(), UploadError> {
        if let Some(part_size) = self.part_size
            && !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size)
        {
            return Err(UploadError::new(
                ErrorCode::InvalidOption,
                format!(
                    "partSize is {part_size} bytes; S3 accepts parts from {MIN_PART_SIZE} (5 MiB) \
                     to {MAX_PART_SIZE} (5 GiB) bytes"
                ),
            ));
        }
        if self.multipart_threshold.is_some_and(|t| t > MAX_PART_SIZE) {
            return Err(UploadError::new(
                ErrorCode::InvalidOption,
                format!(
                    "multipartThreshold is above {MAX_PART_SIZE} bytes (5 GiB), the largest single \
                     PUT S3 accepts"
                ),
            ));
        }
        Ok(())
    }
}

/// Plans the upload of a file of `size` bytes.
///
/// Files up to the threshold, and every 0-byte file, go up in one PUT. Larger files are cut into
/// parts of the requested size, or of the smallest size (a whole number of MiB) that keeps the
/// count within 10,000. A requested size that would need more than 10,000 parts is an error, not
/// silently changed: the user asked for it.
pub fn plan_upload(size: u64, options: &PlanOptions) -> Result<UploadPlan, UploadError> {
    options.validate()?;
    if size > MAX_OBJECT_SIZE {
        return Err(UploadError::new(
            ErrorCode::FileTooLarge,
            format!("the file is {size} bytes; S3 stores objects up to {MAX_OBJECT_SIZE} bytes (5 TiB)"),
        ));
    }
    let threshold = options.multipart_threshold.unwrap_or(DEFAULT_MULTIPART_THRESHOLD);
    if size == 0 || size <= threshold {
        return Ok(UploadPlan::SinglePut { size });
    }
    PartPlan::for_multipart(size, options.part_size).map(UploadPlan::Multipart)
}

impl PartPlan {
    /// The parts of a `size`-byte multipart upload cut into parts of `part_size` bytes, or, when
    /// `None`, of the default size (grown, in whole MiB, to keep within 10,000 parts). The
    /// library plans with it, and a backend checks the page's declaration and signs each part's
    /// exact length with it. A requested size that S3 could not take is an error, not silently
    /// changed: the user asked for it.
    pub fn for_multipart(size: u64, part_size: Option<u64>) -> Result<PartPlan, UploadError> {
        PlanOptions { part_size, multipart_threshold: None }.validate()?;
        if size == 0 || size > MAX_OBJECT_SIZE {
            return Err(UploadError::new(
                if size == 0 { ErrorCode::InvalidOption } else { ErrorCode::FileTooLarge },
                format!("a multipart upload holds 1 to {MAX_OBJECT_SIZE} bytes (5 TiB); this file is {size}"),
            ));
        }
        let part_size = match part_size {
            Some(requested) if size.div_ceil(requested) > MAX_PARTS => {
                return Err(UploadError::new(
                    ErrorCode::InvalidOption,
                    format!(
                        "partSize {requested} would cut this {size}-byte file into more than \
                         {MAX_PARTS} parts; use at least {} bytes or leave partSize unset",
                        smallest_part_size(size)
                    ),
                ));
            }
            Some(requested) => requested,
            None => DEFAULT_PART_SIZE.max(smallest_part_size(size)),
        };
        let count = u32::try_from(size.div_ceil(part_size)).expect("at most 10,000 parts");
        Ok(PartPlan { size, part_size, count })
    }
}

/// Smallest whole-MiB part size that fits `size` bytes into 10,000 parts.
fn smallest_part_size(size: u64) -> u64 {
    size.div_ceil(MAX_PARTS).div_ceil(MIB).max(1) * MIB
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(size: u64) -> Result<UploadPlan, UploadError> {
        plan_upload(size, &PlanOptions::default())
    }

    fn parts(size: u64) -> PartPlan {
        match auto(size).unwrap() {
            UploadPlan::Multipart(plan) => plan,
            other => panic!("expected multipart for {size}, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_tiny_files_use_a_single_put() {
        assert_eq!(auto(0).unwrap(), UploadPlan::SinglePut { size: 0 });
        assert_eq!(auto(1).unwrap(), UploadPlan::SinglePut { size: 1 });
        assert_eq!(auto(5 * MIB - 1).unwrap(), UploadPlan::SinglePut { size: 5 * MIB - 1 });
        assert_eq!(auto(5 * MIB).unwrap(), UploadPlan::SinglePut { size: 5 * MIB });
    }

    #[test]
    fn zero_bytes_is_a_single_put_even_with_threshold_zero() {
        let options = PlanOptions { multipart_threshold: Some(0), ..Default::default() };
        assert_eq!(plan_upload(0, &options).unwrap(), UploadPlan::SinglePut { size: 0 });
        assert!(matches!(plan_upload(1, &options).unwrap(), UploadPlan::Multipart(_)));
    }

    #[test]
    fn one_byte_over_the_threshold_makes_a_one_byte_last_part() {
        let plan = parts(5 * MIB + 1);
        assert_eq!(plan.count, 2);
        assert_eq!(plan.range(1), 0..5 * MIB);
        assert_eq!(plan.range(2), 5 * MIB..5 * MIB + 1);
    }

    #[test]
    fn a_declared_part_size_gives_every_parts_exact_length() {
        let plan = PartPlan::for_multipart(12 * MIB + 1, Some(6 * MIB)).unwrap();
        assert_eq!((plan.count, plan.range(3)), (3, 12 * MIB..12 * MIB + 1));
        assert_eq!(PartPlan::for_multipart(3, None).unwrap().range(1), 0..3, "a small file is one short part");
        assert_eq!(PartPlan::for_multipart(100 * GIB, None).unwrap().part_size, 11 * MIB);
        for (size, part_size) in [(0, None), (MAX_OBJECT_SIZE + 1, None), (1, Some(MIB)), (GIB, Some(6 * GIB))] {
            assert!(PartPlan::for_multipart(size, part_size).is_err(), "{size} in {part_size:?}");
        }
        assert!(PartPlan::for_multipart(100 * GIB, Some(5 * MIB)).is_err(), "over 10,000 parts");
    }

    #[test]
    fn ranges_cover_the_file_exactly_once() {
        for size in [5 * MIB + 1, 64 * MIB, 64 * MIB + 7, GIB + 3] {
            let plan = parts(size);
            let mut next = 0;
            for n in plan.numbers() {
                let r = plan.range(n);
                assert_eq!(r.start, next);
                assert!(r.end > r.start);
                if n < plan.count {
                    assert_eq!(r.end - r.start, plan.part_size);
                }
                next = r.end;
            }
            assert_eq!(next, size);
        }
    }

    #[test]
    fn part_size_grows_past_ten_thousand_default_parts() {
        let size = 10_000 * 5 * MIB + 1; // one byte more than 10,000 default parts
        let plan = parts(size);
        assert_eq!(plan.part_size, 6 * MIB);
        assert!(u64::from(plan.count) <= MAX_PARTS);
        assert_eq!(plan.range(plan.count).end, size);
    }

    #[test]
    fn largest_object_fits_in_ten_thousand_parts() {
        let plan = parts(MAX_OBJECT_SIZE);
        assert!(u64::from(plan.count) <= MAX_PARTS);
        assert!(plan.part_size <= MAX_PART_SIZE);
        assert_eq!(plan.range(plan.count).end, MAX_OBJECT_SIZE);
    }

    #[test]
    fn more_than_five_tib_is_rejected() {
        let err = auto(MAX_OBJECT_SIZE + 1).unwrap_err();
        assert_eq!(err.code, ErrorCode::FileTooLarge);
        assert!(err.message.contains("5 TiB"), "{}", err.message);
    }

    #[test]
    fn requested_part_size_is_used_and_checked() {
        let ok = PlanOptions { part_size: Some(8 * MIB), ..Default::default() };
        let plan = match plan_upload(20 * MIB, &ok).unwrap() {
            UploadPlan::Multipart(p) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!((plan.part_size, plan.count), (8 * MIB, 3));
        assert_eq!(plan.range(3), 16 * MIB..20 * MIB);

        for bad in [0, 1, 5 * MIB - 1, 5 * GIB + 1] {
            let options = PlanOptions { part_size: Some(bad), ..Default::default() };
            let err = plan_upload(64 * MIB, &options).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidOption, "part size {bad}");
            assert!(err.message.contains("partSize"));
        }
        let edge = PlanOptions { part_size: Some(5 * MIB), ..Default::default() };
        assert!(plan_upload(64 * MIB, &edge).is_ok());
    }

    #[test]
    fn requested_part_size_needing_too_many_parts_is_rejected() {
        let options = PlanOptions { part_size: Some(5 * MIB), ..Default::default() };
        let err = plan_upload(10_000 * 5 * MIB + 1, &options).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidOption);
        assert!(err.message.contains("10000 parts"), "{}", err.message);
    }

    #[test]
    fn threshold_above_single_put_limit_is_rejected() {
        let options = PlanOptions { multipart_threshold: Some(5 * GIB + 1), ..Default::default() };
        assert_eq!(options.validate().unwrap_err().code, ErrorCode::InvalidOption);
    }
}
