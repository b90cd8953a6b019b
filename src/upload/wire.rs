//! The backend contract's requests and answers as the orchestrator sees them: what is asked
//! to be authorized, the signed requests that come back, and what a finished upload is.

use crate::checksum::{ChecksumAlgorithm, ObjectChecksum};
use crate::string_map::StringMap;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// What the backend is asked to authorize: the file as the browser sees it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct FileInfo {
    /// File name (`File.name`), or `"blob"` for a plain `Blob`.
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type the object is stored with.
    pub content_type: String,
    /// The key the caller would like; the backend has the last word.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub key: Option<String>,
    /// User metadata (`x-amz-meta-*`), for the backend to sign or set.
    #[cfg_attr(feature = "serde", serde(default))]
    pub metadata: StringMap,
    /// The checksum algorithm the parts will carry; the backend creates the upload with it (and
    /// echoes it) or leaves checksums out.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// The file's checksum (base64), for a single PUT: the backend signs it into the URL.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub checksum: Option<String>,
    /// For a multipart upload, the size of every part but the last: with it the backend knows
    /// each part's exact length and can sign it (`Content-Length`), so no part can be larger.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub part_size: Option<u64>,
}

/// A multipart upload the backend created.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct MultipartSession {
    /// Object key chosen by the backend.
    pub key: String,
    /// S3 upload id.
    pub upload_id: String,
    /// The checksum algorithm the backend created the upload with. When set, every part must
    /// carry a checksum the backend signed; when absent, the backend does not do checksums.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// A presigned request: the URL and the headers that were signed with it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct SignedRequest {
    /// Presigned URL. A secret: never logged, never put in an error.
    pub url: String,
    /// Headers to send exactly as given (they are part of the signature).
    #[cfg_attr(feature = "serde", serde(default))]
    pub headers: StringMap,
}

/// One presigned part URL.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct SignedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// Where and how to send it.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub request: SignedRequest,
}

/// A presigned single PUT.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedPut {
    /// Object key chosen by the backend.
    pub key: String,
    /// Where and how to send the file.
    pub request: SignedRequest,
    /// A URL to show the object once stored (a presigned GET), if the backend gives one.
    pub display_url: Option<String>,
}

/// A signed POST policy: the form to post the file with.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedPost {
    /// Object key chosen by the backend (the form's `key` field when not given).
    pub key: Option<String>,
    /// The bucket URL the form is posted to.
    pub url: String,
    /// Form fields (policy, signature, credential, key, ...), sent in this order before the file.
    pub fields: Vec<(String, String)>,
    /// A URL to show the object once stored (a presigned GET), if the backend gives one.
    pub display_url: Option<String>,
}

/// What the backend signed for a file sent in one request: a presigned PUT, or a form POST
/// (which the browser sends without a CORS preflight).
#[derive(Debug, Clone, PartialEq)]
pub enum SignedWhole {
    /// A presigned `PutObject`.
    Put(SignedPut),
    /// A POST policy and its form.
    Form(SignedPost),
}

/// Most files one `POST {base}/files` (`signFiles`) signs: the library sends no more, and the
/// reference server refuses more.
pub const MOST_FILES_PER_BATCH: usize = 100;

/// `POST {base}/files`: files to be signed together, each to go up in one request.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct FileBatch {
    /// At most [`MOST_FILES_PER_BATCH`].
    pub files: Vec<FileInfo>,
}

/// A part the store accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct CompletedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// The `ETag` the store answered with.
    pub etag: String,
    /// The part's checksum (base64), when the upload has a checksum algorithm.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub checksum: Option<String>,
}

/// A part the store already holds, as `listParts` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// Its `ETag`.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What the backend says about the finished object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompletedObject {
    /// Object key, when the backend repeats it.
    pub key: Option<String>,
    /// Object URL (no signature).
    pub location: Option<String>,
    /// Object `ETag`.
    pub etag: Option<String>,
    /// A URL to show the object (a presigned GET), if the backend gives one.
    pub display_url: Option<String>,
    /// The object checksum the store reported when it assembled the object (base64, with `-N`
    /// when composite), as the backend passes it on.
    pub checksum: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE`, as the store reported it.
    pub checksum_type: Option<String>,
}

/// The result of a finished upload, as `upload.done` resolves.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// Object key.
    pub key: String,
    /// Object URL without any signature.
    pub location: Option<String>,
    /// Object `ETag`, when the store exposes it.
    pub etag: Option<String>,
    /// Presigned GET URL for showing the object, when the backend gives one.
    pub display_url: Option<String>,
    /// Bytes stored.
    pub size: u64,
    /// S3 upload id, for multipart uploads.
    pub upload_id: Option<String>,
    /// Number of parts, for multipart uploads.
    pub parts: Option<u32>,
    /// The object's checksum as computed from the file, when the store checked the bytes against
    /// checksums; `None` when the backend did not sign any.
    pub checksum: Option<ObjectChecksum>,
}

/// Why a request is being signed: a backend that holds credentials (the credentials mode)
/// refreshes them only when the store refused the last URL as expired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub enum SignReason {
    /// The first URL for this request.
    #[default]
    First,
    /// The last URL expired, or the store refused it as expired (or its credentials as such).
    Expired,
}

impl SignReason {
    /// The reason as the contract names it.
    pub fn as_str(self) -> &'static str {
        match self {
            SignReason::First => "first",
            SignReason::Expired => "expired",
        }
    }
}

/// `POST /multipart/sign` and the `signParts` callback: parts of an upload to sign, with their
/// checksums (`checksums[i]` is part `part_numbers[i]`'s) when the upload has them.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct SignPartsRequest {
    /// The upload (its checksum algorithm too, for backends that keep no record of it).
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub upload: MultipartSession,
    /// Part numbers, 1-based.
    pub part_numbers: Vec<u32>,
    /// The parts' checksums (base64), to sign into their URLs.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub checksums: Option<Vec<String>>,
    /// Why the parts are signed.
    #[cfg_attr(feature = "serde", serde(default))]
    pub reason: SignReason,
}

impl SignPartsRequest {
    /// The request to sign `numbers` of `session`, for `reason`.
    pub fn new(session: &MultipartSession, numbers: &[u32], checksums: Option<&[String]>, reason: SignReason) -> Self {
        SignPartsRequest {
            upload: session.clone(),
            part_numbers: numbers.to_vec(),
            checksums: checksums.map(<[String]>::to_vec),
            reason,
        }
    }
}

/// `POST /multipart/complete` and the `completeMultipartUpload` callback.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct CompleteRequest {
    /// The upload.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub upload: MultipartSession,
    /// Every part, sorted by number.
    pub parts: Vec<CompletedPart>,
    /// The object checksum for the store to check the assembled object against.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub checksum: Option<ObjectChecksum>,
}

impl CompleteRequest {
    /// The request to complete `session` from `parts`, checked against `checksum`.
    pub fn new(session: &MultipartSession, parts: &[CompletedPart], checksum: Option<&ObjectChecksum>) -> Self {
        CompleteRequest { upload: session.clone(), parts: parts.to_vec(), checksum: checksum.cloned() }
    }
}
