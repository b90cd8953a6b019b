//! Plain data to and from JS values, field by field: the contract's requests (sent as JSON or
//! given to a callback) and answers (parsed JSON, or what a callback returned), grants, resume
//! records and upload results. (serde and serde-wasm-bindgen did this once, for a fifth of the
//! `.wasm`; the reference server still derives serde on the same wire types, with the feature.)
//! Field names are the contract's, camelCase. A missing or mistyped field is an error that
//! names it; unknown fields are ignored, as in JSON APIs generally.

use crate::checksum::{ChecksumAlgorithm, ObjectChecksum};
use crate::error::quoted;
use crate::grant::GrantAnswer;
use crate::string_map::StringMap;
use crate::upload::{
    CompleteRequest, CompletedObject, FileInfo, ListedPart, MultipartSession, ResumeRecord, SignPartsRequest,
    SignReason, SignedPart, SignedPost, SignedRequest, StoredObject,
};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// Reads the fields of one JS object; every error names the field.
pub(crate) struct Fields<'a>(&'a JsValue);

impl<'a> Fields<'a> {
    /// The fields of `value`, which must be an object (not an array or a function).
    pub(crate) fn of(value: &'a JsValue) -> Result<Self, String> {
        if value.is_object() && !Array::is_array(value) && !value.is_function() {
            Ok(Fields(value))
        } else {
            Err(format!("expected an object, got {}", kind(value)))
        }
    }

    /// The raw value of `name` (`undefined` when absent).
    pub(crate) fn value(&self, name: &str) -> JsValue {
        Reflect::get(self.0, &name.into()).unwrap_or(JsValue::UNDEFINED)
    }

    /// `name`'s value, `None` when absent (`undefined` or `null`).
    fn present(&self, name: &str) -> Option<JsValue> {
        Some(self.value(name)).filter(|v| !v.is_undefined() && !v.is_null())
    }

    /// A string that must be there.
    pub(crate) fn string(&self, name: &str) -> Result<String, String> {
        self.opt_string(name)?.ok_or_else(|| format!("missing field `{name}`"))
    }

    /// A string, if given.
    pub(crate) fn opt_string(&self, name: &str) -> Result<Option<String>, String> {
        self.present(name).map(|v| v.as_string().ok_or_else(|| mistyped(name, "a string", &v))).transpose()
    }

    /// A boolean, if given.
    pub(crate) fn opt_bool(&self, name: &str) -> Result<Option<bool>, String> {
        self.present(name).map(|v| v.as_bool().ok_or_else(|| mistyped(name, "true or false", &v))).transpose()
    }

    /// A number, if given.
    pub(crate) fn opt_number(&self, name: &str) -> Result<Option<f64>, String> {
        self.present(name).map(|v| v.as_f64().ok_or_else(|| mistyped(name, "a number", &v))).transpose()
    }

    /// A whole number from 0 to `max`, if given.
    pub(crate) fn opt_whole(&self, name: &str, max: u64) -> Result<Option<u64>, String> {
        let Some(n) = self.opt_number(name)? else { return Ok(None) };
        if n.fract() == 0.0 && (0.0..=max as f64).contains(&n) {
            Ok(Some(n as u64))
        } else {
            Err(format!("`{name}` is {}; use a whole number from 0 to {max}", number_text(n)))
        }
    }

    /// A whole number that must be there.
    pub(crate) fn whole(&self, name: &str, max: u64) -> Result<u64, String> {
        self.opt_whole(name, max)?.ok_or_else(|| format!("missing field `{name}`"))
    }

    /// An object of string values, empty when absent, in its own key order.
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<(String, String)>, String> {
        let Some(value) = self.present(name) else { return Ok(Vec::new()) };
        let object = Fields::of(&value).map_err(|e| format!("`{name}`: {e}"))?;
        let keys = Object::keys(value.unchecked_ref::<Object>());
        keys.iter()
            .filter_map(|k| k.as_string())
            .map(|key| {
                let text = object.value(&key).as_string().ok_or_else(|| format!("`{name}.{key}` must be a string"))?;
                Ok((key, text))
            })
            .collect()
    }

    /// An object of string values as a map (sorted by name).
    pub(crate) fn string_map(&self, name: &str) -> Result<StringMap, String> {
        Ok(self.strings(name)?.into_iter().collect())
    }

    /// A checksum algorithm by S3's name, if given.
    fn opt_algorithm(&self, name: &str) -> Result<Option<ChecksumAlgorithm>, String> {
        self.opt_string(name)?
            .map(|text| {
                ChecksumAlgorithm::parse(&text)
                    .ok_or_else(|| format!("`{name}` {} is no checksum algorithm", quoted(&text)))
            })
            .transpose()
    }
}

fn mistyped(name: &str, wanted: &str, value: &JsValue) -> String {
    format!("`{name}` must be {wanted}, not {}", kind(value))
}

/// What kind of JS value this is, for messages.
pub(crate) fn kind(value: &JsValue) -> String {
    if value.is_undefined() {
        "undefined".into()
    } else if value.is_null() {
        "null".into()
    } else if Array::is_array(value) {
        "an array".into()
    } else {
        format!("a {}", value.js_typeof().as_string().unwrap_or_default())
    }
}

/// A number as JS writes it (Rust's float formatting costs the `.wasm` 20 KB).
pub(crate) fn number_text(n: f64) -> String {
    String::from(js_sys::Number::from(n).to_string_with_radix(10).unwrap_or_else(|_| "a number".into()))
}

/// Builds a JS object field by field.
pub(crate) struct Builder(Object);

impl Builder {
    pub(crate) fn new() -> Self {
        Builder(Object::new())
    }

    /// Sets `name` to `value`.
    pub(crate) fn set(self, name: &str, value: impl Into<JsValue>) -> Self {
        Reflect::set(&self.0, &name.into(), &value.into()).expect("setting a property on a fresh object");
        self
    }

    /// Sets `name` when there is a value; leaves it out otherwise.
    pub(crate) fn some(self, name: &str, value: Option<impl Into<JsValue>>) -> Self {
        match value {
            Some(value) => self.set(name, value),
            None => self,
        }
    }

    /// Sets `name` to the value, or to `null`.
    pub(crate) fn or_null(self, name: &str, value: Option<impl Into<JsValue>>) -> Self {
        let value = value.map_or(JsValue::NULL, Into::into);
        self.set(name, value)
    }

    pub(crate) fn build(self) -> JsValue {
        self.0.into()
    }
}

/// An object of string values.
pub(crate) fn strings_to_js<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> JsValue {
    pairs.into_iter().fold(Builder::new(), |b, (name, value)| b.set(name, value.as_str())).build()
}

fn number(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// Plain data the contract sends.
pub(crate) trait ToJs {
    fn to_js(&self) -> JsValue;
}

/// Plain data the contract receives; the error says what is wrong.
pub(crate) trait FromJs: Sized {
    fn from_js(value: &JsValue) -> Result<Self, String>;
}

impl ToJs for FileInfo {
    fn to_js(&self) -> JsValue {
        Builder::new()
            .set("filename", self.filename.as_str())
            .set("size", number(self.size))
            .set("contentType", self.content_type.as_str())
            .some("key", self.key.as_deref())
            .set("metadata", strings_to_js(&self.metadata))
            .some("checksumAlgorithm", self.checksum_algorithm.map(ChecksumAlgorithm::as_str))
            .some("checksum", self.checksum.as_deref())
            .some("partSize", self.part_size.map(number))
            .build()
    }
}

fn session_fields(session: &MultipartSession) -> Builder {
    Builder::new()
        .set("key", session.key.as_str())
        .set("uploadId", session.upload_id.as_str())
        .some("checksumAlgorithm", session.checksum_algorithm.map(ChecksumAlgorithm::as_str))
}

impl ToJs for MultipartSession {
    fn to_js(&self) -> JsValue {
        session_fields(self).build()
    }
}

impl FromJs for MultipartSession {
    fn from_js(value: &JsValue) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(MultipartSession {
            key: f.string("key")?,
            upload_id: f.string("uploadId")?,
            checksum_algorithm: f.opt_algorithm("checksumAlgorithm")?,
        })
    }
}

fn strings_array<'a>(items: impl IntoIterator<Item = &'a str>) -> JsValue {
    items.into_iter().map(JsValue::from_str).collect::<Array>().into()
}

impl ToJs for SignPartsRequest {
    fn to_js(&self) -> JsValue {
        let numbers: Array = self.part_numbers.iter().map(|&n| JsValue::from(n)).collect();
        session_fields(&self.upload)
            .set("partNumbers", numbers)
            .some("checksums", self.checksums.as_ref().map(|c| strings_array(c.iter().map(String::as_str))))
            .set("reason", self.reason.as_str())
            .build()
    }
}

/// The `signPart` callback's argument: one part of `session`.
pub(crate) fn sign_part_to_js(
    session: &MultipartSession,
    part_number: u32,
    checksum: Option<&str>,
    reason: SignReason,
) -> JsValue {
    session_fields(session)
        .set("partNumber", part_number)
        .some("checksum", checksum)
        .set("reason", reason.as_str())
        .build()
}

impl ToJs for ObjectChecksum {
    fn to_js(&self) -> JsValue {
        Builder::new()
            .set("algorithm", self.algorithm.as_str())
            .set("type", self.kind.as_str())
            .set("value", self.value.as_str())
            .build()
    }
}

impl ToJs for CompleteRequest {
    fn to_js(&self) -> JsValue {
        let parts: Array = self
            .parts
            .iter()
            .map(|p| {
                Builder::new()
                    .set("partNumber", p.part_number)
                    .set("etag", p.etag.as_str())
                    .some("checksum", p.checksum.as_deref())
                    .build()
            })
            .collect();
        session_fields(&self.upload)
            .set("parts", parts)
            .some("checksum", self.checksum.as_ref().map(ToJs::to_js))
            .build()
    }
}

impl FromJs for SignedRequest {
    fn from_js(value: &JsValue) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(SignedRequest { url: f.string("url")?, headers: f.string_map("headers")? })
    }
}

impl FromJs for SignedPart {
    fn from_js(value: &JsValue) -> Result<Self, String> {
        let part_number = Fields::of(value)?.whole("partNumber", 10_000)? as u32;
        Ok(SignedPart { part_number, request: SignedRequest::from_js(value)? })
    }
}

impl FromJs for ListedPart {
    fn from_js(value: &JsValue) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(ListedPart {
            part_number: f.whole("partNumber", 10_000)? as u32,
            etag: f.string("etag")?,
            size: f.whole("size", 1 << 53)?,
        })
    }
}

/// `{ parts: [...] }`, or the bare array, which callbacks often return.
pub(crate) fn parts_from_js<T: FromJs>(value: &JsValue) -> Result<Vec<T>, String> {
    let list = if Array::is_array(value) { value.clone() } else { Fields::of(value)?.value("parts") };
    if !Array::is_array(&list) {
        return Err(format!("expected `parts`, an array, got {}", kind(&list)));
    }
    list.unchecked_into::<Array>()
        .iter()
        .enumerate()
        .map(|(i, item)| T::from_js(&item).map_err(|e| format!("parts[{i}]: {e}")))
        .collect()
}

impl FromJs for CompletedObject {
    /// Also nothing at all (`undefined`): a callback may return nothing.
    fn from_js(value: &JsValue) -> Result<Self, String> {
        if value.is_undefined() || value.is_null() {
            return Ok(CompletedObject::default());
        }
        let f = Fields::of(value)?;
        Ok(CompletedObject {
            key: f.opt_string("key")?,
            location: f.opt_string("location")?,
            etag: f.opt_string("etag")?,
            display_url: f.opt_string("displayUrl")?,
            checksum: f.opt_string("checksum")?,
            checksum_type: f.opt_string("checksumType")?,
        })
    }
}

/// A single-PUT answer: the key (which a callback may leave out), the request and a display URL.
pub(crate) fn sign_put_from_js(value: &JsValue) -> Result<(Option<String>, SignedRequest, Option<String>), String> {
    let f = Fields::of(value)?;
    Ok((f.opt_string("key")?, SignedRequest::from_js(value)?, f.opt_string("displayUrl")?))
}

impl FromJs for SignedPost {
    fn from_js(value: &JsValue) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(SignedPost {
            key: f.opt_string("key")?,
            url: f.string("url")?,
            // In the order given: a policy form's fields go before the file, as signed.
            fields: f.strings("fields")?,
            display_url: f.opt_string("displayUrl")?,
        })
    }
}

impl FromJs for GrantAnswer {
    fn from_js(value: &JsValue) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(GrantAnswer {
            access_key_id: f.string("accessKeyId")?,
            secret_access_key: f.string("secretAccessKey")?,
            session_token: f.opt_string("sessionToken")?,
            expiration: f.string("expiration")?,
            region: f.string("region")?,
            bucket: f.string("bucket")?,
            endpoint: f.opt_string("endpoint")?,
            force_path_style: f.opt_bool("forcePathStyle")?.unwrap_or(false),
            accelerate: f.opt_bool("accelerate")?.unwrap_or(false),
            dualstack: f.opt_bool("dualstack")?.unwrap_or(false),
            key_prefix: f.string("keyPrefix")?,
        })
    }
}

impl ToJs for ResumeRecord {
    fn to_js(&self) -> JsValue {
        Builder::new()
            .set("key", self.key.as_str())
            .set("uploadId", self.upload_id.as_str())
            .set("partSize", number(self.part_size))
            .set("createdMs", self.created_ms)
            .some("checksumAlgorithm", self.checksum_algorithm.map(ChecksumAlgorithm::as_str))
            .build()
    }
}

impl FromJs for ResumeRecord {
    fn from_js(value: &JsValue) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(ResumeRecord {
            key: f.string("key")?,
            upload_id: f.string("uploadId")?,
            part_size: f.whole("partSize", 1 << 53)?,
            created_ms: f.opt_number("createdMs")?.ok_or("missing field `createdMs`")?,
            checksum_algorithm: f.opt_algorithm("checksumAlgorithm")?,
        })
    }
}

impl ToJs for StoredObject {
    fn to_js(&self) -> JsValue {
        Builder::new()
            .set("key", self.key.as_str())
            .or_null("location", self.location.as_deref())
            .or_null("etag", self.etag.as_deref())
            .or_null("displayUrl", self.display_url.as_deref())
            .set("size", number(self.size))
            .or_null("uploadId", self.upload_id.as_deref())
            .or_null("parts", self.parts)
            .or_null("checksum", self.checksum.as_ref().map(ToJs::to_js))
            .build()
    }
}
