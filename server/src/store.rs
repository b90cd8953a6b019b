//! The embedded S3-compatible store: `s3s-fs` (which verifies SigV4 signatures, presigned ones
//! included) on a loopback port, behind a CORS layer modelled on an S3 bucket CORS rule.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

/// One bucket CORS rule, as S3 holds it (`AllowedOrigins`, `AllowedMethods`, `AllowedHeaders`,
/// `ExposeHeaders`, `MaxAgeSeconds`).
#[derive(Debug, Clone)]
pub struct CorsRule {
    /// Origins allowed, or `*`.
    pub allowed_origins: Vec<String>,
    /// Methods allowed.
    pub allowed_methods: Vec<String>,
    /// Response headers the page may read. Without `ETag` here, multipart uploads from a
    /// browser cannot complete: that is the configuration mistake tests reproduce.
    pub expose_headers: Vec<String>,
    /// How long browsers may cache a preflight answer.
    pub max_age_seconds: u32,
}

impl CorsRule {
    /// The rule the README recommends: any origin (narrow it in production), the methods an
    /// upload needs, any request header, `ETag` exposed.
    pub fn for_uploads(allowed_origins: Vec<String>, expose_etag: bool) -> Self {
        CorsRule {
            allowed_origins,
            allowed_methods: ["GET", "PUT", "POST", "DELETE", "HEAD"].map(String::from).to_vec(),
            expose_headers: if expose_etag { vec!["ETag".into()] } else { vec![] },
            max_age_seconds: 3000,
        }
    }

    fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// Access to the embedded store: where it listens and the key pair it accepts.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Access key id (random per run).
    pub access_key: String,
    /// Secret key (random per run; never leaves this process).
    pub secret_key: String,
}

/// Starts the store on `listen`, keeping objects under `data_dir/bucket`.
pub async fn start(
    listen: SocketAddr,
    data_dir: &Path,
    bucket: &str,
    cors: CorsRule,
) -> std::io::Result<EmbeddedStore> {
    std::fs::create_dir_all(data_dir.join(bucket))?;
    let access_key = format!("AK{:016X}", rand::random::<u64>());
    let secret_key = format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    let fs = s3s_fs::FileSystem::new(data_dir).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key.clone(), secret_key.clone()));
    let s3 = builder.build();

    let listener = TcpListener::bind(listen).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let cors = Arc::new(cors);
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let (s3, cors) = (s3.clone(), cors.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, s3.clone(), cors.clone()));
                let _ = ConnBuilder::new(TokioExecutor::new()).serve_connection(TokioIo::new(socket), service).await;
            });
        }
    });
    Ok(EmbeddedStore { endpoint, access_key, secret_key })
}

type StoreResponse = Response<s3s::Body>;

async fn handle(req: Request<Incoming>, s3: S3Service, cors: Arc<CorsRule>) -> Result<StoreResponse, s3s::HttpError> {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return Ok(preflight(&req, origin.as_deref(), &cors));
    }
    let mut response = s3.call(req.map(s3s::Body::from)).await?;
    if let Some(origin) = origin.filter(|o| cors.allows_origin(o)) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value(&origin));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if !cors.expose_headers.is_empty() {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value(&cors.expose_headers.join(", ")));
        }
    }
    Ok(response)
}

/// Answers a CORS preflight the way S3 does: 200 with the grants, or 403 when no rule matches.
fn preflight(req: &Request<Incoming>, origin: Option<&str>, cors: &CorsRule) -> StoreResponse {
    let method = req.headers()[header::ACCESS_CONTROL_REQUEST_METHOD].to_str().unwrap_or_default();
    let requested_headers = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let allowed = origin.is_some_and(|o| cors.allows_origin(o)) && cors.allowed_methods.iter().any(|m| m == method);
    let mut response = Response::new(s3s::Body::empty());
    if !allowed {
        *response.status_mut() = StatusCode::FORBIDDEN;
        *response.body_mut() = s3s::Body::from(Bytes::from_static(
            b"<Error><Code>AccessForbidden</Code><Message>CORSResponse: This CORS request is not allowed.</Message></Error>",
        ));
        return response;
    }
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value(origin.unwrap_or_default()));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value(&cors.allowed_methods.join(", ")));
    if !requested_headers.is_empty() {
        // AllowedHeaders "*": every requested header is granted.
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value(&requested_headers));
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, value(&cors.max_age_seconds.to_string()));
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Multipart uploads the store holds open (created, neither completed nor aborted). `s3s-fs`
/// has no ListMultipartUploads, so this reads its bookkeeping files: one `.upload-<id>.json`
/// per open upload at the data root.
pub fn open_multipart_uploads(data_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(data_dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_prefix(".upload-").and_then(|n| n.strip_suffix(".json")) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}
