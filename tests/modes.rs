//! Upload modes besides presigned PUTs, in a headless browser against the reference server and
//! its embedded store: HTML-form POSTs under a signed policy, and an API that authenticates its
//! callers. Run by scripts/browser-tests.sh.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

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
