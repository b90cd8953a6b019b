//! Who is calling the upload API, and how much they may upload: pluggable authentication (bearer
//! tokens from a file, or HMAC-signed sessions that the application issues after its own login),
//! and per-user quotas over a rolling 24 hours.

use crate::database::{Database, Usage, unix_now};
use crate::policy::Refusal;
use axum::http::HeaderMap;
use s3_direct_upload::checksum::hex;
use s3_direct_upload::sigv4::hmac_sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Proves who a request comes from.
pub trait Authenticator: Send + Sync {
    /// The user `headers` prove, `None` when authentication is off, or a 401 refusal.
    fn user(&self, headers: &HeaderMap) -> Result<Option<String>, Refusal>;
}

/// No authentication: every caller is the same anonymous user. For demos on loopback only.
pub struct NoAuth;

impl Authenticator for NoAuth {
    fn user(&self, _: &HeaderMap) -> Result<Option<String>, Refusal> {
        Ok(None)
    }
}

/// `Authorization: Bearer TOKEN`, with tokens from a file of `USER TOKEN` lines.
pub struct BearerTokens {
    users: HashMap<String, String>,
}

impl BearerTokens {
    /// Reads `USER TOKEN` lines (blank lines and `#` comments skipped).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = HashMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (user, token) = line.split_once(char::is_whitespace).ok_or("each line must be `USER TOKEN`")?;
            let token = token.trim();
            if !valid_user(user) || token.len() < 16 {
                return Err(format!("user {user:?}: users are 1-64 of [A-Za-z0-9_-], tokens at least 16 characters"));
            }
            users.insert(token.to_owned(), user.to_owned());
        }
        Ok(BearerTokens { users })
    }
}

impl Authenticator for BearerTokens {
    fn user(&self, headers: &HeaderMap) -> Result<Option<String>, Refusal> {
        let token = bearer(headers)?;
        // A lookup by the token itself: the map's hashing is not a timing oracle worth fearing
        // for random tokens of 16+ characters.
        self.users.get(token).cloned().map(Some).ok_or_else(unauthorized)
    }
}

/// `Authorization: Bearer s3du1.USER.EXPIRY.MAC`: a session the application issued with the shared
/// secret (`MAC` = hex HMAC-SHA256 of `USER.EXPIRY`, `EXPIRY` in Unix seconds).
pub struct HmacSessions {
    secret: Vec<u8>,
}

impl HmacSessions {
    /// Sessions signed with `secret` (at least 32 bytes).
    pub fn new(secret: Vec<u8>) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err("the session secret must be at least 32 bytes".into());
        }
        Ok(HmacSessions { secret })
    }

    /// A session token for `user`, valid for `lifetime`.
    pub fn issue(&self, user: &str, lifetime: Duration) -> String {
        let expiry = unix_now() as u64 + lifetime.as_secs();
        format!("s3du1.{user}.{expiry}.{}", self.mac(user, expiry))
    }

    fn mac(&self, user: &str, expiry: u64) -> String {
        hex(&hmac_sha256(&self.secret, format!("{user}.{expiry}").as_bytes()))
    }
}

impl Authenticator for HmacSessions {
    fn user(&self, headers: &HeaderMap) -> Result<Option<String>, Refusal> {
        let token = bearer(headers)?;
        let mut fields = token.split('.');
        let (Some("s3du1"), Some(user), Some(expiry), Some(mac), None) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(unauthorized());
        };
        // Digits only, no sign and no leading zero: one token per session, spelt one way.
        if expiry.is_empty() || expiry.starts_with('0') || !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unauthorized());
        }
        let expiry: u64 = expiry.parse().map_err(|_| unauthorized())?;
        if !valid_user(user) || !constant_time_eq(mac.as_bytes(), self.mac(user, expiry).as_bytes()) {
            return Err(unauthorized());
        }
        if expiry <= unix_now() as u64 {
            return Err(Refusal { status: 401, message: "the session has expired; sign in again".into() });
        }
        Ok(Some(user.to_owned()))
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, Refusal> {
    let mut values = headers.get_all("authorization").iter();
    let (Some(value), None) = (values.next(), values.next()) else { return Err(unauthorized()) };
    let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or_else(unauthorized)?;
    // One token of visible ASCII: no padding, no second word.
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(unauthorized());
    }
    Ok(token)
}

fn unauthorized() -> Refusal {
    Refusal { status: 401, message: "sign in first: send `Authorization: Bearer <token>` (backendHeaders)".into() }
}

/// Whether `user` can name a key prefix: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// How much each user may upload in any 24 hours, counted in the database (so a restart
/// forgets nothing, another instance counts the same, and a check and its charge are atomic).
pub struct Quotas {
    db: Arc<dyn Database>,
    uploads_per_day: Option<u32>,
    bytes_per_day: Option<u64>,
}

const DAY_S: i64 = 24 * 3600;

impl Quotas {
    /// Limits on uploads and bytes per user per 24 hours (`None`: no limit), counted in `db`.
    pub fn new(db: Arc<dyn Database>, uploads_per_day: Option<u32>, bytes_per_day: Option<u64>) -> Self {
        Quotas { db, uploads_per_day, bytes_per_day }
    }

    /// Counts an upload of `bytes` against `user`'s quota, or refuses it with 403 (not 429, which
    /// clients retry: a day's quota does not come back in seconds).
    pub async fn charge(&self, user: &str, bytes: u64) -> Result<(), Refusal> {
        if self.uploads_per_day.is_none() && self.bytes_per_day.is_none() {
            return Ok(());
        }
        let admit = |used: Usage| {
            if let Some(most) = self.uploads_per_day.filter(|&most| used.uploads >= u64::from(most)) {
                return Err(Refusal {
                    status: 403,
                    message: format!("daily quota reached: {most} uploads in 24 hours"),
                });
            }
            if let Some(most) = self.bytes_per_day.filter(|&most| used.bytes.saturating_add(bytes) > most) {
                let total = used.bytes;
                return Err(Refusal {
                    status: 403,
                    message: format!(
                        "daily quota reached: {total} of {most} bytes used in 24 hours, and this file is {bytes}"
                    ),
                });
            }
            Ok(())
        };
        let now = unix_now();
        self.db.charge(user, bytes, now - DAY_S, now, &admit).await
    }

    /// Gives back what [`Quotas::charge`] counted for an upload that stored nothing (its creation
    /// failed, or it was aborted): quotas count what is stored.
    pub async fn refund(&self, user: &str, bytes: u64) {
        let _ = self.db.refund(user, bytes).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn bearer_tokens_name_their_user_and_nothing_else_passes() {
        let tokens = BearerTokens::parse("# users\nalice aaaaaaaaaaaaaaaa1\nbob   bbbbbbbbbbbbbbbb2\n").unwrap();
        assert_eq!(tokens.user(&with_bearer("aaaaaaaaaaaaaaaa1")).unwrap().as_deref(), Some("alice"));
        assert_eq!(tokens.user(&with_bearer("bbbbbbbbbbbbbbbb2")).unwrap().as_deref(), Some("bob"));
        assert_eq!(tokens.user(&with_bearer("guess")).unwrap_err().status, 401);
        assert_eq!(tokens.user(&HeaderMap::new()).unwrap_err().status, 401);
        assert!(BearerTokens::parse("../x aaaaaaaaaaaaaaaa1").is_err(), "a user name must fit in a key prefix");
        assert!(BearerTokens::parse("alice short").is_err());
    }

    #[test]
    fn sessions_verify_their_mac_and_expiry() {
        let sessions = HmacSessions::new(vec![7; 32]).unwrap();
        let token = sessions.issue("alice", Duration::from_secs(60));
        assert_eq!(sessions.user(&with_bearer(&token)).unwrap().as_deref(), Some("alice"));
        let forged = token.replacen("alice", "bob", 1);
        assert_eq!(sessions.user(&with_bearer(&forged)).unwrap_err().status, 401);
        let other = HmacSessions::new(vec![8; 32]).unwrap().issue("alice", Duration::from_secs(60));
        assert_eq!(sessions.user(&with_bearer(&other)).unwrap_err().status, 401, "another secret's session");
        let fields: Vec<&str> = token.split('.').collect();
        let (user, expiry, mac) = (fields[1], fields[2], fields[3]);
        for respelt in [format!("+{expiry}"), format!("0{expiry}"), format!(" {expiry}"), format!("{expiry} ")] {
            let forged = format!("s3du1.{user}.{respelt}.{mac}");
            assert_eq!(sessions.user(&with_bearer(&forged)).unwrap_err().status, 401, "{respelt:?}");
        }
        let expired = format!("s3du1.alice.1.{}", sessions.mac("alice", 1));
        assert!(sessions.user(&with_bearer(&expired)).unwrap_err().message.contains("expired"));
        assert!(HmacSessions::new(vec![1; 8]).is_err());
    }

    #[tokio::test]
    async fn quotas_count_uploads_and_bytes_per_user_and_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("quotas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = || Arc::new(crate::database::sqlite::Sqlite::open(&dir.join("state.sqlite3")).unwrap());
        let quotas = Quotas::new(db(), Some(2), Some(100));
        quotas.charge("alice", 60).await.unwrap();
        let err = quotas.charge("alice", 50).await.unwrap_err();
        assert_eq!(err.status, 403);
        assert!(err.message.contains("60 of 100 bytes"), "{}", err.message);
        quotas.charge("alice", 40).await.unwrap();
        assert!(quotas.charge("alice", 0).await.unwrap_err().message.contains("2 uploads"));
        quotas.charge("bob", 100).await.unwrap();
        quotas.refund("bob", 100).await;
        quotas.charge("bob", 100).await.expect("an aborted upload's bytes come back");
        drop(quotas);
        let restarted = Quotas::new(db(), Some(2), Some(100));
        assert!(
            restarted.charge("alice", 0).await.unwrap_err().message.contains("2 uploads"),
            "a restart forgets nothing"
        );
        assert!(restarted.charge("bob", 1).await.unwrap_err().message.contains("100 of 100 bytes"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
