//! The JSON upload contract (see the README): create, sign, complete and abort multipart
//! uploads, and sign single PUTs. Every request is checked against the [`UploadPolicy`] and the
//! uploads this server opened before anything is signed.

use crate::auth::{Authenticator, Quotas};
use crate::credentials::{GrantScope, Issuer};
use crate::policy::{Refusal, UploadPolicy};
use crate::registry::{OpenUpload, Registry};
use axum::extract::State;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rusty_s3::actions::CompleteMultipartUploadResponse;
use rusty_s3::actions::CreateMultipartUpload;
use rusty_s3::{Bucket, Credentials, S3Action};
use s3_direct_upload::checksum::{ChecksumAlgorithm, ChecksumType};
use s3_direct_upload::object_rules::{check_metadata, metadata_headers};
use s3_direct_upload::plan::PartPlan;
use s3_direct_upload::s3_xml::{all_listed_parts, complete_multipart_body, xml_text};
use s3_direct_upload::sigv4::{self, Scope};
use s3_direct_upload::string_map::StringMap;
use s3_direct_upload::upload::{
    CompleteRequest, FileBatch, FileInfo, MOST_FILES_PER_BATCH, MultipartSession, SignPartsRequest, SignedPart,
    SignedRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long presigned URLs stay valid: long enough for a slow part, short enough to limit harm.
pub const URL_TTL: Duration = Duration::from_secs(3600);
/// Most part URLs one signing request may ask for.
const MAX_SIGN_BATCH: usize = 1000;

/// The bucket this server signs for, and how it reaches it.
pub struct S3Target {
    /// Bucket, endpoint, region and addressing style.
    pub bucket: Bucket,
    /// The signing key pair: stays on the server.
    pub credentials: Credentials,
    /// For the server's own calls (create, complete, abort, head).
    pub client: reqwest::Client,
    /// The store's endpoint as pages reach it (credentials mode), and its addressing style.
    pub endpoint: String,
    /// Path-style addressing.
    pub path_style: bool,
    /// Where temporary credentials come from; `None` turns the credentials mode off.
    pub issuer: Option<Issuer>,
}

impl S3Target {
    /// The signing key pair, as the library's SigV4 signer takes it.
    fn signing_credentials(&self) -> sigv4::Credentials {
        sigv4::Credentials {
            access_key_id: self.credentials.key().to_owned(),
            secret_access_key: self.credentials.secret().to_owned(),
            session_token: self.credentials.token().map(str::to_owned),
        }
    }
}

/// Shared state of the API handlers.
pub struct AppState {
    /// Where uploads go.
    pub s3: S3Target,
    /// What is allowed.
    pub policy: UploadPolicy,
    /// Open multipart uploads by upload id.
    pub open: Registry,
    /// Who callers are.
    pub auth: Box<dyn Authenticator>,
    /// How much each may upload.
    pub quotas: Quotas,
}

/// An API failure: status and a message for the page, as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError(StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST), r.message)
    }
}

/// A JSON request body; one that cannot be read as `T` is refused as `{"error": ...}` with the
/// reason (axum's own refusal is plain text, which a page shows only as its status).
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(ApiError(rejection.status(), rejection.body_text())),
        }
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn store_failed(operation: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_GATEWAY, format!("the store failed {operation}: {detail}"))
}

/// `value`, checked to be a base64 digest of `algorithm`: what goes into a signed header.
fn checked_checksum(algorithm: ChecksumAlgorithm, value: &str, of: &str) -> Result<String, ApiError> {
    if !algorithm.is_encoded_digest(value) {
        return Err(bad_request(format!("the checksum of {of} is not a base64 {} digest", algorithm.as_str())));
    }
    Ok(value.to_owned())
}

/// The headers a presigned request for `file` signs, and the page must send.
fn signed_headers(content_type: &str, metadata: &StringMap) -> Vec<(String, String)> {
    std::iter::once(("content-type".to_owned(), content_type.to_owned())).chain(metadata_headers(metadata)).collect()
}

impl AppState {
    fn display_url(&self, key: &str) -> String {
        self.s3.bucket.get_object(Some(&self.s3.credentials), key).sign(URL_TTL).to_string()
    }

    fn object_url(&self, key: &str) -> String {
        self.s3.bucket.object_url(key).to_string()
    }

    /// The open upload `r` names, if it is one of ours, the caller's, and the key matches.
    async fn open_upload(&self, r: &MultipartSession, caller: &Caller) -> Result<OpenUpload, ApiError> {
        match self.open.get(&r.upload_id).await? {
            Some(upload) if upload.key == r.key && upload.owner == caller.user && caller.policy.owns(&r.key) => {
                Ok(upload)
            }
            _ => Err(ApiError(StatusCode::NOT_FOUND, "no open upload of yours with this key and uploadId".into())),
        }
    }
}

/// Who is calling, as the [`Authenticator`] proved it, and the policy that applies to them:
/// with authentication on, their keys live under `PREFIX<user>/`.
pub struct Caller {
    /// The user, or `None` when authentication is off.
    user: Option<String>,
    /// The server's policy with the caller's own key prefix.
    policy: UploadPolicy,
}

impl Caller {
    /// The name quotas are counted under.
    fn name(&self) -> &str {
        self.user.as_deref().unwrap_or("anonymous")
    }

    /// Checks the file `req` describes against the caller's policy; the key to store it under.
    fn admit(&self, req: &FileInfo) -> Result<String, ApiError> {
        check_metadata(&req.metadata).map_err(|e| bad_request(e.0))?;
        Ok(self.policy.admit(&req.filename, req.size, &req.content_type, req.key.as_deref())?)
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let user = st.auth.user(&parts.headers)?;
        Ok(Caller { policy: st.policy.for_user(user.as_deref()), user })
    }
}

/// The upload API's routes, to be nested under `/api/uploads`.
pub fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/multipart", post(create))
        .route("/multipart/sign", post(sign_parts))
        .route("/multipart/complete", post(complete))
        .route("/multipart/abort", post(abort))
        .route("/multipart/list", post(list_parts))
        .route("/put", post(sign_put))
        .route("/post", post(sign_post))
        .route("/files", post(sign_files))
        .route("/credentials", post(credentials))
        .with_state(state)
}

/// `POST /multipart`: creates a multipart upload.
pub async fn create(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<FileInfo>,
) -> Result<Json<Value>, ApiError> {
    let key = caller.admit(&req)?;
    let plan = PartPlan::for_multipart(req.size, req.part_size).map_err(|e| bad_request(e.message))?;
    let place = st.open.reserve(caller.user.as_deref()).await?.ok_or_else(|| {
        ApiError(
            StatusCode::FORBIDDEN,
            format!("you have {} open uploads, the most allowed; complete or abort some", st.open.most_per_user()),
        )
    })?;
    let mut headers = signed_headers(&req.content_type, &req.metadata);
    headers.extend(req.checksum_algorithm.map(ChecksumAlgorithm::creation_headers).unwrap_or_default());
    let mut action = st.s3.bucket.create_multipart_upload(Some(&st.s3.credentials), &key);
    for (name, value) in &headers {
        action.headers_mut().insert(name.clone(), value.clone());
    }
    let mut request = st.s3.client.post(action.sign(URL_TTL));
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    st.quotas.charge(caller.name(), req.size).await?;
    let created = send(request, "CreateMultipartUpload").await.and_then(|body| {
        let parsed = CreateMultipartUpload::parse_response(&body).map_err(|e| store_failed("CreateMultipartUpload", e));
        parsed.map(|p| p.upload_id().to_owned())
    });
    let upload_id = match created {
        Ok(id) => id,
        Err(e) => {
            st.quotas.refund(caller.name(), req.size).await;
            return Err(e);
        }
    };
    let checksum_algorithm = req.checksum_algorithm;
    let upload = OpenUpload {
        key: key.clone(),
        size: req.size,
        part_size: Some(plan.part_size),
        checksum_algorithm,
        owner: caller.user.clone(),
    };
    if let Err(refusal) = st.open.insert(place, upload_id.clone(), upload).await {
        // Unrecorded, it could never be signed for: abort it rather than leave it in the store.
        let abort = st.s3.bucket.abort_multipart_upload(Some(&st.s3.credentials), &key, &upload_id);
        let _ = send(st.s3.client.delete(abort.sign(URL_TTL)), "AbortMultipartUpload").await;
        st.quotas.refund(caller.name(), req.size).await;
        return Err(refusal.into());
    }
    Ok(Json(json!({ "key": key, "uploadId": upload_id, "checksumAlgorithm": checksum_algorithm })))
}

/// `POST /multipart/sign`: presigns `UploadPart` for a batch of part numbers.
pub async fn sign_parts(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<SignPartsRequest>,
) -> Result<Json<Value>, ApiError> {
    let upload = st.open_upload(&req.upload, &caller).await?;
    let plan = upload.plan();
    if req.part_numbers.is_empty() || req.part_numbers.len() > MAX_SIGN_BATCH {
        return Err(bad_request(format!("partNumbers must list 1 to {MAX_SIGN_BATCH} parts")));
    }
    if let Some(n) = req.part_numbers.iter().find(|&&n| n == 0 || n > plan.count) {
        return Err(bad_request(format!(
            "part {n} is outside 1..={}: this {}-byte upload has {} parts of {} bytes",
            plan.count, upload.size, plan.count, plan.part_size
        )));
    }
    // An upload created with checksums has every part signed with its checksum, so the store
    // refuses bytes that do not match it.
    let checksums: Vec<Option<(&str, String)>> = match (upload.checksum_algorithm, &req.checksums) {
        (None, _) => vec![None; req.part_numbers.len()],
        (Some(algorithm), Some(sums)) if sums.len() == req.part_numbers.len() => sums
            .iter()
            .zip(&req.part_numbers)
            .map(|(sum, n)| Ok(Some((algorithm.header(), checked_checksum(algorithm, sum, &format!("part {n}"))?))))
            .collect::<Result<_, ApiError>>()?,
        (Some(algorithm), _) => {
            return Err(bad_request(format!(
                "this upload was created with {} checksums: `checksums` must give one for each part number",
                algorithm.as_str()
            )));
        }
    };
    let parts: Vec<SignedPart> = req
        .part_numbers
        .iter()
        .zip(checksums)
        .map(|(&n, checksum)| {
            let part = u16::try_from(n).expect("checked to be at most 10,000");
            let mut action =
                st.s3.bucket.upload_part(Some(&st.s3.credentials), &upload.key, part, &req.upload.upload_id);
            let headers: StringMap = checksum.map(|(name, value)| (name.to_owned(), value)).into_iter().collect();
            for (name, value) in &headers {
                action.headers_mut().insert(name.clone(), value.clone());
            }
            // The exact length, signed: the browser sends it itself (so it is not in `headers`),
            // and the store refuses a part of any other size.
            let length = plan.range(n);
            action.headers_mut().insert("content-length", (length.end - length.start).to_string());
            SignedPart { part_number: n, request: SignedRequest { url: action.sign(URL_TTL).to_string(), headers } }
        })
        .collect();
    Ok(Json(json!({ "parts": parts })))
}

/// `POST /multipart/complete`: assembles the object, then checks its size against the declared one.
pub async fn complete(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<CompleteRequest>,
) -> Result<Json<Value>, ApiError> {
    let upload = st.open_upload(&req.upload, &caller).await?;
    if req.parts.is_empty() || req.parts.iter().enumerate().any(|(i, p)| p.part_number as usize != i + 1) {
        return Err(bad_request("parts must be numbered 1, 2, 3, ... in order, with no gaps"));
    }
    let creds = Some(&st.s3.credentials);
    let mut action = st.s3.bucket.complete_multipart_upload(
        creds,
        &upload.key,
        &req.upload.upload_id,
        req.parts.iter().map(|p| p.etag.as_str()),
    );
    // A full-object checksum goes to the store, which checks the assembled object against it.
    let mut headers = Vec::new();
    if let (Some(algorithm), Some(checksum)) = (upload.checksum_algorithm, &req.checksum)
        && algorithm.object_type() == ChecksumType::FullObject
    {
        headers.push((algorithm.header(), checked_checksum(algorithm, &checksum.value, "the object")?));
        headers.push(("x-amz-checksum-type", ChecksumType::FullObject.as_str().to_owned()));
    }
    for (name, value) in &headers {
        action.headers_mut().insert(*name, value.clone());
    }
    if let Some(algorithm) = upload.checksum_algorithm.filter(|&a| a != ChecksumAlgorithm::Md5) {
        for part in &req.parts {
            let checksum = part.checksum.as_deref().unwrap_or_default();
            checked_checksum(algorithm, checksum, &format!("part {}", part.part_number))?;
        }
    }
    let body = complete_multipart_body(&req.parts, upload.checksum_algorithm).expect("every checksum was checked");
    let mut request = st.s3.client.post(action.sign(URL_TTL)).body(body);
    for (name, value) in &headers {
        request = request.header(*name, value);
    }
    let body = send(request, "CompleteMultipartUpload").await?;
    // S3 may answer 200 and still fail: the body then holds an <Error>.
    let parsed = CompleteMultipartUploadResponse::parse(&body)
        .map_err(|_| store_failed("CompleteMultipartUpload", error_code(&body).unwrap_or("unexpected answer")))?;
    st.open.remove(&req.upload.upload_id).await?;
    // What the store says the object's checksum is, for the page to compare with its own.
    let checksum = upload.checksum_algorithm.and_then(|a| xml_text(&body, &format!("Checksum{}", a.as_str())));

    let head = st.s3.bucket.head_object(creds, &upload.key).sign(URL_TTL);
    let stored = st.s3.client.head(head).send().await.map_err(|e| store_failed("HeadObject", e))?;
    let stored_size = stored.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if stored_size != Some(upload.size) {
        let delete = st.s3.bucket.delete_object(creds, &upload.key).sign(URL_TTL);
        let _ = st.s3.client.delete(delete).send().await;
        st.quotas.refund(caller.name(), upload.size).await;
        return Err(bad_request(format!(
            "the stored object is {} bytes, not the {} declared; it was deleted",
            stored_size.map_or("an unknown number of".into(), |s| s.to_string()),
            upload.size
        )));
    }
    Ok(Json(json!({
        "key": upload.key,
        "location": st.object_url(&upload.key),
        "etag": parsed.etag(),
        "displayUrl": st.display_url(&upload.key),
        "checksum": checksum,
        "checksumType": checksum.and(xml_text(&body, "ChecksumType")),
    })))
}

/// `POST /multipart/abort`: abandons an upload and frees its parts.
pub async fn abort(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<MultipartSession>,
) -> Result<Json<Value>, ApiError> {
    let upload = st.open_upload(&req, &caller).await?;
    let action = st.s3.bucket.abort_multipart_upload(Some(&st.s3.credentials), &upload.key, &req.upload_id);
    send(st.s3.client.delete(action.sign(URL_TTL)), "AbortMultipartUpload").await?;
    st.open.remove(&req.upload_id).await?;
    st.quotas.refund(caller.name(), upload.size).await;
    Ok(Json(json!({})))
}

/// `POST /multipart/list`: the parts the store holds for an open upload, so that a page can
/// resume it and send only what is missing.
pub async fn list_parts(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<MultipartSession>,
) -> Result<Json<Value>, ApiError> {
    let upload = st.open_upload(&req, &caller).await?;
    let page = |marker: Option<u32>| {
        let mut action = st.s3.bucket.list_parts(Some(&st.s3.credentials), &upload.key, &req.upload_id);
        if let Some(marker) = marker.and_then(|m| u16::try_from(m).ok()) {
            action.set_part_number_marker(marker);
        }
        send(st.s3.client.get(action.sign(URL_TTL)), "ListParts")
    };
    let listed = all_listed_parts(page, || store_failed("ListParts", "unexpected answer")).await?;
    let parts: Vec<Value> =
        listed.iter().map(|p| json!({ "partNumber": p.part_number, "etag": p.etag, "size": p.size })).collect();
    Ok(Json(json!({ "parts": parts })))
}

/// `POST /put`: presigns a single `PutObject` with the content type and metadata signed in.
pub async fn sign_put(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<FileInfo>,
) -> Result<Json<Value>, ApiError> {
    let key = caller.admit(&req)?;
    let mut headers = signed_headers(&req.content_type, &req.metadata);
    headers.extend(file_checksum(&req)?);
    let mut action = st.s3.bucket.put_object(Some(&st.s3.credentials), &key);
    for (name, value) in &headers {
        action.headers_mut().insert(name.clone(), value.clone());
    }
    // The declared size, signed: the store refuses a body of any other length.
    action.headers_mut().insert("content-length", req.size.to_string());
    st.quotas.charge(caller.name(), req.size).await?;
    let url = action.sign(URL_TTL).to_string();
    let headers: StringMap = headers.into_iter().collect();
    Ok(Json(json!({ "key": key, "url": url, "headers": headers, "displayUrl": st.display_url(&key) })))
}

/// The checksum header (or form field) of a file sent in one request, when the request gives one.
fn file_checksum(req: &FileInfo) -> Result<Option<(String, String)>, ApiError> {
    match (req.checksum_algorithm, &req.checksum) {
        (Some(algorithm), Some(checksum)) => {
            Ok(Some((algorithm.header().to_owned(), checked_checksum(algorithm, checksum, "the file")?)))
        }
        (None, None) => Ok(None),
        _ => Err(bad_request("give both `checksumAlgorithm` and `checksum`, or neither")),
    }
}

/// `POST /post`: a POST policy for an HTML-form upload of the file, built by the library's
/// `sigv4::sign_post_form` as the page builds its own: the store itself enforces the key, the
/// declared size (exactly), the content type, the metadata, the checksum (when given) and the
/// expiry.
pub async fn sign_post(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<FileInfo>,
) -> Result<Json<Value>, ApiError> {
    post_form(&st, &caller, &req).await.map(Json)
}

/// `POST /files`: many files, each to go up in one request, signed in one call, in order: each
/// answer is a form POST as `/post` gives (the browser sends it without a CORS preflight), or
/// `{ error, status }`, that file's refusal alone.
pub async fn sign_files(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<FileBatch>,
) -> Result<Json<Value>, ApiError> {
    if req.files.is_empty() || req.files.len() > MOST_FILES_PER_BATCH {
        return Err(bad_request(format!("`files` must hold 1 to {MOST_FILES_PER_BATCH} files")));
    }
    let mut answers = Vec::with_capacity(req.files.len());
    for file in &req.files {
        answers.push(match post_form(&st, &caller, file).await {
            Ok(signed) => signed,
            Err(ApiError(status, message)) => json!({ "error": message, "status": status.as_u16() }),
        });
    }
    Ok(Json(json!({ "files": answers })))
}

/// The POST policy form for `req`, once its key and size are admitted and charged.
async fn post_form(st: &AppState, caller: &Caller, req: &FileInfo) -> Result<Value, ApiError> {
    let key = caller.admit(req)?;
    st.quotas.charge(caller.name(), req.size).await?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64);
    let scope = Scope { region: st.s3.bucket.region(), service: "s3" };
    let mut fields: Vec<(String, String)> = vec![
        ("key".into(), key.clone()),
        ("Content-Type".into(), req.content_type.clone()),
        ("success_action_status".into(), "201".into()),
    ];
    fields.extend(metadata_headers(&req.metadata));
    fields.extend(file_checksum(req)?);
    let expires_ms = now_ms + URL_TTL.as_millis() as f64;
    let fields = sigv4::sign_post_form(
        fields,
        st.s3.bucket.name(),
        req.size,
        &st.s3.signing_credentials(),
        scope,
        now_ms,
        expires_ms,
    );
    let fields: serde_json::Map<String, Value> = fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(json!({
        "key": key,
        "url": st.s3.bucket.base_url().as_str(),
        "fields": fields,
        "displayUrl": st.display_url(&key),
    }))
}

/// `POST /credentials`: temporary credentials confined to the caller's key prefix, for pages that
/// sign their own requests. The body may ask for a shorter `lifetimeSeconds` than the default.
pub async fn credentials(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<CredentialsRequest>,
) -> Result<Json<Value>, ApiError> {
    let issuer = st.s3.issuer.as_ref().ok_or_else(|| {
        ApiError(StatusCode::NOT_FOUND, "this server does not hand out credentials (see --sts-endpoint)".into())
    })?;
    // A grant counts as one upload against the quota: the bytes go straight to the store.
    st.quotas.charge(caller.name(), 0).await?;
    let lifetime = req.lifetime_seconds.unwrap_or(CREDENTIALS_TTL.as_secs()).clamp(1, CREDENTIALS_TTL.as_secs());
    let scope = GrantScope {
        bucket: st.s3.bucket.name(),
        region: st.s3.bucket.region(),
        endpoint: Some(&st.s3.endpoint),
        force_path_style: st.s3.path_style,
        key_prefix: &caller.policy.key_prefix,
    };
    let grant = issuer.issue(&scope, Duration::from_secs(lifetime), &st.s3.signing_credentials(), &st.s3.client).await;
    grant.map(Json).map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e))
}

/// `POST /credentials`'s body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRequest {
    #[serde(default)]
    lifetime_seconds: Option<u64>,
}

/// How long temporary credentials last at most: one hour, STS's default role session limit.
const CREDENTIALS_TTL: Duration = Duration::from_secs(3600);

/// Sends a request to the store and returns the body of a 2xx answer.
async fn send(request: reqwest::RequestBuilder, operation: &str) -> Result<String, ApiError> {
    let response = request.send().await.map_err(|e| store_failed(operation, e.without_url()))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| store_failed(operation, e.without_url()))?;
    if status.is_client_error() {
        // A request this server signed a moment ago: the store's refusal is about the request
        // itself (a key it cannot hold, an upload it no longer has), and is not worth retrying.
        let refusal = format!(
            "the store refused {operation}: {} {}",
            error_code(&body).unwrap_or_default(),
            xml_text(&body, "Message").unwrap_or_default()
        );
        let status = if status == StatusCode::NOT_FOUND { status } else { StatusCode::BAD_REQUEST };
        return Err(ApiError(status, refusal.trim_end().to_owned()));
    }
    if !status.is_success() {
        return Err(store_failed(operation, format!("HTTP {status} {}", error_code(&body).unwrap_or_default())));
    }
    Ok(body)
}

/// The `<Code>` of an S3 XML error body.
fn error_code(body: &str) -> Option<&str> {
    xml_text(body, "Code")
}
