//! Browser edges of the orchestrator: the file as a `Blob`, the `fetch` and XHR transports,
//! the backends (JSON, callbacks, and temporary credentials signing in the page), the runtime (time, timers, chance), online/offline tracking,
//! resume records, and request guards that cancel by drop.

mod any_backend;
mod backend;
mod credentials;
mod js_data;
mod xhr;

pub(crate) use any_backend::AnyBackend;
pub(crate) use backend::{ContractBackend, Op};
pub(crate) use credentials::CredentialsBackend;
pub(crate) use js_data::{Builder, Fields, ToJs, kind, number_text};
pub(crate) use xhr::XhrTransport;

use crate::error::{ErrorCode, UploadError};
use crate::grant::{Lesson, lesson};
use crate::retry::Observed;
use crate::s3_xml::{unescape, xml_text};
use crate::upload::{Flag, Payload, PutOutcome, ResumeRecord, ResumeStore, Runtime, SignedRequest, Source, Transport};
use futures::future::{Either, select};
use gloo_net::http::Request;
use js_data::FromJs;
use js_sys::{Function, Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::ops::Range;
use std::pin::pin;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, Blob, EventTarget, FormData};

#[wasm_bindgen]
extern "C" {
    // The global timer functions, present in windows and workers alike.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// Time given to every backend request or callback but completion (`COMPLETE_TIMEOUT_MS`) before
/// it counts as unreachable.
pub(crate) const BACKEND_TIMEOUT_MS: u32 = 30_000;
/// Time given to completing a multipart upload: the store assembles the object before it
/// answers, which S3 says may take several minutes (the embedded store took over 30 s for 4 GiB
/// on a busy disk). Cut short, the completion would be retried after it had succeeded.
pub(crate) const COMPLETE_TIMEOUT_MS: u32 = 600_000;
/// Default `stallTimeoutMs`: how long a PUT may go without an answer beyond the time its body
/// needs at the slowest acceptable rate.
pub(crate) const DEFAULT_STALL_TIMEOUT_MS: u32 = 30_000;
/// Default `minBytesPerSecond`, the slowest acceptable sending rate: 50 kB/s (400 kbit/s, a
/// poor mobile link). Slower counts as stalled.
pub(crate) const DEFAULT_MIN_BYTES_PER_SECOND: u32 = 50_000;

/// Owns one request's `AbortController` and time-out. Dropping it cancels the request, which
/// dropping the `fetch` future alone does not do, unless [`RequestGuard::finish`] said it is
/// over (aborting a finished request shows it as cancelled in DevTools).
pub(crate) struct RequestGuard {
    controller: AbortController,
    timer: JsValue,
    _on_timeout: Closure<dyn FnMut()>,
    timed_out: Rc<Cell<bool>>,
    finished: Cell<bool>,
}

impl RequestGuard {
    /// A guard that aborts the request after `timeout_ms`.
    pub(crate) fn new(timeout_ms: u32) -> Self {
        let controller = AbortController::new().expect("AbortController exists in every supported browser");
        let timed_out = Rc::new(Cell::new(false));
        let on_timeout = {
            let (controller, timed_out) = (controller.clone(), timed_out.clone());
            Closure::<dyn FnMut()>::new(move || {
                timed_out.set(true);
                controller.abort();
            })
        };
        let ms = i32::try_from(timeout_ms).unwrap_or(i32::MAX);
        let timer = set_timeout(on_timeout.as_ref().unchecked_ref(), ms);
        RequestGuard { controller, timer, _on_timeout: on_timeout, timed_out, finished: Cell::new(false) }
    }

    /// The request is over (its answer read, or not worth reading): nothing to cancel any more.
    pub(crate) fn finish(&self) {
        self.finished.set(true);
    }

    /// The signal to hand to `fetch`.
    pub(crate) fn signal(&self) -> AbortSignal {
        self.controller.signal()
    }

    /// Whether the time-out, not the caller, ended the request.
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out.get()
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        clear_timeout(&self.timer);
        if !self.finished.get() {
            self.controller.abort();
        }
    }
}

/// Follows the browser's `online` and `offline` events into a [`Flag`] that is on while offline.
/// The listeners are removed when it is dropped.
pub(crate) struct NetworkWatch {
    pub(crate) offline: Rc<Flag>,
    target: EventTarget,
    on_offline: Closure<dyn FnMut()>,
    on_online: Closure<dyn FnMut()>,
}

impl NetworkWatch {
    /// Starts watching; the flag starts from `navigator.onLine`.
    pub(crate) fn new() -> Self {
        let global = js_sys::global();
        let online_now = Reflect::get(&global, &"navigator".into())
            .and_then(|navigator| Reflect::get(&navigator, &"onLine".into()))
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        let offline = Rc::new(Flag::default());
        offline.set(!online_now);
        let switch = |to: bool| {
            let offline = offline.clone();
            Closure::<dyn FnMut()>::new(move || offline.set(to))
        };
        let (on_offline, on_online) = (switch(true), switch(false));
        let target: EventTarget = global.unchecked_into();
        // Adding a listener to the global object does not throw.
        let _ = target.add_event_listener_with_callback("offline", on_offline.as_ref().unchecked_ref());
        let _ = target.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
        NetworkWatch { offline, target, on_offline, on_online }
    }
}

impl Drop for NetworkWatch {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback("offline", self.on_offline.as_ref().unchecked_ref());
        let _ = self.target.remove_event_listener_with_callback("online", self.on_online.as_ref().unchecked_ref());
    }
}

/// Resolves after `ms` milliseconds.
async fn sleep(ms: u32) {
    let ms = i32::try_from(ms).unwrap_or(i32::MAX);
    let mut timer = JsValue::UNDEFINED;
    let promise = Promise::new(&mut |resolve, _reject| {
        timer = set_timeout(&resolve, ms);
    });
    let _timer = ClearedOnDrop(timer);
    let _ = JsFuture::from(promise).await;
}

/// A timer id whose timer is cleared when this is dropped: a sleep given up on (a request
/// that answered before its time-out) leaves no timer behind.
struct ClearedOnDrop(JsValue);

impl Drop for ClearedOnDrop {
    fn drop(&mut self) {
        clear_timeout(&self.0);
    }
}

/// Runs `work` for at most `ms` milliseconds; `None` when time ran out.
pub(crate) async fn within<T>(ms: u32, work: impl Future<Output = T>) -> Option<T> {
    match select(pin!(work), pin!(sleep(ms))).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(((), _)) => None,
    }
}

/// The message of a thrown JS value: `Error.message`, or the value as a string.
pub(crate) fn js_message(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => value.as_string().unwrap_or_else(|| format!("{value:?}")),
    }
}

/// The file: a `Blob` (or `File`), cut with `Blob.slice` so bytes enter wasm memory only to be
/// hashed, a chunk at a time.
pub(crate) struct BlobSource {
    blob: Blob,
    /// The blob's size, read once: in Chromium the first `size` of a picked file and every
    /// `slice` ask the browser process synchronously (0.1 to 0.5 ms each, more while it is busy
    /// sending), which 2,000 small files turned into seconds of the page's time.
    size: u64,
    /// Buffers the reads fill, reused: reading allocates nothing the garbage collector must
    /// free, so the memory held for hashing is these (two, as hashing reads one chunk ahead).
    buffers: RefCell<Vec<js_sys::ArrayBuffer>>,
}

impl BlobSource {
    /// The source of `blob`, whose size the caller has read as `size`.
    pub(crate) fn new(blob: Blob, size: u64) -> Self {
        BlobSource { blob, size, buffers: RefCell::default() }
    }
}

// What reading a `Blob` into a buffer of one's own takes, declared here: web-sys's versions
// bring more glue.
#[wasm_bindgen]
extern "C" {
    /// A `Blob`, seen for its `stream()`.
    type StreamedBlob;
    #[wasm_bindgen(method)]
    fn stream(blob: &StreamedBlob) -> ByteStream;
    /// The `ReadableStream` of a blob's bytes.
    type ByteStream;
    #[wasm_bindgen(method, catch, js_name = getReader)]
    fn byob_reader(stream: &ByteStream, options: &JsValue) -> Result<ByobReader, JsValue>;
    /// A `ReadableStreamBYOBReader`.
    type ByobReader;
    #[wasm_bindgen(method)]
    fn read(reader: &ByobReader, into: &js_sys::Uint8Array) -> Promise;
    #[wasm_bindgen(method, js_name = releaseLock)]
    fn release_lock(reader: &ByobReader);
}

impl Source for BlobSource {
    type Body = Blob;

    fn size(&self) -> u64 {
        self.size
    }

    /// The blob itself for the whole of it (a file sent in one request is not sliced).
    fn slice(&self, range: Range<u64>) -> Blob {
        if range == (0..self.size) {
            return self.blob.clone();
        }
        self.blob
            .slice_with_f64_and_f64(range.start as f64, range.end as f64)
            .expect("Blob.slice with in-range offsets does not throw")
    }

    /// Reads with a BYOB reader into a reused buffer, then copies into `into`: one copy, no
    /// garbage.
    async fn read(&self, range: Range<u64>, into: &mut Vec<u8>) -> Result<(), UploadError> {
        let (start, end) = (range.start, range.end);
        let want = (end - start) as u32;
        let pooled = self.buffers.borrow_mut().pop().filter(|b| b.byte_length() >= want);
        let mut buffer = pooled.unwrap_or_else(|| js_sys::ArrayBuffer::new(want.max(1)));
        let filled = fill(&self.slice(range), &mut buffer, want).await;
        // A read that failed part-way leaves its buffer detached: only a whole one goes back.
        if buffer.byte_length() >= want {
            self.buffers.borrow_mut().push(buffer.clone());
        }
        let filled = filled.map_err(|e| {
            UploadError::new(
                ErrorCode::InvalidFile,
                format!(
                    "could not read bytes {start}..{end} of the file ({}): it may have been changed, moved or \
                     deleted since it was chosen",
                    js_message(&e)
                ),
            )
            .with_cause(e)
        })?;
        into.resize(filled as usize, 0);
        js_sys::Uint8Array::new_with_byte_offset_and_length(&buffer, 0, filled).copy_to(into);
        Ok(())
    }
}

/// Reads `blob` into the start of `buffer`, up to `want` bytes, and says how many came. Each
/// read hands the buffer to the stream and gets it back (as a new `ArrayBuffer` over the same
/// memory), which `buffer` then holds. Where blob streams are not byte streams (WebKit: Safari
/// has no BYOB reader for them), the chunk is read with `Blob.arrayBuffer()` instead, into a new
/// buffer each time, which `buffer` then is.
async fn fill(blob: &Blob, buffer: &mut js_sys::ArrayBuffer, want: u32) -> Result<u32, JsValue> {
    let options = Builder::new().set("mode", "byob").build();
    let Ok(reader) = blob.unchecked_ref::<StreamedBlob>().stream().byob_reader(&options) else {
        *buffer = JsFuture::from(blob.array_buffer()).await?.unchecked_into();
        return Ok(buffer.byte_length().min(want));
    };
    let mut filled = 0;
    while filled < want {
        let view = js_sys::Uint8Array::new_with_byte_offset_and_length(buffer, filled, want - filled);
        let result = JsFuture::from(reader.read(&view)).await?;
        let value: js_sys::Uint8Array = Reflect::get(&result, &"value".into())?.unchecked_into();
        if !value.is_undefined() {
            *buffer = value.buffer();
            filled += value.byte_length();
        }
        if Reflect::get(&result, &"done".into())?.is_truthy() {
            break;
        }
    }
    reader.release_lock();
    Ok(filled)
}

/// Sends bodies with `fetch`. Progress is per request: `fetch` cannot report upload bytes, so a
/// stall shows only as a missing answer: a PUT is cancelled (and retried) when it has no answer
/// `stall_timeout_ms` after the time its body needs at `min_bytes_per_second`.
pub(crate) struct FetchTransport {
    pub(crate) stall_timeout_ms: u32,
    pub(crate) min_bytes_per_second: u32,
    /// The store's clock, when the page signs what this sends (the credentials mode).
    pub(crate) store_clock: Option<Rc<StoreClock>>,
    /// Whether the store has answered this uploader yet.
    pub(crate) store_heard: Rc<StoreHeard>,
}

/// Whether the store has answered any request of an uploader (with any status), shared by its
/// transports and the credentials mode's signer. Until it has, a request without an answer is
/// most likely refused by the bucket's CORS rule, which the browser does not tell apart from a
/// network failure: such failures are retried briefly only ([`Observed::NeverAnswered`]).
#[derive(Debug, Default)]
pub(crate) struct StoreHeard(Cell<bool>);

impl StoreHeard {
    /// Records an answer.
    pub(crate) fn answered(&self) {
        self.0.set(true);
    }

    /// The error for a request to the store that got no answer at all: a network failure, or a
    /// CORS refusal.
    pub(crate) fn unreachable(&self, what: &str, method: &str) -> UploadError {
        // `location.origin`, on a page and in a worker alike.
        let origin = Reflect::get(&js_sys::global(), &"location".into())
            .and_then(|location| Reflect::get(&location, &"origin".into()))
            .ok()
            .and_then(|origin| origin.as_string())
            .unwrap_or_default();
        let (message, observed) = if self.0.get() {
            (
                format!(
                    "{what} failed before the store answered: the network failed, or the bucket's CORS rule \
                     does not allow this origin ({origin}), the {method} method or the request's headers"
                ),
                Observed::Network,
            )
        } else {
            (
                format!(
                    "{what} got no answer from the store, which has not answered this page yet: most likely \
                     the bucket's CORS rule does not allow this origin ({origin}), the {method} method or the \
                     request's headers; or the store's address is wrong or it is down"
                ),
                Observed::NeverAnswered,
            )
        };
        UploadError::new(ErrorCode::PartUploadFailed, message).with_observed(observed)
    }
}

/// The store's clock, as an offset to this device's: learnt from refusals that say what time
/// the store has (`<ServerTime>`), and shared by the credentials mode's signer and the
/// transports that carry what it signed, so a part or form refused for a skewed clock teaches
/// it as a header-signed request does.
#[derive(Debug, Default)]
pub(crate) struct StoreClock(Cell<f64>);

impl StoreClock {
    /// Now on the store's clock.
    pub(crate) fn now_ms(&self) -> f64 {
        BrowserRuntime.now_ms() + self.0.get()
    }

    /// What a refusal's `body` teaches ([`lesson`]) for a grant fetched at `fetched_ms` (store's
    /// clock); a clock offset is taken at once.
    pub(crate) fn learn(&self, body: &str, fetched_ms: Option<f64>) -> Lesson {
        let local_ms = BrowserRuntime.now_ms();
        let taught = lesson(xml_text(body, "Code"), xml_text(body, "ServerTime"), local_ms, self.now_ms(), fetched_ms);
        if let Lesson::ClockOffset(offset_ms) = taught {
            self.0.set(offset_ms);
        }
        taught
    }
}

impl Transport for FetchTransport {
    type Body = Blob;

    async fn send(
        &self,
        request: &SignedRequest,
        payload: Payload<'_, Blob>,
        what: &str,
        _sent: &dyn Fn(u64),
    ) -> Result<PutOutcome, UploadError> {
        let failed = |message: String| UploadError::new(ErrorCode::PartUploadFailed, message);
        let (body, size) = request_body(payload).map_err(|_| failed(format!("could not build the form for {what}")))?;
        let sending_ms = size / f64::from(self.min_bytes_per_second) * 1000.0;
        let timeout_ms = f64::from(self.stall_timeout_ms) + sending_ms;
        let guard = RequestGuard::new(timeout_ms.min(f64::from(i32::MAX)) as u32);
        let method = if body.is_instance_of::<FormData>() { "POST" } else { "PUT" };
        let builder = if method == "POST" { Request::post(&request.url) } else { Request::put(&request.url) };
        let mut builder = builder.abort_signal(Some(&guard.signal()));
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let sending = builder.body(body).map_err(|e| failed(format!("could not build the request for {what}: {e}")))?;
        let response = sending.send().await.map_err(|_| {
            if guard.timed_out() {
                failed(format!("{what} got no answer within {} s", (timeout_ms / 1000.0).round() as u64))
                    .with_observed(Observed::TimedOut)
            } else {
                self.store_heard.unreachable(what, method)
            }
        })?;
        self.store_heard.answered();
        let header = response.headers().get("ETag");
        let body =
            if response.ok() && header.is_some() { String::new() } else { response.text().await.unwrap_or_default() };
        guard.finish();
        outcome(response.status(), header, &body, request, what, self.store_clock.as_deref())
    }
}

/// The body of `payload` (the file slice, or a `FormData` of the fields and the file last) and
/// the bytes of file it carries.
fn request_body(payload: Payload<'_, Blob>) -> Result<(JsValue, f64), JsValue> {
    match payload {
        Payload::Put(blob) => {
            let size = blob.size();
            Ok((blob.into(), size))
        }
        Payload::Form { fields, filename, file } => {
            let form = FormData::new()?;
            for (name, value) in fields {
                form.append_with_str(name, value)?;
            }
            form.append_with_blob_and_filename("file", &file, filename)?;
            Ok((form.into(), file.size()))
        }
    }
}

/// What a store's answer with `status` means: the `ETag` (from the header, or from the XML of a
/// POST's 201 answer), or the rejection.
fn outcome(
    status: u16,
    header: Option<String>,
    body: &str,
    request: &SignedRequest,
    what: &str,
    store_clock: Option<&StoreClock>,
) -> Result<PutOutcome, UploadError> {
    if !(200..300).contains(&status) {
        let error = store_rejection(status, body, what, Some(&request.url));
        return Err(match store_clock {
            Some(clock) if matches!(clock.learn(body, None), Lesson::ClockOffset(_)) => {
                error.with_observed(Observed::SignerLearnt)
            }
            _ => error,
        });
    }
    let etag = header.or_else(|| xml_text(body, "ETag").map(unescape));
    Ok(PutOutcome { etag })
}

/// The error for a request the store answered with `status` and an S3 XML error `body`: the S3
/// code and message in the text (never the URL), and the retry class they call for. `url` is
/// the presigned URL it was sent to (whose own expiry tells an expired `AccessDenied`).
fn store_rejection(status: u16, body: &str, what: &str, url: Option<&str>) -> UploadError {
    let (code, message) = (xml_text(body, "Code"), xml_text(body, "Message"));
    let expired = xml_text(body, "Expires").is_some()
        || url.is_some_and(|url| crate::sigv4::is_expiring(url, js_sys::Date::now()));
    let detail = match (code, message) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(code), None) => format!(" ({code})"),
        _ => String::new(),
    };
    // A POST policy's content-length-range refuses a file larger than the backend allowed.
    let error_code = if code == Some("EntityTooLarge") { ErrorCode::FileTooLarge } else { ErrorCode::PartUploadFailed };
    UploadError::new(error_code, format!("the store rejected {what} with HTTP {status}{detail}"))
        .with_status(status)
        .with_observed(Observed::Status { status, code: code.map(str::to_owned), expired })
}

/// The transport an `Uploader` was configured with.
pub(crate) enum AnyTransport {
    Fetch(FetchTransport),
    Xhr(XhrTransport),
}

impl Transport for AnyTransport {
    type Body = Blob;

    async fn send(
        &self,
        request: &SignedRequest,
        payload: Payload<'_, Blob>,
        what: &str,
        sent: &dyn Fn(u64),
    ) -> Result<PutOutcome, UploadError> {
        match self {
            AnyTransport::Fetch(t) => t.send(request, payload, what, sent).await,
            AnyTransport::Xhr(t) => t.send(request, payload, what, sent).await,
        }
    }
}

#[wasm_bindgen(module = "/src/js/bridge.js")]
extern "C" {
    #[wasm_bindgen(js_name = recordGet)]
    fn record_get(key: &str) -> Promise;
    #[wasm_bindgen(js_name = recordSet)]
    fn record_set(key: &str, text: &str);
    #[wasm_bindgen(js_name = recordDelete)]
    fn record_delete(key: &str);
    /// A Promise that resolves in a task of its own (a `MessageChannel` message). (`catch`
    /// gives it a shim in the glue: imports straight from the snippet would keep a module name
    /// of their own, which the name minification renames.)
    #[wasm_bindgen(catch, js_name = nextTask)]
    fn next_task() -> Result<Promise, JsValue>;
    /// `url` made absolute against the page's address.
    #[wasm_bindgen(js_name = resolveUrl)]
    pub(crate) fn resolve_url(url: &str) -> String;
    /// Starts the worker engine for an Uploader's (checked) options.
    #[wasm_bindgen(catch, js_name = startWorker)] // `catch`: see next_task
    pub(crate) fn start_worker(options: &JsValue) -> Result<JsValue, JsValue>;
    /// The persistent queue `name` (`persist`): `add(file, options, done)` records an upload,
    /// `restore(uploader)` gives the unfinished ones.
    #[wasm_bindgen(catch, js_name = openQueue)]
    pub(crate) fn open_queue(name: &str, copy_up_to: f64, copy_budget: f64) -> Result<JsValue, JsValue>;
    /// Starts an upload for every file of `source` with `uploader` (`uploadAll`).
    #[wasm_bindgen(catch, js_name = uploadAll)]
    pub(crate) fn upload_all(uploader: &JsValue, source: &JsValue, options: &JsValue) -> Result<JsValue, JsValue>;
}

/// Resume records as JSON, in `localStorage` on a page and in IndexedDB in a worker
/// (src/js/bridge.js). Every storage failure (private mode, quota, blocked) is ignored: without
/// the record the upload simply starts afresh.
pub(crate) struct BrowserResumeStore;

impl BrowserResumeStore {
    /// The record kept under `fingerprint`, if any.
    pub(crate) async fn load(fingerprint: &str) -> Option<ResumeRecord> {
        let text = JsFuture::from(record_get(fingerprint)).await.ok()?.as_string()?;
        ResumeRecord::from_js(&js_sys::JSON::parse(&text).ok()?).ok()
    }
}

impl ResumeStore for BrowserResumeStore {
    fn save(&self, fingerprint: &str, record: &ResumeRecord) {
        if let Some(text) = js_sys::JSON::stringify(&record.to_js()).ok().and_then(|t| t.as_string()) {
            record_set(fingerprint, &text);
        }
    }

    fn remove(&self, fingerprint: &str) {
        record_delete(fingerprint);
    }
}

/// Time from `Date.now()`, waits from `setTimeout`, chance from `Math.random()`.
pub(crate) struct BrowserRuntime;

impl Runtime for BrowserRuntime {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }

    async fn sleep(&self, ms: f64) {
        sleep(ms.clamp(0.0, f64::from(u32::MAX)) as u32).await;
    }

    fn random(&self) -> f64 {
        js_sys::Math::random()
    }

    async fn next_task(&self) {
        if let Ok(task) = next_task() {
            let _ = JsFuture::from(task).await;
        }
    }
}
