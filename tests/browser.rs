//! Browser tests: real `File`s uploaded from headless Chromium through the reference server to
//! its embedded S3 store (which verifies every signature), then read back and compared byte for
//! byte. Run by `scripts/test.sh`, which starts the servers and sets `S3DU_TEST_APP` (ETag
//! exposed) and `S3DU_TEST_APP_NO_ETAG` (ETag left out of the store's CORS rule).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Reflect;
use s3_direct_upload::Uploader;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
fn the_tests_run_on_a_page_or_in_a_dedicated_worker_as_built() {
    let has_document = js_sys::Reflect::has(&js_sys::global(), &"document".into()).unwrap();
    assert_eq!(has_document, cfg!(not(feature = "test-in-worker")), "on a page exactly when not built for a worker");
}

#[wasm_bindgen_test]
async fn an_empty_file_is_stored_with_a_single_put() {
    let result = round_trip(&file_of(0, 1, "empty.bin", ""), None).await;
    assert!(get(&result, "uploadId").is_null());
}

#[wasm_bindgen_test]
async fn a_one_byte_file_is_stored_with_a_single_put() {
    round_trip(&file_of(1, 2, "one.txt", "text/plain"), None).await;
}

#[wasm_bindgen_test]
async fn five_mib_plus_one_is_two_parts_with_a_one_byte_tail() {
    round_trip(&file_of(5 * MIB + 1, 3, "tail.bin", "application/octet-stream"), Some(2)).await;
}

#[wasm_bindgen_test]
async fn sixty_four_mib_goes_up_in_parallel_parts_with_honest_progress() {
    let file = file_of(64 * MIB + 3, 4, "big video.mp4", "video/mp4");
    let log = ProgressLog::default();
    let listener = log.listener();
    let up = uploader(object(&[("backend", api().into()), ("onProgress", listener.as_ref().clone())]));
    let started = js_sys::Date::now();
    let result = upload(&up, &file, object(&[("metadata", json(r#"{"owner":"42"}"#))])).await.unwrap();
    let seconds = (js_sys::Date::now() - started) / 1000.0;
    assert_eq!(get(&result, "parts").as_f64(), Some(13.0));
    assert!(get(&result, "key").as_string().unwrap().ends_with("/big_video.mp4"));
    assert_stored(&result, &file).await;
    log.assert_honest(file.size());
    // At most ~10 a second, plus one per change of state (queued, uploading, completing, done).
    let reports = log.0.borrow().len();
    assert!(reports as f64 <= seconds * 10.0 + 5.0, "{reports} reports in {seconds} s: not throttled");
}

#[wasm_bindgen_test]
async fn no_time_out_timer_outlives_the_request_it_guarded() {
    live_timers(0);
    let before = live_timers(10_000);
    // Callbacks: each call is given 30 s to settle.
    let cb = callbacks(&api(), &json("{}"));
    let up = uploader(object(&[("backend", get(&cb, "backend"))]));
    let file = file_of(12 * MIB, 9, "timers.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.unwrap();
    assert_stored(&result, &file).await;
    assert_eq!(live_timers(10_000), before, "every callback and PUT cleared its time-out");
}

#[wasm_bindgen_test]
async fn a_successful_upload_cancels_none_of_its_requests() {
    let before = abort_calls();
    let up = uploader(object(&[("backend", api().into())]));
    let file = file_of(12 * MIB, 11, "not-cancelled.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.unwrap();
    assert_stored(&result, &file).await;
    assert_eq!(abort_calls(), before, "no finished request aborted (DevTools showed them as cancelled)");
}

#[wasm_bindgen_test]
async fn an_onprogress_that_throws_is_reported_once_and_the_upload_goes_on() {
    let errors = console_errors();
    let throws = Closure::<dyn Fn(JsValue)>::new(|_| wasm_bindgen::throw_str("the page's own bug"));
    let up = uploader(object(&[("backend", api().into()), ("onProgress", throws.as_ref().clone())]));
    let file = file_of(12 * MIB, 10, "throwing-listener.bin", "");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("a listener's bug does not fail the upload");
    assert_stored(&result, &file).await;
    let said: Vec<String> = console_errors().into_iter().skip(errors.len()).collect();
    assert_eq!(said.len(), 1, "told once, not at every report: {said:?}");
    assert!(said[0].contains("onProgress") && said[0].contains("the page's own bug"), "{said:?}");
}

#[wasm_bindgen_test]
async fn one_uploader_runs_several_files_under_one_budget() {
    let up = uploader(object(&[("backend", api().into()), ("concurrency", 2.into())]));
    let (a, b) = (file_of(12 * MIB, 5, "a.bin", ""), file_of(11 * MIB + 7, 6, "b.bin", ""));
    let (ha, hb) = (up.upload(a.clone().into(), None).unwrap(), up.upload(b.clone().into(), None).unwrap());
    for (handle, file) in [(ha, a), (hb, b)] {
        let result = JsFuture::from(handle.done()).await.unwrap();
        assert_stored(&result, &file).await;
    }
}

#[wasm_bindgen_test]
async fn callbacks_drive_any_backend_batch_or_per_part() {
    for options in [r#"{"perPart": true}"#, r#"{"bare": true}"#] {
        let cb = callbacks(&api(), &json(options));
        let up = uploader(object(&[("backend", get(&cb, "backend")), ("concurrency", 3.into())]));
        let file = file_of(17 * MIB, 7, "cb.bin", "application/octet-stream");
        let result = upload(&up, &file, json(r#"{"key":"callbacks/cb.bin"}"#)).await.unwrap();
        assert_eq!(get(&result, "key").as_string().unwrap(), "uploads/callbacks/cb.bin");
        assert_stored(&result, &file).await;
        let signs = get(&get(&cb, "calls"), "sign").as_f64().unwrap();
        // signParts: part 1 is signed as soon as it is hashed, the others with what is hashed by
        // then (one by one while hashing is the slower; the orchestrator's tests check batches).
        let batched = if options.contains("perPart") { signs == 4.0 } else { (1.0..=4.0).contains(&signs) };
        assert!(batched, "{signs} signing calls for 4 parts with {options}");
    }
    // Small files go through signPut, with the content type as signed.
    let cb = callbacks(&api(), &json("{}"));
    let up = uploader(object(&[("backend", get(&cb, "backend"))]));
    let file = file_of(1000, 8, "note.txt", "text/plain");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.unwrap();
    assert_stored(&result, &file).await;
}

#[wasm_bindgen_test]
async fn two_hundred_checksummed_files_at_once_all_finish() {
    // Many small files at once: every one is read, hashed, signed and stored, none waits for good.
    let up = uploader(object(&[("backend", api().into())]));
    let files: Vec<web_sys::File> =
        (0..200).map(|i| file_of(256 * 1024, 300 + i, &format!("many-{i}.bin"), "")).collect();
    let all = futures::future::join_all(files.iter().map(|f| upload(&up, f, JsValue::UNDEFINED)));
    let in_time = futures::future::select(Box::pin(all), Box::pin(pause_for(60_000))).await;
    let futures::future::Either::Left((results, _)) = in_time else { panic!("200 small files not done in 60 s") };
    for (result, file) in results.into_iter().zip(&files).step_by(40) {
        assert_stored(&result.expect("every file is stored"), file).await;
    }
}

#[wasm_bindgen_test]
async fn a_class_instances_methods_are_called_on_it() {
    let backend = class_backend(&api());
    let up = uploader(object(&[("backend", backend.clone())]));
    for (size, seed) in [(17 * MIB, 12), (1000, 13)] {
        let file = file_of(size, seed, "classy.bin", "");
        let result = upload(&up, &file, JsValue::UNDEFINED).await.expect("methods see `this`");
        assert_stored(&result, &file).await;
    }
    assert!(get(&backend, "calls").as_f64().unwrap() >= 4.0, "create, sign, complete, then signPut");
}

#[wasm_bindgen_test]
async fn an_empty_content_type_is_not_given_and_the_files_own_is_used() {
    // `file.type` is "" for types the browser does not know; apps pass it on as it is.
    let up = uploader(object(&[("backend", api().into())]));
    for (file, size) in
        [(file_of(1000, 80, "notes.txt", "text/plain"), 1000.0), (file_of(0, 81, "unknown.xyz", ""), 0.0)]
    {
        let result = upload(&up, &file, json(r#"{"contentType": ""}"#)).await.expect("stored with the file's own type");
        assert_eq!(get(&result, "size").as_f64(), Some(size));
        assert_stored(&result, &file).await;
    }
}

#[wasm_bindgen_test]
async fn a_bandwidth_cap_holds_the_average_within_fifteen_percent() {
    const CAP: f64 = 8.0 * MIB as f64; // bytes a second, for all files together
    let up = uploader(object(&[("backend", api().into()), ("maxBytesPerSecond", CAP.into())]));
    let (a, b) = (file_of(20 * MIB, 82, "capped-a.bin", ""), file_of(12 * MIB, 83, "capped-b.bin", ""));
    let started = js_sys::Date::now();
    let (ra, rb) = futures::join!(upload(&up, &a, JsValue::UNDEFINED), upload(&up, &b, JsValue::UNDEFINED));
    let seconds = (js_sys::Date::now() - started) / 1000.0;
    let (ra, rb) = (ra.expect("stored"), rb.expect("stored"));
    assert_stored(&ra, &a).await;
    assert_stored(&rb, &b).await;
    let average = (a.size() + b.size()) / seconds;
    console_log!("32 MiB under a cap of 8 MiB/s: {:.2} s, {:.2} MiB/s", seconds, average / MIB as f64);
    assert!((average / CAP - 1.0).abs() <= 0.15, "the average was {average} bytes a second against a cap of {CAP}");
}

#[wasm_bindgen_test]
async fn a_hidden_etag_fails_fast_with_its_own_code_and_leaves_no_upload() {
    let app = server(option_env!("S3DU_TEST_APP_NO_ETAG"));
    let up = uploader(object(&[("backend", format!("{app}/api/uploads").into())]));
    let started = js_sys::Date::now();
    let err = upload(&up, &file_of(11 * MIB, 9, "x.bin", ""), JsValue::UNDEFINED).await.unwrap_err();
    assert_eq!(code_of(&err), "etag_not_exposed");
    assert!(message_of(&err).contains("ExposeHeaders"), "{}", message_of(&err));
    assert!(js_sys::Date::now() - started < 20_000.0, "failed fast, no hang");
    assert_eq!(open_uploads(&app).await, (0, 0), "the upload was aborted in the store");
}

#[wasm_bindgen_test]
async fn a_part_the_store_rejects_fails_the_upload_aborts_it_and_leaks_no_url() {
    let cb = callbacks(&api(), &json(r#"{"tamper": true}"#));
    // A one-part multipart upload of 100 bytes: the store refuses the signature before it reads
    // a body, so a small body (sent whole at once) lets every browser read that refusal; with a
    // large one Firefox may see the connection close mid-send instead.
    let up = uploader(object(&[("backend", get(&cb, "backend")), ("multipartThreshold", 0.into())]));
    let err = upload(&up, &file_of(100, 10, "t.bin", ""), JsValue::UNDEFINED).await.unwrap_err();
    assert_eq!(code_of(&err), "part_upload_failed");
    assert_eq!(get(&err, "status").as_f64(), Some(403.0));
    let message = message_of(&err);
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains("X-Amz") && !message.contains("http"), "no URL in errors: {message}");
    assert_eq!(get(&get(&cb, "calls"), "abort").as_f64(), Some(1.0));
    assert_eq!(open_uploads(&app()).await, (0, 0));
}

#[wasm_bindgen_test]
async fn abort_stops_the_upload_and_removes_it_from_the_store() {
    let up = uploader(object(&[("backend", api().into()), ("concurrency", 2.into())]));
    let log = ProgressLog::default();
    let listener = log.listener();
    let options = object(&[("onProgress", listener.as_ref().clone())]);
    let handle = up.upload(file_of(48 * MIB, 11, "abort.bin", "").into(), Some(options.unchecked_into())).unwrap();
    log.wait_for_bytes(20_000).await;
    JsFuture::from(handle.abort()).await.unwrap();
    let err = JsFuture::from(handle.done()).await.unwrap_err();
    assert_eq!(code_of(&err), "aborted");
    assert!(log.saw("aborted"));
    assert_eq!(open_uploads(&app()).await, (0, 0), "no multipart upload is left, in the backend or the store");
}

#[wasm_bindgen_test]
fn bad_arguments_throw_invalid_option_or_invalid_file() {
    let up = uploader(object(&[("backend", api().into())]));
    let err = up.upload("not a file".into(), None).err().unwrap();
    assert_eq!(code_of(&err), "invalid_file");
    assert!(message_of(&err).contains("File or Blob"));

    for (options, hint) in [
        (r#"{"concurrency": 0}"#, "concurrency"),
        (r#"{"concurrency": 1000}"#, "concurrency"),
        (r#"{"partSize": 1048576}"#, "partSize"),
        (r#"{"partSize": 6000000000}"#, "partSize"),
        (r#"{"concurency": 4}"#, "concurency"),
        (r#"{"transport": "pigeon"}"#, "transport"),
    ] {
        let options = json(options);
        Reflect::set(&options, &"backend".into(), &api().into()).unwrap();
        let err = Uploader::new(options.unchecked_into()).err().expect("rejected");
        assert_eq!(code_of(&err), "invalid_option");
        assert!(message_of(&err).contains(hint), "{}", message_of(&err));
        assert_eq!(get(&err, "name").as_string().as_deref(), Some("S3DirectUploadError"));
    }
    for backend in [JsValue::from(""), JsValue::from(5), json("{}")] {
        let err = Uploader::new(object(&[("backend", backend)]).unchecked_into()).err().expect("rejected");
        assert_eq!(code_of(&err), "invalid_option");
    }
    for options in [r#"{"metadata":{"bad name":"x"}}"#, r#"{"contentTyp":"text/plain"}"#] {
        let err = up.upload(file_of(1, 1, "a", "").into(), Some(json(options).unchecked_into())).err().unwrap();
        assert_eq!(code_of(&err), "invalid_option", "{options}");
    }
}

#[wasm_bindgen_test]
async fn backend_failures_end_with_typed_errors() {
    let file = file_of(6 * MIB, 12, "f.bin", "");
    let cases = [
        ("http://127.0.0.1:9/api/uploads".to_owned(), "backend_unreachable", None),
        (format!("{}/__test/not-json/x", app()), "backend_error", None),
        (format!("{}/__test/status/500/x", app()), "backend_error", Some(500.0)),
        (format!("{}/__test/empty-json/x", app()), "backend_error", None),
    ];
    for (backend, code, status) in cases {
        // Unreachable and 5xx answers are retried; two retries keep the test short.
        let up = uploader(object(&[("backend", backend.clone().into()), ("retry", json(r#"{"maxRetries":2}"#))]));
        let err = upload(&up, &file, JsValue::UNDEFINED).await.unwrap_err();
        assert_eq!(code_of(&err), code, "{backend}: {}", message_of(&err));
        assert_eq!(get(&err, "status").as_f64(), status, "{backend}");
        let transient = code == "backend_unreachable" || status == Some(500.0);
        assert_eq!(message_of(&err).contains("gave up after 2 retries"), transient, "{}", message_of(&err));
    }
    // The backend refuses a content type it does not accept, and says why.
    let up = uploader(object(&[("backend", api().into())]));
    let err = upload(&up, &file_of(10, 13, "x.exe", "application/x-msdownload"), JsValue::UNDEFINED).await.unwrap_err();
    assert_eq!((code_of(&err), get(&err, "status").as_f64()), ("backend_error".into(), Some(415.0)));
    assert!(message_of(&err).contains("not accepted"), "{}", message_of(&err));
    // A callback that throws: the thrown value is kept as `cause`.
    let thrown = js_sys::Error::new("no session");
    let cb = callbacks(&api(), &object(&[("throwOnCreate", thrown.clone().into())]));
    let up = uploader(object(&[("backend", get(&cb, "backend"))]));
    let err = upload(&up, &file, JsValue::UNDEFINED).await.unwrap_err();
    assert_eq!(code_of(&err), "backend_error");
    assert!(message_of(&err).contains("no session"));
    assert_eq!(get(&err, "cause"), JsValue::from(thrown));
}
