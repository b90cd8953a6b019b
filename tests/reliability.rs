//! Reliability tests in headless Chromium: uploads through a reference server whose store fails,
//! stalls, expires URLs and restarts on purpose, checked byte for byte. Run by
//! `scripts/browser-tests.sh`, which sets `S3DU_TEST_APP_FAULTS` to a server used by these tests
//! alone (fault plans are server-wide).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

/// Options that detect a stalled part within about 2 s; retries keep their defaults.
fn quick_options(listener: &Closure<dyn Fn(JsValue)>) -> JsValue {
    let options = json(r#"{"stallTimeoutMs": 1500, "minBytesPerSecond": 20000000}"#);
    Reflect::set(&options, &"backend".into(), &faults_api().into()).unwrap();
    Reflect::set(&options, &"onProgress".into(), listener.as_ref()).unwrap();
    options
}

fn count(report: &JsValue, table: &str, upload_id: &str) -> f64 {
    get(&get(report, table), upload_id).as_f64().unwrap_or(0.0)
}

#[wasm_bindgen_test]
async fn a_large_file_survives_one_part_request_in_five_failing_in_mixed_ways() {
    let app = faults_app();
    set_faults(&app, r#"{"every": 5, "kinds": ["500", "slowdown", "reset", "stall", "expired"]}"#).await;
    let log = ProgressLog::default();
    let listener = log.listener();
    let up = uploader(quick_options(&listener));
    let file = file_of(128 * MIB, 21, "faulty.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("retries carry the upload through");
    let report = fault_report(&app).await;
    set_faults(&app, "null").await;

    assert_stored(&result, &file).await;
    log.assert_honest(file.size());
    let upload_id = get(&result, "uploadId").as_string().unwrap();
    let injected = get(&report, "injected");
    let kinds = js_sys::Object::keys(injected.unchecked_ref::<js_sys::Object>()).length();
    console_log!(
        "faults injected: {}; part requests {}, parts stored {}",
        js_sys::JSON::stringify(&injected).unwrap(),
        count(&report, "partRequests", &upload_id),
        count(&report, "storedParts", &upload_id)
    );
    assert_eq!(kinds, 5, "the mix covered every kind of failure");
    assert_eq!(count(&report, "storedParts", &upload_id), 26.0, "each part stored once");
    assert!(count(&report, "partRequests", &upload_id) > 26.0, "failed parts were sent again");
    assert_eq!(open_uploads(&app).await, (0, 0));
}

#[wasm_bindgen_test]
async fn a_store_that_throttles_gets_fewer_requests_at_once_and_the_whole_file() {
    let app = faults_app();
    // The store answers 503 SlowDown to every part PUT beyond 2 at once.
    set_faults(&app, r#"{"kinds": [], "slowDownAbove": 2}"#).await;
    let log = ProgressLog::default();
    let listener = log.listener();
    let up = uploader(quick_options(&listener));
    let file = file_of(60 * MIB, 23, "throttled.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("a throttling store still gets the file");
    let report = fault_report(&app).await;
    set_faults(&app, "null").await;

    assert_stored(&result, &file).await;
    let budgets: Vec<f64> = log.0.borrow().iter().map(|r| r.budget).collect();
    let lowest = budgets.iter().copied().fold(f64::INFINITY, f64::min);
    let refused = get(&get(&report, "injected"), "slowdown").as_f64().unwrap_or(0.0);
    console_log!("budget over the upload: {budgets:?}; SlowDown answers: {refused}");
    assert_eq!(budgets[0], 6.0, "the budget starts at the concurrency option");
    assert!(lowest <= 3.0, "the budget came down near what the store takes: {budgets:?}");
    // 12 parts: a fixed budget of 6 would have four of every six requests refused, round after round.
    assert!(refused < 12.0, "{refused} part requests refused with SlowDown");
}

#[wasm_bindgen_test]
async fn expired_urls_are_signed_again_and_the_upload_finishes() {
    let app = faults_app();
    set_faults(&app, r#"{"rate": 0.5, "kinds": ["expired"], "seed": 3}"#).await;
    let cb = callbacks(&faults_api(), &json("{}"));
    let up = uploader(object(&[("backend", get(&cb, "backend")), ("retry", json(r#"{"maxBackoffMs": 200}"#))]));
    let file = file_of(24 * MIB, 22, "expiring.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("expired URLs are re-signed");
    let report = fault_report(&app).await;
    set_faults(&app, "null").await;

    assert_stored(&result, &file).await;
    let expired = get(&get(&report, "injected"), "expired").as_f64().unwrap_or(0.0);
    let resigns = get(&get(&cb, "calls"), "resign").as_f64();
    assert!(expired > 0.0);
    assert_eq!(resigns, Some(expired), "one re-sign per expired URL");
}

#[wasm_bindgen_test]
async fn in_the_credentials_mode_retried_parts_need_neither_signing_nor_new_credentials() {
    let app = faults_app();
    set_faults(&app, r#"{"every": 2, "kinds": ["500", "reset", "slowdown"]}"#).await;
    let cb = callbacks(&faults_api(), &json("{}"));
    let options =
        [("backend", get(&cb, "backend")), ("mode", "credentials".into()), ("retry", json(r#"{"maxBackoffMs": 200}"#))];
    let up = uploader(object(&options));
    let file = file_of(24 * MIB, 23, "retried.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("retries carry the upload through");
    let report = fault_report(&app).await;
    set_faults(&app, "null").await;

    assert_stored(&result, &file).await;
    let upload_id = get(&result, "uploadId").as_string().unwrap();
    assert!(count(&report, "partRequests", &upload_id) > 5.0, "failed parts were sent again");
    let credentials = get(&get(&cb, "calls"), "credentials").as_f64().unwrap();
    assert_eq!(credentials, 1.0, "a part's URL serves its retries: one grant for the whole upload");
}

#[wasm_bindgen_test]
async fn pause_stops_sending_and_resume_finishes_the_upload() {
    let app = faults_app();
    set_faults(&app, "null").await;
    let log = ProgressLog::default();
    let listener = log.listener();
    let options = quick_options(&listener);
    Reflect::set(&options, &"concurrency".into(), &2.into()).unwrap();
    let up = uploader(options);
    let file = file_of(48 * MIB, 23, "paused.bin", "");
    let handle = up.upload(file.clone().into(), None).unwrap();
    log.wait_for_bytes(20_000).await;
    handle.pause();
    pause_for(300).await; // requests cancelled by the pause settle
    let before = fault_report(&app).await;
    pause_for(1000).await;
    let during = fault_report(&app).await;
    assert_eq!(
        js_sys::JSON::stringify(&get(&before, "partRequests")).unwrap(),
        js_sys::JSON::stringify(&get(&during, "partRequests")).unwrap(),
        "no part request while paused"
    );
    assert!(log.saw("paused"));
    handle.resume();
    let result = JsFuture::from(handle.done()).await.expect("resumed upload finishes");
    assert_stored(&result, &file).await;
    log.assert_honest(file.size());
}

#[wasm_bindgen_test]
async fn a_store_restart_mid_upload_is_ridden_out() {
    let app = faults_app();
    set_faults(&app, "null").await;
    let log = ProgressLog::default();
    let listener = log.listener();
    let up = uploader(quick_options(&listener));
    let file = file_of(48 * MIB, 24, "restart.bin", "");
    let handle = up.upload(file.clone().into(), None).unwrap();
    log.wait_for_bytes(20_000).await;
    let restart = post_json(&format!("{app}/__test/restart-store"), &json(r#"{"downMs": 2000}"#));
    let _ = JsFuture::from(restart).await; // the answer is not JSON; the restart is what counts
    let result = JsFuture::from(handle.done()).await.expect("the upload survives the outage");
    assert_eq!(get(&fault_report(&app).await, "restarts").as_f64(), Some(1.0));
    assert_stored(&result, &file).await;
    log.assert_honest(file.size());
}

#[wasm_bindgen_test]
async fn failures_that_never_stop_end_in_a_clear_error_within_the_bound() {
    let app = faults_app();
    set_faults(&app, r#"{"rate": 1, "kinds": ["500"]}"#).await;
    let options = json(r#"{"retry": {"maxRetries": 3, "initialBackoffMs": 50, "maxBackoffMs": 200}}"#);
    Reflect::set(&options, &"backend".into(), &faults_api().into()).unwrap();
    let up = uploader(options);
    let started = js_sys::Date::now();
    let err = upload(&up, &file_of(12 * MIB, 25, "doomed.bin", ""), JsValue::UNDEFINED).await.unwrap_err();
    let elapsed = js_sys::Date::now() - started;
    set_faults(&app, "null").await;
    assert_eq!(code_of(&err), "part_upload_failed");
    let message = message_of(&err);
    assert!(message.contains("gave up after 3 retries") && message.contains("InternalError"), "{message}");
    assert!(elapsed < 10_000.0, "ended in {elapsed} ms");
    assert_eq!(open_uploads(&app).await, (0, 0), "the failed upload was aborted");
}

#[wasm_bindgen_test]
async fn offline_uploads_wait_for_the_network_and_then_finish() {
    let app = faults_app();
    set_faults(&app, "null").await;
    let log = ProgressLog::default();
    let listener = log.listener();
    let up = uploader(quick_options(&listener));
    // The page, or the worker: where the engine listens.
    let global: web_sys::EventTarget = js_sys::global().unchecked_into();
    global.dispatch_event(&web_sys::Event::new("offline").unwrap()).unwrap();
    let file = file_of(12 * MIB, 26, "offline.bin", "");
    let handle = up.upload(file.clone().into(), None).unwrap();
    pause_for(500).await;
    assert!(log.saw("waiting_for_network"));
    assert_eq!(log.loaded(), 0.0, "nothing is sent while offline");
    global.dispatch_event(&web_sys::Event::new("online").unwrap()).unwrap();
    let result = JsFuture::from(handle.done()).await.expect("finishes once online");
    assert_stored(&result, &file).await;
}

#[wasm_bindgen_test]
async fn a_reloaded_page_resumes_and_sends_only_the_missing_parts() {
    let app = faults_app();
    // The first page stores 4 parts; then every part request stalls, until the "reload".
    set_faults(&app, r#"{"every": 1, "skip": 4, "kinds": ["stall"], "stallMs": 60000}"#).await;
    let same_file = || file_dated(48 * MIB, 27, "resume.bin", "", Some(1_700_000_000_000.0));
    let options = |listener: &Closure<dyn Fn(JsValue)>| {
        object(&[
            ("backend", faults_api().into()),
            ("concurrency", 2.into()),
            ("onProgress", listener.as_ref().clone()),
        ])
    };

    // The first page stores some parts, then goes away: its requests are cut off, its objects dropped.
    let first_log = ProgressLog::default();
    let first_listener = first_log.listener();
    let first = uploader(options(&first_listener));
    let handle = first.upload(same_file().into(), None).unwrap();
    first_log.wait_for_loaded((20 * MIB) as f64, 20_000).await;
    handle.pause();
    pause_for(300).await;
    drop((handle, first));
    assert_eq!(resume_records().await, 1, "the upload is remembered");
    let report = fault_report(&app).await;
    set_faults(&app, "null").await; // and zero the counts
    let upload_id =
        js_sys::Object::keys(get(&report, "storedParts").unchecked_ref::<js_sys::Object>()).get(0).as_string().unwrap();
    assert_eq!(count(&report, "storedParts", &upload_id), 4.0, "parts stored before the reload");

    // The reloaded page: a new uploader, a new File object for the same file.
    let second_log = ProgressLog::default();
    let second_listener = second_log.listener();
    let second = uploader(options(&second_listener));
    let file = same_file();
    let result = upload(&second, &file, JsValue::UNDEFINED).await.expect("the resumed upload finishes");
    assert_eq!(get(&result, "uploadId").as_string(), Some(upload_id.clone()), "the same multipart upload");
    assert_stored(&result, &file).await;

    let report = fault_report(&app).await;
    assert_eq!(count(&report, "storedParts", &upload_id), 6.0, "the reloaded page stored the 6 missing parts");
    assert_eq!(count(&report, "partRequests", &upload_id), 6.0, "and sent nothing else");
    assert!(second_log.first_loaded() >= (20 * MIB) as f64, "progress starts where it was");
    second_log.assert_honest(file.size());
    assert_eq!(resume_records().await, 0, "the record is removed once the upload is done");
}

#[wasm_bindgen_test]
async fn with_xhr_bytes_show_as_they_leave_and_a_stall_is_seen_as_no_progress() {
    let app = faults_app();
    // Every 3rd part request is held for 60 s by the store. No minBytesPerSecond here: with
    // XHR a stall is "no progress for stallTimeoutMs", whatever the part size.
    set_faults(&app, r#"{"every": 3, "kinds": ["stall"], "stallMs": 60000}"#).await;
    let log = ProgressLog::default();
    let listener = log.listener();
    let options = json(r#"{"transport": "xhr", "stallTimeoutMs": 1500, "partSize": 16777216}"#);
    Reflect::set(&options, &"backend".into(), &faults_api().into()).unwrap();
    Reflect::set(&options, &"onProgress".into(), listener.as_ref()).unwrap();
    let up = uploader(options);
    let file = file_of(64 * MIB, 28, "xhr.bin", "");
    let started = js_sys::Date::now();
    let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("stalled parts are sent again");
    let seconds = (js_sys::Date::now() - started) / 1000.0;
    let report = fault_report(&app).await;
    set_faults(&app, "null").await;

    assert_stored(&result, &file).await;
    let stalls = get(&get(&report, "injected"), "stall").as_f64().unwrap_or(0.0);
    assert!(stalls >= 1.0, "a part was stalled");
    assert!(seconds < 30.0, "stalls were cut after 1.5 s without progress, not after 60 s: {seconds} s");
    log.assert_honest(file.size());
    let part = (16 * MIB) as f64;
    let within_a_part = log.0.borrow().iter().any(|r| r.loaded % part != 0.0 && r.loaded < r.total);
    assert!(within_a_part, "progress between part boundaries, which fetch cannot give");
    assert!(log.saw_restart(), "the stalled part's bytes were taken back, and the report said so");
}
