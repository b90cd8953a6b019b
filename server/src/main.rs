//! Reference backend for s3-direct-upload.
//!
//! One process: the JSON upload API under `/api/uploads`, the demo page (`www/`) and the built
//! library (`pkg/`), and, unless another S3 endpoint is configured, an embedded S3-compatible
//! store on a second loopback port. Run with `--help` for the flags.

mod api;
mod auth;
mod credentials;
mod database;
mod faults;
#[cfg(test)]
mod isolation_tests;
mod listener;
mod policy;
mod registry;
mod s3_gaps;
#[cfg(test)]
mod signing_tests;
mod store;

use api::{AppState, S3Target};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method};
use axum::routing::{get, post};
use hyper_util::service::TowerToHyperService;
use policy::UploadPolicy;
use rusty_s3::{Bucket, Credentials, UrlStyle};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};
use tower_http::services::ServeDir;

const HELP: &str = "\
reference-server: the s3-direct-upload reference backend

  --listen ADDR           API and demo page (default 127.0.0.1:8080; port 0 picks a free one)
  --store-listen ADDR     embedded S3 store (default 127.0.0.1:0)
  --store-public-url URL  the URL pages (and this server) reach the embedded store at, when not
                          its listening address (e.g. through a proxy that adds latency)
  --data-dir DIR          the server's state (DIR/state.sqlite3: open uploads and quotas), and
                          the embedded store's files in DIR/store (objects in DIR/store/BUCKET);
                          reuse it so a restarted server still serves uploads begun before and
                          remembers quotas (default: a new temp dir)
  --database FILE|URL     the SQLite database file instead of DIR/state.sqlite3, or a
                          PostgreSQL URL (postgres://user@host:port/db) that several instances
                          share
  --bucket NAME           bucket (default direct-uploads)
  --no-expose-etag        leave ETag out of the store's CORS ExposeHeaders (to test that mistake)
  --allowed-origins LIST  comma-separated origins for the store's CORS rule (default *)
  --allowed-methods LIST  the store's CORS rule's methods (default GET,PUT,POST,DELETE,HEAD;
                          fewer, to test that mistake)
  --api-origins LIST      comma-separated page origins that may call the API from another
                          origin, or * for any (default: none, only pages this server serves)
  --max-connections N     connections each listener serves at once (default 1024)
  --header-timeout SECS   time a client has to send a request's headers (default 30)
  --idle-timeout SECS     a connection on which nothing moves this long is closed (default 60)
  --key-prefix P          every object key starts with P (default uploads/)
  --max-size BYTES        largest accepted file (default 10737418240, 10 GiB)
  --allowed-types LIST    comma-separated content types, 'image/*' style (default */*)
  --www DIR, --pkg DIR    static files (defaults www, pkg)
  --store-only            run the embedded store alone (at --store-listen, files and keys in
                          --data-dir), for several API instances (--s3-endpoint, --path-style,
                          --s3-keys-file DIR/store-keys); its ready file says {\"store\",
                          \"storeRoot\", \"bucketDir\", \"keysFile\"}
  --ready-file FILE       write {\"app\", \"store\", \"dataDir\", \"bucketDir\"} as JSON once listening
  --test-hooks            add /__test/ routes used by the browser tests
  --s3-endpoint URL       use this S3 endpoint instead of the embedded store; credentials
                          from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]
  --s3-keys-file FILE     `ACCESS_KEY SECRET_KEY` for --s3-endpoint, instead of the environment
                          (e.g. DIR/store-keys of a --store-only process)
  --s3-region R           region for --s3-endpoint (default us-east-1)
  --path-style            path-style addressing for --s3-endpoint (MinIO, s3s)
  --sts-endpoint URL      hand out temporary credentials (credentials mode) from this STS endpoint
  --role-arn ARN          the role STS AssumeRole gives (its session policy narrows it to a
                          user's prefix); with the embedded store, credentials come from the store
  --auth MODE             who may call the API: none (default; one anonymous user, for demos on
                          loopback), tokens (Authorization: Bearer, from --tokens-file), or
                          sessions (HMAC-signed session tokens, secret from --session-secret-file).
                          With tokens or sessions, each user's keys live under PREFIX<user>/
  --tokens-file FILE      `USER TOKEN` lines, for --auth tokens
  --session-secret-file F the shared secret (32+ bytes) of --auth sessions
  --issue-session USER    print a 24-hour session token for USER (with --session-secret-file) and exit
  --quota-uploads N       most uploads per user in any 24 hours
  --quota-bytes BYTES     most bytes per user in any 24 hours (an aborted upload's come back)
  --max-open-uploads N    most multipart uploads one user may hold open (default 1000)";

struct Config {
    listen: SocketAddr,
    store_listen: SocketAddr,
    store_public_url: Option<String>,
    data_dir: Option<PathBuf>,
    bucket: String,
    expose_etag: bool,
    allowed_origins: Vec<String>,
    allowed_methods: Option<Vec<String>>,
    policy: UploadPolicy,
    www: PathBuf,
    pkg: PathBuf,
    ready_file: Option<PathBuf>,
    test_hooks: bool,
    s3_endpoint: Option<String>,
    s3_keys_file: Option<PathBuf>,
    store_only: bool,
    s3_region: String,
    path_style: bool,
    sts_endpoint: Option<String>,
    role_arn: Option<String>,
    auth: String,
    tokens_file: Option<PathBuf>,
    session_secret_file: Option<PathBuf>,
    issue_session: Option<String>,
    quota_uploads: Option<u32>,
    quota_bytes: Option<u64>,
    max_open_uploads: usize,
    database: Option<String>,
    api_origins: Vec<String>,
    limits: listener::ConnectionLimits,
}

fn parse_args() -> Result<Config, String> {
    let mut c = Config {
        listen: "127.0.0.1:8080".parse().expect("valid"),
        store_listen: "127.0.0.1:0".parse().expect("valid"),
        store_public_url: None,
        data_dir: None,
        bucket: "direct-uploads".into(),
        expose_etag: true,
        allowed_origins: vec!["*".into()],
        allowed_methods: None,
        policy: UploadPolicy { key_prefix: "uploads/".into(), max_size: 10 << 30, allowed_types: vec!["*/*".into()] },
        www: "www".into(),
        pkg: "pkg".into(),
        ready_file: None,
        test_hooks: false,
        s3_endpoint: None,
        s3_keys_file: None,
        store_only: false,
        s3_region: "us-east-1".into(),
        path_style: false,
        sts_endpoint: None,
        role_arn: None,
        auth: "none".into(),
        tokens_file: None,
        session_secret_file: None,
        issue_session: None,
        quota_uploads: None,
        quota_bytes: None,
        max_open_uploads: 1000,
        database: None,
        api_origins: Vec::new(),
        limits: listener::ConnectionLimits::default(),
    };
    let list = |v: String| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => c.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--store-listen" => c.store_listen = value()?.parse().map_err(|e| format!("--store-listen: {e}"))?,
            "--store-public-url" => c.store_public_url = Some(value()?),
            "--data-dir" => c.data_dir = Some(value()?.into()),
            "--database" => c.database = Some(value()?),
            "--bucket" => c.bucket = value()?,
            "--no-expose-etag" => c.expose_etag = false,
            "--allowed-origins" => c.allowed_origins = list(value()?),
            "--allowed-methods" => c.allowed_methods = Some(list(value()?.to_ascii_uppercase())),
            "--key-prefix" => {
                c.policy.key_prefix = value()?;
                s3_direct_upload::object_rules::check_prefix(&c.policy.key_prefix)
                    .map_err(|e| format!("--key-prefix: {e}"))?
            }
            "--max-size" => c.policy.max_size = value()?.parse().map_err(|e| format!("--max-size: {e}"))?,
            "--allowed-types" => c.policy.allowed_types = list(value()?.to_ascii_lowercase()),
            "--www" => c.www = value()?.into(),
            "--pkg" => c.pkg = value()?.into(),
            "--ready-file" => c.ready_file = Some(value()?.into()),
            "--test-hooks" => c.test_hooks = true,
            "--s3-endpoint" => c.s3_endpoint = Some(value()?),
            "--s3-keys-file" => c.s3_keys_file = Some(value()?.into()),
            "--store-only" => c.store_only = true,
            "--s3-region" => c.s3_region = value()?,
            "--path-style" => c.path_style = true,
            "--sts-endpoint" => c.sts_endpoint = Some(value()?),
            "--role-arn" => c.role_arn = Some(value()?),
            "--auth" => c.auth = value()?,
            "--tokens-file" => c.tokens_file = Some(value()?.into()),
            "--session-secret-file" => c.session_secret_file = Some(value()?.into()),
            "--issue-session" => c.issue_session = Some(value()?),
            "--quota-uploads" => c.quota_uploads = Some(value()?.parse().map_err(|e| format!("--quota-uploads: {e}"))?),
            "--api-origins" => c.api_origins = list(value()?),
            "--max-connections" => {
                c.limits.max_connections = value()?.parse().map_err(|e| format!("--max-connections: {e}"))?
            }
            "--header-timeout" => c.limits.header_timeout = seconds(&value()?, "--header-timeout")?,
            "--idle-timeout" => c.limits.idle_timeout = seconds(&value()?, "--idle-timeout")?,
            "--max-open-uploads" => {
                c.max_open_uploads = value()?.parse().map_err(|e| format!("--max-open-uploads: {e}"))?
            }
            "--quota-bytes" => c.quota_bytes = Some(value()?.parse().map_err(|e| format!("--quota-bytes: {e}"))?),
            "--help" | "-h" => return Err(HELP.into()),
            other => return Err(format!("unknown flag {other}\n\n{HELP}")),
        }
    }
    Ok(c)
}

/// A duration flag in seconds (fractions allowed, e.g. 0.5), above zero.
fn seconds(value: &str, flag: &str) -> Result<std::time::Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && s.is_finite())
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{flag}: give seconds above 0, e.g. 30"))
}

#[tokio::main]
async fn main() {
    let config = match parse_args() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(config).await {
        eprintln!("reference-server: {e}");
        std::process::exit(1);
    }
}

/// Largest API request body: a complete request for 10,000 parts with checksums is about 1 MiB.
const API_BODY_LIMIT: usize = 4 << 20;

/// The API's CORS answers: the listed page origins (or any, for `*`) may call it, with the
/// headers the page asks for (`Authorization`, `Content-Type`, its `backendHeaders`), and cache
/// the preflight for 10 minutes.
fn api_cors(origins: &[String]) -> Result<CorsLayer, String> {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        return Ok(layer.allow_origin(Any));
    }
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|_| format!("--api-origins: {o:?} is not an origin")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(layer.allow_origin(AllowOrigin::list(origins)))
}

/// The authenticator `--auth` names.
fn authenticator(c: &Config) -> Result<Box<dyn auth::Authenticator>, String> {
    let read = |file: &Option<PathBuf>, flag: &str| {
        let file = file.as_ref().ok_or(format!("--auth {} needs {flag}", c.auth))?;
        std::fs::read(file).map_err(|e| format!("{flag} {}: {e}", file.display()))
    };
    Ok(match c.auth.as_str() {
        "none" => Box::new(auth::NoAuth),
        "tokens" => {
            Box::new(auth::BearerTokens::parse(&String::from_utf8_lossy(&read(&c.tokens_file, "--tokens-file")?))?)
        }
        "sessions" => Box::new(sessions(c)?),
        other => return Err(format!("--auth {other}: use none, tokens or sessions")),
    })
}

fn sessions(c: &Config) -> Result<auth::HmacSessions, String> {
    let file = c.session_secret_file.as_ref().ok_or("sessions need --session-secret-file")?;
    let secret = std::fs::read(file).map_err(|e| format!("--session-secret-file {}: {e}", file.display()))?;
    auth::HmacSessions::new(secret.trim_ascii().to_vec())
}

async fn run(c: Config) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(user) = &c.issue_session {
        if !auth::valid_user(user) {
            return Err(format!("{user:?} is not a user name (1-64 of A-Z a-z 0-9 _ -)").into());
        }
        println!("{}", sessions(&c)?.issue(user, std::time::Duration::from_secs(24 * 3600)));
        return Ok(());
    }
    let authenticator = authenticator(&c)?;
    if c.auth == "none" && !c.store_only {
        eprintln!(
            "reference-server: --auth none: anyone who reaches this server can upload (fine for a demo on loopback)"
        );
    }
    let data_dir = match &c.data_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("s3du-store-{}", std::process::id())),
    };
    std::fs::create_dir_all(&data_dir)?;
    // The store's own folder: nothing of the server's (the registry) lives where it writes.
    let store_root = data_dir.join("store");
    let faults = c.test_hooks.then(|| Arc::new(faults::Faults::default()));
    let (endpoint, credentials, url_style, store) = match &c.s3_endpoint {
        Some(endpoint) => {
            let credentials = match &c.s3_keys_file {
                Some(file) => keys_from_file(file)?,
                None => Credentials::from_env().ok_or(
                    "--s3-endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or --s3-keys-file",
                )?,
            };
            let style = if c.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
            (endpoint.clone(), credentials, style, None)
        }
        None => {
            let mut cors = store::CorsRule::for_uploads(c.allowed_origins.clone(), c.expose_etag);
            if let Some(methods) = &c.allowed_methods {
                cors.allowed_methods = methods.clone();
            }
            let keys = data_dir.join("store-keys");
            let embedded =
                store::start(c.store_listen, &store_root, &keys, &c.bucket, cors, faults.clone(), c.limits).await?;
            if c.store_only {
                return serve_store_only(&c, &embedded, &store_root, &keys).await;
            }
            let credentials = Credentials::new(embedded.access_key.clone(), embedded.secret_key.clone());
            let endpoint = c.store_public_url.clone().unwrap_or_else(|| embedded.endpoint.clone());
            (endpoint, credentials, UrlStyle::Path, Some(embedded))
        }
    };
    let bucket = Bucket::new(endpoint.parse()?, url_style, c.bucket.clone(), c.s3_region.clone())?;
    let issuer = match (&c.sts_endpoint, &c.role_arn, &store) {
        (Some(sts), Some(role), _) => Some(credentials::Issuer::Sts { endpoint: sts.clone(), role_arn: role.clone() }),
        (Some(_), None, _) | (None, Some(_), _) => return Err("--sts-endpoint and --role-arn go together".into()),
        (None, None, Some(embedded)) => Some(credentials::Issuer::Embedded(embedded.temporary.clone())),
        (None, None, None) => None,
    };
    let db = database::open(c.database.as_deref(), &data_dir.join("state.sqlite3")).await?;
    let state = Arc::new(AppState {
        s3: S3Target {
            bucket,
            credentials,
            client: reqwest::Client::new(),
            endpoint,
            path_style: matches!(url_style, UrlStyle::Path),
            issuer,
        },
        policy: c.policy.clone(),
        open: registry::Registry::open(db.clone(), c.max_open_uploads, &data_dir).await?,
        auth: authenticator,
        quotas: auth::Quotas::new(db, c.quota_uploads, c.quota_bytes),
    });

    let mut app = Router::new().nest("/api/uploads", api::routes(state.clone()));
    if let Some(faults) = faults {
        app = app
            .nest("/__test", test_hooks(state, store_root.clone(), faults, store.as_ref().map(|s| s.restart.clone())));
    }
    let mut app = app
        .nest_service("/pkg", ServeDir::new(&c.pkg))
        .fallback_service(ServeDir::new(&c.www))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    if !c.api_origins.is_empty() {
        app = app.layer(api_cors(&c.api_origins)?);
    }

    let listener = tokio::net::TcpListener::bind(c.listen).await?;
    let app_url = format!("http://{}", listener.local_addr()?);
    if let Some(file) = &c.ready_file {
        let store_url = store.as_ref().map(|s| s.endpoint.clone());
        let bucket_dir = store.as_ref().map(|_| store_root.join(&c.bucket));
        let ready =
            serde_json::json!({ "app": app_url, "store": store_url, "dataDir": data_dir, "bucketDir": bucket_dir });
        std::fs::write(file, ready.to_string())?;
    }
    println!("s3-direct-upload demo: open {app_url}/ (API at {app_url}/api/uploads)");
    let acceptor = listener::Acceptor::new(c.limits);
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            accepted = acceptor.accept(&listener) => {
                if let Ok(connection) = accepted {
                    tokio::spawn(connection.serve(TowerToHyperService::new(app.clone())));
                }
            }
            _ = &mut stop => break,
        }
    }
    Ok(())
}

/// The store's key pair from `file`, as `ACCESS_KEY SECRET_KEY` (the store's own keys file).
fn keys_from_file(file: &std::path::Path) -> Result<Credentials, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("--s3-keys-file {}: {e}", file.display()))?;
    let (access, secret) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| format!("--s3-keys-file {}: write `ACCESS_KEY SECRET_KEY` on one line", file.display()))?;
    Ok(Credentials::new(access.to_owned(), secret.trim().to_owned()))
}

/// `--store-only`: says where the store is (ready file, stdout) and serves until stopped.
async fn serve_store_only(
    c: &Config,
    store: &store::EmbeddedStore,
    store_root: &std::path::Path,
    keys: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(file) = &c.ready_file {
        let ready = serde_json::json!({
            "store": store.endpoint,
            "storeRoot": store_root,
            "bucketDir": store_root.join(&c.bucket),
            "keysFile": keys,
        });
        std::fs::write(file, ready.to_string())?;
    }
    println!("s3-direct-upload store: {} (keys in {})", store.endpoint, keys.display());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Routes the browser tests use to look behind the API (open uploads, counts of stored parts),
/// to inject faults into the store, to restart it, and endpoints that misbehave on purpose.
/// Only mounted with `--test-hooks`.
fn test_hooks(
    state: Arc<AppState>,
    store_root: PathBuf,
    faults: Arc<faults::Faults>,
    restart: Option<tokio::sync::mpsc::UnboundedSender<std::time::Duration>>,
) -> Router {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::{Json, extract::Path};
    let report = faults.clone();
    Router::new()
        .route(
            "/faults",
            post(move |Json(plan): Json<Option<faults::FaultPlan>>| async move {
                faults.configure(plan);
                Json(serde_json::json!({}))
            })
            .get(move || async move { Json(report.report()) }),
        )
        .route(
            "/restart-store",
            post(move |Json(body): Json<serde_json::Value>| async move {
                let down = std::time::Duration::from_millis(body["downMs"].as_u64().unwrap_or(1000));
                match restart.as_ref().map(|r| r.send(down)) {
                    Some(Ok(())) => StatusCode::OK,
                    _ => StatusCode::CONFLICT,
                }
            }),
        )
        .route(
            "/open-uploads",
            get(move || async move {
                let in_store = store::open_multipart_uploads(&store_root).unwrap_or_default();
                let in_backend = state.open.ids().await.unwrap_or_default();
                Json(serde_json::json!({ "store": in_store, "backend": in_backend }))
            }),
        )
        .route("/not-json/{*rest}", post(|| async { ([("content-type", "text/html")], "<html>Welcome</html>") }))
        .route("/empty-json/{*rest}", post(|| async { Json(serde_json::json!({})) }))
        .route(
            "/status/{code}/{*rest}",
            post(|Path((code, _)): Path<(u16, String)>| async move {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, Json(serde_json::json!({ "error": "injected failure" }))).into_response()
            }),
        )
}
