//! The credentials mode's logic, pure: a grant of temporary credentials as the backend answers
//! it, checked; when to fetch new ones; the store's clock, learnt from its answers; what each of
//! the store's refusals means for the credentials; and the keys a grant names. Time and chance
//! come in as arguments (the caller's [`crate::upload::Runtime`]), so all of it is tested natively.

use crate::endpoint::{Endpoint, EndpointOptions};
use crate::error::{ErrorCode, UploadError, quoted};
use crate::object_rules::{check_key, check_prefix, safe_file_name};
use crate::sigv4::{Credentials, iso_8601_ms};

/// A grant as the backend answers it (`POST /credentials`, or `getCredentials`), unchecked.
/// (No `Debug`: it holds a secret.)
#[derive(Clone)]
pub struct GrantAnswer {
    /// `accessKeyId`.
    pub access_key_id: String,
    /// `secretAccessKey`: for signing in the page only.
    pub secret_access_key: String,
    /// `sessionToken`, for temporary credentials.
    pub session_token: Option<String>,
    /// `expiration`, ISO 8601.
    pub expiration: String,
    /// `region`.
    pub region: String,
    /// `bucket`.
    pub bucket: String,
    /// `endpoint`: a custom endpoint, or AWS's when `None`.
    pub endpoint: Option<String>,
    /// `forcePathStyle`.
    pub force_path_style: bool,
    /// `accelerate`: S3 Transfer Acceleration.
    pub accelerate: bool,
    /// `dualstack`: IPv6 endpoints.
    pub dualstack: bool,
    /// `keyPrefix`: every key the page creates starts with it.
    pub key_prefix: String,
}

/// Temporary credentials in use.
#[derive(Clone)]
pub struct Grant {
    /// What requests are signed with.
    pub credentials: Credentials,
    /// When they expire, on the store's clock (ms).
    pub expires_ms: f64,
    /// When they were fetched, on the store's clock (ms).
    pub fetched_ms: f64,
    /// Where the bucket is.
    pub endpoint: Endpoint,
    /// The keys they may write.
    pub key_prefix: String,
}

/// Shows what a grant is for, never its secret or token.
impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("access_key_id", &self.credentials.access_key_id)
            .field("expires_ms", &self.expires_ms)
            .field("endpoint", &self.endpoint)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

/// Credentials refused within this long of being fetched are the backend's fault, not age's.
pub const FRESH_GRANT_MS: f64 = 10_000.0;

/// How long the page's own presigned URLs last (part PUTs, single PUTs, forms): 15 minutes, and
/// never past the credentials.
pub const URL_LIFETIME_MS: f64 = 900_000.0;

impl Grant {
    /// The grant `answer` describes, fetched at `now_ms` (the store's clock), or what is wrong
    /// with it (never quoting the secret or the token).
    pub fn from_answer(answer: GrantAnswer, now_ms: f64) -> Result<Grant, String> {
        if answer.access_key_id.is_empty() || answer.secret_access_key.is_empty() {
            return Err("`accessKeyId` and `secretAccessKey` must not be empty".into());
        }
        // Credentials that look expired may only mean this device's clock is off: the store's
        // answer (RequestTimeTooSkewed, or ExpiredToken) tells.
        let expires_ms = iso_8601_ms(&answer.expiration)
            .ok_or_else(|| format!("`expiration` {} is not an ISO 8601 time", quoted(&answer.expiration)))?;
        check_prefix(&answer.key_prefix).map_err(|e| format!("`keyPrefix`: {e}"))?;
        let endpoint = Endpoint::new(&EndpointOptions {
            bucket: &answer.bucket,
            region: &answer.region,
            endpoint: answer.endpoint.as_deref(),
            force_path_style: answer.force_path_style,
            accelerate: answer.accelerate,
            dualstack: answer.dualstack,
        })?;
        Ok(Grant {
            credentials: Credentials {
                access_key_id: answer.access_key_id,
                secret_access_key: answer.secret_access_key,
                session_token: answer.session_token.filter(|t| !t.is_empty()),
            },
            expires_ms,
            fetched_ms: now_ms,
            endpoint,
            key_prefix: answer.key_prefix,
        })
    }

    /// Whether to fetch new credentials before signing at `now_ms`: within 5 minutes of expiry, or
    /// past half their life when they are short-lived.
    pub fn is_expiring(&self, now_ms: f64) -> bool {
        let margin = (5.0 * 60_000.0_f64).min((self.expires_ms - self.fetched_ms) / 2.0);
        now_ms >= self.expires_ms - margin
    }

    /// When a URL or form signed at `now_ms` stops working: 15 minutes on, and never past the
    /// credentials.
    pub fn url_expiry_ms(&self, now_ms: f64) -> f64 {
        self.expires_ms.min(now_ms + URL_LIFETIME_MS)
    }

    /// The key of a file: the `requested` one under the grant's prefix, or a fresh one there
    /// (a folder drawn from `random`, uniform in `[0, 1)`, and the cleaned file name).
    pub fn key_for(&self, requested: Option<&str>, filename: &str, random: f64) -> Result<String, UploadError> {
        match requested {
            Some(key) => {
                check_key(key).map_err(|e| UploadError::new(ErrorCode::InvalidOption, e.0))?;
                Ok(format!("{}{key}", self.key_prefix))
            }
            None => {
                let folder = (random * 2f64.powi(52)) as u64;
                Ok(format!("{}{folder:013x}/{}", self.key_prefix, safe_file_name(filename)))
            }
        }
    }
}

/// What a refusal by the store means for the credentials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lesson {
    /// Nothing: the refusal is about the request.
    None,
    /// The credentials expired or are unknown: drop them, fetch new ones, sign again.
    FetchNew,
    /// The credentials were refused as soon as they were handed out: new ones will not be
    /// better, the backend hands out bad ones.
    BackendFault,
    /// This device's clock is off by this much (ms to add to it): sign again with the store's.
    ClockOffset(f64),
}

/// Clocks this far apart are told apart from a URL that merely ran out: S3's `AccessDenied` for
/// an expired request carries the store's time.
pub const CLOCK_TOLERANCE_MS: f64 = 60_000.0;

/// What the store's refusal with S3 error `code` (and `<ServerTime>`, when it gave one) means,
/// at `local_now_ms` on this device's clock, for a grant fetched at `fetched_ms` on the store's
/// clock (`store_now_ms` now). A clock too far ahead gets `RequestTimeTooSkewed`; one too far
/// behind makes every URL arrive expired (`AccessDenied` with the store's time).
pub fn lesson(
    code: Option<&str>,
    server_time: Option<&str>,
    local_now_ms: f64,
    store_now_ms: f64,
    fetched_ms: Option<f64>,
) -> Lesson {
    match code {
        Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" | "InvalidAccessKeyId") => {
            if fetched_ms.is_some_and(|fetched| store_now_ms - fetched < FRESH_GRANT_MS) {
                Lesson::BackendFault
            } else {
                Lesson::FetchNew
            }
        }
        Some(code @ ("RequestTimeTooSkewed" | "AccessDenied")) => match server_time.and_then(iso_8601_ms) {
            Some(server_ms)
                if code == "RequestTimeTooSkewed" || (server_ms - store_now_ms).abs() > CLOCK_TOLERANCE_MS =>
            {
                Lesson::ClockOffset(server_ms - local_now_ms)
            }
            _ => Lesson::None,
        },
        _ => Lesson::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(expiration: &str, key_prefix: &str) -> GrantAnswer {
        GrantAnswer {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: Some("token".into()),
            expiration: expiration.into(),
            region: "us-east-1".into(),
            bucket: "bucket".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            force_path_style: true,
            accelerate: false,
            dualstack: false,
            key_prefix: key_prefix.into(),
        }
    }

    const NOON: f64 = 1_767_268_800_000.0; // 2026-01-01T12:00:00Z

    #[test]
    fn a_grant_is_fetched_again_near_its_expiry() {
        let hour = Grant::from_answer(answer("2026-01-01T13:00:00Z", "uploads/alice/"), NOON).unwrap();
        assert!(!hour.is_expiring(NOON + 54.0 * 60_000.0));
        assert!(hour.is_expiring(NOON + 55.0 * 60_000.0), "5 minutes before the end");
        let short = Grant::from_answer(answer("2026-01-01T12:02:00Z", "uploads/alice/"), NOON).unwrap();
        assert!(!short.is_expiring(NOON + 59_000.0) && short.is_expiring(NOON + 60_000.0), "half a short life");
        assert_eq!(hour.url_expiry_ms(NOON), NOON + URL_LIFETIME_MS);
        assert_eq!(short.url_expiry_ms(NOON), NOON + 120_000.0, "never past the credentials");
    }

    #[test]
    fn unusable_grants_say_why_without_quoting_secrets() {
        let mut empty = answer("2026-01-01T13:00:00Z", "uploads/");
        empty.secret_access_key.clear();
        assert!(Grant::from_answer(empty, NOON).unwrap_err().contains("secretAccessKey"));
        let err = Grant::from_answer(answer("tomorrow", "uploads/"), NOON).unwrap_err();
        assert!(err.contains("expiration") && !err.contains("secret") && !err.contains("token"), "{err}");
        assert!(Grant::from_answer(answer("2026-01-01T13:00:00Z", "../"), NOON).unwrap_err().contains("keyPrefix"));
        let mut bad_endpoint = answer("2026-01-01T13:00:00Z", "uploads/");
        bad_endpoint.endpoint = Some("ftp://x".into());
        assert!(Grant::from_answer(bad_endpoint, NOON).is_err());
    }

    #[test]
    fn keys_stay_under_the_grants_prefix() {
        let grant = Grant::from_answer(answer("2026-01-01T13:00:00Z", "uploads/alice/"), NOON).unwrap();
        assert_eq!(grant.key_for(Some("a/b.png"), "x", 0.5).unwrap(), "uploads/alice/a/b.png");
        assert_eq!(grant.key_for(Some("../bob/x"), "x", 0.5).unwrap_err().code, ErrorCode::InvalidOption);
        let fresh = grant.key_for(None, "my photo.png", 0.5).unwrap();
        assert_eq!(fresh, "uploads/alice/8000000000000/my_photo.png");
        assert_ne!(fresh, grant.key_for(None, "my photo.png", 0.25).unwrap());
    }

    #[test]
    fn refusals_teach_what_the_codes_say() {
        let lesson_at = |code, server_time, fetched| lesson(Some(code), server_time, NOON, NOON, fetched);
        assert_eq!(lesson_at("ExpiredToken", None, Some(NOON - 600_000.0)), Lesson::FetchNew);
        assert_eq!(lesson_at("InvalidAccessKeyId", None, Some(NOON - 600_000.0)), Lesson::FetchNew);
        assert_eq!(lesson_at("ExpiredToken", None, Some(NOON - 2_000.0)), Lesson::BackendFault, "just handed out");
        assert_eq!(
            lesson_at("RequestTimeTooSkewed", Some("2026-01-01T12:20:00Z"), None),
            Lesson::ClockOffset(1_200_000.0)
        );
        assert_eq!(lesson_at("RequestTimeTooSkewed", None, None), Lesson::None, "no time to learn from");
        assert_eq!(lesson_at("AccessDenied", None, Some(NOON - 600_000.0)), Lesson::None);
        let behind = lesson_at("AccessDenied", Some("2026-01-01T13:00:00Z"), None);
        assert_eq!(behind, Lesson::ClockOffset(3_600_000.0), "every URL arrives expired: the clock is behind");
        let expired = lesson_at("AccessDenied", Some("2026-01-01T12:00:30Z"), None);
        assert_eq!(expired, Lesson::None, "a URL that ran out, on a clock that is right");
        assert_eq!(lesson(None, None, NOON, NOON, None), Lesson::None);
    }
}
