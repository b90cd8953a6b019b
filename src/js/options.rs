//! Parsing and checking the option objects given to `new Uploader(...)` and `upload(...)`.

use crate::checksum::ChecksumAlgorithm;
use crate::error::{ErrorCode, UploadError};
use crate::plan::PlanOptions;
use crate::retry::RetryPolicy;
use crate::upload::PostForms;
use crate::web::{
    AnyBackend, AnyTransport, CallbackBackend, CredentialsBackend, DEFAULT_MIN_BYTES_PER_SECOND,
    DEFAULT_STALL_TIMEOUT_MS, FetchTransport, GrantSource, HttpBackend, StoreClock, StoreHeard, XhrTransport,
};
use js_sys::{Function, Reflect};
use serde::Deserialize;
use std::collections::BTreeMap;
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUploaderOptions {
    #[serde(with = "serde_wasm_bindgen::preserve")]
    backend: JsValue,
    #[serde(default)]
    backend_headers: BTreeMap<String, String>,
    #[serde(default)]
    concurrency: Option<u32>,
    #[serde(default)]
    part_size: Option<u64>,
    #[serde(default)]
    multipart_threshold: Option<u64>,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    retry: JsValue,
    #[serde(default)]
    stall_timeout_ms: Option<u32>,
    #[serde(default)]
    min_bytes_per_second: Option<u32>,
    #[serde(default)]
    resume: Option<bool>,
    #[serde(default)]
    transport: Option<String>,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    checksum: JsValue,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    on_progress: JsValue,
}

/// `retry: {...}`; every field optional, defaults from [`RetryPolicy::default`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRetry {
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default)]
    retry_timeout_ms: Option<f64>,
    #[serde(default)]
    initial_backoff_ms: Option<f64>,
    #[serde(default)]
    max_backoff_ms: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUploadOptions {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    on_progress: JsValue,
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
}

/// Checked `upload()` options.
#[derive(Default)]
pub(crate) struct UploadOptions {
    pub(crate) key: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) on_progress: Option<Function>,
}

fn invalid(message: String) -> UploadError {
    UploadError::new(ErrorCode::InvalidOption, message)
}

/// Refuses keys of `options` that are not in `known`: a misspelt option must not be ignored.
/// (serde-wasm-bindgen reads struct fields by name, so `deny_unknown_fields` never sees extras.)
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
        ],
        "Uploader",
    )?;
    let raw: RawUploaderOptions =
        serde_wasm_bindgen::from_value(options).map_err(|e| invalid(format!("Uploader options: {e}")))?;
    let concurrency = raw.concurrency.map_or(DEFAULT_CONCURRENCY, |c| c as usize);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(invalid(format!(
            "`concurrency` is {concurrency}; use a whole number from 1 to {MAX_CONCURRENCY} (default {DEFAULT_CONCURRENCY})"
        )));
    }
    let plan_options = PlanOptions { part_size: raw.part_size, multipart_threshold: raw.multipart_threshold };
    plan_options.validate()?;
    let stall_timeout_ms = raw.stall_timeout_ms.unwrap_or(DEFAULT_STALL_TIMEOUT_MS);
    if !(100..=3_600_000).contains(&stall_timeout_ms) {
        return Err(invalid(format!("`stallTimeoutMs` is {stall_timeout_ms}; use 100 to 3600000 (default 30000)")));
    }
    let mode = match raw.mode.as_deref().unwrap_or("presigned") {
        "presigned" => Mode::Presigned,
        "post" => Mode::Post,
        "credentials" => Mode::Credentials,
        other => {
            return Err(invalid(format!(
                "`mode` is {other:?}; use \"presigned\" (default: the backend presigns PUTs and parts), \
                 \"post\" (one HTML-form POST under a signed policy) or \"credentials\" (the page signs with \
                 temporary credentials)"
            )));
        }
    };
    let min_bytes_per_second = raw.min_bytes_per_second.unwrap_or(DEFAULT_MIN_BYTES_PER_SECOND);
    if min_bytes_per_second == 0 {
        return Err(invalid("`minBytesPerSecond` must be at least 1 (default 50000)".into()));
    }
    // In the credentials mode the page signs, and the store's clock is learnt from whatever
    // the store refuses, by the signer and by the transport alike.
    let store_clock = (mode == Mode::Credentials).then(|| Rc::new(StoreClock::default()));
    let store_heard = Rc::new(StoreHeard::default());
    Ok(UploaderOptions {
        backend: parse_backend(raw.backend, raw.backend_headers, mode, store_clock.clone(), store_heard.clone())?,
        concurrency,
        plan_options,
        retry: parse_retry(raw.retry)?,
        transport: match raw.transport.as_deref().unwrap_or("fetch") {
            "fetch" => {
                AnyTransport::Fetch(FetchTransport { stall_timeout_ms, min_bytes_per_second, store_clock, store_heard })
            }
            "xhr" => AnyTransport::Xhr(XhrTransport { stall_timeout_ms, store_clock, store_heard }),
            other => {
                return Err(invalid(format!(
                    "`transport` is {other:?}; use \"fetch\" (default) or \"xhr\" (per-byte progress)"
                )));
            }
        },
        resume: raw.resume.unwrap_or(true),
        checksum: parse_checksum(&raw.checksum)?,
        post_forms: match mode {
            Mode::Presigned => PostForms::Never,
            // The page signs a policy as cheaply as a URL, and a form needs no CORS preflight.
            Mode::Credentials => PostForms::SmallFiles,
            Mode::Post => PostForms::Always,
        },
        on_progress: optional_function(raw.on_progress, "onProgress")?,
    })
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
    let raw: RawRetry = serde_wasm_bindgen::from_value(value).map_err(|e| invalid(format!("retry: {e}")))?;
    let in_range = |name: &str, v: f64, max: f64| {
        if v.is_finite() && (0.0..=max).contains(&v) {
            Ok(v)
        } else {
            Err(invalid(format!("`retry.{name}` is {v}; use 0 to {max}")))
        }
    };
    if let Some(n) = raw.max_retries {
        policy.max_retries = in_range("maxRetries", f64::from(n), 100.0)? as u32;
    }
    if let Some(ms) = raw.retry_timeout_ms {
        policy.retry_timeout_ms = in_range("retryTimeoutMs", ms, 86_400_000.0)?;
    }
    if let Some(ms) = raw.initial_backoff_ms {
        policy.initial_backoff_ms = in_range("initialBackoffMs", ms, 600_000.0)?;
    }
    if let Some(ms) = raw.max_backoff_ms {
        policy.max_backoff_ms = in_range("maxBackoffMs", ms, 600_000.0)?;
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
    headers: BTreeMap<String, String>,
    mode: Mode,
    store_clock: Option<Rc<StoreClock>>,
    store_heard: Rc<StoreHeard>,
) -> Result<AnyBackend, UploadError> {
    let clock = || store_clock.clone().unwrap_or_default();
    if let Some(base) = backend.as_string() {
        if base.trim().is_empty() {
            return Err(invalid("`backend` is an empty string; give the base URL of the upload API".into()));
        }
        let http = HttpBackend::new(&base, headers.into_iter().collect());
        if mode == Mode::Credentials {
            return Ok(AnyBackend::Credentials(CredentialsBackend::new(GrantSource::Http(http), clock(), store_heard)));
        }
        return Ok(AnyBackend::Http(http));
    }
    if !backend.is_object() || backend.is_function() {
        return Err(invalid(
            "`backend` must be the base URL of the upload API (a string) or an object of callbacks".into(),
        ));
    }
    let get = |name: &str| -> Result<Option<Function>, UploadError> {
        let value = Reflect::get(&backend, &name.into()).unwrap_or(JsValue::UNDEFINED);
        optional_function(value, &format!("backend.{name}"))
    };
    if mode == Mode::Credentials {
        let source = get("getCredentials")?
            .ok_or_else(|| invalid("`mode: \"credentials\"` needs the backend callback getCredentials".into()))?;
        return Ok(AnyBackend::Credentials(CredentialsBackend::new(
            GrantSource::Callback(source),
            clock(),
            store_heard,
        )));
    }
    let post_forms = mode == Mode::Post;
    let callbacks = CallbackBackend {
        create_multipart_upload: get("createMultipartUpload")?,
        sign_parts: get("signParts")?,
        sign_part: get("signPart")?,
        complete_multipart_upload: get("completeMultipartUpload")?,
        abort_multipart_upload: get("abortMultipartUpload")?,
        list_parts: get("listParts")?,
        sign_put: get("signPut")?,
        sign_post: get("signPost")?,
    };
    if post_forms && callbacks.sign_post.is_none() {
        return Err(invalid("`mode: \"post\"` needs the backend callback signPost".into()));
    }
    if !post_forms && !callbacks.supports_multipart() && callbacks.sign_put.is_none() {
        return Err(invalid(
            "the backend callbacks must include signPut, or createMultipartUpload with signParts (or \
             signPart) and completeMultipartUpload"
                .into(),
        ));
    }
    Ok(AnyBackend::Callbacks(callbacks))
}

/// Parses `upload(file, options)`.
pub(crate) fn parse_upload_options(options: Option<JsValue>) -> Result<UploadOptions, UploadError> {
    let Some(options) = options.filter(|o| !o.is_undefined() && !o.is_null()) else {
        return Ok(UploadOptions::default());
    };
    reject_unknown_keys(&options, &["key", "contentType", "metadata", "onProgress"], "upload()")?;
    let raw: RawUploadOptions =
        serde_wasm_bindgen::from_value(options).map_err(|e| invalid(format!("upload options: {e}")))?;
    crate::object_rules::check_metadata(&raw.metadata).map_err(|e| invalid(e.0))?;
    Ok(UploadOptions {
        key: raw.key,
        content_type: raw.content_type,
        metadata: raw.metadata,
        on_progress: optional_function(raw.on_progress, "onProgress")?,
    })
}
