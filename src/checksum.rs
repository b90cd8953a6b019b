//! Checksums of parts and of whole objects, computed the way S3 computes them.
//!
//! Pure. A part's checksum is sent with it (`x-amz-checksum-<algorithm>`, or `Content-MD5`), so
//! the store refuses bytes that changed on the way. The object's checksum is derived from the
//! parts' as S3 derives it: CRCs combine into the checksum of the whole object (S3's
//! `FULL_OBJECT` type); SHA-1 and SHA-256 hash the concatenated part digests, suffixed with the
//! part count (`COMPOSITE`); MD5 gives the multipart `ETag` (`hex(md5(part md5s))-N`).

use crate::crc::{CRC32, CRC32C};
use md5::Md5;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A checksum algorithm the library can compute. In JSON it is S3's name (`"CRC32C"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "UPPERCASE"))]
pub enum ChecksumAlgorithm {
    /// CRC-32C (Castagnoli): the default; fast, and S3 combines it into a whole-object checksum.
    Crc32c,
    /// CRC-32 (the zip/Ethernet polynomial).
    Crc32,
    /// SHA-256.
    Sha256,
    /// SHA-1.
    Sha1,
    /// MD5, sent as `Content-MD5`: what S3-compatible stores without `x-amz-checksum-*` check.
    Md5,
}

/// How the checksum of a multipart object relates to its bytes (S3's `ChecksumType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "SCREAMING_SNAKE_CASE"))]
pub enum ChecksumType {
    /// The checksum of the whole object's bytes.
    FullObject,
    /// The checksum of the parts' checksums, with `-N` (the part count) appended.
    Composite,
}

impl ChecksumType {
    /// The name S3 uses (`x-amz-checksum-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumType::FullObject => "FULL_OBJECT",
            ChecksumType::Composite => "COMPOSITE",
        }
    }
}

impl ChecksumAlgorithm {
    /// Every algorithm, for option parsing and tests.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Md5,
    ];

    /// The name S3 uses (`x-amz-checksum-algorithm`), which the backend contract uses too.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Sha256 => "SHA256",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Md5 => "MD5",
        }
    }

    /// The algorithm named `name` (`"crc32c"`, `"CRC32C"`, ...).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(name))
    }

    /// The headers that create a multipart upload whose parts carry this checksum: CRCs as
    /// full-object checksums; SHAs with S3's default, and only choice for them, composite. MD5
    /// travels as `Content-MD5` on each part and needs nothing at creation.
    pub fn creation_headers(self) -> Vec<(String, String)> {
        let name = ("x-amz-checksum-algorithm".to_owned(), self.as_str().to_owned());
        match self.object_type() {
            _ if self == ChecksumAlgorithm::Md5 => Vec::new(),
            ChecksumType::FullObject => vec![name, ("x-amz-checksum-type".to_owned(), "FULL_OBJECT".to_owned())],
            ChecksumType::Composite => vec![name],
        }
    }

    /// The request header a part's checksum travels in.
    pub fn header(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Md5 => "content-md5",
        }
    }

    /// Bytes in a digest.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc32 => 4,
            ChecksumAlgorithm::Sha256 => 32,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Md5 => 16,
        }
    }

    /// Whether `value` looks like a base64 digest of this algorithm (length and alphabet).
    pub fn is_encoded_digest(self, value: &str) -> bool {
        let body = value.trim_end_matches('=');
        value.len() == self.digest_len().div_ceil(3) * 4
            && value.len() - body.len() <= 2
            && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    }

    /// The type of the multipart object checksum S3 gives for this algorithm.
    pub fn object_type(self) -> ChecksumType {
        match self {
            ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc32 => ChecksumType::FullObject,
            ChecksumAlgorithm::Sha256 | ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Md5 => ChecksumType::Composite,
        }
    }
}

/// A running checksum of one part.
pub enum Hasher {
    /// CRC-32C so far.
    Crc32c(u32),
    /// CRC-32 so far.
    Crc32(u32),
    /// SHA-256 so far.
    Sha256(Sha256),
    /// SHA-1 so far.
    Sha1(Sha1),
    /// MD5 so far.
    Md5(Md5),
}

impl Hasher {
    /// A hasher for `algorithm` that has seen nothing.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Crc32c => Hasher::Crc32c(0),
            ChecksumAlgorithm::Crc32 => Hasher::Crc32(0),
            ChecksumAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            ChecksumAlgorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            ChecksumAlgorithm::Md5 => Hasher::Md5(Md5::new()),
        }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Crc32c(crc) => *crc = CRC32C.update(*crc, bytes),
            Hasher::Crc32(crc) => *crc = CRC32.update(*crc, bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed, as raw bytes (big-endian for CRCs, as S3 encodes them).
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc32c(crc) | Hasher::Crc32(crc) => crc.to_be_bytes().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
        }
    }
}

/// The checksum of `bytes` in one go, as raw bytes.
pub fn digest(algorithm: ChecksumAlgorithm, bytes: &[u8]) -> Vec<u8> {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(bytes);
    hasher.finish()
}

/// One part's checksum: its raw digest and how many bytes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartDigest {
    /// Raw digest bytes.
    pub digest: Vec<u8>,
    /// Bytes hashed.
    pub len: u64,
}

impl PartDigest {
    /// The digest as sent in headers and to the backend: base64.
    pub fn base64(&self) -> String {
        base64(&self.digest)
    }
}

/// A whole object's checksum, as the library expects the store to report it. In JSON:
/// `{algorithm, type, value}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ObjectChecksum {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Full-object or composite.
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub kind: ChecksumType,
    /// base64 (with `-N` when composite); for MD5, the multipart `ETag` without quotes.
    pub value: String,
}

/// The checksum S3 reports for an object stored as `parts` (in part order) with `algorithm`.
/// A single PUT is one part and gets the part's own checksum (MD5: hex, the `ETag`).
pub fn object_checksum(algorithm: ChecksumAlgorithm, parts: &[PartDigest], multipart: bool) -> ObjectChecksum {
    let full = |value| ObjectChecksum { algorithm, kind: ChecksumType::FullObject, value };
    if !multipart {
        let digest = parts.first().map(|p| p.digest.as_slice()).unwrap_or_default();
        return full(if algorithm == ChecksumAlgorithm::Md5 { hex(digest) } else { base64(digest) });
    }
    match algorithm {
        ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc32 => {
            let kind = if algorithm == ChecksumAlgorithm::Crc32c { &CRC32C } else { &CRC32 };
            let crc = parts.iter().fold(0u32, |crc, p| kind.combine(crc, crc_of(p), p.len));
            full(base64(&crc.to_be_bytes()))
        }
        ChecksumAlgorithm::Sha256 | ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Md5 => {
            let concatenated: Vec<u8> = parts.iter().flat_map(|p| p.digest.iter().copied()).collect();
            let of_digests = digest(algorithm, &concatenated);
            let encoded = if algorithm == ChecksumAlgorithm::Md5 { hex(&of_digests) } else { base64(&of_digests) };
            ObjectChecksum { algorithm, kind: ChecksumType::Composite, value: format!("{encoded}-{}", parts.len()) }
        }
    }
}

fn crc_of(part: &PartDigest) -> u32 {
    u32::from_be_bytes(part.digest.as_slice().try_into().expect("a CRC digest is 4 bytes"))
}

/// Standard base64 with padding, as S3 encodes checksums.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Lower-case hex, as `ETag`s are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(algorithm: ChecksumAlgorithm, bytes: &[u8]) -> PartDigest {
        PartDigest { digest: digest(algorithm, bytes), len: bytes.len() as u64 }
    }

    #[test]
    fn hashing_in_chunks_equals_hashing_at_once() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for algorithm in ChecksumAlgorithm::ALL {
            let mut hasher = Hasher::new(algorithm);
            for chunk in bytes.chunks(4093) {
                hasher.update(chunk);
            }
            assert_eq!(hasher.finish(), digest(algorithm, &bytes), "{algorithm:?}");
        }
    }

    #[test]
    fn crc_parts_combine_into_the_whole_objects_crc() {
        let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
        let cuts = [0, 17_000, 34_000, 50_000];
        for algorithm in [ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Crc32] {
            let parts: Vec<PartDigest> = cuts.windows(2).map(|w| part(algorithm, &bytes[w[0]..w[1]])).collect();
            let object = object_checksum(algorithm, &parts, true);
            assert_eq!(object.kind, ChecksumType::FullObject);
            assert_eq!(object.value, base64(&digest(algorithm, &bytes)), "{algorithm:?}");
        }
    }

    #[test]
    fn composite_checksums_hash_the_part_digests_and_count_the_parts() {
        let (a, b) = (b"first part".as_slice(), b"second".as_slice());
        let sha = ChecksumAlgorithm::Sha256;
        let parts = [part(sha, a), part(sha, b)];
        let mut joined = digest(sha, a);
        joined.extend(digest(sha, b));
        let object = object_checksum(sha, &parts, true);
        assert_eq!(object.kind, ChecksumType::Composite);
        assert_eq!(object.value, format!("{}-2", base64(&digest(sha, &joined))));
        // The multipart ETag of the MD5 mode: hex of the MD5 of the part MD5s.
        let md5 = ChecksumAlgorithm::Md5;
        let mut joined = digest(md5, a);
        joined.extend(digest(md5, b));
        let etag = object_checksum(md5, &[part(md5, a), part(md5, b)], true).value;
        assert_eq!(etag, format!("{}-2", hex(&digest(md5, &joined))));
        // A single PUT reports the part's own checksum.
        assert_eq!(object_checksum(md5, &[part(md5, b"abc")], false).value, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(object_checksum(sha, &[part(sha, b"")], false).value, base64(&digest(sha, b"")));
    }

    #[test]
    fn base64_pads_like_rfc_4648() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (input, encoded) in cases {
            assert_eq!(base64(input.as_bytes()), encoded);
        }
    }

    #[test]
    fn algorithm_names_parse_in_any_case() {
        assert_eq!(ChecksumAlgorithm::parse("crc32c"), Some(ChecksumAlgorithm::Crc32c));
        assert_eq!(ChecksumAlgorithm::parse("SHA256"), Some(ChecksumAlgorithm::Sha256));
        assert_eq!(ChecksumAlgorithm::parse("sha-256"), None);
        assert_eq!(ChecksumAlgorithm::Md5.header(), "content-md5");
    }
}
