//! The one error type of the crate, with the stable codes JS callers branch on.
//!
//! Messages say what went wrong and what to fix. They never contain a presigned URL or a
//! credential: code that builds an error from a request names the operation, not the URL.

use crate::retry::{Observed, RetryAction, classify};
use std::fmt;

/// Stable, machine-readable error codes: `err.code` in JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// An option passed to `new Uploader(...)` or `upload(...)` is missing, of the wrong type or
    /// out of range.
    InvalidOption,
    /// The value given to `upload(...)` is not a `Blob` or `File`.
    InvalidFile,
    /// The file is larger than S3 (or the chosen part size) allows.
    FileTooLarge,
    /// The backend could not be reached: network failure, refused connection or time-out.
    BackendUnreachable,
    /// The backend answered, but with an HTTP error, a body that is not the expected JSON, or a
    /// user callback threw or returned something unusable.
    BackendError,
    /// The storage service rejected a part, a single PUT or a form POST (in the credentials mode,
    /// any S3 request), or the request failed on the way.
    PartUploadFailed,
    /// The storage service accepted a part but the browser could not read its `ETag` header:
    /// the bucket's CORS rule must list `ETag` in `ExposeHeaders`.
    EtagNotExposed,
    /// The store assembled an object whose checksum is not the file's: the stored object is not
    /// this file.
    ChecksumMismatch,
    /// The upload was aborted by the caller.
    Aborted,
}

impl ErrorCode {
    /// The code as JS sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidOption => "invalid_option",
            ErrorCode::InvalidFile => "invalid_file",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::BackendUnreachable => "backend_unreachable",
            ErrorCode::BackendError => "backend_error",
            ErrorCode::PartUploadFailed => "part_upload_failed",
            ErrorCode::EtagNotExposed => "etag_not_exposed",
            ErrorCode::ChecksumMismatch => "checksum_mismatch",
            ErrorCode::Aborted => "aborted",
        }
    }
}

/// An upload failure: a stable code, a message for people, and what else is known.
#[derive(Debug, Clone)]
pub struct UploadError {
    /// Stable code for programs.
    pub code: ErrorCode,
    /// What happened and what to do about it. Never contains URLs or secrets.
    pub message: String,
    /// HTTP status of the failed response, when there was one.
    pub status: Option<u16>,
    /// The value a user callback threw, kept so JS sees it as `err.cause`.
    pub cause: Option<wasm_bindgen::JsValue>,
    /// What the edge saw of the failed request, for the retry loop to judge
    /// ([`crate::retry::classify`]); `None` for failures that are no request's.
    pub observed: Option<Observed>,
}

impl UploadError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        UploadError { code, message: message.into(), status: None, cause: None, observed: None }
    }

    /// Adds the HTTP status of the failed response.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Records what was seen of the failed request.
    pub fn with_observed(mut self, observed: Observed) -> Self {
        self.observed = Some(observed);
        self
    }

    /// What retrying may do about this error: judged from what was observed, here alone.
    pub fn retry_action(&self) -> RetryAction {
        classify(self.observed.as_ref())
    }

    /// Whether the failure asks for fewer requests at once ([`crate::retry::asks_to_slow_down`]).
    pub fn asks_to_slow_down(&self) -> bool {
        crate::retry::asks_to_slow_down(self.observed.as_ref())
    }

    /// Keeps the original JS value (what a callback threw) as the cause.
    pub fn with_cause(mut self, cause: wasm_bindgen::JsValue) -> Self {
        self.cause = Some(cause);
        self
    }

    /// Prefixes the message with where the failure happened.
    pub fn context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The error the caller's `abort()` turns every pending step into.
    pub fn aborted() -> Self {
        UploadError::new(ErrorCode::Aborted, "the upload was aborted")
    }
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for UploadError {}

/// `text` in double quotes, as messages show a value someone gave: `"` and `\` escaped, and so
/// are control characters and the invisible ones that could disguise it (zero-width, bidi
/// overrides). Like `{:?}`, without the Unicode tables that brings into the `.wasm`.
pub fn quoted(text: &str) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn quoted_values_cannot_hide_or_break_out_of_their_quotes() {
        assert_eq!(quoted("photo.png"), "\"photo.png\"");
        assert_eq!(quoted("a \"b\" \\ c"), "\"a \\\"b\\\" \\\\ c\"");
        assert_eq!(quoted("line\nnext\ttab\u{0}"), "\"line\\nnext\\ttab\\u{0}\"");
        // A right-to-left override would show "gnp.exe" as "exe.png"; a zero-width space hides.
        assert_eq!(quoted("gnp\u{202e}.exe\u{200b}"), "\"gnp\\u{202e}.exe\\u{200b}\"");
        assert_eq!(quoted("café ünïcode"), "\"café ünïcode\"");
    }
}
