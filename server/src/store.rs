//! The embedded S3-compatible store: `s3s-fs` (which verifies SigV4 signatures, presigned ones
//! included) on a loopback port, behind a CORS layer modelled on an S3 bucket CORS rule, with
//! the checks S3 makes and s3s-fs does not filled in ([`crate::s3_gaps`]).

use crate::faults::{self, Fault, Faults};
use crate::listener::{Acceptor, ConnectionLimits};
use crate::s3_gaps::{self, CompositeUploads, CorruptPart, StoreResponse, s3_error};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use s3_direct_upload::object_rules::{check_key, is_under_prefix};
use s3_direct_upload::sigv4::percent_decode;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Request, S3Response, S3Result, dto, s3_error};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

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

/// Temporary key pairs the server hands out for the credentials mode: the embedded store's
/// stand-in for STS. Each works only under its key prefix, only with its session token, and
/// only until it expires (then the store answers `ExpiredToken`).
#[derive(Default)]
pub struct TemporaryKeys(Mutex<HashMap<String, TemporaryKey>>);

struct TemporaryKey {
    secret: String,
    token: String,
    expires: SystemTime,
    prefix: String,
}

/// A temporary key pair, as handed to a page.
pub struct IssuedKey {
    /// Access key id.
    pub access_key_id: String,
    /// Secret key (for the page's signer only).
    pub secret_access_key: String,
    /// Session token, to be sent with every request.
    pub session_token: String,
    /// When it stops working.
    pub expires: SystemTime,
}

impl TemporaryKeys {
    /// A new key pair for objects under `prefix`, valid for `lifetime`. Keys expired for an
    /// hour are forgotten.
    pub fn issue(&self, prefix: &str, lifetime: Duration) -> IssuedKey {
        let now = SystemTime::now();
        let mut keys = self.0.lock().expect("lock");
        keys.retain(|_, k| k.expires + Duration::from_secs(3600) > now);
        let issued = IssuedKey {
            access_key_id: format!("ASIA{:016X}", rand::random::<u64>()),
            secret_access_key: format!("{:032x}{:08x}", rand::random::<u128>(), rand::random::<u32>()),
            session_token: format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>()),
            expires: now + lifetime,
        };
        let key = TemporaryKey {
            secret: issued.secret_access_key.clone(),
            token: issued.session_token.clone(),
            expires: issued.expires,
            prefix: prefix.to_owned(),
        };
        keys.insert(issued.access_key_id.clone(), key);
        issued
    }

    /// The session token and key prefix of the temporary `access_key`, if it is one.
    fn scope_of(&self, access_key: &str) -> Option<(String, String)> {
        let keys = self.0.lock().expect("lock");
        keys.get(access_key).map(|key| (key.token.clone(), key.prefix.clone()))
    }
}

/// Who may do what in the embedded store: the server's own key pair anything, a temporary one
/// only what its grant covers.
struct StoreAuth {
    access_key: String,
    secret_key: String,
    temporary: Arc<TemporaryKeys>,
}

#[async_trait::async_trait]
impl S3Auth for StoreAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            return Ok(SecretKey::from(self.secret_key.clone()));
        }
        let keys = self.temporary.0.lock().expect("lock");
        match keys.get(access_key) {
            Some(key) if key.expires > SystemTime::now() => Ok(SecretKey::from(key.secret.clone())),
            Some(_) => Err(s3_error!(ExpiredToken, "The provided token has expired.")),
            None => Err(s3_error!(InvalidAccessKeyId)),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for StoreAuth {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else { return Err(s3_error!(AccessDenied, "Anonymous access")) };
        if credentials.access_key == self.access_key {
            return Ok(());
        }
        let (token, prefix) =
            self.temporary.scope_of(&credentials.access_key).ok_or_else(|| s3_error!(InvalidAccessKeyId))?;
        let operation = cx.s3_op().name();
        if !GRANTED_OPERATIONS.contains(&operation) {
            return Err(s3_error!(AccessDenied, "Access Denied: temporary credentials may not {operation}"));
        }
        if operation == "PostObject" {
            // A form carries its key as a field: `SharedUploads::post_object` checks it.
            return Ok(());
        }
        let in_query =
            cx.uri().query().unwrap_or_default().split('&').find_map(|p| p.strip_prefix("X-Amz-Security-Token="));
        let in_header = cx.headers().get("x-amz-security-token").and_then(|v| v.to_str().ok());
        let sent = in_header.map(str::to_owned).or_else(|| in_query.map(percent_decode));
        if sent.as_deref() != Some(token.as_str()) {
            return Err(s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."));
        }
        match cx.s3_path() {
            S3Path::Object { key, .. } if is_under_prefix(key, &prefix) => Ok(()),
            _ => Err(s3_error!(AccessDenied, "Access Denied: outside the key prefix of these credentials")),
        }
    }
}

/// What temporary credentials may do: the operations of the session policy the server would
/// give STS (`credentials::session_policy`: s3:PutObject, s3:GetObject, s3:AbortMultipartUpload,
/// s3:ListMultipartUploadParts), and nothing else (no DeleteObject, no listing).
const GRANTED_OPERATIONS: [&str; 9] = [
    "PutObject",
    "PostObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "GetObject",
    "HeadObject",
];

/// s3s-fs binds each multipart upload to the access key that created it; S3 does not (any key
/// allowed to write the object may add parts). Requests on upload ids are therefore passed to
/// s3s-fs as the server's own key, once [`StoreAuth`] has authorized them, so an upload begun
/// with temporary credentials goes on after they are replaced.
struct SharedUploads {
    fs: s3s_fs::FileSystem,
    /// The folder s3s-fs keeps its files in.
    root: PathBuf,
    own: s3s::auth::Credentials,
    temporary: Arc<TemporaryKeys>,
    composite: CompositeUploads,
}

impl SharedUploads {
    /// Refuses a key outside the one key rule before s3s-fs turns it into a path (every
    /// operation passes here, whoever signed it, so no key can name a file outside its bucket's
    /// folder); and, for an operation that `writes`, a key s3s-fs could not write, since it
    /// keeps each object as a file: one that names a folder of other objects, or lies under an
    /// object (S3 has no such limit; here a write would fail as a 500 every time).
    fn admit(&self, bucket: &str, key: &str, writes: bool) -> S3Result<()> {
        check_key(key).map_err(|e| s3_error!(InvalidArgument, "{e}"))?;
        if !writes {
            return Ok(());
        }
        let bucket_dir = self.root.join(bucket);
        let under_object =
            Path::new(key).ancestors().skip(1).any(|a| !a.as_os_str().is_empty() && bucket_dir.join(a).is_file());
        if bucket_dir.join(key).is_dir() || under_object {
            return Err(s3_error!(
                InvalidArgument,
                "this store keeps objects as files: a key cannot be both an object and the folder of another"
            ));
        }
        Ok(())
    }

    fn as_own<T>(&self, mut req: S3Request<T>) -> S3Request<T> {
        if req.credentials.is_some() {
            req.credentials = Some(self.own.clone());
        }
        req
    }
}

/// Delegates each operation the uploads use to s3s-fs, the upload-id ones as the server's key;
/// `$extra` are the operations written out.
macro_rules! delegate {
    (written: { $($extra:item)* } $($op:ident($input:ident) -> $output:ident, as_own: $own:literal, writes: $writes:literal;)*) => {
        #[async_trait::async_trait]
        impl S3 for SharedUploads {
            $(
                async fn $op(&self, req: S3Request<dto::$input>) -> S3Result<S3Response<dto::$output>> {
                    self.admit(&req.input.bucket, &req.input.key, $writes)?;
                    let req = if $own { self.as_own(req) } else { req };
                    self.fs.$op(req).await
                }
            )*
            $($extra)*
        }
    };
}

delegate! {
    written: {
    /// A form POST (stored as a PUT by s3s-fs). With temporary credentials the key must be
    /// under their prefix. Their session token, a form field, goes unchecked here: s3s passes
    /// neither the form nor its policy on (S3 itself requires and checks it).
    async fn post_object(&self, req: S3Request<dto::PostObjectInput>) -> S3Result<S3Response<dto::PostObjectOutput>> {
        self.admit(&req.input.bucket, &req.input.key, true)?;
        let scope = req.credentials.as_ref().and_then(|c| self.temporary.scope_of(&c.access_key));
        if let Some((_, prefix)) = scope
            && !is_under_prefix(&req.input.key, &prefix)
        {
            return Err(s3_error!(AccessDenied, "Access Denied: outside the key prefix of these credentials"));
        }
        self.fs.post_object(req).await
    }

    /// Remembers uploads created with a composite checksum ([`s3_gaps`]).
    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        self.admit(&req.input.bucket, &req.input.key, true)?;
        let (algorithm, has_type) = (req.input.checksum_algorithm.clone(), req.input.checksum_type.is_some());
        let response = self.fs.create_multipart_upload(self.as_own(req)).await?;
        self.composite.created(algorithm.as_ref(), has_type, response.output.upload_id.as_deref());
        Ok(response)
    }

    /// A part, streamed to disk with its `Content-MD5` checked on the way ([`s3_gaps`]).
    async fn upload_part(&self, req: S3Request<dto::UploadPartInput>) -> S3Result<S3Response<dto::UploadPartOutput>> {
        self.admit(&req.input.bucket, &req.input.key, false)?;
        let mut req = self.as_own(req);
        let corrupt = req.extensions.get::<CorruptPart>().is_some();
        let mut bad_digest = None;
        if let Some(body) = req.input.body.take() {
            let md5 = req.input.content_md5.as_deref();
            let (body, flag) = s3_gaps::checked_part_body(body, md5, req.input.content_length, corrupt);
            req.input.body = Some(body);
            bad_digest = Some(flag);
        }
        let result = self.fs.upload_part(req).await;
        match bad_digest {
            Some(flag) if flag.load(std::sync::atomic::Ordering::SeqCst) => Err(s3_gaps::bad_digest()),
            _ => result,
        }
    }

    /// Completes an upload, answering with what S3 answers ([`s3_gaps`]).
    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        self.admit(&req.input.bucket, &req.input.key, true)?;
        let composite = match self.composite.of(&req.input.upload_id) {
            Some(algorithm) => {
                Some((algorithm, s3_gaps::composite_part_digests(algorithm, req.input.multipart_upload.as_ref())?))
            }
            None => None,
        };
        let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let location = host.map(|host| format!("http://{host}{}", req.uri.path()));
        let mut response = self.fs.complete_multipart_upload(self.as_own(req)).await?;
        s3_gaps::complete_output(&mut response.output, location, composite);
        Ok(response)
    }
    }
    put_object(PutObjectInput) -> PutObjectOutput, as_own: false, writes: true;
    get_object(GetObjectInput) -> GetObjectOutput, as_own: false, writes: false;
    head_object(HeadObjectInput) -> HeadObjectOutput, as_own: false, writes: false;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput, as_own: false, writes: false;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput, as_own: true, writes: false;
    list_parts(ListPartsInput) -> ListPartsOutput, as_own: true, writes: false;
}

/// Access to the embedded store: where it listens and the key pair it accepts.
#[derive(Clone)]
pub struct EmbeddedStore {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Access key id (random, kept in the keys file).
    pub access_key: String,
    /// Secret key (random, kept in the keys file; never leaves this process).
    pub secret_key: String,
    /// Stops the store for the given time (closing every connection), then starts it again on
    /// the same port: a real outage, for the tests.
    pub restart: mpsc::UnboundedSender<Duration>,
    /// The temporary key pairs it accepts besides its own.
    pub temporary: Arc<TemporaryKeys>,
}

/// The store's key pair, from `file` (`ACCESS_KEY SECRET_KEY`), made and written there (readable
/// by this user alone) on the first run. Kept across restarts: s3s-fs lets only the key that
/// created a multipart upload add its parts, so a new pair would orphan every open upload.
fn own_keys(file: &Path) -> std::io::Result<(String, String)> {
    if let Ok(text) = std::fs::read_to_string(file)
        && let Some((access, secret)) = text.trim().split_once(' ')
    {
        return Ok((access.to_owned(), secret.to_owned()));
    }
    let access_key = format!("AK{:016X}", rand::random::<u64>());
    let secret_key = format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(file)?, format!("{access_key} {secret_key}\n").as_bytes())?;
    Ok((access_key, secret_key))
}

/// Starts the store on `listen`, keeping its files under `root` (a folder for the store alone,
/// objects in `root/bucket`, s3s-fs's bookkeeping beside them) and its key pair in `keys_file`
/// (outside `root`). With `faults`, part PUTs go through fault injection first.
pub async fn start(
    listen: SocketAddr,
    root: &Path,
    keys_file: &Path,
    bucket: &str,
    cors: CorsRule,
    faults: Option<Arc<Faults>>,
    limits: ConnectionLimits,
) -> std::io::Result<EmbeddedStore> {
    std::fs::create_dir_all(root.join(bucket))?;
    let (access_key, secret_key) = own_keys(keys_file)?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let own =
        s3s::auth::Credentials { access_key: access_key.clone(), secret_key: SecretKey::from(secret_key.clone()) };
    let temporary = Arc::new(TemporaryKeys::default());
    let mut builder = S3ServiceBuilder::new(SharedUploads {
        root: root.to_owned(),
        fs,
        own,
        temporary: temporary.clone(),
        composite: CompositeUploads::default(),
    });
    let auth =
        || StoreAuth { access_key: access_key.clone(), secret_key: secret_key.clone(), temporary: temporary.clone() };
    builder.set_auth(auth());
    builder.set_access(auth());
    let store = Store { s3: builder.build(), cors: Arc::new(cors), faults, acceptor: Arc::new(Acceptor::new(limits)) };

    let mut listener = TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let (restart, mut restarts) = mpsc::unbounded_channel::<Duration>();
    tokio::spawn(async move {
        loop {
            let down = store.serve_until_restart(listener, &mut restarts).await;
            if let Some(faults) = &store.faults {
                faults.on_restart(down);
            }
            tokio::time::sleep(down).await;
            listener = loop {
                match TcpListener::bind(address).await {
                    Ok(listener) => break listener,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
        }
    });
    Ok(EmbeddedStore { endpoint: format!("http://{address}"), access_key, secret_key, restart, temporary })
}

#[derive(Clone)]
struct Store {
    s3: S3Service,
    cors: Arc<CorsRule>,
    faults: Option<Arc<Faults>>,
    acceptor: Arc<Acceptor>,
}

impl Store {
    /// Serves connections until a restart is asked for; then drops the listener and every
    /// connection, and returns how long to stay down.
    async fn serve_until_restart(
        &self,
        listener: TcpListener,
        restarts: &mut mpsc::UnboundedReceiver<Duration>,
    ) -> Duration {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.acceptor.accept(&listener) => {
                    while connections.try_join_next().is_some() {}
                    if let Ok(connection) = accepted {
                        let store = self.clone();
                        connections.spawn(connection.serve(service_fn(move |req| store.clone().handle(req))));
                    }
                }
                down = restarts.recv() => return down.unwrap_or(Duration::MAX),
            }
        }
    }

    async fn handle(self, req: Request<Incoming>) -> Result<StoreResponse, s3s::HttpError> {
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return Ok(preflight(&req, origin.as_deref(), &self.cors));
        }
        let upload_id = part_upload_id(&req);
        let part_of = self.faults.as_ref().zip(upload_id.as_deref());
        let fault = part_of.as_ref().and_then(|(faults, id)| faults.on_part_request(id));
        // However the request ends (an answer, a reset, an error), it is no longer in flight.
        let _answered = part_of.as_ref().map(|(faults, _)| PartAnswered(faults));
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let mut req = req;
        if matches!(fault, Some((Fault::Corrupt, _))) {
            req.extensions_mut().insert(CorruptPart);
        }
        let mut response = match fault {
            _ if declared.is_some_and(|length| length > MAX_BODY) => s3_error(
                StatusCode::BAD_REQUEST,
                "<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size (5 GiB in one request).</Message></Error>",
            ),
            Some((fault, stall)) if fault != Fault::Corrupt => inject(req, fault, stall).await?,
            _ => s3_gaps::with_server_time(self.s3.call(req.map(drained_if_refused)).await?).await?,
        };
        if let Some((faults, id)) = &part_of
            && response.status().is_success()
        {
            faults.on_part_stored(id);
        }
        if let Some(origin) = origin.filter(|o| self.cors.allows_origin(o)) {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value(&origin));
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
            if !self.cors.expose_headers.is_empty() {
                headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value(&self.cors.expose_headers.join(", ")));
            }
        }
        Ok(response)
    }
}

/// Most bytes of a refused request's body read and thrown away, so that the browser sees the
/// refusal: a store that answers early and closes mid-body leaves Firefox with a network error
/// instead (an `ExpiredToken` that looks like a failed connection is retried in vain). Above
/// the default part size (5 MiB), far below what would cost memory: nothing is kept.
const DRAINED_WHEN_REFUSED: u64 = 64 << 20;

/// A request body as s3s reads it, through a small channel: when s3s refuses the request and
/// drops the body unread, the rest (up to [`DRAINED_WHEN_REFUSED`]) is read and discarded.
fn drained_if_refused(incoming: Incoming) -> s3s::Body {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, s3s::StdError>>(4);
    tokio::spawn(async move {
        let mut incoming = incoming;
        let mut forwarding = true;
        let mut drained = 0u64;
        while let Some(frame) = incoming.frame().await {
            let Ok(frame) = frame else { break };
            let Ok(data) = frame.into_data() else { continue };
            if forwarding {
                forwarding = sender.send(Ok(data)).await.is_ok();
            } else {
                drained += data.len() as u64;
                if drained > DRAINED_WHEN_REFUSED {
                    break;
                }
            }
        }
    });
    s3s::Body::from(Box::pin(ReceiverStream(receiver)) as s3s::stream::DynByteStream)
}

/// The receiving end of [`drained_if_refused`]'s channel, as a byte stream.
struct ReceiverStream(mpsc::Receiver<Result<Bytes, s3s::StdError>>);

impl futures::Stream for ReceiverStream {
    type Item = Result<Bytes, s3s::StdError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

impl s3s::stream::ByteStream for ReceiverStream {}

/// Largest request body the store takes: S3's largest single upload (a PUT, a part, or a form's
/// file), with 1 MiB of room for a form's fields. Anything larger is refused before it is read.
const MAX_BODY: u64 = (5 << 30) + (1 << 20);

/// The upload id of an `UploadPart` request (`PUT ...?partNumber=N&uploadId=ID`).
fn part_upload_id(req: &Request<Incoming>) -> Option<String> {
    if req.method() != Method::PUT {
        return None;
    }
    let query = req.uri().query()?;
    let mut pairs = query.split('&').filter_map(|pair| pair.split_once('='));
    let has_part_number = query.split('&').any(|pair| pair.starts_with("partNumber="));
    let upload_id = pairs.find(|(name, _)| *name == "uploadId").map(|(_, id)| id.to_owned());
    upload_id.filter(|_| has_part_number)
}

/// Tells the fault switchboard, when dropped, that a part PUT is no longer in flight.
struct PartAnswered<'a>(&'a Faults);

impl Drop for PartAnswered<'_> {
    fn drop(&mut self) {
        self.0.on_part_done();
    }
}

/// Answers a request with `fault`: after reading the body as a store would, or, for a reset,
/// by dropping the connection part-way through it.
async fn inject(req: Request<Incoming>, fault: Fault, stall: Duration) -> Result<StoreResponse, s3s::HttpError> {
    let mut body = req.into_body();
    if fault == Fault::Reset {
        let _ = body.frame().await;
        return Err(s3s::HttpError::from_std_error("connection reset by fault injection".into()));
    }
    if fault == Fault::Stall {
        tokio::time::sleep(stall).await;
    }
    // Drained, not kept: a store reads what it refuses, but holds none of it.
    while let Some(Ok(_)) = body.frame().await {}
    let (status, xml) = faults::answer(fault).expect("every fault but a reset or corruption answers");
    Ok(s3_error(StatusCode::from_u16(status).expect("valid status"), xml))
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
/// per open upload at the store's root.
pub fn open_multipart_uploads(root: &Path) -> std::io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_prefix(".upload-").and_then(|n| n.strip_suffix(".json")) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}
