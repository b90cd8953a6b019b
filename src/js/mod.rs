//! The JS-facing surface: the `Uploader` class, the `Upload` handle, the `Checksum` class,
//! option parsing and the hand-written TypeScript definitions. A thin shell over `crate::upload`.

mod options;

use crate::checksum::{ChecksumAlgorithm, Hasher, base64};
use crate::error::{ErrorCode, UploadError, quoted};
use crate::progress::{ProgressSnapshot, UploadState};
use crate::retry::RetryPolicy;
use crate::upload::{
    Budget, FILES_HASHED_AT_ONCE, FileInfo, Pacer, PostForms, ProgressReporter, Resume, Runtime, UploadContext,
    UploadControl, upload_file,
};
use crate::web::{
    AnyBackend, AnyTransport, BlobSource, BrowserResumeStore, BrowserRuntime, Builder, NetworkWatch, ToJs, kind,
    open_queue, start_worker, upload_all,
};
use js_sys::{Function, Promise, Reflect};
use options::UploadOptions;
pub use options::{UploadOptionsJs, UploaderOptionsJs};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::{Blob, File};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = include_str!("types.d.ts");

/// Turns an [`UploadError`] into a JS `Error` with `code`, and `status` and `cause` when known.
pub(crate) fn to_js_error(error: UploadError) -> JsValue {
    let js = js_sys::Error::new(&error.message);
    js.set_name("S3DirectUploadError");
    let set = |name: &str, value: &JsValue| {
        Reflect::set(&js, &name.into(), value).expect("setting a property on a fresh Error");
    };
    set("code", &error.code.as_str().into());
    if let Some(status) = error.status {
        set("status", &status.into());
    }
    if let Some(cause) = &error.cause {
        set("cause", cause);
    }
    js.into()
}

/// Uploads files straight to S3 through one backend, with one request budget for all of them.
#[wasm_bindgen]
pub struct Uploader {
    inner: Rc<UploaderInner>,
}

struct UploaderInner {
    backend: AnyBackend,
    transport: AnyTransport,
    budget: Budget,
    /// Files hashed at once before their one request.
    hashing: Budget,
    pacer: Pacer,
    concurrency: usize,
    plan_options: crate::plan::PlanOptions,
    retry: RetryPolicy,
    network: NetworkWatch,
    resume: bool,
    checksum: Option<ChecksumAlgorithm>,
    post_forms: PostForms,
    on_progress: Option<Function>,
    /// The worker engine uploads go to, with `worker: true` (src/js/bridge.js's `startWorker`).
    worker: Option<JsValue>,
    /// The persistent queue every upload is recorded in, with `persist` (src/js/bridge.js's
    /// `openQueue`).
    queue: Option<JsValue>,
}

/// Freeing the Uploader (garbage collection, or `free()`) stops its worker once the uploads it
/// runs have ended (src/js/bridge.js).
impl Drop for UploaderInner {
    fn drop(&mut self) {
        if let Some(worker) = &self.worker {
            call_method(worker, "terminate", &[]);
        }
    }
}

/// Calls `object[name](...args)`; what it returned (undefined when it is no function or threw).
fn call_method(object: &JsValue, name: &str, args: &[&JsValue]) -> JsValue {
    let args: js_sys::Array = args.iter().copied().collect();
    Reflect::get(object, &name.into())
        .and_then(|f| f.dyn_into::<Function>())
        .and_then(|f| f.apply(object, &args))
        .unwrap_or_default()
}

#[wasm_bindgen]
impl Uploader {
    /// Creates an uploader. Throws an `Error` with code `invalid_option` when an option is wrong.
    #[wasm_bindgen(constructor)]
    pub fn new(options: UploaderOptionsJs) -> Result<Uploader, JsValue> {
        let options = JsValue::from(options);
        let parsed = options::parse_uploader_options(options.clone()).map_err(to_js_error)?;
        let worker = if parsed.worker { Some(start_worker(&options)?) } else { None };
        let queue = match parsed.persist {
            Some(p) => Some(open_queue(&p.name, p.copy_up_to as f64, p.copy_budget as f64)?),
            None => None,
        };
        Ok(Uploader {
            inner: Rc::new(UploaderInner {
                backend: parsed.backend,
                transport: parsed.transport,
                budget: Budget::new(parsed.concurrency),
                hashing: Budget::new(FILES_HASHED_AT_ONCE),
                pacer: Pacer::new(parsed.max_bytes_per_second),
                concurrency: parsed.concurrency,
                plan_options: parsed.plan_options,
                retry: parsed.retry,
                network: NetworkWatch::new(),
                resume: parsed.resume,
                checksum: parsed.checksum,
                post_forms: parsed.post_forms,
                on_progress: parsed.on_progress,
                worker,
                queue,
            }),
        })
    }

    /// Starts uploading `file` (a `File` or `Blob`). Throws `invalid_file` or `invalid_option`
    /// at once for bad arguments; every later failure rejects `upload.done`.
    pub fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Blob")] file: JsValue,
        options: Option<UploadOptionsJs>,
    ) -> Result<Upload, JsValue> {
        let blob: Blob = file.dyn_into().map_err(|value| {
            to_js_error(UploadError::new(
                ErrorCode::InvalidFile,
                format!("upload() takes a File or Blob, and was given {}", describe(&value)),
            ))
        })?;
        let given: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        let options = options::parse_upload_options(Some(given.clone())).map_err(to_js_error)?;
        if let AnyBackend::Contract(contract) = &self.inner.backend
            && !contract.supports_multipart()
        {
            let size = blob.size() as u64;
            if let Ok(crate::plan::UploadPlan::Multipart(_)) = crate::plan::plan_upload(size, &self.inner.plan_options)
            {
                return Err(to_js_error(UploadError::new(
                    ErrorCode::InvalidOption,
                    format!(
                        "this {size}-byte file needs a multipart upload, but the backend callbacks lack \
                         createMultipartUpload, signParts (or signPart) or completeMultipartUpload"
                    ),
                )));
            }
        }
        let (done, control) = match &self.inner.worker {
            Some(worker) => {
                let remote = call_method(worker, "upload", &[&blob, &given]);
                (Reflect::get(&remote, &"done".into())?.unchecked_into(), Control::Worker(remote))
            }
            None => {
                let control = Rc::new(UploadControl::default());
                let run = run_upload(self.inner.clone(), blob.clone(), options, control.clone());
                (future_to_promise(run), Control::Page(control))
            }
        };
        if let Some(queue) = &self.inner.queue {
            call_method(queue, "add", &[&blob, &given, &done]);
        }
        Ok(Upload { done, control, file: blob })
    }

    /// Uploads every file of a pick, a drop or a folder (a `FileList`, a `DataTransfer`, a
    /// `FileSystemDirectoryHandle`, ...), each under its relative path: see `UploadBatch`.
    #[wasm_bindgen(js_name = uploadAll, unchecked_return_type = "UploadBatch")]
    pub fn upload_all(
        &self,
        #[wasm_bindgen(unchecked_param_type = "FileSource")] source: JsValue,
        #[wasm_bindgen(unchecked_param_type = "BatchOptions | undefined")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        upload_all(&self.shared(), &source, &options)
    }

    /// The uploads a persistent queue (`persist`) holds from earlier pages that did not finish,
    /// each with what it needs to go on: see `RestoredUpload`.
    #[wasm_bindgen(unchecked_return_type = "Promise<RestoredUpload[]>")]
    pub fn restore(&self) -> Promise {
        match &self.inner.queue {
            Some(queue) => call_method(queue, "restore", &[&self.shared()]).unchecked_into(),
            None => Promise::reject(&to_js_error(UploadError::new(
                ErrorCode::InvalidOption,
                "restore() reads the persistent queue: create the Uploader with `persist: true`",
            ))),
        }
    }

    /// This uploader as JS sees it, for the bridge's batches and queue to start uploads with.
    fn shared(&self) -> JsValue {
        Uploader { inner: self.inner.clone() }.into()
    }
}

/// `blob` described for the backend with `options`. Read in the upload's own task: the first
/// `size` of a picked file asks Chromium's browser process (0.2 ms), which a loop starting
/// 2,000 uploads paid before any of them could start.
fn file_info(blob: &Blob, options: UploadOptions) -> FileInfo {
    FileInfo {
        filename: blob.dyn_ref::<File>().map_or_else(|| "blob".to_owned(), File::name),
        size: blob.size() as u64,
        // `file.type` is "" for types the browser does not know: passed on, it means "not given".
        content_type: options
            .content_type
            .filter(|t| !t.is_empty())
            .or_else(|| Some(blob.type_()).filter(|t| !t.is_empty()))
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        key: options.key,
        metadata: options.metadata,
        checksum_algorithm: None,
        checksum: None,
        part_size: None,
    }
}

async fn run_upload(
    inner: Rc<UploaderInner>,
    blob: Blob,
    mut options: UploadOptions,
    control: Rc<UploadControl>,
) -> Result<JsValue, JsValue> {
    let (on_progress, priority) = (options.on_progress.take(), options.priority);
    let listeners: Vec<Function> = inner.on_progress.iter().chain(on_progress.iter()).cloned().collect();
    let told = std::cell::Cell::new(false);
    let sink = |snapshot: &ProgressSnapshot, key: Option<&str>| {
        if listeners.is_empty() {
            return;
        }
        let report = progress_object(&blob, key, snapshot, inner.budget.limit());
        for listener in &listeners {
            // A throwing progress listener must not break the upload: it goes on, and the
            // developer is told once (with what was thrown, its stack included).
            if let Err(thrown) = listener.call1(&JsValue::UNDEFINED, &report)
                && !told.replace(true)
            {
                console_error("s3-direct-upload: the onProgress callback threw (the upload goes on):", &thrown);
            }
        }
    };
    let runtime = BrowserRuntime;
    // Each upload starts in a task of its own: thousands started in one loop (a folder) would
    // otherwise all take their first steps in the task that started them, for seconds.
    runtime.next_task().await;
    let info = file_info(&blob, options);
    let progress = ProgressReporter::new(info.size, &runtime, &sink);
    let resume = match resume_fingerprint(&inner, &blob, &info) {
        Some(fingerprint) => {
            let found = BrowserResumeStore::load(&fingerprint).await;
            Some(Resume { store: &BrowserResumeStore, fingerprint, found })
        }
        None => None,
    };
    let cx = UploadContext {
        backend: &inner.backend,
        transport: &inner.transport,
        budget: &inner.budget,
        hashing: &inner.hashing,
        priority,
        pacer: &inner.pacer,
        concurrency: inner.concurrency,
        plan_options: inner.plan_options,
        runtime: &runtime,
        retry: inner.retry,
        control: &control,
        offline: &inner.network.offline,
        resume,
        checksum: inner.checksum,
        post_forms: inner.post_forms,
    };
    let result = upload_file(&cx, &BlobSource::new(blob.clone(), info.size), &info, &progress).await;
    progress.set_state(match &result {
        Ok(_) => UploadState::Done,
        Err(e) if e.code == ErrorCode::Aborted => UploadState::Aborted,
        Err(_) => UploadState::Failed,
    });
    result.map(|stored| stored.to_js()).map_err(to_js_error)
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str, thrown: &JsValue);
}

/// What identifies a file across page loads: the backend, and the file's name, size, last
/// change, type and requested key. Only `File`s have one (a plain `Blob` has no name or date),
/// and only backends that can list parts can resume.
fn resume_fingerprint(inner: &UploaderInner, blob: &Blob, info: &FileInfo) -> Option<String> {
    let file = blob.dyn_ref::<File>().filter(|_| inner.resume && inner.backend.can_list_parts())?;
    Some(format!(
        "{}|{}|{}|{}|{}|{}",
        inner.backend.identity(),
        info.filename,
        info.size,
        // Whole milliseconds, written as before (integers print alike as f64 and as u64).
        file.last_modified() as u64,
        info.content_type,
        info.key.as_deref().unwrap_or("")
    ))
}

fn progress_object(file: &Blob, key: Option<&str>, p: &ProgressSnapshot, budget: usize) -> JsValue {
    Builder::new()
        .set("file", file)
        .or_null("key", key)
        .set("loaded", p.loaded as f64)
        .set("total", p.total as f64)
        .set("bytesPerSecond", p.bytes_per_second)
        .or_null("etaSeconds", p.eta_seconds)
        .set("state", p.state.as_str())
        .set("restarted", p.restarted)
        .set("hashed", p.hashed as f64)
        .set("budget", budget as u32)
        .build()
}

/// A short description of a wrong argument, for error messages.
fn describe(value: &JsValue) -> String {
    match value.as_string() {
        Some(s) => format!("the string {}", quoted(&s)),
        None => kind(value),
    }
}

/// One file's upload: await `done`; `pause()`, `resume()` or `abort()` it.
#[wasm_bindgen]
pub struct Upload {
    done: Promise,
    control: Control,
    file: Blob,
}

/// Who runs an upload: this page's engine, through its switches, or the worker engine, through
/// its handle (src/js/bridge.js).
enum Control {
    Page(Rc<UploadControl>),
    Worker(JsValue),
}

#[wasm_bindgen]
impl Upload {
    /// Resolves with the stored object, or rejects with an `Error` carrying a `code`.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<UploadResult>")]
    pub fn done(&self) -> Promise {
        self.done.clone()
    }

    /// The file or blob being uploaded.
    #[wasm_bindgen(getter)]
    pub fn file(&self) -> Blob {
        self.file.clone()
    }

    /// Pauses: part requests in flight are cancelled (their bytes will be sent again) and no new
    /// ones start. Parts already stored stay stored.
    pub fn pause(&self) {
        match &self.control {
            Control::Page(control) => control.paused.set(true),
            Control::Worker(remote) => drop(call_method(remote, "pause", &[])),
        }
    }

    /// Continues a paused upload from the parts already stored.
    pub fn resume(&self) {
        match &self.control {
            Control::Page(control) => control.paused.set(false),
            Control::Worker(remote) => drop(call_method(remote, "resume", &[])),
        }
    }

    /// Cancels every request of this upload and asks the backend to abort the multipart upload.
    /// Resolves once that is done; `done` then rejects with code `aborted` (unless the upload had
    /// already finished).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn abort(&self) -> Promise {
        match &self.control {
            Control::Page(control) => control.aborted.set(true),
            Control::Worker(remote) => return call_method(remote, "abort", &[]).unchecked_into(),
        }
        let done = JsFuture::from(self.done.clone());
        future_to_promise(async move {
            let _ = done.await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

/// The checksum the uploader sends with a part, for any bytes: feed them with `update`, then
/// read the base64 value once with `digest`. Hashes in wasm, as the uploader does.
#[wasm_bindgen]
pub struct Checksum(Hasher);

#[wasm_bindgen]
impl Checksum {
    /// A checksum of nothing yet with `algorithm`: "crc32c", "crc32", "sha256", "sha1" or "md5".
    /// Throws `invalid_option` for any other name.
    #[wasm_bindgen(constructor)]
    pub fn new(algorithm: &str) -> Result<Checksum, JsValue> {
        let algorithm = ChecksumAlgorithm::parse(algorithm).ok_or_else(|| {
            to_js_error(UploadError::new(
                ErrorCode::InvalidOption,
                format!("no checksum algorithm {}; use crc32c, crc32, sha256, sha1 or md5", quoted(algorithm)),
            ))
        })?;
        Ok(Checksum(Hasher::new(algorithm)))
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The checksum of everything fed, base64-encoded as S3 writes it. Frees the object.
    pub fn digest(self) -> String {
        base64(&self.0.finish())
    }
}
