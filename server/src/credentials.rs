//! Temporary credentials for the credentials mode: scoped to one user's key prefix and short-lived,
//! from the embedded store's own issuer, or from STS (AssumeRole with a session policy) for a
//! real bucket. The page signs its own requests with them; the long-lived keys stay here.

use crate::store::TemporaryKeys;
use s3_direct_upload::checksum::{ChecksumAlgorithm, digest, hex};
use s3_direct_upload::s3_xml::xml_text;
use s3_direct_upload::sigv4::{self, Credentials, Request, Scope, uri_encode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where temporary credentials come from.
pub enum Issuer {
    /// The embedded store's temporary keys (it checks their prefix, token and expiry itself).
    Embedded(Arc<TemporaryKeys>),
    /// STS `AssumeRole` at `endpoint`, for `role_arn`, signed with the server's own credentials;
    /// the session policy confines the credentials to the user's prefix.
    Sts { endpoint: String, role_arn: String },
}

/// What a grant is for: the bucket, where it is reached, and the prefix it is confined to.
pub struct GrantScope<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Region of the bucket (and of STS).
    pub region: &'a str,
    /// The store's endpoint for the page, when not AWS's default.
    pub endpoint: Option<&'a str>,
    /// Path-style addressing.
    pub force_path_style: bool,
    /// Keys the credentials may write, e.g. `uploads/alice/`.
    pub key_prefix: &'a str,
}

/// STS refuses sessions shorter than 15 minutes.
const STS_MIN_LIFETIME: Duration = Duration::from_secs(900);

impl Issuer {
    /// Credentials for `scope`, valid for `lifetime`, as the contract's JSON answer.
    pub async fn issue(
        &self,
        scope: &GrantScope<'_>,
        lifetime: Duration,
        server: &Credentials,
        client: &reqwest::Client,
    ) -> Result<Value, String> {
        let (access_key_id, secret_access_key, session_token, expiration) = match self {
            Issuer::Embedded(keys) => {
                let key = keys.issue(scope.key_prefix, lifetime);
                let expires_ms = key.expires.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64);
                (key.access_key_id, key.secret_access_key, key.session_token, sigv4::iso_8601(expires_ms))
            }
            Issuer::Sts { endpoint, role_arn } => {
                assume_role(endpoint, role_arn, scope, lifetime.max(STS_MIN_LIFETIME), server, client).await?
            }
        };
        Ok(json!({
            "accessKeyId": access_key_id,
            "secretAccessKey": secret_access_key,
            "sessionToken": session_token,
            "expiration": expiration,
            "region": scope.region,
            "bucket": scope.bucket,
            "endpoint": scope.endpoint,
            "forcePathStyle": scope.force_path_style,
            "keyPrefix": scope.key_prefix,
        }))
    }
}

/// The session policy of a grant: the uploads' operations on the prefix's objects, nothing else.
pub fn session_policy(bucket: &str, key_prefix: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": format!("arn:aws:s3:::{bucket}/{key_prefix}*"),
        }],
    })
}

/// Calls STS `AssumeRole`; the key id, secret, token and expiration it answers.
async fn assume_role(
    endpoint: &str,
    role_arn: &str,
    scope: &GrantScope<'_>,
    lifetime: Duration,
    server: &Credentials,
    client: &reqwest::Client,
) -> Result<(String, String, String, String), String> {
    let session_name: String =
        scope.key_prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(64).collect();
    let params = [
        ("Action", "AssumeRole".to_owned()),
        ("Version", "2011-06-15".to_owned()),
        ("RoleArn", role_arn.to_owned()),
        ("RoleSessionName", format!("s3du-{}", session_name.trim_matches('-'))),
        ("DurationSeconds", lifetime.as_secs().to_string()),
        ("Policy", session_policy(scope.bucket, scope.key_prefix).to_string()),
    ];
    let body = params.iter().map(|(k, v)| format!("{k}={}", uri_encode(v, true))).collect::<Vec<_>>().join("&");
    let url = format!("{}/", endpoint.trim_end_matches('/'));
    let headers = vec![("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
    let request = Request { method: "POST", url: &url, headers: &headers };
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64);
    let payload = hex(&digest(ChecksumAlgorithm::Sha256, body.as_bytes()));
    let signed =
        sigv4::sign_headers(&request, &payload, server, Scope { region: scope.region, service: "sts" }, now_ms)
            .ok_or("the STS endpoint is not an absolute URL")?;
    let mut call = client.post(&url).body(body);
    for (name, value) in headers.iter().chain(&signed) {
        call = call.header(name, value);
    }
    let response = call.send().await.map_err(|e| format!("STS could not be reached: {}", e.without_url()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("STS answer unreadable: {e}"))?;
    let field = |name| xml_text(&text, name).map(str::to_owned);
    match (field("AccessKeyId"), field("SecretAccessKey"), field("SessionToken"), field("Expiration")) {
        (Some(id), Some(secret), Some(token), Some(expiration)) if status.is_success() => {
            Ok((id, secret, token, expiration))
        }
        _ => Err(format!("STS AssumeRole failed: HTTP {status} {}", xml_text(&text, "Code").unwrap_or_default())),
    }
}
