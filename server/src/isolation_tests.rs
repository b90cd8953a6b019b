//! The upload API with authentication on, served on loopback against the embedded store: each
//! user reaches only their own key prefix and uploads, within their quota.

use crate::api::{self, AppState, S3Target};
use crate::auth::{BearerTokens, Quotas};
use crate::credentials::Issuer;
use crate::policy::UploadPolicy;
use crate::registry::Registry;
use crate::store::{self, CorsRule};
use axum::Router;
use rusty_s3::{Bucket, Credentials, UrlStyle};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789";

/// A running API and where its store keeps its files.
struct Api {
    base: String,
    dir: PathBuf,
    client: reqwest::Client,
    /// Keeps the store up: it stops for good when this is dropped.
    _store: store::EmbeddedStore,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server over a fresh store and database, with these daily quotas of uploads and bytes.
async fn start(uploads_per_day: Option<u32>, bytes_per_day: Option<u64>) -> Api {
    let dir = std::env::temp_dir().join(format!("s3du-isolation-{}-{:x}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let cors = CorsRule::for_uploads(vec!["*".into()], true);
    let store = store::start(
        "127.0.0.1:0".parse().unwrap(),
        &dir.join("store"),
        &dir.join("keys"),
        "bucket",
        cors,
        None,
        Default::default(),
    )
    .await
    .unwrap();
    let bucket = Bucket::new(store.endpoint.parse().unwrap(), UrlStyle::Path, "bucket", "us-east-1").unwrap();
    let db = crate::database::open(None, &dir.join("state.sqlite3")).await.unwrap();
    let state = AppState {
        s3: S3Target {
            bucket,
            credentials: Credentials::new(store.access_key.clone(), store.secret_key.clone()),
            client: reqwest::Client::new(),
            endpoint: store.endpoint.clone(),
            path_style: true,
            issuer: Some(Issuer::Embedded(store.temporary.clone())),
        },
        policy: UploadPolicy { key_prefix: "uploads/".into(), max_size: 1 << 30, allowed_types: vec!["*/*".into()] },
        open: Registry::open(db.clone(), 1000, &dir).await.unwrap(),
        auth: Box::new(BearerTokens::parse(&format!("alice {ALICE}\nbob {BOB}")).unwrap()),
        quotas: Quotas::new(db, uploads_per_day, bytes_per_day),
    };
    let app = Router::new().nest("/api/uploads", api::routes(Arc::new(state)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/uploads", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Api { base, dir, client: reqwest::Client::new(), _store: store }
}

impl Api {
    /// POSTs `body` to `path` as `token`'s user; the status and JSON answer.
    async fn call(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
    }
}

fn file(size: u64) -> Value {
    json!({ "filename": "a.bin", "size": size, "contentType": "application/octet-stream", "metadata": {} })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_reach_only_their_own_prefix_and_uploads() {
    let api = start(None, None).await;
    assert_eq!(api.call(None, "/multipart", file(6 << 20)).await.0, 401, "no token, no upload");
    assert_eq!(api.call(Some("forged-token-0123456789"), "/put", file(1)).await.0, 401);

    let (status, created) = api.call(Some(ALICE), "/multipart", file(6 << 20)).await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("uploads/alice/"), "{key}");
    let upload = json!({ "key": key, "uploadId": created["uploadId"] });

    // Bob cannot sign, list, complete or abort Alice's upload, even knowing its key and id.
    let mut sign = upload.clone();
    sign["partNumbers"] = json!([1]);
    sign["checksums"] = json!(["AAAAAA=="]);
    for (path, body) in [
        ("/multipart/sign", sign.clone()),
        ("/multipart/list", upload.clone()),
        (
            "/multipart/complete",
            json!({ "key": key, "uploadId": created["uploadId"], "parts": [{ "partNumber": 1, "etag": "x" }] }),
        ),
        ("/multipart/abort", upload.clone()),
    ] {
        let (status, answer) = api.call(Some(BOB), path, body).await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    let (status, signed) = api.call(Some(ALICE), "/multipart/sign", sign).await;
    assert_eq!(status, 200, "{signed}");
    assert!(signed["parts"][0]["url"].as_str().unwrap().contains("/uploads/alice/"));

    // A requested key stays inside the caller's prefix, whatever it names.
    let mut wish = file(1);
    wish["key"] = json!("../bob/x");
    assert_eq!(api.call(Some(ALICE), "/put", wish.clone()).await.0, 400);
    wish["key"] = json!("bob/x");
    let (_, put) = api.call(Some(ALICE), "/put", wish).await;
    assert_eq!(put["key"], "uploads/alice/bob/x");

    assert_eq!(api.call(Some(ALICE), "/multipart/abort", upload).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_uploads_past_the_daily_limit_per_user() {
    let api = start(Some(2), Some(1000)).await;
    assert_eq!(api.call(Some(ALICE), "/put", file(400)).await.0, 200);
    let (status, answer) = api.call(Some(ALICE), "/put", file(700)).await;
    assert_eq!(status, 403, "bytes: {answer}");
    assert_eq!(api.call(Some(ALICE), "/put", file(500)).await.0, 200);
    let (status, answer) = api.call(Some(ALICE), "/put", file(1)).await;
    assert_eq!(status, 403);
    assert!(answer["error"].as_str().unwrap().contains("2 uploads"), "{answer}");
    assert_eq!(api.call(Some(BOB), "/put", file(1000)).await.0, 200, "another user's quota is their own");
}

/// Posts `body` as a form with the fields of a POST policy answer, the file last: the status and
/// the S3 answer.
async fn post_form(signed: &Value, fields: &serde_json::Map<String, Value>, body: Vec<u8>) -> (u16, String) {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(body).file_name("a.bin"));
    let response = reqwest::Client::new().post(signed["url"].as_str().unwrap()).multipart(form).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_policies_hold_the_store_to_the_users_prefix_and_declared_size() {
    let api = start(None, None).await;
    assert_eq!(api.call(None, "/post", file(10)).await.0, 401);
    let (status, signed) = api.call(Some(ALICE), "/post", file(10)).await;
    assert_eq!(status, 200, "{signed}");
    let fields = signed["fields"].as_object().unwrap();
    assert!(fields["key"].as_str().unwrap().starts_with("uploads/alice/"));

    let (status, answer) = post_form(&signed, fields, vec![7; 11]).await;
    assert_eq!(status, 400, "one byte over the declared size: {answer}");
    assert!(answer.contains("EntityTooLarge"), "{answer}");

    let mut elsewhere = fields.clone();
    elsewhere.insert("key".into(), json!("uploads/bob/planted.bin"));
    // S3 answers 403 AccessDenied for a failed condition, s3s 400 InvalidPolicyDocument.
    let (status, answer) = post_form(&signed, &elsewhere, vec![7; 10]).await;
    assert!(matches!(status, 400 | 403) && answer.contains("key"), "another user's prefix: {answer}");

    let mut retyped = fields.clone();
    retyped.insert("Content-Type".into(), json!("text/html"));
    let (status, answer) = post_form(&signed, &retyped, vec![7; 10]).await;
    assert!(matches!(status, 400 | 403) && answer.contains("content-type"), "another content type: {answer}");

    let (status, answer) = post_form(&signed, fields, vec![7; 10]).await;
    assert_eq!(status, 201, "{answer}");
    assert!(answer.contains("<Key>uploads/alice/"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_files_is_signed_in_one_call_each_file_held_to_the_rules_alone() {
    let api = start(Some(3), None).await;
    let batch = |files: Vec<Value>| json!({ "files": files });
    assert_eq!(api.call(None, "/files", batch(vec![file(1)])).await.0, 401);
    assert_eq!(api.call(Some(ALICE), "/files", batch(vec![])).await.0, 400, "no files");
    let too_many = vec![file(1); s3_direct_upload::upload::MOST_FILES_PER_BATCH + 1];
    assert_eq!(api.call(Some(ALICE), "/files", batch(too_many)).await.0, 400);

    // One file climbs out of the prefix, one is past the quota of 3 uploads: refused alone.
    let mut climbing = file(5);
    climbing["key"] = json!("../bob/x");
    let (status, answer) =
        api.call(Some(ALICE), "/files", batch(vec![file(10), climbing, file(11), file(12), file(13)])).await;
    assert_eq!(status, 200, "{answer}");
    let answers = answer["files"].as_array().unwrap();
    assert_eq!(answers.len(), 5);
    assert_eq!(answers[1]["status"], 400, "{}", answers[1]);
    assert_eq!(answers[4]["status"], 403, "the fourth upload of the day: {}", answers[4]);
    for (i, size) in [(0, 10), (2, 11), (3, 12)] {
        let fields = answers[i]["fields"].as_object().unwrap();
        assert!(fields["key"].as_str().unwrap().starts_with("uploads/alice/"), "{}", answers[i]);
        let (status, stored) = post_form(&answers[i], fields, vec![7; size]).await;
        assert_eq!(status, 201, "file {i}: {stored}");
    }
}

/// Sends `method` to `key` in the store with temporary credentials from a grant, as a page
/// would; the status and the S3 answer.
async fn with_grant(api: &Api, grant: &Value, method: &str, key: &str, token: Option<&str>) -> (u16, String) {
    let credentials = s3_direct_upload::sigv4::Credentials {
        access_key_id: grant["accessKeyId"].as_str().unwrap().to_owned(),
        secret_access_key: grant["secretAccessKey"].as_str().unwrap().to_owned(),
        session_token: Some(token.unwrap_or(grant["sessionToken"].as_str().unwrap()).to_owned()),
    };
    let url = format!("{}/{}/{key}", grant["endpoint"].as_str().unwrap(), grant["bucket"].as_str().unwrap());
    let request = s3_direct_upload::sigv4::Request { method, url: &url, headers: &[] };
    let scope = s3_direct_upload::sigv4::Scope { region: grant["region"].as_str().unwrap(), service: "s3" };
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    let signed = s3_direct_upload::sigv4::presign(&request, &credentials, scope, now_ms, 60).unwrap();
    let response = api.client.request(method.parse().unwrap(), signed).body("hello").send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_credentials_reach_only_the_users_prefix_with_their_token_until_they_expire() {
    let api = start(None, None).await;
    assert_eq!(api.call(None, "/credentials", json!({})).await.0, 401);
    let (status, grant) = api.call(Some(ALICE), "/credentials", json!({})).await;
    assert_eq!(status, 200, "{grant}");
    assert_eq!(grant["keyPrefix"], "uploads/alice/");

    assert_eq!(with_grant(&api, &grant, "PUT", "uploads/alice/a.txt", None).await.0, 200);
    let (status, answer) = with_grant(&api, &grant, "PUT", "uploads/bob/a.txt", None).await;
    assert_eq!(status, 403, "another user's prefix: {answer}");
    let (status, answer) = with_grant(&api, &grant, "PUT", "uploads/alice/b.txt", Some("forged")).await;
    assert!(matches!(status, 400 | 403) && answer.contains("InvalidToken"), "{answer}");

    let (_, short) = api.call(Some(ALICE), "/credentials", json!({ "lifetimeSeconds": 1 })).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, answer) = with_grant(&api, &short, "PUT", "uploads/alice/c.txt", None).await;
    assert!(status == 400 && answer.contains("ExpiredToken"), "{status} {answer}");
}

/// Posts `body` as a form signed in the page's way with a grant's credentials, with the CRC32C
/// `checksum` field; the status and the answer.
async fn form_with_grant(grant: &Value, key: &str, body: &[u8], checksum: &str) -> (u16, String) {
    let credentials = s3_direct_upload::sigv4::Credentials {
        access_key_id: grant["accessKeyId"].as_str().unwrap().to_owned(),
        secret_access_key: grant["secretAccessKey"].as_str().unwrap().to_owned(),
        session_token: grant["sessionToken"].as_str().map(str::to_owned),
    };
    let scope = s3_direct_upload::sigv4::Scope { region: grant["region"].as_str().unwrap(), service: "s3" };
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    let fields = vec![("key".to_owned(), key.to_owned()), ("x-amz-checksum-crc32c".to_owned(), checksum.to_owned())];
    let bucket = grant["bucket"].as_str().unwrap();
    let size = body.len() as u64;
    let fields =
        s3_direct_upload::sigv4::sign_post_form(fields, bucket, size, &credentials, scope, now_ms, now_ms + 60_000.0);
    let fields: serde_json::Map<String, Value> = fields.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let url = format!("{}/{bucket}/", grant["endpoint"].as_str().unwrap());
    post_form(&json!({ "url": url }), &fields, body.to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_signed_with_temporary_credentials_need_the_prefix_and_the_checksum_and_expire() {
    let api = start(None, None).await;
    let (_, grant) = api.call(Some(ALICE), "/credentials", json!({})).await;
    let body = b"signed in the page".to_vec();
    use s3_direct_upload::checksum::{ChecksumAlgorithm, base64, digest};
    let crc = |b: &[u8]| base64(&digest(ChecksumAlgorithm::Crc32c, b));
    let (status, answer) = form_with_grant(&grant, "uploads/alice/form.txt", &body, &crc(&body)).await;
    assert!(matches!(status, 200 | 201 | 204), "{status} {answer}");
    let stored = std::fs::read(api.dir.join("store/bucket").join("uploads/alice/form.txt")).unwrap();
    assert_eq!(stored, body);

    let (status, answer) = form_with_grant(&grant, "uploads/bob/form.txt", &body, &crc(&body)).await;
    assert!(status == 403 && answer.contains("AccessDenied"), "another user's prefix: {status} {answer}");
    let (status, answer) = form_with_grant(&grant, "uploads/alice/f3.txt", &body, &crc(b"other bytes")).await;
    assert!(status == 400 && answer.contains("BadDigest"), "bytes that are not the checksum's: {status} {answer}");
    assert!(!api.dir.join("store/bucket").join("uploads/alice/f3.txt").exists(), "nothing stored");

    let (_, short) = api.call(Some(ALICE), "/credentials", json!({ "lifetimeSeconds": 1 })).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, answer) = form_with_grant(&short, "uploads/alice/late.txt", &body, &crc(&body)).await;
    assert!(status == 400 && answer.contains("ExpiredToken"), "{status} {answer}");
}

/// `moto_server` (moto's AWS mock) on a free loopback port, stopped by PID when dropped.
struct Moto(std::process::Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_credentials_are_assumed_with_a_policy_for_the_users_prefix() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto_server runs (scripts/setup.sh installs moto)");
    let moto = Moto(child, port);
    let endpoint = format!("http://127.0.0.1:{}", moto.1);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", moto.1)).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let issuer = Issuer::Sts { endpoint, role_arn: "arn:aws:iam::123456789012:role/uploads".into() };
    let scope = crate::credentials::GrantScope {
        bucket: "bucket",
        region: "us-east-1",
        endpoint: None,
        force_path_style: false,
        key_prefix: "uploads/alice/",
    };
    let server = s3_direct_upload::sigv4::Credentials {
        access_key_id: "AKIDSERVER".into(),
        secret_access_key: "server-secret".into(),
        session_token: None,
    };
    let grant =
        issuer.issue(&scope, std::time::Duration::from_secs(60), &server, &reqwest::Client::new()).await.unwrap();
    for field in ["accessKeyId", "secretAccessKey", "sessionToken", "expiration"] {
        assert!(!grant[field].as_str().unwrap_or_default().is_empty(), "{field}: {grant}");
    }
    assert_eq!(grant["keyPrefix"], "uploads/alice/");
    let policy = crate::credentials::session_policy("bucket", "uploads/alice/");
    assert_eq!(policy["Statement"][0]["Resource"], "arn:aws:s3:::bucket/uploads/alice/*");
}
