//! Published check values of every checksum algorithm, run natively (`cargo test --test
//! checksum_vectors`) and in the browser (scripts/browser-tests.sh): the same digests in both.

use s3_direct_upload::checksum::{ChecksumAlgorithm, base64, digest, hex};

// On a page, or in a dedicated worker with the `test-in-worker` feature (as tests/common has it).
#[cfg(all(target_arch = "wasm32", not(feature = "test-in-worker")))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
#[cfg(all(target_arch = "wasm32", feature = "test-in-worker"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn digests_match_published_check_values() {
    // The CRC catalogue's check input "123456789", FIPS 180's "abc" and RFC 1321's "abc".
    let check = b"123456789";
    assert_eq!(hex(&digest(ChecksumAlgorithm::Crc32c, check)), "e3069283");
    assert_eq!(hex(&digest(ChecksumAlgorithm::Crc32, check)), "cbf43926");
    assert_eq!(
        hex(&digest(ChecksumAlgorithm::Sha256, b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(hex(&digest(ChecksumAlgorithm::Sha1, b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(hex(&digest(ChecksumAlgorithm::Md5, b"abc")), "900150983cd24fb0d6963f7d28e17f72");
    // S3's encoding: base64 of the big-endian CRC; of the empty input, AAAAAA==.
    assert_eq!(base64(&digest(ChecksumAlgorithm::Crc32c, b"")), "AAAAAA==");
    assert_eq!(base64(&digest(ChecksumAlgorithm::Crc32c, check)), "4waSgw==");
}
