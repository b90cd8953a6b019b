//! What an object key and its user metadata may be: one rule, used by the library before it asks
//! for anything and by the reference server and its embedded store wherever a key or metadata
//! enters (the JSON API, form POSTs, requests signed with temporary credentials).
//!
//! S3 itself takes almost any UTF-8 key, but a key is also a path: in a file-backed store, in a
//! prefix check, in the download a user saves. These rules keep the subset that means the same
//! everywhere (pure, no browser types).

use crate::error::quoted;
use crate::string_map::StringMap;
use std::fmt;

/// Longest key S3 accepts, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// Most bytes of user metadata S3 accepts: names and values together, in UTF-8.
pub const MAX_METADATA_BYTES: usize = 2048;

/// Why a key or metadata was refused: a message that says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRefusal(pub String);

impl fmt::Display for RuleRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an object key (already percent-decoded): 1 to 1024 bytes, a relative path with `/`
/// separators and no empty, `.` or `..` segment, no backslash, no control character.
pub fn check_key(key: &str) -> Result<(), RuleRefusal> {
    let refuse = |why: &str| Err(RuleRefusal(format!("key {} is refused: {why}", quoted(&shortened(key)))));
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return refuse("it must be 1 to 1024 bytes long");
    }
    if key.contains('\\') {
        return refuse("it must use '/' separators, not '\\'");
    }
    if key.chars().any(char::is_control) {
        return refuse("it holds control characters");
    }
    if key.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return refuse("it must be a relative path without empty, '.' or '..' segments");
    }
    Ok(())
}

/// Checks a key prefix: empty (the whole bucket), or a valid key ending in `/` (a folder).
pub fn check_prefix(prefix: &str) -> Result<(), RuleRefusal> {
    match prefix.strip_suffix('/') {
        _ if prefix.is_empty() => Ok(()),
        Some(folder) if check_key(folder).is_ok() => Ok(()),
        _ => Err(RuleRefusal(format!(
            "key prefix {} is refused: give a folder ending in '/' (e.g. uploads/) whose segments are \
             not empty, '.' or '..', or nothing",
            quoted(&shortened(prefix))
        ))),
    }
}

/// Whether `key` is a valid key (see [`check_key`]) under `prefix`, a folder ending in `/`. The
/// comparison is only meaningful because a valid key has no `..` to climb out with.
pub fn is_under_prefix(key: &str, prefix: &str) -> bool {
    check_key(key).is_ok() && check_prefix(prefix).is_ok() && key.starts_with(prefix)
}

/// A key-safe file name from what a user's file was called: ASCII letters, digits, `.`, `-` and
/// `_` kept, anything else `_`, no leading dots, at most 128 characters; `file` when nothing is
/// left.
pub fn safe_file_name(filename: &str) -> String {
    let cleaned: String = filename
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(128)
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() { "file".to_owned() } else { cleaned.to_owned() }
}

/// Checks user metadata as S3 sends it in `x-amz-meta-*` headers: names of ASCII letters,
/// digits, `-` and `_`, each once whatever its case; printable ASCII values; 2 KB in all.
pub fn check_metadata(metadata: &StringMap) -> Result<(), RuleRefusal> {
    // A handful of names: a list serves (a set type would add its code to the `.wasm`).
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in metadata {
        let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(RuleRefusal(format!(
                "metadata {}: names may hold ASCII letters, digits, '-' and '_', and values printable ASCII \
                 only, as S3 sends them in x-amz-meta-* headers",
                quoted(&shortened(name))
            )));
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(RuleRefusal(format!(
                "metadata {} is given twice: header names are case-insensitive, so give each name once",
                quoted(name)
            )));
        }
        seen.push(lower);
    }
    let bytes: usize = metadata.iter().map(|(name, value)| name.len() + value.len()).sum();
    if bytes > MAX_METADATA_BYTES {
        return Err(RuleRefusal(format!(
            "metadata is {bytes} bytes (names and values); S3 accepts up to {MAX_METADATA_BYTES}"
        )));
    }
    Ok(())
}

/// User metadata as S3 takes it with an object: `x-amz-meta-<name>` headers (or form fields),
/// names in lower case.
pub fn metadata_headers(metadata: &StringMap) -> impl Iterator<Item = (String, String)> + '_ {
    metadata.iter().map(|(name, value)| (format!("x-amz-meta-{}", name.to_ascii_lowercase()), value.clone()))
}

/// At most 64 characters of `text`, for messages about hostile input.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_paths_that_cannot_climb() {
        for good in ["a", "uploads/alice/a.png", "a/b.c/d", "x..y", "...", "é/ü", "a b"] {
            assert_eq!(check_key(good), Ok(()), "{good:?}");
        }
        let long = "a".repeat(MAX_KEY_BYTES + 1);
        for bad in [
            "",
            "/etc/passwd",
            "a//b",
            "a/",
            "./a",
            "a/.",
            "..",
            "a/../b",
            "a\\b",
            "a\nb",
            "a\u{7f}",
            "a\u{85}b",
            &long,
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"a".repeat(MAX_KEY_BYTES)).is_ok());
    }

    #[test]
    fn prefixes_hold_only_valid_keys_below_them() {
        assert!(is_under_prefix("uploads/alice/a", "uploads/alice/"));
        assert!(!is_under_prefix("uploads/alice/../bob/a", "uploads/alice/"));
        assert!(!is_under_prefix("uploads/alicex/a", "uploads/alice/"));
        assert!(!is_under_prefix("uploads/alice", "uploads/alice/"));
        assert!(!is_under_prefix("uploads/alicex/a", "uploads/alice"), "a prefix must be a folder");
        for good in ["", "uploads/", "a/b/"] {
            assert!(check_prefix(good).is_ok(), "{good:?}");
        }
        for bad in ["/", "uploads", "../", "a//", "/a/", "a/../"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names_become_one_safe_segment() {
        assert_eq!(safe_file_name("../../my photo (1).png"), "_.._my_photo__1_.png");
        assert_eq!(safe_file_name("..."), "file");
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name(&"é".repeat(300)).len(), 128);
        assert!(check_key(&safe_file_name("..")).is_ok());
    }

    #[test]
    fn metadata_is_s3_shaped_unique_and_small() {
        let of = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(check_metadata(&of(&[("owner", "42"), ("Trace-Id", "a b")])).is_ok());
        assert!(check_metadata(&of(&[("Foo", "1"), ("foo", "2")])).unwrap_err().0.contains("twice"));
        assert!(check_metadata(&of(&[("", "1")])).is_err());
        assert!(check_metadata(&of(&[("a b", "1")])).is_err());
        assert!(check_metadata(&of(&[("a", "line\r\nx-amz-acl: public")])).is_err());
        assert!(check_metadata(&of(&[("a", "é")])).is_err());
        let big = "v".repeat(MAX_METADATA_BYTES);
        assert!(check_metadata(&of(&[("a", &big)])).unwrap_err().0.contains("2048"));
        assert!(check_metadata(&of(&[("a", &big[1..])])).is_ok());
    }
}
