//! Upload browser `File`s straight to Amazon S3 and S3-compatible stores.
//!
//! The application's backend only authorizes (presigned URLs); the browser moves the bytes.
//! Large files go up as multipart uploads whose parts are sent in parallel, small ones in one PUT.
//!
//! Module map:
//! - [`checksum`]: part and whole-object checksums as S3 computes them (pure).
//! - [`crc`]: CRC-32 and CRC-32C, and combining two CRCs into their concatenation's (pure).
//! - [`endpoint`]: bucket and object URLs on AWS (regional, dual-stack, accelerated) or custom
//!   endpoints, virtual-hosted or path-style (pure).
//! - [`grant`]: the credentials mode's temporary credentials: expiry, the store's clock, what
//!   the store's refusals mean (pure).
//! - [`object_rules`]: what object keys and user metadata may be, for the library and the
//!   reference server alike (pure).
//! - [`plan`]: how a file is cut into parts under the S3 limits (pure).
//! - [`progress`]: loaded/total, speed, ETA and report throttling (pure).
//! - [`string_map`]: names with one value each, sorted: headers and metadata (pure).
//! - [`retry`]: which failures are retried, backoff with jitter, time and count bounds (pure).
//! - [`s3_xml`]: the S3 XML the uploader and the reference server read and write (pure).
//! - [`sigv4`]: SigV4 signing of requests, URLs and POST policies, and presigned URL expiry (pure).
//! - [`upload`]: the orchestrator, generic over backend, transport and source (pure).
//! - [`error`]: the error type and its stable codes.
//! - `web`: browser edges: `Blob` slicing, `fetch`, the JSON and callback backends.
//! - `js`: the JS-facing `Uploader` class and its TypeScript definitions.

/// The page's allocator. Safe as the `.wasm` runs single-threaded (no shared memory).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

pub mod checksum;
pub mod crc;
pub mod endpoint;
pub mod error;
pub mod grant;
pub mod object_rules;
pub mod plan;
pub mod progress;
pub mod retry;
pub mod s3_xml;
pub mod sigv4;
pub mod string_map;
pub mod upload;

mod js;
mod web;

pub use js::{Checksum, Upload, UploadOptionsJs, Uploader, UploaderOptionsJs};
