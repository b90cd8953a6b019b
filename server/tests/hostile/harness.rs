//! The reference server as a child process on loopback, and the ways an attacker talks to it:
//! the JSON API, presigned URLs, HTML forms, requests signed with a grant and sent as raw bytes
//! (so no client tidies a `..` away), and bare TCP connections.

use s3_direct_upload::sigv4::{self, Credentials, Request, Scope};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const ALICE: &str = "alice-token-0123456789";
pub const BOB: &str = "bob-token-0123456789";
const BUCKET: &str = "direct-uploads";
const BOBS_REPORT: &[u8] = b"bob's report";

/// A file as a page declares it to the API.
pub fn file(size: u64) -> Value {
    json!({ "filename": "a.bin", "size": size, "contentType": "application/octet-stream", "metadata": {} })
}

pub fn base64(bytes: &[u8]) -> String {
    s3_direct_upload::checksum::base64(bytes)
}

pub fn unbase64(text: &str) -> Vec<u8> {
    base64_simd::STANDARD.decode_to_vec(text).unwrap()
}

/// A status and the body as text.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: u16,
    pub body: String,
}

/// The reference server binary, running with `--auth tokens` (alice and bob) and its embedded
/// store, in a directory of its own; stopped by PID and removed when dropped.
pub struct Server {
    child: Child,
    extra: Vec<String>,
    root: PathBuf,
    pub data_dir: PathBuf,
    pub bucket_dir: PathBuf,
    app: String,
    store: String,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Server {
    /// Starts the server with `extra` flags; waits (10 s at most) until it is listening.
    pub async fn start(extra: &[&str]) -> Server {
        let root =
            std::env::temp_dir().join(format!("s3du-hostile-{}-{:x}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("tokens"), format!("alice {ALICE}\nbob {BOB}\n")).unwrap();
        let extra: Vec<String> = extra.iter().map(|&a| a.to_owned()).collect();
        let (child, info) = Self::spawn(&root, &extra).await;
        Server {
            child,
            extra,
            data_dir: root.join("data"),
            root,
            bucket_dir: PathBuf::from(info["bucketDir"].as_str().unwrap()),
            app: info["app"].as_str().unwrap().to_owned(),
            store: info["store"].as_str().unwrap().to_owned(),
            client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
        }
    }

    /// Kills the server (SIGKILL, as a crash would) and starts it again on the same data
    /// directory, with the same flags (on new ports).
    pub async fn crash_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let (child, info) = Self::spawn(&self.root, &self.extra).await;
        self.child = child;
        self.app = info["app"].as_str().unwrap().to_owned();
        self.store = info["store"].as_str().unwrap().to_owned();
    }

    /// The server process on `root` (tokens, data directory), and its ready file once listening.
    async fn spawn(root: &Path, extra: &[String]) -> (Child, Value) {
        let (ready, data_dir) = (root.join("ready.json"), root.join("data"));
        let _ = std::fs::remove_file(&ready);
        let child = Command::new(env!("CARGO_BIN_EXE_reference-server"))
            .args(["--listen", "127.0.0.1:0", "--auth", "tokens"])
            .arg("--tokens-file")
            .arg(root.join("tokens"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the reference server starts");
        let mut child = child;
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&ready).unwrap_or_default();
            if let Ok(info) = serde_json::from_str(&text) {
                return (child, info);
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not start");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn app_address(&self) -> String {
        self.app.trim_start_matches("http://").to_owned()
    }

    pub fn store_address(&self) -> String {
        self.store.trim_start_matches("http://").to_owned()
    }

    /// POSTs `body` to the API's `path` as the holder of `token`: the status and the JSON answer.
    pub async fn api(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/api/uploads{path}", self.app))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
    }

    /// POSTs `body` to the API with exactly these headers (repeated names sent twice).
    pub async fn api_with_headers(&self, headers: &[(&str, &str)], path: &str, body: Value) -> Outcome {
        let mut request = self
            .client
            .post(format!("{}/api/uploads{path}", self.app))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        outcome(request.send().await.unwrap()).await
    }

    /// POSTs raw bytes with `content_type` to the API as `token`'s user.
    pub async fn api_raw_body(&self, token: &str, path: &str, content_type: &str, body: &[u8]) -> Outcome {
        let request = self.client.post(format!("{}/api/uploads{path}", self.app)).bearer_auth(token);
        outcome(request.header("content-type", content_type).body(body.to_vec()).send().await.unwrap()).await
    }

    /// A CORS preflight for `POST /api/uploads/put` from `origin`: the origin the answer allows.
    pub async fn preflight(&self, origin: &str) -> Option<String> {
        let response = self
            .client
            .request(reqwest::Method::OPTIONS, format!("{}/api/uploads/put", self.app))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
            .await
            .unwrap();
        let allowed = response.headers().get("access-control-allow-origin")?;
        Some(allowed.to_str().unwrap().to_owned())
    }

    /// Sends `body` to a signed `{url, headers}` answer with PUT, reading the answer while it
    /// sends (a store may refuse before the body is in, and close).
    pub async fn put_signed(&self, signed: &Value, body: Vec<u8>) -> Outcome {
        let url = signed["url"].as_str().unwrap();
        let (address, path) = url.trim_start_matches("http://").split_once('/').unwrap();
        let mut head = format!("PUT /{path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n");
        for (name, value) in signed["headers"].as_object().into_iter().flatten() {
            head.push_str(&format!("{name}: {}\r\n", value.as_str().unwrap()));
        }
        send_while_reading(address, &head, body.len() as u64, &body).await
    }

    /// Part URLs for `numbers` of `upload`, as `token`'s user.
    pub async fn sign_parts(&self, token: &str, upload: &Value, numbers: &[u32]) -> Vec<Value> {
        let mut body = upload.clone();
        body["partNumbers"] = json!(numbers);
        let (status, answer) = self.api(Some(token), "/multipart/sign", body).await;
        assert_eq!(status, 200, "{answer}");
        answer["parts"].as_array().unwrap().clone()
    }

    /// Bob stores `uploads/bob/report.txt`: what alice's attempts must leave alone.
    pub async fn plant_bobs_report(&self) {
        let mut body = file(BOBS_REPORT.len() as u64);
        body["key"] = json!("report.txt");
        let (_, signed) = self.api(Some(BOB), "/put", body).await;
        assert_eq!(self.put_signed(&signed, BOBS_REPORT.to_vec()).await.status, 200);
        self.assert_bobs_report_intact();
    }

    pub fn assert_bobs_report_intact(&self) {
        let stored = std::fs::read(self.bucket_dir.join("uploads/bob/report.txt")).unwrap();
        assert_eq!(stored, BOBS_REPORT, "bob's report was changed");
    }

    /// Every file in the data directory is the server's database (`state.sqlite3`, with SQLite's
    /// `-wal` and `-shm` files), the store's key pair (`store-keys`), the store's own bookkeeping
    /// (dot files at its root), or an object under `uploads/alice/` or `uploads/bob/`.
    pub fn assert_nothing_outside_prefixes(&self) {
        let store_root = self.bucket_dir.parent().unwrap();
        for path in files_under(&self.data_dir) {
            let name = path.file_name().unwrap().to_string_lossy();
            let in_data_dir = path.parent() == Some(self.data_dir.as_path());
            let allowed = (in_data_dir && (name.starts_with("state.sqlite3") || name == "store-keys"))
                || (path.parent() == Some(store_root) && name.starts_with('.'))
                || path.starts_with(self.bucket_dir.join("uploads/alice"))
                || path.starts_with(self.bucket_dir.join("uploads/bob"));
            assert!(allowed, "a file outside every prefix: {}", path.display());
        }
    }

    /// Sends a request signed with `grant`'s credentials as raw bytes: `path` is the key (or
    /// `?query` for the bucket), exactly as written, `..` and percent signs included.
    pub async fn with_grant(&self, grant: &Value, method: &str, path: &str, body: &[u8]) -> Outcome {
        self.with_grant_token(grant, method, path, body, None).await
    }

    /// A PUT of `key` signed with `grant`, declaring `length` bytes but sending none.
    pub async fn with_grant_declaring(&self, grant: &Value, key: &str, length: u64) -> Outcome {
        let url = self.grant_signed(grant, "PUT", &format!("/{BUCKET}/{key}"), None);
        let head = format!(
            "PUT {} HTTP/1.1\r\nhost: {}\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n",
            &url[self.store.len()..],
            self.store_address()
        );
        raw_exchange(&self.store_address(), head.as_bytes()).await
    }

    /// A presigned URL for `method` on `target` (a path in the store) with `grant`'s
    /// credentials, or another session token (`Some("")`: none at all).
    fn grant_signed(&self, grant: &Value, method: &str, target: &str, token: Option<&str>) -> String {
        let session_token = match token {
            Some("") => None,
            Some(token) => Some(token.to_owned()),
            None => grant["sessionToken"].as_str().map(str::to_owned),
        };
        let credentials = Credentials {
            access_key_id: grant["accessKeyId"].as_str().unwrap().to_owned(),
            secret_access_key: grant["secretAccessKey"].as_str().unwrap().to_owned(),
            session_token,
        };
        let url = format!("{}{target}", self.store);
        let request = Request { method, url: &url, headers: &[] };
        let scope = Scope { region: grant["region"].as_str().unwrap(), service: "s3" };
        sigv4::presign(&request, &credentials, scope, now_ms(), 60).unwrap()
    }

    /// [`Server::with_grant`] with another session token (`Some("")`: none at all).
    pub async fn with_grant_token(
        &self,
        grant: &Value,
        method: &str,
        path: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> Outcome {
        let target = if path.starts_with('?') { format!("/{BUCKET}{path}") } else { format!("/{BUCKET}/{path}") };
        let signed = self.grant_signed(grant, method, &target, token);
        let path_and_query = &signed[self.store.len()..];
        let body = if matches!(method, "GET" | "HEAD" | "DELETE") { &[][..] } else { body };
        let head = format!(
            "{method} {path_and_query} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.store_address(),
            body.len()
        );
        raw_exchange(&self.store_address(), &[head.as_bytes(), body].concat()).await
    }

    /// Posts a form with the fields of a POST policy answer (`overrides` replacing some), the
    /// file `body` last, named `filename`.
    pub async fn post_form(&self, signed: &Value, overrides: &[(&str, &str)], body: &[u8], filename: &str) -> Outcome {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in signed["fields"].as_object().unwrap() {
            let value = overrides.iter().find(|(n, _)| n == name).map_or(value.as_str().unwrap(), |(_, v)| *v);
            form = form.text(name.clone(), value.to_owned());
        }
        form = form.part("file", reqwest::multipart::Part::bytes(body.to_vec()).file_name(filename.to_owned()));
        outcome(self.client.post(signed["url"].as_str().unwrap()).multipart(form).send().await.unwrap()).await
    }

    /// Posts a form for `key` signed in the page's way with `grant`'s credentials.
    pub async fn form_with_grant(&self, grant: &Value, key: &str, body: &[u8]) -> Outcome {
        let credentials = Credentials {
            access_key_id: grant["accessKeyId"].as_str().unwrap().to_owned(),
            secret_access_key: grant["secretAccessKey"].as_str().unwrap().to_owned(),
            session_token: grant["sessionToken"].as_str().map(str::to_owned),
        };
        let scope = Scope { region: grant["region"].as_str().unwrap(), service: "s3" };
        let now = now_ms();
        let fields = vec![("key".to_owned(), key.to_owned())];
        let fields = sigv4::sign_post_form(fields, BUCKET, body.len() as u64, &credentials, scope, now, now + 60_000.0);
        let fields: serde_json::Map<String, Value> = fields.into_iter().map(|(k, v)| (k, json!(v))).collect();
        let signed = json!({ "url": format!("{}/{BUCKET}/", self.store), "fields": fields });
        self.post_form(&signed, &[], body, "a.bin").await
    }

    /// The server process's peak resident memory so far (`VmHWM` in `/proc`: a body held even
    /// for a moment shows).
    pub fn peak_resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    /// Sends `head` (request line and headers) to the store with a 1 GiB body declared and sent
    /// for as long as the store reads it, reading the answer meanwhile.
    pub async fn send_gigabyte_to_store(&self, head: &str) -> Outcome {
        let head = format!("{head}host: {}\r\n", self.store_address());
        send_while_reading(&self.store_address(), &head, 1 << 30, &vec![0u8; 1 << 20]).await
    }
}

/// Sends `head` with a `content-length` of `length` and then `chunk`, again and again, up to
/// `length` bytes or until the server stops taking them (60 s at most), while reading its
/// answer.
async fn send_while_reading(address: &str, head: &str, length: u64, chunk: &[u8]) -> Outcome {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let answer = tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut bytes)).await;
        bytes
    });
    let head = format!("{head}content-length: {length}\r\n\r\n");
    let send = async {
        writer.write_all(head.as_bytes()).await?;
        let mut left = length;
        while left > 0 && !chunk.is_empty() {
            let n = left.min(chunk.len() as u64) as usize;
            writer.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), send).await;
    parse_answer(&answer.await.unwrap())
}

async fn outcome(response: reqwest::Response) -> Outcome {
    let status = response.status().as_u16();
    Outcome { status, body: response.text().await.unwrap_or_default() }
}

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as f64
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Writes `request` to `address` and reads the answer until the server closes (10 s at most).
async fn raw_exchange(address: &str, request: &[u8]) -> Outcome {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
    parse_answer(&bytes)
}

fn parse_answer(bytes: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, body)| body.to_owned());
    Outcome { status, body }
}

/// `count` connections to `address` that send nothing.
pub async fn open_idle_connections(address: &str, count: usize) -> Vec<TcpStream> {
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        connections.push(TcpStream::connect(address).await.unwrap());
    }
    connections
}

/// How many of `connections` the server closes within `within`.
pub async fn count_closed_within(connections: Vec<TcpStream>, within: Duration) -> usize {
    let waits = connections.into_iter().map(|mut connection| async move {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(within, connection.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_)))
    });
    futures::future::join_all(waits).await.into_iter().filter(|closed| *closed).count()
}

/// Sends a request's headers one byte every `interval` until the server closes the connection
/// (30 s at most); how long it stayed open.
pub async fn drip_headers(address: &str, interval: Duration) -> Duration {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    let head = b"GET /api/uploads/put HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    for byte in head.iter().cycle().take(75) {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(answered_or_closed) = tokio::time::timeout(interval, stream.read(&mut probe)).await {
            let _ = answered_or_closed;
            break;
        }
    }
    started.elapsed()
}
