//! What the reference backend allows: object keys, content types and sizes. The browser only
//! proposes; these checks decide.

use rand::Rng;
use s3_direct_upload::object_rules::{check_key, is_under_prefix, safe_file_name};

/// Longest key a page may ask for (the prefix comes on top, within S3's 1024 bytes).
const MAX_REQUESTED_KEY_BYTES: usize = 512;

/// Limits the backend enforces before it signs anything.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Every key starts with this prefix, e.g. `uploads/`.
    pub key_prefix: String,
    /// Largest file accepted, in bytes.
    pub max_size: u64,
    /// Accepted content types: exact (`image/png`), wildcard (`image/*`), or `*/*` for any.
    pub allowed_types: Vec<String>,
}

/// Why a request was refused, as the HTTP status and message the browser sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status: 400 for malformed input, 413 too large, 415 type not allowed.
    pub status: u16,
    /// What to change.
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal { status, message: message.into() }
}

impl UploadPolicy {
    /// Checks a proposed upload and returns the key to store it under.
    pub fn admit(&self, filename: &str, size: u64, content_type: &str, key: Option<&str>) -> Result<String, Refusal> {
        if size > self.max_size {
            return Err(refuse(
                413,
                format!("the file is {size} bytes; this server accepts up to {} bytes", self.max_size),
            ));
        }
        self.check_content_type(content_type)?;
        match key {
            Some(key) => self.requested_key(key),
            None => Ok(self.generated_key(filename)),
        }
    }

    fn check_content_type(&self, content_type: &str) -> Result<(), Refusal> {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let well_formed = essence.split_once('/').is_some_and(|(t, s)| token(t) && token(s))
            && content_type.bytes().all(|b| (0x20..0x7f).contains(&b));
        if !well_formed {
            return Err(refuse(400, format!("{content_type:?} is not a valid content type")));
        }
        let allowed = self.allowed_types.iter().any(|pattern| {
            pattern == "*/*"
                || *pattern == essence
                || pattern.strip_suffix("/*").is_some_and(|t| essence.split('/').next() == Some(t))
        });
        if allowed {
            Ok(())
        } else {
            Err(refuse(
                415,
                format!("content type {essence} is not accepted; accepted: {}", self.allowed_types.join(", ")),
            ))
        }
    }

    /// A key the page asked for, under the prefix: the whole key must pass the one key rule.
    fn requested_key(&self, key: &str) -> Result<String, Refusal> {
        if key.len() > MAX_REQUESTED_KEY_BYTES {
            return Err(refuse(
                400,
                format!("the requested key is {} bytes; at most {MAX_REQUESTED_KEY_BYTES}", key.len()),
            ));
        }
        if key.starts_with('/') {
            return Err(refuse(400, format!("key {key:?} is refused: it must be a relative path")));
        }
        let full = format!("{}{key}", self.key_prefix);
        check_key(&full).map_err(|e| refuse(400, e.0))?;
        Ok(full)
    }

    /// A fresh key for a file the page did not name: prefix, random folder, cleaned file name.
    fn generated_key(&self, filename: &str) -> String {
        let folder: u64 = rand::rng().random();
        format!("{}{folder:016x}/{}", self.key_prefix, safe_file_name(filename))
    }

    /// This policy for `user`: their keys live under `PREFIX<user>/` (user names are checked by
    /// the authenticator to be path-safe). Without a user, the policy itself.
    pub fn for_user(&self, user: Option<&str>) -> UploadPolicy {
        let mut policy = self.clone();
        if let Some(user) = user {
            policy.key_prefix = format!("{}{user}/", self.key_prefix);
        }
        policy
    }

    /// Whether `key` is a valid key under the prefix: the backend only signs for its own keys.
    pub fn owns(&self, key: &str) -> bool {
        is_under_prefix(key, &self.key_prefix)
    }
}

fn token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> UploadPolicy {
        UploadPolicy {
            key_prefix: "uploads/".into(),
            max_size: 100,
            allowed_types: vec!["image/*".into(), "text/plain".into()],
        }
    }

    #[test]
    fn requested_keys_stay_under_the_prefix() {
        let p = policy();
        assert_eq!(p.admit("a", 1, "image/png", Some("pics/a.png")).unwrap(), "uploads/pics/a.png");
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", "a\\b", "./a", "a/\n", ""] {
            let err = p.admit("a", 1, "image/png", Some(bad)).unwrap_err();
            assert_eq!(err.status, 400, "{bad:?}");
        }
    }

    #[test]
    fn generated_keys_are_clean_and_unique() {
        let p = policy();
        let a = p.admit("../../my photo (1).png", 1, "image/png", None).unwrap();
        let b = p.admit("../../my photo (1).png", 1, "image/png", None).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("uploads/") && a.ends_with("/_.._my_photo__1_.png"), "{a}");
        assert!(!a.split('/').any(|segment| segment == ".."), "{a}");
        assert!(p.admit("...", 1, "text/plain", None).unwrap().ends_with("/file"));
        assert!(p.owns(&a) && !p.owns("other/a"));
        let alice = p.for_user(Some("alice"));
        let key = alice.admit("a.png", 1, "image/png", Some("x/a.png")).unwrap();
        assert_eq!(key, "uploads/alice/x/a.png");
        assert!(alice.owns(&key) && !alice.owns("uploads/bob/x/a.png") && !alice.owns("uploads/alicex/a"));
    }

    #[test]
    fn size_and_type_limits_are_enforced() {
        let p = policy();
        assert_eq!(p.admit("a", 101, "image/png", None).unwrap_err().status, 413);
        assert!(p.admit("a", 100, "IMAGE/PNG", None).is_ok());
        assert!(p.admit("a", 1, "text/plain; charset=utf-8", None).is_ok());
        assert_eq!(p.admit("a", 1, "application/x-msdownload", None).unwrap_err().status, 415);
        assert_eq!(p.admit("a", 1, "text/plain\r\nx: y", None).unwrap_err().status, 400);
        assert_eq!(p.admit("a", 1, "nonsense", None).unwrap_err().status, 400);
    }
}
