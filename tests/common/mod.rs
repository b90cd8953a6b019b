//! Helpers shared by the browser test files: servers, files, uploads and read-backs.
#![allow(dead_code)] // each test file uses its own share of the helpers

use js_sys::{Array, JSON, Object, Promise, Reflect, Uint8Array};
use s3_direct_upload::{UploadOptionsJs, Uploader, UploaderOptionsJs};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File, FilePropertyBag};

// Every test runs on a page, and again in a dedicated worker (`--features test-in-worker`,
// scripts/browser-tests.sh): where the worker engine runs it, without window or localStorage.
#[cfg(not(feature = "test-in-worker"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
#[cfg(feature = "test-in-worker")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

pub const MIB: usize = 1024 * 1024;

/// A server URL that scripts/test.sh passes at compile time.
pub fn server(url: Option<&str>) -> String {
    match url {
        Some(url) => url.to_owned(),
        None => panic!("run the browser tests through scripts/test.sh, which starts the servers"),
    }
}

pub fn app() -> String {
    server(option_env!("S3DU_TEST_APP"))
}

pub fn api() -> String {
    format!("{}/api/uploads", app())
}

/// The server whose store fails on purpose (fault plans are server-wide, so only the
/// reliability and integrity tests use it, one test at a time).
pub fn faults_app() -> String {
    server(option_env!("S3DU_TEST_APP_FAULTS"))
}

pub fn faults_api() -> String {
    format!("{}/api/uploads", faults_app())
}

#[wasm_bindgen(inline_js = r#"
export function post_json(url, body) {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .then(r => r.json());
}
export function fetch_bytes(url) {
  return fetch(url).then(r => r.ok ? r.arrayBuffer() : r.text().then(t => { throw new Error(`GET failed: ${r.status} ${t}`); }));
}
export function get_json(url) { return fetch(url).then(r => r.json()); }
export function sleep(ms) { return new Promise(resolve => setTimeout(resolve, ms)); }
// How many resume records the library keeps: in localStorage on a page, in IndexedDB in a worker.
export async function resume_records() {
  if (typeof localStorage === "object") return Object.keys(localStorage).filter(k => k.startsWith("s3-direct-upload:")).length;
  const done = r => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const open = indexedDB.open("s3-direct-upload"); // whichever version the library made
  open.onupgradeneeded = () => open.result.createObjectStore("resume"); // none yet: as version 1 had it
  const db = await done(open);
  const count = await done(db.transaction("resume").objectStore("resume").count());
  db.close();
  return count;
}
// How many times AbortController.abort was called since the first call (which starts counting).
export function abort_calls() {
  if (globalThis.__aborts === undefined) {
    globalThis.__aborts = 0;
    const abort = AbortController.prototype.abort;
    AbortController.prototype.abort = function (...args) { globalThis.__aborts += 1; return abort.apply(this, args); };
  }
  return globalThis.__aborts;
}
// What console.error was given since the first call (which starts recording), one string a call.
export function console_errors() {
  if (!globalThis.__errors) {
    const said = globalThis.__errors = [];
    const error = console.error.bind(console);
    console.error = (...args) => {
      said.push(args.map(a => a instanceof Error ? a.message : String(a)).join(" "));
      error(...args);
    };
  }
  return [...globalThis.__errors];
}
// Counts the timers of at least `ms` milliseconds that were set and neither fired nor cleared
// since the first call (which starts watching setTimeout and clearTimeout).
export function live_timers(ms) {
  if (!globalThis.__timers) {
    const live = globalThis.__timers = new Map();
    const [set, clear] = [globalThis.setTimeout, globalThis.clearTimeout];
    globalThis.setTimeout = (handler, delay, ...args) => {
      const id = set((...a) => { live.delete(id); typeof handler === "function" && handler(...a); }, delay, ...args);
      live.set(id, delay ?? 0);
      return id;
    };
    globalThis.clearTimeout = id => { live.delete(id); clear(id); };
  }
  return [...globalThis.__timers.values()].filter(delay => delay >= ms).length;
}
export function shift_clock(ms) {
  const real = Date.now.__real ?? Date.now;
  Date.now = ms ? Object.assign(() => real.call(Date) + ms, { __real: real }) : real;
}
// An app's backend as a class instance: its methods use `this`.
export function class_backend(api) {
  class AppBackend {
    constructor() { this.api = api; this.calls = 0; }
    post(path, body) { this.calls += 1; return post_json(this.api + path, body); }
    createMultipartUpload(f) { return this.post("/multipart", f); }
    signParts(r) { return this.post("/multipart/sign", r); }
    completeMultipartUpload(r) { return this.post("/multipart/complete", r); }
    abortMultipartUpload(r) { return this.post("/multipart/abort", r); }
    signPut(f) { return this.post("/put", f); }
  }
  return new AppBackend();
}
export function callbacks(api, options) {
  const post = (path, body) => post_json(api + path, body).then(a => {
    if (a.error) throw new Error(a.error);
    return a;
  });
  const calls = { abort: 0, sign: 0, resign: 0, credentials: 0 };
  const backend = {
    createMultipartUpload: f => post("/multipart", f),
    completeMultipartUpload: r => post("/multipart/complete", r),
    abortMultipartUpload: r => { calls.abort += 1; return post("/multipart/abort", r); },
    signPut: f => post("/put", f),
    // A POST policy, for a size declared smaller than the file's, or with a field changed after
    // signing, when the test asks.
    // Temporary credentials; when the test asks, the first grant lasts 2 s but claims an hour
    // (only the store's ExpiredToken can tell), or the grant names another endpoint.
    getCredentials: () => {
      const short = options.shortFirstGrant && calls.credentials === 0;
      calls.credentials += 1;
      return post("/credentials", short ? { lifetimeSeconds: 2 } : {}).then(g => {
        if (short) g.expiration = new Date(Date.now() + 3600e3).toISOString();
        if (options.grantEndpoint !== undefined) g.endpoint = options.grantEndpoint;
        return g;
      });
    },
    signPost: f => post("/post", options.declareSize === undefined ? f : { ...f, size: options.declareSize }).then(a => {
      if (options.retype) a.fields["Content-Type"] = options.retype;
      return a;
    }),
  };
  if (options.perPart) {
    // The per-part style of many existing backends: one URL a call.
    backend.signPart = r => { calls.sign += 1; return post("/multipart/sign", { key: r.key, uploadId: r.uploadId, partNumbers: [r.partNumber], checksums: r.checksum && [r.checksum] }).then(a => a.parts[0]); };
  } else {
    backend.signParts = r => {
      calls.sign += 1;
      if (r.reason === "expired") calls.resign += 1;
      return post("/multipart/sign", r).then(a => {
        // Change the signature's first digit (to another digit: one already "0" must change too).
        const tampered = (m, digit) => "X-Amz-Signature=" + (digit === "0" ? "1" : "0");
        if (options.tamper) a.parts.forEach(p => { p.url = p.url.replace(/X-Amz-Signature=([0-9a-f])/, tampered); });
        return options.bare ? a.parts : a;
      });
    };
  }
  if (options.throwOnCreate) backend.createMultipartUpload = () => { throw options.throwOnCreate; };
  if (options.reportChecksum) {
    // A store (or backend) that reports another object checksum than the file's.
    backend.completeMultipartUpload = r => post("/multipart/complete", r).then(a => ({ ...a, checksum: options.reportChecksum }));
  }
  if (options.noChecksums) {
    // A backend that predates checksums: it neither creates uploads with them nor signs them.
    backend.createMultipartUpload = f => post("/multipart", { ...f, checksumAlgorithm: undefined });
  }
  return { backend, calls };
}
"#)]
extern "C" {
    pub fn post_json(url: &str, body: &JsValue) -> Promise;
    pub fn fetch_bytes(url: &str) -> Promise;
    pub fn get_json(url: &str) -> Promise;
    pub fn callbacks(api: &str, options: &JsValue) -> JsValue;
    pub fn class_backend(api: &str) -> JsValue;
    pub fn sleep(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = resume_records)]
    fn resume_records_promise() -> Promise;
    /// How many times `AbortController.abort` was called since the first call.
    pub fn abort_calls() -> u32;
    /// What `console.error` was given since the first call, one string a call.
    pub fn console_errors() -> Vec<String>;
    /// Timers of at least `ms` still pending (counting from the first call).
    pub fn live_timers(ms: u32) -> u32;
    /// Moves `Date.now()` by `ms` (0 puts it back): a device whose clock is off.
    pub fn shift_clock(ms: f64);
}

/// Deterministic, incompressible bytes: the same `seed` always gives the same file.
pub fn file_of(size: usize, seed: u64, name: &str, content_type: &str) -> File {
    file_dated(size, seed, name, content_type, None)
}

/// [`file_of`] with a fixed `lastModified`, so that two `File` objects are the same file.
pub fn file_dated(size: usize, seed: u64, name: &str, content_type: &str, last_modified: Option<f64>) -> File {
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
    if let Some(ms) = last_modified {
        options.set_last_modified(ms);
    }
    File::new_with_u8_array_sequence_and_options(&chunks, name, &options).unwrap()
}

pub async fn blob_bytes(blob: &Blob) -> Vec<u8> {
    let buffer = JsFuture::from(blob.array_buffer()).await.unwrap();
    Uint8Array::new(&buffer).to_vec()
}

pub async fn stored_bytes(display_url: &str) -> Vec<u8> {
    let buffer = JsFuture::from(fetch_bytes(display_url)).await.expect("the stored object can be read back");
    Uint8Array::new(&buffer).to_vec()
}

pub fn assert_same_bytes(stored: &[u8], source: &[u8]) {
    assert_eq!(stored.len(), source.len(), "stored size differs from the file");
    if let Some(at) = stored.iter().zip(source).position(|(a, b)| a != b) {
        panic!("stored object differs from the file at byte {at}");
    }
}

/// Reads the stored object back through the result's display URL and compares it with `file`.
pub async fn assert_stored(result: &JsValue, file: &Blob) {
    let display = get(result, "displayUrl").as_string().expect("the reference backend gives a display URL");
    assert_same_bytes(&stored_bytes(&display).await, &blob_bytes(file).await);
}

pub fn get(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &name.into()).unwrap()
}

pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (name, value) in fields {
        Reflect::set(&o, &(*name).into(), value).unwrap();
    }
    o.into()
}

pub fn json(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

pub fn uploader(options: JsValue) -> Uploader {
    Uploader::new(options.unchecked_into::<UploaderOptionsJs>()).expect("valid options")
}

/// Uploads `file` and returns the resolved result, or the error's `code`.
pub async fn upload(uploader: &Uploader, file: &Blob, options: JsValue) -> Result<JsValue, JsValue> {
    let handle = uploader.upload(file.into(), Some(options.unchecked_into::<UploadOptionsJs>())).unwrap();
    JsFuture::from(handle.done()).await
}

pub fn code_of(error: &JsValue) -> String {
    get(error, "code").as_string().unwrap_or_else(|| format!("no code on {error:?}"))
}

pub fn message_of(error: &JsValue) -> String {
    get(error, "message").as_string().unwrap_or_default()
}

/// Uploads `file` through the default JSON backend and checks the stored bytes.
pub async fn round_trip(file: &File, expect_parts: Option<u32>) -> JsValue {
    let up = uploader(object(&[("backend", api().into())]));
    let result = upload(&up, file, JsValue::UNDEFINED).await.expect("upload succeeds");
    assert_eq!(get(&result, "size").as_f64(), Some(file.size()));
    assert_eq!(get(&result, "parts").as_f64(), expect_parts.map(f64::from));
    assert_stored(&result, file).await;
    let location = get(&result, "location").as_string().unwrap();
    assert!(!location.contains("Signature"), "location must carry no signature");
    result
}

pub async fn open_uploads(app: &str) -> (u32, u32) {
    let open = JsFuture::from(get_json(&format!("{app}/__test/open-uploads"))).await.unwrap();
    let count = |side| Array::from(&get(&open, side)).length();
    (count("store"), count("backend"))
}

/// Waits `ms` milliseconds.
/// How many resume records the library keeps (localStorage on a page, IndexedDB in a worker).
pub async fn resume_records() -> u32 {
    JsFuture::from(resume_records_promise()).await.unwrap().as_f64().unwrap() as u32
}

pub async fn pause_for(ms: u32) {
    JsFuture::from(sleep(ms)).await.unwrap();
}

/// Sets the fault plan of the server at `app` (`null` clears it and zeroes its counts).
pub async fn set_faults(app: &str, plan: &str) {
    JsFuture::from(post_json(&format!("{app}/__test/faults"), &json(plan))).await.unwrap();
}

/// The fault server's counts: injected faults, part requests and stored parts by upload id.
pub async fn fault_report(app: &str) -> JsValue {
    JsFuture::from(get_json(&format!("{app}/__test/faults"))).await.unwrap()
}

/// One progress report, as the page received it.
pub struct Report {
    pub loaded: f64,
    pub total: f64,
    pub state: String,
    pub restarted: bool,
    pub hashed: f64,
    /// The uploader's request budget at that report.
    pub budget: f64,
}

/// Progress reports of one upload, in order.
#[derive(Clone, Default)]
pub struct ProgressLog(pub Rc<RefCell<Vec<Report>>>);

impl ProgressLog {
    /// A JS `onProgress` function that appends to this log. Keep it alive while uploading.
    pub fn listener(&self) -> Closure<dyn Fn(JsValue)> {
        let log = self.0.clone();
        Closure::new(move |p: JsValue| {
            let state = get(&p, "state").as_string().unwrap();
            let restarted = get(&p, "restarted").as_bool().expect("every report says whether it restarted");
            let (loaded, total) = (get(&p, "loaded").as_f64().unwrap(), get(&p, "total").as_f64().unwrap());
            let hashed = get(&p, "hashed").as_f64().expect("every report says how much is hashed");
            let budget = get(&p, "budget").as_f64().expect("every report gives the request budget");
            log.borrow_mut().push(Report { loaded, total, state, restarted, hashed, budget });
        })
    }

    /// Whether some report said `loaded` went back because a part is sent again.
    pub fn saw_restart(&self) -> bool {
        self.0.borrow().iter().any(|r| r.restarted)
    }

    /// Whether some report had `state`.
    pub fn saw(&self, state: &str) -> bool {
        self.0.borrow().iter().any(|r| r.state == state)
    }

    /// Bytes stored at the last report.
    pub fn loaded(&self) -> f64 {
        self.0.borrow().last().map_or(0.0, |r| r.loaded)
    }

    /// Checks the reports a user relies on: `loaded` goes back only in a report flagged
    /// `restarted`, and the last one is `done` with `loaded === total`.
    pub fn assert_honest(&self, total: f64) {
        let log = self.0.borrow();
        let honest = log.windows(2).all(|w| w[0].loaded <= w[1].loaded || w[1].restarted);
        assert!(honest, "loaded went back without saying so");
        let last = log.last().expect("progress was reported");
        assert_eq!((last.loaded, last.total, last.state.as_str()), (total, total, "done"));
    }

    /// Waits (at most `ms`) until `loaded` is above zero.
    pub async fn wait_for_bytes(&self, ms: u32) {
        self.wait_for_loaded(1.0, ms).await;
    }

    /// Waits (at most `ms`) until `loaded` reaches `bytes`.
    pub async fn wait_for_loaded(&self, bytes: f64, ms: u32) {
        for _ in 0..ms / 20 {
            if self.loaded() >= bytes {
                return;
            }
            pause_for(20).await;
        }
        panic!("{bytes} bytes were not stored within {ms} ms");
    }

    /// `loaded` at the first report.
    pub fn first_loaded(&self) -> f64 {
        self.0.borrow().first().map_or(0.0, |r| r.loaded)
    }
}
