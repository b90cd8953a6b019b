//! Integrity tests in a headless browser: checksums computed in wasm, signed into the part
//! URLs by the reference backend and checked by the embedded store, which refuses parts
//! corrupted on the way. Uses the fault-injection server (`S3DU_TEST_APP_FAULTS`), as
//! tests/reliability.rs does; scripts/browser-tests.sh runs the two one after the other.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Reflect;
use s3_direct_upload::checksum::{ChecksumAlgorithm, PartDigest, digest, object_checksum};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

const PART: usize = 5 * MIB;

/// An uploader on the fault server hashing with `checksum` (a name, or `false`).
fn uploader_with(checksum: JsValue, listener: Option<&Closure<dyn Fn(JsValue)>>) -> s3_direct_upload::Uploader {
    let options = object(&[("backend", faults_api().into()), ("checksum", checksum)]);
    Reflect::set(&options, &"retry".into(), &json(r#"{"maxBackoffMs": 200}"#)).unwrap();
    if let Some(listener) = listener {
        Reflect::set(&options, &"onProgress".into(), listener.as_ref()).unwrap();
    }
    uploader(options)
}

/// The object checksum S3 gives `bytes` stored in 5 MiB parts (or in one PUT).
fn expected_checksum(algorithm: ChecksumAlgorithm, bytes: &[u8], multipart: bool) -> String {
    let parts: Vec<PartDigest> = if multipart {
        bytes.chunks(PART).map(|c| PartDigest { digest: digest(algorithm, c), len: c.len() as u64 }).collect()
    } else {
        vec![PartDigest { digest: digest(algorithm, bytes), len: bytes.len() as u64 }]
    };
    object_checksum(algorithm, &parts, multipart).value
}

fn count(report: &JsValue, table: &str, upload_id: &str) -> f64 {
    get(&get(report, table), upload_id).as_f64().unwrap_or(0.0)
}

#[wasm_bindgen_test]
async fn every_algorithm_is_checked_by_the_store_for_parts_and_single_puts() {
    set_faults(&faults_app(), "null").await;
    for name in ["crc32c", "crc32", "sha256", "sha1", "md5"] {
        let algorithm = ChecksumAlgorithm::parse(name).unwrap();
        let up = uploader_with(name.into(), None);
        for (size, multipart) in [(12 * MIB + 1, true), (1000, false)] {
            let file = file_of(size, 40 + size as u64, &format!("{name}.bin"), "");
            let result = upload(&up, &file, JsValue::UNDEFINED).await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_stored(&result, &file).await;
            let checksum = get(&result, "checksum");
            assert_eq!(get(&checksum, "algorithm").as_string().as_deref(), Some(algorithm.as_str()), "{name}");
            let expected = expected_checksum(algorithm, &blob_bytes(&file).await, multipart);
            assert_eq!(get(&checksum, "value").as_string(), Some(expected), "{name}, multipart {multipart}");
        }
    }
}

#[wasm_bindgen_test]
async fn parts_corrupted_on_the_way_are_refused_by_the_store_and_sent_again() {
    let app = faults_app();
    // CRC32C is checked by the store's x-amz-checksum-crc32c support, MD5 by Content-MD5.
    for name in ["crc32c", "md5"] {
        set_faults(&app, r#"{"every": 2, "kinds": ["corrupt"]}"#).await;
        let up = uploader_with(name.into(), None);
        let file = file_of(4 * PART, 50, "corrupted.bin", "");
        let result = upload(&up, &file, JsValue::UNDEFINED).await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let report = fault_report(&app).await;
        set_faults(&app, "null").await;

        assert_stored(&result, &file).await;
        let upload_id = get(&result, "uploadId").as_string().unwrap();
        let corrupted = get(&get(&report, "injected"), "corrupt").as_f64().unwrap_or(0.0);
        assert!(corrupted >= 2.0, "{name}: {corrupted} parts corrupted");
        assert_eq!(count(&report, "storedParts", &upload_id), 4.0, "{name}: only intact parts were stored");
        assert_eq!(count(&report, "partRequests", &upload_id), 4.0 + corrupted, "{name}: each refused part sent again");
    }
    assert_eq!(open_uploads(&app).await, (0, 0));
}

#[wasm_bindgen_test]
async fn without_checksums_the_same_corruption_is_stored_unnoticed() {
    // The control for the test above: the fault really corrupts, and only checksums catch it.
    let app = faults_app();
    set_faults(&app, r#"{"every": 2, "kinds": ["corrupt"]}"#).await;
    let up = uploader_with(false.into(), None);
    let file = file_of(4 * PART, 51, "unprotected.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("nothing notices");
    set_faults(&app, "null").await;
    assert!(get(&result, "checksum").is_null());
    let display = get(&result, "displayUrl").as_string().unwrap();
    let (stored, source) = (stored_bytes(&display).await, blob_bytes(&file).await);
    assert_eq!(stored.len(), source.len());
    assert_ne!(stored, source, "the corrupted parts were stored as they arrived");
}

#[wasm_bindgen_test]
async fn a_store_reporting_another_object_checksum_fails_with_checksum_mismatch() {
    set_faults(&faults_app(), "null").await;
    // The store answers a full-object CRC32C and a composite SHA-256 (`...-N`): both compared.
    for (name, reported) in [("crc32c", "AAAAAA=="), ("sha256", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=-2")] {
        let cb = callbacks(&faults_api(), &object(&[("reportChecksum", reported.into())]));
        let up = uploader(object(&[("backend", get(&cb, "backend")), ("checksum", name.into())]));
        let file = file_of(2 * PART, 52, "contradicted.bin", "");
        let error = upload(&up, &file, JsValue::UNDEFINED).await.expect_err("a contradicting store is an error");
        assert_eq!(code_of(&error), "checksum_mismatch", "{name}");
        let message = message_of(&error);
        assert!(message.contains(reported) && message.contains(&name.to_uppercase()), "{message}");
    }
}

#[wasm_bindgen_test]
async fn a_backend_without_checksums_still_uploads_and_says_nothing_was_checked() {
    set_faults(&faults_app(), "null").await;
    let cb = callbacks(&faults_api(), &json(r#"{"noChecksums": true}"#));
    let up = uploader(object(&[("backend", get(&cb, "backend"))]));
    let file = file_of(2 * PART, 53, "unchecked.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("uploads without checksums");
    assert_stored(&result, &file).await;
    assert!(get(&result, "checksum").is_null(), "no checksum claimed that the store did not check");
}

#[wasm_bindgen_test]
async fn progress_reports_hashing_up_to_the_whole_file() {
    set_faults(&faults_app(), "null").await;
    let log = ProgressLog::default();
    let listener = log.listener();
    let up = uploader_with("sha256".into(), Some(&listener));
    // Large enough that hashing outlasts the ~100 ms between reports in every engine (with 15 MiB,
    // Firefox once hashed it all between two reports).
    let file = file_of(13 * PART, 54, "hashed.bin", "");
    upload(&up, &file, JsValue::UNDEFINED).await.expect("upload succeeds");
    log.assert_honest(file.size());
    let reports = log.0.borrow();
    assert!(reports.windows(2).all(|w| w[0].hashed <= w[1].hashed), "hashed never goes back");
    assert!(reports.iter().any(|r| r.hashed > 0.0 && r.hashed < file.size()), "hashing was reported as it went");
    assert_eq!(reports.last().map(|r| r.hashed), Some(file.size()));
}
