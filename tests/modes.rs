//! Upload modes besides presigned PUTs, in a headless browser against the reference server and
//! its embedded store: HTML-form POSTs under a signed policy, and an API that authenticates its
//! callers. Run by scripts/browser-tests.sh.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

fn post_uploader(backend: JsValue, transport: &str) -> s3_direct_upload::Uploader {
    uploader(object(&[("backend", backend), ("mode", "post".into()), ("transport", transport.into())]))
}

#[wasm_bindgen_test]
async fn a_form_post_under_a_signed_policy_stores_the_file() {
    for transport in ["fetch", "xhr"] {
        let up = post_uploader(api().into(), transport);
        let file = file_of(3 * MIB + 5, 60, "form.bin", "application/octet-stream");
        let result = upload(&up, &file, JsValue::UNDEFINED).await.unwrap_or_else(|e| panic!("{transport}: {e:?}"));
        assert_stored(&result, &file).await;
        let key = get(&result, "key").as_string().unwrap();
        assert!(key.starts_with("uploads/") && key.ends_with("/form.bin"), "{key}");
        assert!(get(&result, "parts").is_null(), "one request, no parts");
        let location = get(&result, "location").as_string().unwrap();
        assert!(location.ends_with(&key) && !location.contains("Signature"), "{location}");
        let checksum = get(&result, "checksum");
        assert_eq!(get(&checksum, "algorithm").as_string().as_deref(), Some("CRC32C"), "signed into the policy");
    }
}

#[wasm_bindgen_test]
async fn the_store_refuses_a_file_larger_than_the_policy_allows() {
    // The page declares one byte less than it sends: the policy's content-length-range says no.
    let file = file_of(1000, 61, "liar.bin", "application/octet-stream");
    let cb = callbacks(&api(), &object(&[("declareSize", 999.into())]));
    let error = upload(&post_uploader(get(&cb, "backend"), "fetch"), &file, JsValue::UNDEFINED)
        .await
        .expect_err("the store enforces the signed size");
    assert_eq!(code_of(&error), "file_too_large");
    let message = message_of(&error);
    assert!(message.contains("EntityTooLarge") && !message.contains("Signature"), "{message}");
}

#[wasm_bindgen_test]
async fn a_form_that_does_not_match_its_policy_fails_with_the_condition_named() {
    let file = file_of(1000, 62, "retyped.bin", "application/octet-stream");
    let cb = callbacks(&api(), &object(&[("retype", "text/html".into())]));
    let error = upload(&post_uploader(get(&cb, "backend"), "fetch"), &file, JsValue::UNDEFINED)
        .await
        .expect_err("the store checks every field against the policy");
    assert_eq!(code_of(&error), "part_upload_failed");
    let message = message_of(&error);
    assert!(message.to_ascii_lowercase().contains("content-type"), "{message}");
}

fn auth_api() -> String {
    format!("{}/api/uploads", server(option_env!("S3DU_TEST_APP_AUTH")))
}

/// An uploader on the server with authentication, as the test user when `signed_in`.
fn auth_uploader(signed_in: bool) -> s3_direct_upload::Uploader {
    let options = object(&[("backend", auth_api().into())]);
    if signed_in {
        let token = server(option_env!("S3DU_TEST_ALICE_TOKEN"));
        let headers = object(&[("Authorization", format!("Bearer {token}").into())]);
        js_sys::Reflect::set(&options, &"backendHeaders".into(), &headers).unwrap();
    }
    uploader(options)
}

#[wasm_bindgen_test]
async fn a_signed_in_user_uploads_under_their_prefix_within_quota_and_strangers_are_refused() {
    let stranger = auth_uploader(false);
    let error = upload(&stranger, &file_of(10, 64, "x.bin", ""), JsValue::UNDEFINED).await.expect_err("no token");
    assert_eq!((code_of(&error), get(&error, "status").as_f64()), ("backend_error".to_owned(), Some(401.0)));
    assert!(message_of(&error).contains("sign in first"), "{}", message_of(&error));

    // The server allows 3 uploads a day: a multipart upload, two single PUTs, then no more.
    let alice = auth_uploader(true);
    for (size, seed) in [(6 * MIB, 65), (1000, 66), (1000, 67)] {
        let file = file_of(size, seed, "mine.bin", "");
        let result = upload(&alice, &file, JsValue::UNDEFINED).await.expect("within quota");
        assert!(get(&result, "key").as_string().unwrap().starts_with("uploads/alice/"));
        assert_stored(&result, &file).await;
    }
    let error = upload(&alice, &file_of(10, 68, "more.bin", ""), JsValue::UNDEFINED).await.expect_err("over quota");
    assert_eq!(get(&error, "status").as_f64(), Some(403.0));
    assert!(message_of(&error).contains("daily quota reached: 3 uploads"), "{}", message_of(&error));
}

fn credentials_uploader(cb: &JsValue, concurrency: u32) -> s3_direct_upload::Uploader {
    uploader(object(&[
        ("backend", get(cb, "backend")),
        ("mode", "credentials".into()),
        ("concurrency", concurrency.into()),
        // Per-byte progress, so a test can pause inside the first part.
        ("transport", "xhr".into()),
    ]))
}

fn credential_calls(cb: &JsValue) -> f64 {
    get(&get(cb, "calls"), "credentials").as_f64().unwrap()
}

#[wasm_bindgen_test]
async fn the_page_signs_every_request_with_one_grant_of_temporary_credentials() {
    let cb = callbacks(&api(), &json("{}"));
    let up = credentials_uploader(&cb, 6);
    // The small file goes as a form POST signed in the page, with its checksum.
    for (size, seed, parts) in [(12 * MIB + 3, 70, Some(3.0)), (1000, 71, None)] {
        let file = file_of(size, seed, "signed-here.bin", "");
        let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("uploads with the page's signatures");
        assert_stored(&result, &file).await;
        assert_eq!(get(&result, "parts").as_f64(), parts);
        assert!(get(&result, "key").as_string().unwrap().starts_with("uploads/"));
        let checksum = get(&result, "checksum");
        assert_eq!(get(&checksum, "algorithm").as_string().as_deref(), Some("CRC32C"), "signed in the page too");
    }
    assert_eq!(credential_calls(&cb), 1.0, "no backend round trip per part, or per file");
}

#[wasm_bindgen_test]
async fn credentials_the_store_says_expired_are_fetched_again() {
    // The first grant lasts 2 s but claims an hour: only the store's ExpiredToken can tell.
    let cb = callbacks(&api(), &json(r#"{"shortFirstGrant": true}"#));
    let up = credentials_uploader(&cb, 1);
    let log = ProgressLog::default();
    let listener = log.listener();
    let file = file_of(30 * MIB, 72, "expiring.bin", "");
    let options = object(&[("onProgress", listener.as_ref().clone())]);
    let handle = up.upload(file.clone().into(), Some(options.unchecked_into())).unwrap();
    log.wait_for_bytes(20_000).await;
    handle.pause(); // inside the first part: every URL of the first grant is still to be used
    pause_for(2500).await;
    handle.resume();
    let result = wasm_bindgen_futures::JsFuture::from(handle.done()).await.expect("new credentials finish it");
    assert_stored(&result, &file).await;
    assert!(credential_calls(&cb) >= 2.0, "fetched again after ExpiredToken");
}

#[wasm_bindgen_test]
async fn a_clock_an_hour_off_is_corrected_from_the_stores_time() {
    let cb = callbacks(&api(), &json("{}"));
    let up = credentials_uploader(&cb, 6);
    let file = file_of(6 * MIB, 73, "skewed.bin", "");
    shift_clock(3_600_000.0);
    let result = upload(&up, &file, JsValue::UNDEFINED).await;
    shift_clock(0.0);
    let result = result.expect("signed again with the store's time after RequestTimeTooSkewed");
    assert_stored(&result, &file).await;
}

#[wasm_bindgen_test]
async fn a_small_file_learns_the_stores_time_from_its_refused_form_too() {
    // A small file goes as a form POST: no header-signed request comes first to learn from.
    for (offset, seed) in [(3_600_000.0, 75), (-3_600_000.0, 76)] {
        let cb = callbacks(&api(), &json("{}"));
        let up = credentials_uploader(&cb, 6);
        let file = file_of(1000, seed, "skewed-form.bin", "");
        shift_clock(offset);
        let result = upload(&up, &file, JsValue::UNDEFINED).await;
        shift_clock(0.0);
        let result = result.unwrap_or_else(|e| panic!("clock off by {offset} ms: {}", message_of(&e)));
        assert_stored(&result, &file).await;
    }
}

#[wasm_bindgen_test]
async fn an_abort_the_buckets_cors_rule_blocks_names_the_method_it_lacks() {
    let api = format!("{}/api/uploads", server(option_env!("S3DU_TEST_APP_NO_DELETE")));
    let cb = callbacks(&api, &json("{}"));
    let up = credentials_uploader(&cb, 2);
    let log = ProgressLog::default();
    let listener = log.listener();
    let file = file_of(60 * MIB, 77, "no-delete.bin", "");
    let options = object(&[("onProgress", listener.as_ref().clone())]);
    let handle = up.upload(file.into(), Some(options.unchecked_into())).unwrap();
    log.wait_for_bytes(20_000).await;
    handle.pause(); // inside the first parts: the upload cannot finish before the abort
    let _ = wasm_bindgen_futures::JsFuture::from(handle.abort()).await;
    let error = wasm_bindgen_futures::JsFuture::from(handle.done()).await.expect_err("aborted");
    assert_eq!(code_of(&error), "aborted");
    let message = message_of(&error);
    assert!(message.contains("DELETE") && message.contains("lifecycle rule"), "{message}");
}

/// Uploads `file` through `up` to the store whose CORS rule does not allow this page: the
/// error, how long it took, and whether progress said `retrying` meanwhile.
async fn upload_past_cors(up: &s3_direct_upload::Uploader, file: &web_sys::File) -> (JsValue, f64, bool) {
    let log = ProgressLog::default();
    let listener = log.listener();
    let started = js_sys::Date::now();
    let options = object(&[("onProgress", listener.as_ref().clone())]);
    let error = upload(up, file, options).await.expect_err("the store's CORS rule refuses this page");
    (error, js_sys::Date::now() - started, log.saw("retrying"))
}

#[wasm_bindgen_test]
async fn a_store_whose_cors_rule_refuses_the_page_fails_in_seconds_with_the_cors_explanation() {
    let api = format!("{}/api/uploads", server(option_env!("S3DU_TEST_APP_WRONG_ORIGIN")));
    let presigned =
        |transport: &str| uploader(object(&[("backend", api.as_str().into()), ("transport", transport.into())]));
    let cb = callbacks(&api, &json("{}"));
    let (put, multipart, credentials) = (presigned("fetch"), presigned("xhr"), credentials_uploader(&cb, 6));
    let (small, large) = (file_of(1000, 78, "cors-small.bin", ""), file_of(12 * MIB, 79, "cors-large.bin", ""));
    let (a, b, c) = futures::join!(
        upload_past_cors(&put, &small),
        upload_past_cors(&multipart, &large),
        upload_past_cors(&credentials, &large),
    );
    for (what, (error, ms, retrying)) in [("single PUT", a), ("multipart, xhr", b), ("credentials mode", c)] {
        let message = message_of(&error);
        assert_eq!(code_of(&error), "part_upload_failed", "{what}: {message}");
        // It ends at the 3 s bound, or sooner when instant refusals use up the retry count.
        assert!(message.contains("CORS rule does not allow this origin"), "{what}: {message}");
        assert!(ms < 5_000.0, "{what}: failed after {ms} ms, not within 5 s");
        assert!(retrying, "{what}: progress never said it was retrying");
    }
}

#[wasm_bindgen_test]
async fn unusable_credentials_are_a_clear_error_that_quotes_no_secret() {
    let cb = callbacks(&api(), &json(r#"{"grantEndpoint": "not a url"}"#));
    let error = upload(&credentials_uploader(&cb, 6), &file_of(10, 74, "x.bin", ""), JsValue::UNDEFINED)
        .await
        .expect_err("an endpoint that is not a URL");
    assert_eq!(code_of(&error), "backend_error");
    let message = message_of(&error);
    assert!(message.contains("\"not a url\"") && message.contains("http(s)://host[:port]"), "{message}");
    assert!(!message.contains("ecret") && !message.contains("ASIA"), "{message}");

    let up = credentials_uploader(&callbacks(&api(), &json("{}")), 6);
    let wish = object(&[("key", "../elsewhere/x.bin".into())]);
    let error = upload(&up, &file_of(10, 75, "x.bin", ""), wish).await.expect_err("a key outside the prefix");
    assert_eq!(code_of(&error), "invalid_option");
}
