//! AWS Signature Version 4 (pure): signing requests and URLs with temporary credentials, signing
//! POST policies, and reading when a presigned URL expires (so that it is signed again before it
//! is sent past its expiry, rather than after S3 refuses it).
//!
//! Tested against the examples AWS publishes for S3 and its SigV4 test suite.

use crate::checksum::hex;
use sha2::{Digest, Sha256};

/// A URL this close to its expiry (or past it) is signed again before it is used: S3 checks
/// expiry when a request starts, so 30 s covers the time between taking a URL and sending it.
pub const EXPIRY_MARGIN_MS: f64 = 30_000.0;

/// When a presigned URL stops being valid, in milliseconds since the Unix epoch; `None` when
/// the URL carries no SigV4 query signature (a backend may use other schemes).
pub fn presigned_expiry_ms(url: &str) -> Option<f64> {
    let query = url.split_once('?')?.1.split('#').next()?;
    let param = |name: &str| query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='));
    let signed_at = amz_date_ms(param("X-Amz-Date")?)?;
    let lifetime_s: u32 = param("X-Amz-Expires")?.parse().ok()?;
    Some(signed_at + f64::from(lifetime_s) * 1000.0)
}

/// Whether a presigned URL is expired, or will be within [`EXPIRY_MARGIN_MS`], at `now_ms`
/// (Unix epoch milliseconds). URLs without a readable expiry never count as expiring.
pub fn is_expiring(url: &str, now_ms: f64) -> bool {
    presigned_expiry_ms(url).is_some_and(|expiry| now_ms + EXPIRY_MARGIN_MS >= expiry)
}

/// `YYYYMMDDTHHMMSSZ` (SigV4's `X-Amz-Date`) as Unix epoch milliseconds.
fn amz_date_ms(date: &str) -> Option<f64> {
    let b = date.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| date.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) as f64)
}

/// Unix epoch milliseconds as SigV4's `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(ms: f64) -> String {
    let seconds = (ms / 1000.0).floor() as i64;
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z")
}

/// Unix epoch milliseconds as ISO 8601 (`2013-05-24T00:00:00.000Z`), as POST policies write
/// their expiration.
pub fn iso_8601(ms: f64) -> String {
    let d = amz_date(ms);
    format!("{}-{}-{}T{}:{}:{}.000Z", &d[0..4], &d[4..6], &d[6..8], &d[9..11], &d[11..13], &d[13..15])
}

/// Unix epoch milliseconds of an ISO 8601 UTC time (`2026-11-21T23:59:00Z`, fractions allowed),
/// as STS and S3 write times.
pub fn iso_8601_ms(text: &str) -> Option<f64> {
    let time = text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00"))?;
    let digits: String = time.split('.').next()?.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 14 {
        return None;
    }
    amz_date_ms(&format!("{}T{}Z", &digits[..8], &digits[8..]))
}

/// The civil date of a day count from 1970-01-01 (the inverse of [`days_since_epoch`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// An access key pair, with the session token of temporary credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key: signs, never sent, never logged.
    pub secret_access_key: String,
    /// Session token of temporary (STS) credentials, sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

/// Where a signature is valid: the region and service of the credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service, `s3` (or `sts`, ...).
    pub service: &'a str,
}

/// The hash of an empty payload, and the value for payloads not hashed.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// `x-amz-content-sha256` for a payload that is not hashed (S3 accepts it; presigned URLs use it).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// A request to sign: method, URL and the headers to sign besides `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Absolute URL: `scheme://host[:port]/path[?query]`, path and query already URI-encoded.
    pub url: &'a str,
    /// Headers to sign (and send), as `(name, value)`.
    pub headers: &'a [(String, String)],
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The signing key of `secret` for one day (`YYYYMMDD`) and scope.
fn signing_key(secret: &str, day: &str, scope: Scope<'_>) -> [u8; 32] {
    let date_key = hmac_sha256(format!("AWS4{secret}").as_bytes(), day.as_bytes());
    let region_key = hmac_sha256(&date_key, scope.region.as_bytes());
    let service_key = hmac_sha256(&region_key, scope.service.as_bytes());
    hmac_sha256(&service_key, b"aws4_request")
}

/// The credential scope string: `YYYYMMDD/region/service/aws4_request`.
fn credential_scope(day: &str, scope: Scope<'_>) -> String {
    format!("{day}/{}/{}/aws4_request", scope.region, scope.service)
}

/// Percent-encodes `text` as SigV4 wants: everything but `A-Z a-z 0-9 - _ . ~`, and `/` unless
/// `encode_slash`.
pub fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(byte)),
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The parts of an absolute URL SigV4 needs: `host[:port]`, path, query.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let rest = url.split_once("://")?.1;
    let rest = rest.split('#').next()?;
    let (authority, path_and_query) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    (!authority.is_empty()).then_some((authority, path, query))
}

/// The canonical query string: pairs sorted by name then value, each part encoded once (the URL's
/// are decoded first, so encoded and raw input give the same result).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (uri_encode(&percent_decode(name), true), uri_encode(&percent_decode(value), true))
        })
        .collect();
    pairs.sort_unstable();
    pairs.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("&")
}

/// `text` with its `%XX` escapes resolved.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex_pair) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request's headers as SigV4 signs them: names in lower case with `host` added, runs of
/// spaces in values folded to one, sorted by name.
fn signed_headers(request: &Request<'_>, host: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.split_whitespace().collect::<Vec<_>>().join(" ")))
        .chain(std::iter::once(("host".to_owned(), host.to_owned())))
        .collect();
    headers.sort_unstable();
    headers
}

/// The `SignedHeaders` value: the names of `headers`, joined by `;`.
fn header_names(headers: &[(String, String)]) -> String {
    headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";")
}

/// The canonical request, and the signed-headers list, of `request` with `host` added.
fn canonical_request(request: &Request<'_>, query: &str, payload_hash: &str) -> Option<(String, String)> {
    let (host, path, _) = split_url(request.url)?;
    let headers = signed_headers(request, host);
    let signed_headers = header_names(&headers);
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();
    let path = uri_encode(&percent_decode(path), false);
    let canonical = format!(
        "{}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method,
        canonical_query(query)
    );
    Some((canonical, signed_headers))
}

/// The signature of `canonical` at `datetime` (`YYYYMMDDTHHMMSSZ`).
fn signature(canonical: &str, datetime: &str, secret: &str, scope: Scope<'_>) -> String {
    let day = &datetime[..8];
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{datetime}\n{}\n{}",
        credential_scope(day, scope),
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    hex(&hmac_sha256(&signing_key(secret, day, scope), string_to_sign.as_bytes()))
}

/// Signs `request` with an `Authorization` header. Returns the headers to send besides the
/// request's own: `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (temporary
/// credentials) and `authorization`. `None` when the URL is not absolute.
pub fn sign_headers(
    request: &Request<'_>,
    payload_hash: &str,
    credentials: &Credentials,
    scope: Scope<'_>,
    now_ms: f64,
) -> Option<Vec<(String, String)>> {
    let datetime = amz_date(now_ms);
    let mut added =
        vec![("x-amz-content-sha256".to_owned(), payload_hash.to_owned()), ("x-amz-date".to_owned(), datetime.clone())];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    let all: Vec<(String, String)> = request.headers.iter().cloned().chain(added.iter().cloned()).collect();
    let (_, _, query) = split_url(request.url)?;
    let (canonical, signed_headers) = canonical_request(&Request { headers: &all, ..*request }, query, payload_hash)?;
    let signature = signature(&canonical, &datetime, &credentials.secret_access_key, scope);
    let credential = format!("{}/{}", credentials.access_key_id, credential_scope(&datetime[..8], scope));
    added.push((
        "authorization".to_owned(),
        format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed_headers}, Signature={signature}"),
    ));
    Some(added)
}

/// Presigns `request` for `expires_s` seconds: the URL with the signature in its query. The
/// request's headers are signed and must be sent as given; the payload is not signed.
pub fn presign(
    request: &Request<'_>,
    credentials: &Credentials,
    scope: Scope<'_>,
    now_ms: f64,
    expires_s: u32,
) -> Option<String> {
    let datetime = amz_date(now_ms);
    let (host, _, query) = split_url(request.url)?;
    let credential = format!("{}/{}", credentials.access_key_id, credential_scope(&datetime[..8], scope));
    let mut auth = vec![
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
        ("X-Amz-Credential", credential),
        ("X-Amz-Date", datetime.clone()),
        ("X-Amz-Expires", expires_s.to_string()),
    ];
    if let Some(token) = &credentials.session_token {
        auth.push(("X-Amz-Security-Token", token.clone()));
    }
    auth.push(("X-Amz-SignedHeaders", header_names(&signed_headers(request, host))));
    let auth_query: Vec<String> =
        auth.iter().map(|(name, value)| format!("{name}={}", uri_encode(value, true))).collect();
    let full_query =
        [query, &auth_query.join("&")].iter().filter(|q| !q.is_empty()).copied().collect::<Vec<_>>().join("&");
    let (canonical, _) = canonical_request(request, &full_query, UNSIGNED_PAYLOAD)?;
    let signature = signature(&canonical, &datetime, &credentials.secret_access_key, scope);
    let base = request.url.split(['?', '#']).next()?;
    Some(format!("{base}?{full_query}&X-Amz-Signature={signature}"))
}

/// The signature of a POST policy (`policy_base64`, the form's `Policy` field) for the form's
/// `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
pub fn sign_policy(policy_base64: &str, datetime: &str, secret: &str, scope: Scope<'_>) -> String {
    hex(&hmac_sha256(&signing_key(secret, &datetime[..8], scope), policy_base64.as_bytes()))
}

/// The `x-amz-credential` of a POST form signed at `datetime`.
pub fn policy_credential(access_key_id: &str, datetime: &str, scope: Scope<'_>) -> String {
    format!("{access_key_id}/{}", credential_scope(&datetime[..8], scope))
}

/// The form fields of a POST of `size` bytes to `bucket` signed with `credentials` at `now_ms`,
/// valid until `expires_ms`: `fields` (key, content type, metadata, checksum), the signing
/// fields, then `Policy` and `X-Amz-Signature`. The policy admits exactly these field values
/// and exactly `size` bytes.
pub fn sign_post_form(
    mut fields: Vec<(String, String)>,
    bucket: &str,
    size: u64,
    credentials: &Credentials,
    scope: Scope<'_>,
    now_ms: f64,
    expires_ms: f64,
) -> Vec<(String, String)> {
    let datetime = amz_date(now_ms);
    fields.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
    fields.push(("x-amz-credential".into(), policy_credential(&credentials.access_key_id, &datetime, scope)));
    fields.push(("x-amz-date".into(), datetime.clone()));
    if let Some(token) = &credentials.session_token {
        fields.push(("x-amz-security-token".into(), token.clone()));
    }
    let mut conditions = vec![format!("{{\"bucket\":{}}}", json_string(bucket))];
    conditions.push(format!("[\"content-length-range\",{size},{size}]"));
    conditions.extend(fields.iter().map(|(name, value)| format!("{{{}:{}}}", json_string(name), json_string(value))));
    let policy = format!("{{\"expiration\":\"{}\",\"conditions\":[{}]}}", iso_8601(expires_ms), conditions.join(","));
    let policy = crate::checksum::base64(policy.as_bytes());
    let signature = sign_policy(&policy, &datetime, &credentials.secret_access_key, scope);
    fields.push(("Policy".into(), policy));
    fields.push(("X-Amz-Signature".into(), signature));
    fields
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:9000/b/k?partNumber=1&uploadId=u&X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z\
        &X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    #[test]
    fn expiry_is_read_from_the_signed_date_and_lifetime() {
        // AWS's presigned-URL example: signed 2013-05-24T00:00:00Z (1369353600 s), valid 1 day.
        assert_eq!(presigned_expiry_ms(URL), Some((1_369_353_600.0 + 86_400.0) * 1000.0));
        assert_eq!(amz_date_ms("19700101T000000Z"), Some(0.0));
        assert_eq!(amz_date_ms("20000301T000001Z"), Some(951_868_801_000.0), "after a leap day");
        assert_eq!(amz_date_ms("20261121T204708Z"), Some(1_795_294_028_000.0));
    }

    #[test]
    fn urls_are_expiring_from_thirty_seconds_before_their_expiry() {
        let expiry = presigned_expiry_ms(URL).unwrap();
        assert!(!is_expiring(URL, expiry - EXPIRY_MARGIN_MS - 1.0));
        assert!(is_expiring(URL, expiry - EXPIRY_MARGIN_MS));
        assert!(is_expiring(URL, expiry + 1.0));
    }

    #[test]
    fn urls_without_a_sigv4_expiry_never_expire() {
        assert_eq!(presigned_expiry_ms("https://store/obj"), None);
        assert_eq!(presigned_expiry_ms("https://store/obj?X-Amz-Date=yesterday&X-Amz-Expires=60"), None);
        assert_eq!(presigned_expiry_ms("https://store/obj?X-Amz-Date=20130524T000000Z"), None);
        assert!(!is_expiring("https://store/obj?sig=abc", f64::MAX));
    }

    /// The example key pair of AWS's S3 signing examples.
    fn example_credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    const S3_US_EAST_1: Scope<'static> = Scope { region: "us-east-1", service: "s3" };
    /// 2013-05-24T00:00:00Z, the time of AWS's S3 examples.
    const MAY_24_2013_MS: f64 = 1_369_353_600_000.0;

    #[test]
    fn a_post_form_policy_admits_exactly_its_fields_and_size_and_is_signed() {
        let credentials = Credentials { session_token: Some("tok".into()), ..example_credentials() };
        let fields = vec![("key".to_owned(), "a/\"quoted\" \\ name".to_owned())];
        let end = MAY_24_2013_MS + 60_000.0;
        let form = sign_post_form(fields, "bucket", 42, &credentials, S3_US_EAST_1, MAY_24_2013_MS, end);
        let names: Vec<&str> = form.iter().map(|(n, _)| n.as_str()).collect();
        let expected = ["key", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-security-token"];
        assert_eq!(names, [&expected[..], &["Policy", "X-Amz-Signature"]].concat());
        let field = |name: &str| form.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert_eq!(field("x-amz-credential"), "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request");
        let policy = field("Policy");
        assert_eq!(
            policy,
            crate::checksum::base64(
                "{\"expiration\":\"2013-05-24T00:01:00.000Z\",\"conditions\":[{\"bucket\":\"bucket\"},\
             [\"content-length-range\",42,42],{\"key\":\"a/\\\"quoted\\\" \\\\ name\"},\
             {\"x-amz-algorithm\":\"AWS4-HMAC-SHA256\"},{\"x-amz-credential\":\
             \"AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request\"},{\"x-amz-date\":\"20130524T000000Z\"},\
             {\"x-amz-security-token\":\"tok\"}]}"
                    .as_bytes()
            )
        );
        let secret = &credentials.secret_access_key;
        assert_eq!(field("X-Amz-Signature"), sign_policy(&policy, "20130524T000000Z", secret, S3_US_EAST_1));
    }

    fn signature_of(headers: &[(String, String)]) -> &str {
        let authorization = &headers.iter().find(|(n, _)| n == "authorization").unwrap().1;
        authorization.rsplit("Signature=").next().unwrap()
    }

    fn header(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn s3_header_examples_from_the_aws_documentation() {
        let creds = example_credentials();
        // GET Object with a Range header.
        let get = Request {
            method: "GET",
            url: "https://examplebucket.s3.amazonaws.com/test.txt",
            headers: &[header("Range", "bytes=0-9")],
        };
        let signed = sign_headers(&get, EMPTY_PAYLOAD_SHA256, &creds, S3_US_EAST_1, MAY_24_2013_MS).unwrap();
        assert_eq!(signature_of(&signed), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
        let authorization = &signed.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        ));
        // PUT Object, a key with a character to encode, and a payload hash.
        let payload = hex(&Sha256::digest(b"Welcome to Amazon S3."));
        let put = Request {
            method: "PUT",
            url: "https://examplebucket.s3.amazonaws.com/test$file.text",
            headers: &[
                header("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                header("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
        };
        let signed = sign_headers(&put, &payload, &creds, S3_US_EAST_1, MAY_24_2013_MS).unwrap();
        assert_eq!(signature_of(&signed), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
        // GET Bucket lifecycle (a query parameter without a value) and List Objects (sorted query).
        let lifecycle =
            Request { method: "GET", url: "https://examplebucket.s3.amazonaws.com/?lifecycle", headers: &[] };
        let signed = sign_headers(&lifecycle, EMPTY_PAYLOAD_SHA256, &creds, S3_US_EAST_1, MAY_24_2013_MS).unwrap();
        assert_eq!(signature_of(&signed), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
        let list =
            Request { method: "GET", url: "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", headers: &[] };
        let signed = sign_headers(&list, EMPTY_PAYLOAD_SHA256, &creds, S3_US_EAST_1, MAY_24_2013_MS).unwrap();
        assert_eq!(signature_of(&signed), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    }

    #[test]
    fn s3_presigned_url_example_from_the_aws_documentation() {
        let get = Request { method: "GET", url: "https://examplebucket.s3.amazonaws.com/test.txt", headers: &[] };
        let url = presign(&get, &example_credentials(), S3_US_EAST_1, MAY_24_2013_MS, 86_400).unwrap();
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert_eq!(presigned_expiry_ms(&url), Some(MAY_24_2013_MS + 86_400_000.0));
    }

    #[test]
    fn sigv4_test_suite_get_vanilla() {
        // aws-sig-v4-test-suite, get-vanilla: service "service", 2015-08-30T12:36:00Z.
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let request = Request { method: "GET", url: "https://example.amazonaws.com/", headers: &[] };
        let scope = Scope { region: "us-east-1", service: "service" };
        let (canonical, signed_headers) = canonical_request(
            &Request { headers: &[header("X-Amz-Date", "20150830T123600Z")], ..request },
            "",
            EMPTY_PAYLOAD_SHA256,
        )
        .unwrap();
        assert_eq!(signed_headers, "host;x-amz-date");
        assert_eq!(
            signature(&canonical, "20150830T123600Z", &creds.secret_access_key, scope),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn iso_times_are_read_with_or_without_fractions() {
        assert_eq!(iso_8601_ms("2013-05-24T00:00:00Z"), Some(MAY_24_2013_MS));
        assert_eq!(iso_8601_ms("2013-05-24T00:00:00.000Z"), Some(MAY_24_2013_MS));
        assert_eq!(iso_8601_ms("2013-05-24T00:00:00+00:00"), Some(MAY_24_2013_MS));
        assert_eq!(iso_8601_ms(&iso_8601(MAY_24_2013_MS)), Some(MAY_24_2013_MS));
        assert_eq!(iso_8601_ms("2013-05-24T00:00:00+02:00"), None);
        assert_eq!(iso_8601_ms("tomorrow"), None);
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn dates_format_both_ways() {
        assert_eq!(amz_date(MAY_24_2013_MS), "20130524T000000Z");
        assert_eq!(amz_date(0.0), "19700101T000000Z");
        assert_eq!(amz_date(951_868_801_000.0), "20000301T000001Z");
        assert_eq!(iso_8601(951_868_801_000.0), "2000-03-01T00:00:01.000Z");
        for ms in [0.0, 951_782_400_000.0, 1_795_294_028_000.0, 4_102_444_799_000.0] {
            assert_eq!(amz_date_ms(&amz_date(ms)), Some(ms));
        }
    }

    #[test]
    fn session_tokens_are_signed_in() {
        let creds = Credentials { session_token: Some("token/with+chars".into()), ..example_credentials() };
        let put = Request { method: "PUT", url: "https://b.s3.amazonaws.com/k?partNumber=1&uploadId=u", headers: &[] };
        let url = presign(&put, &creds, S3_US_EAST_1, MAY_24_2013_MS, 900).unwrap();
        assert!(url.contains("&X-Amz-Security-Token=token%2Fwith%2Bchars&"), "{url}");
        assert!(url.starts_with("https://b.s3.amazonaws.com/k?partNumber=1&uploadId=u&X-Amz-Algorithm="), "{url}");
        let headers = sign_headers(&put, UNSIGNED_PAYLOAD, &creds, S3_US_EAST_1, MAY_24_2013_MS).unwrap();
        assert!(headers.contains(&header("x-amz-security-token", "token/with+chars")));
        assert!(signature_of(&headers).len() == 64);
    }
}
