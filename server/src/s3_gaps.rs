//! What S3 checks and s3s-fs 0.17 does not, filled in around it so that the embedded store
//! refuses and answers what S3 does: `Content-MD5` on UploadPart, composite checksums (S3's only
//! kind for SHA-1 and SHA-256 multipart uploads, where s3s-fs computes a full-object one), the
//! `<Location>` of a completed upload, and `<ServerTime>` in the refusals a skewed clock causes.
//!
//! Everything here but the last works on operations s3s has already authorized (signature,
//! expiry, access): a body is only read once its request is known to be allowed, and it streams
//! to disk, hashed on the way, never held whole.

use bytes::Bytes;
use futures::Stream;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use s3_direct_upload::checksum::{ChecksumAlgorithm, ChecksumType, Hasher, base64, digest};
use s3_direct_upload::sigv4;
use s3s::dto::{self, StreamingBlob};
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3Result, StdError, s3_error};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

/// A store answer.
pub type StoreResponse = Response<s3s::Body>;

/// Marks a request whose part body fault injection corrupts: one byte flipped on its way in.
#[derive(Debug, Clone, Copy)]
pub struct CorruptPart;

/// Multipart uploads created with a composite checksum, by upload id.
#[derive(Default)]
pub struct CompositeUploads(Mutex<HashMap<String, ChecksumAlgorithm>>);

impl CompositeUploads {
    /// Remembers the upload `output` names when `input` asks for a composite checksum (SHA-1 or
    /// SHA-256 without a checksum type: S3's default for them).
    pub fn created(&self, input_algorithm: Option<&dto::ChecksumAlgorithm>, has_type: bool, upload_id: Option<&str>) {
        let algorithm = input_algorithm.and_then(|a| ChecksumAlgorithm::parse(a.as_str()));
        if let (Some(algorithm), Some(id)) =
            (algorithm.filter(|a| a.object_type() == ChecksumType::Composite), upload_id)
            && !has_type
        {
            self.0.lock().expect("lock").insert(id.to_owned(), algorithm);
        }
    }

    /// The composite checksum algorithm of `upload_id`, if it has one.
    pub fn of(&self, upload_id: &str) -> Option<ChecksumAlgorithm> {
        self.0.lock().expect("lock").get(upload_id).copied()
    }
}

/// The digests every part of a composite-checksum upload must name at completion (S3 refuses a
/// complete request without them); s3s-fs checks each against the stored part.
pub fn composite_part_digests(
    algorithm: ChecksumAlgorithm,
    upload: Option<&dto::CompletedMultipartUpload>,
) -> S3Result<Vec<Vec<u8>>> {
    let parts = upload.and_then(|u| u.parts.as_deref()).unwrap_or_default();
    let digests: Vec<Vec<u8>> = parts
        .iter()
        .filter_map(|part| match algorithm {
            ChecksumAlgorithm::Sha256 => part.checksum_sha256.as_deref(),
            _ => part.checksum_sha1.as_deref(),
        })
        .filter_map(|value| base64_simd::STANDARD.decode_to_vec(value).ok())
        .filter(|d| d.len() == algorithm.digest_len())
        .collect();
    if digests.len() != parts.len() {
        return Err(s3_error!(
            InvalidRequest,
            "The upload was created using a checksum algorithm. The complete request must include the checksum for each part."
        ));
    }
    Ok(digests)
}

/// What S3's CompleteMultipartUpload answer has and s3s-fs's lacks: the object's `Location`,
/// and for a composite-checksum upload, `base64(hash(part digests))-N` in place of s3s-fs's
/// full-object checksum. (s3s-fs answers with a future, which s3s awaits while it keeps the
/// connection alive: the answer is amended when it is ready.)
pub fn complete_output(
    output: &mut dto::CompleteMultipartUploadOutput,
    location: Option<String>,
    composite: Option<(ChecksumAlgorithm, Vec<Vec<u8>>)>,
) {
    match output.future.take() {
        Some(answer) => {
            output.future = Some(Box::pin(async move {
                let mut output = answer.await?;
                amend_completed(&mut output, location, composite);
                Ok(output)
            }));
        }
        None => amend_completed(output, location, composite),
    }
}

fn amend_completed(
    output: &mut dto::CompleteMultipartUploadOutput,
    location: Option<String>,
    composite: Option<(ChecksumAlgorithm, Vec<Vec<u8>>)>,
) {
    if output.location.is_none() {
        output.location = location;
    }
    if let Some((algorithm, digests)) = composite {
        let value = format!("{}-{}", base64(&digest(algorithm, &digests.concat())), digests.len());
        match algorithm {
            ChecksumAlgorithm::Sha256 => output.checksum_sha256 = Some(value),
            _ => output.checksum_sha1 = Some(value),
        }
        output.checksum_type = Some(dto::ChecksumType::from_static(dto::ChecksumType::COMPOSITE));
    }
}

/// An UploadPart body on its way to disk: hashed as it streams when the request carries a
/// `Content-MD5`, and failing at its end when the digest differs (so s3s-fs never keeps the
/// part); with [`CorruptPart`], its middle byte flipped first. `bad_digest` tells the caller
/// why the write failed.
pub fn checked_part_body(
    body: StreamingBlob,
    content_md5: Option<&str>,
    content_length: Option<i64>,
    corrupt: bool,
) -> (StreamingBlob, Arc<AtomicBool>) {
    let bad_digest = Arc::new(AtomicBool::new(false));
    let checked = CheckedPart {
        inner: body,
        md5: content_md5.map(|expected| (Hasher::new(ChecksumAlgorithm::Md5), expected.to_owned())),
        corrupt_at: corrupt.then(|| content_length.and_then(|n| u64::try_from(n / 2).ok()).unwrap_or(0)),
        seen: 0,
        bad_digest: bad_digest.clone(),
        ended: false,
    };
    (StreamingBlob::new(checked), bad_digest)
}

/// S3's answer to a part whose bytes are not its `Content-MD5`.
pub fn bad_digest() -> s3s::S3Error {
    s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received.")
}

struct CheckedPart {
    inner: StreamingBlob,
    md5: Option<(Hasher, String)>,
    corrupt_at: Option<u64>,
    seen: u64,
    bad_digest: Arc<AtomicBool>,
    ended: bool,
}

impl Stream for CheckedPart {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(mut bytes))) => {
                let len = bytes.len() as u64;
                if let Some(at) = this.corrupt_at.filter(|at| (this.seen..this.seen + len).contains(at)) {
                    let mut flipped = bytes.to_vec();
                    flipped[(at - this.seen) as usize] ^= 0xff;
                    bytes = Bytes::from(flipped);
                }
                this.seen += len;
                if let Some((hasher, _)) = &mut this.md5 {
                    hasher.update(&bytes);
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                this.ended = true;
                let mismatch = this.md5.take().is_some_and(|(hasher, expected)| base64(&hasher.finish()) != expected);
                if mismatch {
                    this.bad_digest.store(true, Ordering::SeqCst);
                    return Poll::Ready(Some(Err("the part's bytes do not match its Content-MD5".into())));
                }
                Poll::Ready(None)
            }
        }
    }
}

impl ByteStream for CheckedPart {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

/// S3 tells a client whose clock is off what time it is (`<ServerTime>` in its
/// `RequestTimeTooSkewed` error, and in the `AccessDenied` of an expired request), so the client
/// can sign again with a corrected clock; s3s does not, so it is added here. (The body read is
/// s3s's own small error answer.)
pub async fn with_server_time(response: StoreResponse) -> Result<StoreResponse, s3s::HttpError> {
    if !response.status().is_client_error() {
        return Ok(response);
    }
    let (head, body) = response.into_parts();
    let bytes = body.collect().await.map_err(s3s::HttpError::from_std_error)?.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    // S3 gives its time with both refusals a skewed clock causes: a request from the future, and
    // one that arrived expired (s3s says so in its message; the page reads only the elements).
    let skewed = text.contains("<Code>RequestTimeTooSkewed</Code>")
        || (text.contains("<Code>AccessDenied</Code>") && text.contains("Request has expired"));
    if !skewed || text.contains("<ServerTime>") {
        return Ok(Response::from_parts(head, s3s::Body::from(bytes)));
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64);
    let server_time = sigv4::iso_8601(now_ms).replace(".000Z", "Z");
    let body = text.replacen("</Error>", &format!("<ServerTime>{server_time}</ServerTime></Error>"), 1);
    let mut head = head;
    head.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(head, s3s::Body::from(body)))
}

/// An S3 XML error answer.
pub fn s3_error(status: StatusCode, xml: &'static str) -> StoreResponse {
    let mut response = Response::new(s3s::Body::from(Bytes::from_static(xml.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}
