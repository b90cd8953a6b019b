//! Browser tests: real `File`s uploaded from headless Chromium through the reference server to
//! its embedded S3 store (which verifies every signature), then read back and compared byte for
//! byte. Run by `scripts/test.sh`, which starts the servers and sets `S3DU_TEST_APP` (ETag
//! exposed) and `S3DU_TEST_APP_NO_ETAG` (ETag left out of the store's CORS rule).
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, JSON, Object, Promise, Reflect, Uint8Array};
use s3_direct_upload::{UploadOptionsJs, Uploader, UploaderOptionsJs};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{Blob, File, FilePropertyBag};

wasm_bindgen_test_configure!(run_in_browser);

const MIB: usize = 1024 * 1024;

/// A server URL that scripts/test.sh passes at compile time.
fn server(url: Option<&str>) -> String {
    match url {
        Some(url) => url.to_owned(),
        None => panic!("run the browser tests through scripts/test.sh, which starts the servers"),
    }
}

fn app() -> String {
    server(option_env!("S3DU_TEST_APP"))
}

fn api() -> String {
    format!("{}/api/uploads", app())
}

#[wasm_bindgen(inline_js = r#"
export function post_json(url, body) {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .then(r => r.json());
}
export function fetch_bytes(url) {
  return fetch(url).then(r => { if (!r.ok) throw new Error("GET failed: " + r.status); return r.arrayBuffer(); });
}
export function get_json(url) { return fetch(url).then(r => r.json()); }
export function callbacks(api, options) {
  const post = (path, body) => post_json(api + path, body).then(a => {
    if (a.error) throw new Error(a.error);
    return a;
  });
  const calls = { abort: 0, sign: 0 };
  const backend = {
    createMultipartUpload: f => post("/multipart", f),
    completeMultipartUpload: r => post("/multipart/complete", r),
    abortMultipartUpload: r => { calls.abort += 1; return post("/multipart/abort", r); },
    signPut: f => post("/put", f),
  };
  if (options.perPart) {
    // The per-part style of many existing backends: one URL a call.
    backend.signPart = r => { calls.sign += 1; return post("/multipart/sign", { key: r.key, uploadId: r.uploadId, partNumbers: [r.partNumber] }).then(a => a.parts[0]); };
  } else {
    backend.signParts = r => {
      calls.sign += 1;
      return post("/multipart/sign", r).then(a => {
        if (options.tamper) a.parts.forEach(p => { p.url = p.url.replace(/X-Amz-Signature=[0-9a-f]/, "X-Amz-Signature=0"); });
        return options.bare ? a.parts : a;
      });
    };
  }
  if (options.throwOnCreate) backend.createMultipartUpload = () => { throw options.throwOnCreate; };
  return { backend, calls };
}
"#)]
extern "C" {
    fn post_json(url: &str, body: &JsValue) -> Promise;
    fn fetch_bytes(url: &str) -> Promise;
    fn get_json(url: &str) -> Promise;
    fn callbacks(api: &str, options: &JsValue) -> JsValue;
}

/// Deterministic, incompressible bytes: the same `seed` always gives the same file.
fn file_of(size: usize, seed: u64, name: &str, content_type: &str) -> File {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let chunks = Array::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB);
        let bytes: Vec<u8> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        chunks.push(&Uint8Array::from(bytes.as_slice()));
        left -= n;
    }
    let options = FilePropertyBag::new();
    options.set_type(content_type);
    File::new_with_u8_array_sequence_and_options(&chunks, name, &options).unwrap()
}

async fn blob_bytes(blob: &Blob) -> Vec<u8> {
    let buffer = JsFuture::from(blob.array_buffer()).await.unwrap();
    Uint8Array::new(&buffer).to_vec()
}

async fn stored_bytes(display_url: &str) -> Vec<u8> {
    let buffer = JsFuture::from(fetch_bytes(display_url)).await.expect("the stored object can be read back");
    Uint8Array::new(&buffer).to_vec()
}

fn assert_same_bytes(stored: &[u8], source: &[u8]) {
    assert_eq!(stored.len(), source.len(), "stored size differs from the file");
    if let Some(at) = stored.iter().zip(source).position(|(a, b)| a != b) {
        panic!("stored object differs from the file at byte {at}");
    }
}

fn get(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &name.into()).unwrap()
}

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (name, value) in fields {
        Reflect::set(&o, &(*name).into(), value).unwrap();
    }
    o.into()
}

fn json(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

fn uploader(options: JsValue) -> Uploader {
    Uploader::new(options.unchecked_into::<UploaderOptionsJs>()).expect("valid options")
}

/// Uploads `file` and returns the resolved result, or the error's `code`.
async fn upload(uploader: &Uploader, file: &Blob, options: JsValue) -> Result<JsValue, JsValue> {
    let handle = uploader.upload(file.into(), Some(options.unchecked_into::<UploadOptionsJs>())).unwrap();
    JsFuture::from(handle.done()).await
}

fn code_of(error: &JsValue) -> String {
    get(error, "code").as_string().unwrap_or_else(|| format!("no code on {error:?}"))
}

fn message_of(error: &JsValue) -> String {
    get(error, "message").as_string().unwrap_or_default()
}

/// Uploads `file` through the default JSON backend and checks the stored bytes.
async fn round_trip(file: &File, expect_parts: Option<u32>) -> JsValue {
    let up = uploader(object(&[("backend", api().into())]));
    let result = upload(&up, file, JsValue::UNDEFINED).await.expect("upload succeeds");
    assert_eq!(get(&result, "size").as_f64(), Some(file.size()));
    assert_eq!(get(&result, "parts").as_f64(), expect_parts.map(f64::from));
    let display = get(&result, "displayUrl").as_string().expect("the reference backend gives a display URL");
    assert_same_bytes(&stored_bytes(&display).await, &blob_bytes(file).await);
    let location = get(&result, "location").as_string().unwrap();
    assert!(!location.contains("Signature"), "location must carry no signature");
    result
}

async fn open_uploads(app: &str) -> (u32, u32) {
    let open = JsFuture::from(get_json(&format!("{app}/__test/open-uploads"))).await.unwrap();
    let count = |side| Array::from(&get(&open, side)).length();
    (count("store"), count("backend"))
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
    let reports: Rc<RefCell<Vec<(f64, f64, String)>>> = Rc::default();
    let sink = reports.clone();
    let on_progress = Closure::<dyn Fn(JsValue)>::new(move |p: JsValue| {
        let state = get(&p, "state").as_string().unwrap();
        sink.borrow_mut().push((get(&p, "loaded").as_f64().unwrap(), get(&p, "total").as_f64().unwrap(), state));
    });
    let up = uploader(object(&[("backend", api().into()), ("onProgress", on_progress.as_ref().clone())]));
    let started = js_sys::Date::now();
    let result = upload(&up, &file, object(&[("metadata", json(r#"{"owner":"42"}"#))])).await.unwrap();
    let seconds = (js_sys::Date::now() - started) / 1000.0;
    assert_eq!(get(&result, "parts").as_f64(), Some(13.0));
    assert!(get(&result, "key").as_string().unwrap().ends_with("/big_video.mp4"));
    let display = get(&result, "displayUrl").as_string().unwrap();
    assert_same_bytes(&stored_bytes(&display).await, &blob_bytes(&file).await);

    let reports = reports.borrow();
    let total = file.size();
    assert!(reports.iter().all(|r| r.1 == total));
    assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0), "loaded never goes backwards");
    let last = reports.last().unwrap();
    assert_eq!((last.0, last.2.as_str()), (total, "done"), "the last report is complete");
    assert!(reports.len() as f64 <= seconds * 10.0 + 3.0, "{} reports in {seconds} s: not throttled", reports.len());
}

#[wasm_bindgen_test]
async fn one_uploader_runs_several_files_under_one_budget() {
    let up = uploader(object(&[("backend", api().into()), ("concurrency", 2.into())]));
    let (a, b) = (file_of(12 * MIB, 5, "a.bin", ""), file_of(11 * MIB + 7, 6, "b.bin", ""));
    let (ha, hb) = (up.upload(a.clone().into(), None).unwrap(), up.upload(b.clone().into(), None).unwrap());
    for (handle, file) in [(ha, a), (hb, b)] {
        let result = JsFuture::from(handle.done()).await.unwrap();
        let display = get(&result, "displayUrl").as_string().unwrap();
        assert_same_bytes(&stored_bytes(&display).await, &blob_bytes(&file).await);
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
        let display = get(&result, "displayUrl").as_string().unwrap();
        assert_same_bytes(&stored_bytes(&display).await, &blob_bytes(&file).await);
        let signs = get(&get(&cb, "calls"), "sign").as_f64().unwrap();
        let expected = if options.contains("perPart") { 4.0 } else { 1.0 };
        assert_eq!(signs, expected, "signing calls for 4 parts with {options}");
    }
    // Small files go through signPut, with the content type as signed.
    let cb = callbacks(&api(), &json("{}"));
    let up = uploader(object(&[("backend", get(&cb, "backend"))]));
    let file = file_of(1000, 8, "note.txt", "text/plain");
    let result = upload(&up, &file, JsValue::UNDEFINED).await.unwrap();
    let display = get(&result, "displayUrl").as_string().unwrap();
    assert_same_bytes(&stored_bytes(&display).await, &blob_bytes(&file).await);
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
    let up = uploader(object(&[("backend", get(&cb, "backend"))]));
    let err = upload(&up, &file_of(6 * MIB, 10, "t.bin", ""), JsValue::UNDEFINED).await.unwrap_err();
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
    // Abort once the first part is stored.
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let tx = RefCell::new(Some(tx));
    let on_progress = Closure::<dyn Fn(JsValue)>::new(move |p: JsValue| {
        if get(&p, "loaded").as_f64().unwrap() > 0.0
            && let Some(tx) = tx.borrow_mut().take()
        {
            let _ = tx.send(());
        }
    });
    let options = object(&[("onProgress", on_progress.as_ref().clone())]);
    let handle = up.upload(file_of(48 * MIB, 11, "abort.bin", "").into(), Some(options.unchecked_into())).unwrap();
    rx.await.unwrap();
    JsFuture::from(handle.abort()).await.unwrap();
    let err = JsFuture::from(handle.done()).await.unwrap_err();
    assert_eq!(code_of(&err), "aborted");
    let (_, in_backend) = open_uploads(&app()).await;
    assert_eq!(in_backend, 0, "abortMultipartUpload reached the backend");
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
