//! Parsing and checking the option objects given to `new Uploader(...)` and `upload(...)`.

use crate::checksum::ChecksumAlgorithm;
use crate::error::{ErrorCode, UploadError, quoted};
use crate::plan::PlanOptions;
use crate::retry::RetryPolicy;
use crate::string_map::StringMap;
use crate::upload::PostForms;
use crate::web::{
    AnyBackend, AnyTransport, ContractBackend, CredentialsBackend, DEFAULT_MIN_BYTES_PER_SECOND,
    DEFAULT_STALL_TIMEOUT_MS, FetchTransport, Op, StoreClock, StoreHeard, XhrTransport,
};
use crate::web::{Fields, number_text};
use js_sys::{Function, Reflect};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// Most simultaneous requests an uploader may be given: far above what browsers run at once
/// per host (6 over HTTP/1.1), so larger numbers are mistakes.
pub(crate) const MAX_CONCURRENCY: usize = 64;
/// Default simultaneous requests: the HTTP/1.1 per-host connection limit of browsers.
pub(crate) const DEFAULT_CONCURRENCY: usize = 6;

#[wasm_bindgen]
extern "C" {
    /// The options of `new Uploader(...)`.
    #[wasm_bindgen(typescript_type = "UploaderOptions")]
    pub type UploaderOptionsJs;
    /// The options of `uploader.upload(file, ...)`.
    #[wasm_bindgen(typescript_type = "UploadOptions")]
    pub type UploadOptionsJs;
}

/// Checked `Uploader` options.
pub(crate) struct UploaderOptions {
    pub(crate) backend: AnyBackend,
    pub(crate) concurrency: usize,
    pub(crate) plan_options: PlanOptions,
    pub(crate) retry: RetryPolicy,
    pub(crate) transport: AnyTransport,
    pub(crate) resume: bool,
    pub(crate) checksum: Option<ChecksumAlgorithm>,
    pub(crate) post_forms: PostForms,
    pub(crate) on_progress: Option<Function>,
    pub(crate) max_bytes_per_second: Option<u64>,
    /// Run the engine in a Web Worker (`worker: true`).
    pub(crate) worker: bool,
    /// Keep a persistent queue of the uploads (`persist`).
    pub(crate) persist: Option<Persist>,
}

/// `persist`: which queue the uploads are kept in, and which files are copied so that they can
/// be read again after a reload without the user.
pub(crate) struct Persist {
    /// The queue's name: uploaders with different names restore different uploads.
    pub(crate) name: String,
    /// Files up to this size (bytes) are copied into the origin-private file system.
    pub(crate) copy_up_to: u64,
    /// Most bytes all of the queue's copies may take together.
    pub(crate) copy_budget: u64,
}

/// Default `persist.copyUpTo`: 32 MiB.
const DEFAULT_COPY_UP_TO: u64 = 32 << 20;
/// Default `persist.copyBudget`: 256 MiB.
const DEFAULT_COPY_BUDGET: u64 = 256 << 20;

/// Checked `upload()` options.
#[derive(Default)]
pub(crate) struct UploadOptions {
    pub(crate) key: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) metadata: StringMap,
    pub(crate) on_progress: Option<Function>,
    pub(crate) priority: i32,
}

fn invalid(message: String) -> UploadError {
    UploadError::new(ErrorCode::InvalidOption, message)
}

/// Refuses keys of `options` that are not in `known`: a misspelt option must not be ignored.
fn reject_unknown_keys(options: &JsValue, known: &[&str], what: &str) -> Result<(), UploadError> {
    let keys = js_sys::Object::keys(options.unchecked_ref::<js_sys::Object>());
    for key in keys.iter().filter_map(|k| k.as_string()) {
        if !known.contains(&key.as_str()) {
            return Err(invalid(format!("{what} has no option `{key}`; the options are {}", known.join(", "))));
        }
    }
    Ok(())
}

fn optional_function(value: JsValue, name: &str) -> Result<Option<Function>, UploadError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value.dyn_into::<Function>().map(Some).map_err(|_| invalid(format!("`{name}` must be a function")))
}

/// Parses `new Uploader(options)`.
pub(crate) fn parse_uploader_options(options: JsValue) -> Result<UploaderOptions, UploadError> {
    if !options.is_object() {
        return Err(invalid("new Uploader() takes an options object with at least `backend`".into()));
    }
    reject_unknown_keys(
        &options,
        &[
            "backend",
            "backendHeaders",
            "concurrency",
            "partSize",
            "multipartThreshold",
            "retry",
            "stallTimeoutMs",
            "minBytesPerSecond",
            "resume",
            "transport",
            "checksum",
            "mode",
            "onProgress",
            "maxBytesPerSecond",
            "worker",
            "persist",
        ],
        "Uploader",
    )?;
    let f = Fields::of(&options).map_err(invalid)?;
    let concurrency = f
        .opt_whole("concurrency", MAX_CONCURRENCY as u64)
        .map_err(invalid)?
        .map_or(DEFAULT_CONCURRENCY, |c| c as usize);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(invalid(format!(
            "`concurrency` is {concurrency}; use a whole number from 1 to {MAX_CONCURRENCY} (default {DEFAULT_CONCURRENCY})"
        )));
    }
    let plan_options = PlanOptions {
        part_size: f.opt_whole("partSize", 1 << 53).map_err(invalid)?,
        multipart_threshold: f.opt_whole("multipartThreshold", 1 << 53).map_err(invalid)?,
    };
    plan_options.validate()?;
    let stall_timeout_ms = f.opt_whole("stallTimeoutMs", u64::from(u32::MAX)).map_err(invalid)?;
    let stall_timeout_ms = stall_timeout_ms.map_or(DEFAULT_STALL_TIMEOUT_MS, |ms| ms as u32);
    if !(100..=3_600_000).contains(&stall_timeout_ms) {
        return Err(invalid(format!("`stallTimeoutMs` is {stall_timeout_ms}; use 100 to 3600000 (default 30000)")));
    }
    let mode = match f.opt_string("mode").map_err(invalid)?.as_deref().unwrap_or("presigned") {
        "presigned" => Mode::Presigned,
        "post" => Mode::Post,
        "credentials" => Mode::Credentials,
        other => {
            return Err(invalid(format!(
                "`mode` is {}; use \"presigned\" (default: the backend presigns PUTs and parts), \
                 \"post\" (one HTML-form POST under a signed policy) or \"credentials\" (the page signs with \
                 temporary credentials)",
                quoted(other)
            )));
        }
    };
    let min_bytes_per_second = f.opt_whole("minBytesPerSecond", u64::from(u32::MAX)).map_err(invalid)?;
    let min_bytes_per_second = min_bytes_per_second.map_or(DEFAULT_MIN_BYTES_PER_SECOND, |b| b as u32);
    if min_bytes_per_second == 0 {
        return Err(invalid("`minBytesPerSecond` must be at least 1 (default 50000)".into()));
    }
    // In the credentials mode the page signs, and the store's clock is learnt from whatever
    // the store refuses, by the signer and by the transport alike.
    let store_clock = (mode == Mode::Credentials).then(|| Rc::new(StoreClock::default()));
    let store_heard = Rc::new(StoreHeard::default());
    let resume = f.opt_bool("resume").map_err(invalid)?.unwrap_or(true);
    let persist = parse_persist(&f.value("persist"))?;
    if persist.is_some() && !resume {
        return Err(invalid(
            "`persist` restores uploads from their resume records: leave `resume` on (or `persist` off)".into(),
        ));
    }
    Ok(UploaderOptions {
        backend: parse_backend(
            f.value("backend"),
            f.string_map("backendHeaders").map_err(invalid)?,
            mode,
            store_clock.clone(),
            store_heard.clone(),
        )?,
        concurrency,
        plan_options,
        retry: parse_retry(f.value("retry"))?,
        transport: match f.opt_string("transport").map_err(invalid)?.as_deref().unwrap_or("fetch") {
            "fetch" => {
                AnyTransport::Fetch(FetchTransport { stall_timeout_ms, min_bytes_per_second, store_clock, store_heard })
            }
            "xhr" => AnyTransport::Xhr(XhrTransport { stall_timeout_ms, store_clock, store_heard }),
            other => {
                return Err(invalid(format!(
                    "`transport` is {}; use \"fetch\" (default) or \"xhr\" (per-byte progress)",
                    quoted(other)
                )));
            }
        },
        resume,
        persist,
        worker: f.opt_bool("worker").map_err(invalid)?.unwrap_or(false),
        checksum: parse_checksum(&f.value("checksum"))?,
        post_forms: match mode {
            Mode::Presigned => PostForms::Never,
            // The page signs a policy as cheaply as a URL, and a form needs no CORS preflight.
            Mode::Credentials => PostForms::SmallFiles,
            Mode::Post => PostForms::Always,
        },
        on_progress: optional_function(f.value("onProgress"), "onProgress")?,
        max_bytes_per_second: match f.opt_whole("maxBytesPerSecond", 1 << 53).map_err(invalid)? {
            Some(0) => return Err(invalid("`maxBytesPerSecond` must be at least 1 (leave it out for no cap)".into())),
            cap => cap,
        },
    })
}

/// `persist`: `true` (the queue "default"), a queue name, or `{ name, copyUpTo, copyBudget }`.
fn parse_persist(value: &JsValue) -> Result<Option<Persist>, UploadError> {
    let named = |name: String| Persist { name, copy_up_to: DEFAULT_COPY_UP_TO, copy_budget: DEFAULT_COPY_BUDGET };
    if value.is_undefined() || value.as_bool() == Some(false) {
        return Ok(None);
    }
    if value.as_bool() == Some(true) {
        return Ok(Some(named("default".into())));
    }
    let persist = match value.as_string() {
        Some(name) => named(name),
        None if value.is_object() && !value.is_function() => {
            reject_unknown_keys(value, &["name", "copyUpTo", "copyBudget"], "persist")?;
            let f = Fields::of(value).map_err(invalid)?;
            let defaults = named(f.opt_string("name").map_err(invalid)?.unwrap_or_else(|| "default".into()));
            Persist {
                copy_up_to: f.opt_whole("copyUpTo", 1 << 53).map_err(invalid)?.unwrap_or(defaults.copy_up_to),
                copy_budget: f.opt_whole("copyBudget", 1 << 53).map_err(invalid)?.unwrap_or(defaults.copy_budget),
                ..defaults
            }
        }
        None => {
            return Err(invalid("`persist` must be true, a queue name, or { name, copyUpTo, copyBudget }".into()));
        }
    };
    if persist.name.is_empty() {
        return Err(invalid("`persist` names an empty queue; give it a name, or true for \"default\"".into()));
    }
    Ok(Some(persist))
}

/// `checksum`: an algorithm name, or `false` for none; CRC32C when left out.
fn parse_checksum(value: &JsValue) -> Result<Option<ChecksumAlgorithm>, UploadError> {
    if value.is_undefined() {
        return Ok(Some(ChecksumAlgorithm::Crc32c));
    }
    if value.as_bool() == Some(false) {
        return Ok(None);
    }
    value.as_string().and_then(|name| ChecksumAlgorithm::parse(&name)).map(Some).ok_or_else(|| {
        invalid("`checksum` must be \"crc32c\" (default), \"crc32\", \"sha256\", \"sha1\", \"md5\" or false".into())
    })
}

fn parse_retry(value: JsValue) -> Result<RetryPolicy, UploadError> {
    let mut policy = RetryPolicy::default();
    if value.is_undefined() || value.is_null() {
        return Ok(policy);
    }
    if !value.is_object() {
        return Err(invalid("`retry` must be an object such as { maxRetries: 5 }".into()));
    }
    reject_unknown_keys(&value, &["maxRetries", "retryTimeoutMs", "initialBackoffMs", "maxBackoffMs"], "retry")?;
    let f = Fields::of(&value).map_err(invalid)?;
    let in_range = |name: &str, max: u32| -> Result<Option<f64>, UploadError> {
        match f.opt_number(name).map_err(|e| invalid(format!("retry: {e}")))? {
            Some(v) if v.is_finite() && (0.0..=f64::from(max)).contains(&v) => Ok(Some(v)),
            Some(v) => Err(invalid(format!("`retry.{name}` is {}; use 0 to {max}", number_text(v)))),
            None => Ok(None),
        }
    };
    if let Some(n) = in_range("maxRetries", 100)? {
        policy.max_retries = n as u32;
    }
    if let Some(ms) = in_range("retryTimeoutMs", 86_400_000)? {
        policy.retry_timeout_ms = ms;
    }
    if let Some(ms) = in_range("initialBackoffMs", 600_000)? {
        policy.initial_backoff_ms = ms;
    }
    if let Some(ms) = in_range("maxBackoffMs", 600_000)? {
        policy.max_backoff_ms = ms;
    }
    if policy.initial_backoff_ms > policy.max_backoff_ms {
        return Err(invalid("`retry.initialBackoffMs` is above `retry.maxBackoffMs`".into()));
    }
    Ok(policy)
}

/// How files reach the store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The backend presigns PUTs and parts.
    Presigned,
    /// One HTML-form POST under a policy the backend signs.
    Post,
    /// The backend hands out temporary credentials; the page signs.
    Credentials,
}

fn parse_backend(
    backend: JsValue,
    headers: StringMap,
    mode: Mode,
    store_clock: Option<Rc<StoreClock>>,
    store_heard: Rc<StoreHeard>,
) -> Result<AnyBackend, UploadError> {
    let contract = if let Some(base) = backend.as_string() {
        if base.trim().is_empty() {
            return Err(invalid("`backend` is an empty string; give the base URL of the upload API".into()));
        }
        ContractBackend::http(&base, headers.into_iter().collect())
    } else if backend.is_object() && !backend.is_function() {
        let mut functions: [Option<Function>; 10] = Default::default();
        for (op, function) in Op::ALL.into_iter().zip(&mut functions) {
            let name = op.callback();
            let value = Reflect::get(&backend, &name.into()).unwrap_or(JsValue::UNDEFINED);
            *function = optional_function(value, &format!("backend.{name}"))?;
        }
        ContractBackend::callbacks(backend, functions)
    } else {
        return Err(invalid(
            "`backend` must be the base URL of the upload API (a string) or an object of callbacks".into(),
        ));
    };
    if mode == Mode::Credentials {
        if !contract.offers(Op::Credentials) {
            return Err(invalid("`mode: \"credentials\"` needs the backend callback getCredentials".into()));
        }
        let clock = store_clock.unwrap_or_default();
        return Ok(AnyBackend::Credentials(CredentialsBackend::new(contract, clock, store_heard)));
    }
    if mode == Mode::Post && !contract.offers(Op::SignPost) {
        return Err(invalid("`mode: \"post\"` needs the backend callback signPost".into()));
    }
    if mode != Mode::Post && !contract.supports_multipart() && !contract.offers(Op::SignPut) {
        return Err(invalid(
            "the backend callbacks must include signPut (signFiles signs many at once, besides it), or \
             createMultipartUpload with signParts (or signPart) and completeMultipartUpload"
                .into(),
        ));
    }
    Ok(AnyBackend::Contract(contract))
}

/// Parses `upload(file, options)`.
pub(crate) fn parse_upload_options(options: Option<JsValue>) -> Result<UploadOptions, UploadError> {
    let Some(options) = options.filter(|o| !o.is_undefined() && !o.is_null()) else {
        return Ok(UploadOptions::default());
    };
    reject_unknown_keys(&options, &["key", "contentType", "metadata", "onProgress", "priority", "handle"], "upload()")?;
    let f = Fields::of(&options).map_err(|e| invalid(format!("upload options: {e}")))?;
    let handle = f.value("handle");
    let readable = |h: &JsValue| Reflect::get(h, &"getFile".into()).is_ok_and(|f| f.is_function());
    if !handle.is_undefined() && !readable(&handle) {
        return Err(invalid("`handle` must be the file's FileSystemFileHandle".into()));
    }
    let metadata = f.string_map("metadata").map_err(invalid)?;
    crate::object_rules::check_metadata(&metadata).map_err(|e| invalid(e.0))?;
    Ok(UploadOptions {
        key: f.opt_string("key").map_err(invalid)?,
        content_type: f.opt_string("contentType").map_err(invalid)?,
        metadata,
        on_progress: optional_function(f.value("onProgress"), "onProgress")?,
        priority: match f.opt_number("priority").map_err(invalid)? {
            None => 0,
            Some(p) if p.fract() == 0.0 && (-1000.0..=1000.0).contains(&p) => p as i32,
            Some(p) => {
                return Err(invalid(format!(
                    "`priority` is {}; use a whole number from -1000 to 1000",
                    number_text(p)
                )));
            }
        },
    })
}
