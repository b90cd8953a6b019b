//! Orchestrator tests with in-memory fakes: concurrency, batching, ordering and failure handling.

use super::*;
use crate::checksum::{ChecksumAlgorithm, ChecksumType, ObjectChecksum, base64, digest};
use crate::error::ErrorCode;
use crate::plan::MIB;
use crate::plan::PlanOptions;
use crate::progress::{ProgressSnapshot, UploadState};
use crate::retry::Observed;
use crate::retry::RetryPolicy;
use crate::string_map::StringMap;
use futures::executor::block_on;
use futures::future::join;
use std::cell::Cell;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::ops::Range;
use std::rc::Rc;
use std::task::Context;
use std::task::Poll;

/// Yields to the executor once, so that other futures run in between.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx: &mut Context<'_>| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

#[derive(Default)]
struct FakeBackend {
    sign_calls: RefCell<Vec<Vec<u32>>>,
    /// Why each signing request was made.
    sign_reasons: RefCell<Vec<SignReason>>,
    completed: RefCell<Option<Vec<CompletedPart>>>,
    aborted: Cell<u32>,
    /// Part numbers the backend "forgets" to sign.
    skip_signing: Vec<u32>,
    /// What `list_parts` answers.
    listed: Vec<ListedPart>,
    /// Appended to every signed URL (e.g. a SigV4 date and lifetime).
    url_suffix: String,
    created: Cell<u32>,
    /// The URL a POST policy answer names (boto3's path-style ones end without `/`).
    post_url: Option<String>,
    /// The part size the last create declared.
    declared_part_size: Cell<Option<u64>>,
    /// When set, creation waits until it is on (a slow backend).
    create_gate: Option<Rc<Flag>>,
    /// When set, completion waits until it is on.
    complete_gate: Option<Rc<Flag>>,
    complete_calls: Cell<u32>,
    /// Complete answers with the multipart `ETag` of the part `ETag`s it was given, as S3
    /// computes it (md5 of the part MD5s, `-N`).
    multipart_etag: bool,
    /// Creates uploads with the checksum algorithm asked for, and signs checksums in.
    does_checksums: bool,
    /// Signs part URLs without their checksum header (a backend bug).
    drops_checksum_headers: bool,
    /// The checksums each signing request carried.
    signed_checksums: RefCell<Vec<Vec<String>>>,
    /// The object checksum complete was given.
    completed_checksum: RefCell<Option<ObjectChecksum>>,
    /// What complete reports as the object checksum; by default what it was given.
    reported_checksum: Option<String>,
    /// The file info sign_put was given.
    put_file: RefCell<Option<FileInfo>>,
}

impl Backend for FakeBackend {
    async fn create_multipart(&self, file: &FileInfo) -> Result<MultipartSession, UploadError> {
        self.created.set(self.created.get() + 1);
        self.declared_part_size.set(file.part_size);
        yield_now().await;
        if let Some(gate) = &self.create_gate {
            gate.until(true).await;
        }
        Ok(MultipartSession {
            key: format!("uploads/{}", file.filename),
            upload_id: "u-1".into(),
            checksum_algorithm: file.checksum_algorithm.filter(|_| self.does_checksums),
        })
    }
    async fn sign_parts(
        &self,
        s: &MultipartSession,
        numbers: &[u32],
        checksums: Option<&[String]>,
        reason: SignReason,
    ) -> Result<Vec<SignedPart>, UploadError> {
        self.sign_calls.borrow_mut().push(numbers.to_vec());
        self.sign_reasons.borrow_mut().push(reason);
        self.signed_checksums.borrow_mut().push(checksums.unwrap_or_default().to_vec());
        yield_now().await;
        Ok(numbers
            .iter()
            .enumerate()
            .filter(|(_, n)| !self.skip_signing.contains(n))
            .map(|(i, &n)| {
                let mut headers = StringMap::new();
                if let (Some(algorithm), Some(checksums)) = (s.checksum_algorithm, checksums)
                    && !self.drops_checksum_headers
                {
                    headers.insert(algorithm.header().to_owned(), checksums[i].clone());
                }
                SignedPart {
                    part_number: n,
                    request: SignedRequest {
                        url: format!("https://store/part{n}?X-Amz-Signature=s{}", self.url_suffix),
                        headers,
                    },
                }
            })
            .collect())
    }
    async fn complete_multipart(
        &self,
        s: &MultipartSession,
        parts: &[CompletedPart],
        checksum: Option<&ObjectChecksum>,
    ) -> Result<CompletedObject, UploadError> {
        self.complete_calls.set(self.complete_calls.get() + 1);
        if let Some(gate) = &self.complete_gate {
            gate.until(true).await;
        }
        *self.completed.borrow_mut() = Some(parts.to_vec());
        *self.completed_checksum.borrow_mut() = checksum.cloned();
        let etag = self.multipart_etag.then(|| {
            let md5s: Vec<u8> = parts.iter().flat_map(|p| unhex(p.etag.trim_matches('"'))).collect();
            format!("\"{}-{}\"", crate::checksum::hex(&digest(ChecksumAlgorithm::Md5, &md5s)), parts.len())
        });
        Ok(CompletedObject {
            etag,
            location: Some(format!("https://store/{}", s.key)),
            checksum: self.reported_checksum.clone().or_else(|| checksum.map(|c| c.value.clone())),
            checksum_type: checksum.map(|c| c.kind.as_str().to_owned()),
            ..Default::default()
        })
    }
    async fn abort_multipart(&self, _s: &MultipartSession) -> Result<(), UploadError> {
        self.aborted.set(self.aborted.get() + 1);
        Ok(())
    }
    async fn list_parts(&self, _s: &MultipartSession) -> Result<Vec<ListedPart>, UploadError> {
        Ok(self.listed.clone())
    }
    async fn sign_post(&self, file: &FileInfo, _: SignReason) -> Result<SignedPost, UploadError> {
        *self.put_file.borrow_mut() = Some(file.clone());
        let mut fields =
            vec![("key".to_owned(), format!("uploads/{}", file.filename)), ("Policy".into(), "e30=".into())];
        if let (Some(algorithm), Some(checksum), true) = (file.checksum_algorithm, &file.checksum, self.does_checksums)
        {
            fields.push((algorithm.header().to_owned(), checksum.clone()));
        }
        Ok(SignedPost {
            key: None,
            url: self.post_url.clone().unwrap_or_else(|| "https://store/bucket/".into()),
            fields,
            display_url: Some("https://store/bucket/shown".into()),
        })
    }
    async fn sign_put(&self, file: &FileInfo, _: SignReason) -> Result<SignedPut, UploadError> {
        *self.put_file.borrow_mut() = Some(file.clone());
        let mut headers = StringMap::new();
        if let (Some(algorithm), Some(checksum), true) = (file.checksum_algorithm, &file.checksum, self.does_checksums)
        {
            headers.insert(algorithm.header().to_owned(), checksum.clone());
        }
        Ok(SignedPut {
            key: format!("uploads/{}", file.filename),
            request: SignedRequest { url: "https://store/obj?X-Amz-Signature=secret".into(), headers },
            display_url: None,
        })
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0)).collect()
}

/// What the fake store does with a request.
#[derive(Clone, Copy, PartialEq)]
enum StoreBehaviour {
    Accept,
    HideEtag,
    RejectPart(u32),
    /// Never answers part `n`: a request the caller must cancel.
    HangOnPart(u32),
}

struct FakeTransport {
    behaviour: StoreBehaviour,
    /// Errors to answer part `n` with, one an attempt, before it succeeds.
    failures: RefCell<HashMap<u32, Vec<UploadError>>>,
    /// Switched on when a failure is answered: the network went away with it.
    offline_on_failure: Option<Rc<Flag>>,
    attempts: Cell<u32>,
    in_flight: Cell<usize>,
    max_in_flight: Cell<usize>,
    bodies: RefCell<Vec<Range<u64>>>,
    /// The fields of each form posted.
    forms: RefCell<Vec<Vec<(String, String)>>>,
    /// The headers each request was sent with.
    sent_headers: RefCell<Vec<StringMap>>,
    /// Answer part `ETag`s as S3 does without KMS: the hex MD5 of the bytes received.
    md5_etags: bool,
    /// This part arrives with a byte flipped, and the store (which checks no checksum) keeps it.
    corrupt_part: Option<u32>,
    /// Requests beyond this many at once are answered 503 `SlowDown`, as a throttling store does.
    slow_down_above: Option<usize>,
    /// `SlowDown` answers given.
    slow_downs: Cell<u32>,
    /// How many times each request yields before it is answered.
    delay_yields: Cell<u32>,
}

impl FakeTransport {
    fn new(behaviour: StoreBehaviour) -> Self {
        FakeTransport {
            behaviour,
            failures: RefCell::default(),
            offline_on_failure: None,
            attempts: Cell::new(0),
            in_flight: Cell::new(0),
            max_in_flight: Cell::new(0),
            bodies: RefCell::new(vec![]),
            forms: RefCell::default(),
            sent_headers: RefCell::default(),
            md5_etags: false,
            corrupt_part: None,
            slow_down_above: None,
            slow_downs: Cell::new(0),
            delay_yields: Cell::new(3),
        }
    }
}

impl Transport for FakeTransport {
    type Body = Range<u64>;
    async fn send(
        &self,
        request: &SignedRequest,
        payload: Payload<'_, Range<u64>>,
        what: &str,
        sent: &dyn Fn(u64),
    ) -> Result<PutOutcome, UploadError> {
        let body = match payload {
            Payload::Put(body) => body,
            Payload::Form { fields, file, .. } => {
                self.forms.borrow_mut().push(fields.to_vec());
                file
            }
        };
        sent((body.end - body.start) / 2);
        self.sent_headers.borrow_mut().push(request.headers.clone());
        self.attempts.set(self.attempts.get() + 1);
        self.in_flight.set(self.in_flight.get() + 1);
        self.max_in_flight.set(self.max_in_flight.get().max(self.in_flight.get()));
        let throttled = self.slow_down_above.is_some_and(|most| self.in_flight.get() > most);
        for _ in 0..self.delay_yields.get() {
            yield_now().await;
        }
        self.in_flight.set(self.in_flight.get() - 1);
        if throttled {
            self.slow_downs.set(self.slow_downs.get() + 1);
            let observed = Observed::Status { status: 503, code: Some("SlowDown".into()), expired: false };
            return Err(UploadError::new(ErrorCode::PartUploadFailed, "SlowDown").with_observed(observed));
        }
        let part = request.url.split("part").nth(1).and_then(|s| s.split('?').next()).and_then(|s| s.parse().ok());
        match (self.behaviour, part) {
            (StoreBehaviour::RejectPart(n), Some(p)) if n == p => {
                return Err(UploadError::new(ErrorCode::PartUploadFailed, format!("{what} rejected")).with_status(403));
            }
            (StoreBehaviour::HangOnPart(n), Some(p)) if n == p => std::future::pending::<()>().await,
            _ => {}
        }
        if let Some(error) = part.and_then(|p| self.failures.borrow_mut().get_mut(&p).and_then(Vec::pop)) {
            if let Some(offline) = &self.offline_on_failure {
                offline.set(true);
            }
            return Err(error);
        }
        self.bodies.borrow_mut().push(body.clone());
        let etag = if self.md5_etags {
            let mut received: Vec<u8> = body.map(source_byte).collect();
            if part.is_some() && part == self.corrupt_part {
                received[0] ^= 0xff;
            }
            format!("\"{}\"", crate::checksum::hex(&digest(ChecksumAlgorithm::Md5, &received)))
        } else {
            format!("\"etag-{}\"", part.unwrap_or(0))
        };
        Ok(PutOutcome { etag: (self.behaviour != StoreBehaviour::HideEtag).then_some(etag) })
    }
}

struct FakeSource(u64);

impl Source for FakeSource {
    type Body = Range<u64>;
    fn size(&self) -> u64 {
        self.0
    }
    fn slice(&self, range: Range<u64>) -> Range<u64> {
        range
    }
    async fn read(&self, range: Range<u64>, into: &mut Vec<u8>) -> Result<(), UploadError> {
        yield_now().await;
        into.clear();
        into.extend(range.map(source_byte));
        Ok(())
    }
}

/// Byte `i` of every fake file.
fn source_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// Time moves 1 ms a reading, and sleeping moves it on at once.
struct FakeRuntime {
    now: Cell<f64>,
    slept_ms: Cell<f64>,
    /// How many times work waited for a task of its own.
    tasks: Cell<u32>,
}

impl Runtime for FakeRuntime {
    fn now_ms(&self) -> f64 {
        self.now.set(self.now.get() + 1.0);
        self.now.get()
    }
    async fn sleep(&self, ms: f64) {
        self.now.set(self.now.get() + ms);
        self.slept_ms.set(self.slept_ms.get() + ms);
        yield_now().await;
    }
    fn random(&self) -> f64 {
        0.5
    }
    async fn next_task(&self) {
        self.tasks.set(self.tasks.get() + 1);
        yield_now().await;
    }
}

fn file(name: &str, size: u64) -> FileInfo {
    FileInfo {
        filename: name.into(),
        size,
        content_type: "application/octet-stream".into(),
        key: None,
        metadata: StringMap::new(),
        checksum_algorithm: None,
        checksum: None,
        part_size: None,
    }
}

struct Harness {
    backend: FakeBackend,
    transport: FakeTransport,
    budget: Budget,
    hashing: Budget,
    pacer: Pacer,
    runtime: FakeRuntime,
    control: UploadControl,
    offline: Rc<Flag>,
    retry: RetryPolicy,
    checksum: Option<ChecksumAlgorithm>,
    post_forms: PostForms,
}

impl Harness {
    fn new(behaviour: StoreBehaviour, budget: usize) -> Self {
        Harness {
            backend: FakeBackend::default(),
            transport: FakeTransport::new(behaviour),
            budget: Budget::new(budget),
            hashing: Budget::new(FILES_HASHED_AT_ONCE),
            pacer: Pacer::default(),
            runtime: FakeRuntime { now: Cell::new(0.0), slept_ms: Cell::new(0.0), tasks: Cell::new(0) },
            control: UploadControl::default(),
            offline: Rc::default(),
            retry: RetryPolicy::default(),
            checksum: None,
            post_forms: PostForms::Never,
        }
    }

    fn cx(&self, concurrency: usize) -> UploadContext<'_, FakeBackend, FakeTransport, FakeRuntime> {
        UploadContext {
            backend: &self.backend,
            transport: &self.transport,
            budget: &self.budget,
            hashing: &self.hashing,
            priority: 0,
            pacer: &self.pacer,
            concurrency,
            plan_options: PlanOptions::default(),
            runtime: &self.runtime,
            retry: self.retry,
            control: &self.control,
            offline: &self.offline,
            resume: None,
            checksum: self.checksum,
            post_forms: self.post_forms,
        }
    }

    fn run(&self, size: u64) -> Result<StoredObject, UploadError> {
        let sink = |_: &ProgressSnapshot, _: Option<&str>| {};
        let progress = ProgressReporter::new(size, &self.runtime, &sink);
        block_on(upload_file(&self.cx(6), &FakeSource(size), &file("a.bin", size), &progress))
    }
}

#[test]
fn multipart_sends_every_range_once_and_completes_in_part_order() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    let size = 23 * MIB + 5;
    let stored = h.run(size).unwrap();
    assert_eq!((stored.parts, stored.size), (Some(5), size));
    let mut bodies = h.transport.bodies.borrow().clone();
    bodies.sort_by_key(|r| r.start);
    let expected: Vec<Range<u64>> = (0..5).map(|i| i * 5 * MIB..((i + 1) * 5 * MIB).min(size)).collect();
    assert_eq!(bodies, expected);
    let completed = h.backend.completed.borrow().clone().unwrap();
    let numbers: Vec<u32> = completed.iter().map(|p| p.part_number).collect();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
    assert_eq!(completed[2].etag, "\"etag-3\"");
    assert_eq!(h.backend.aborted.get(), 0);
    assert_eq!(h.backend.declared_part_size.get(), Some(5 * MIB), "the backend can sign each part's length");
}

#[test]
fn parts_are_signed_in_batches_not_one_by_one() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    h.run(200 * MIB).unwrap(); // 40 parts, batches of 12 at concurrency 6
    let calls = h.backend.sign_calls.borrow();
    let signed: Vec<u32> = calls.iter().flatten().copied().collect();
    assert_eq!(signed, (1..=40).collect::<Vec<_>>(), "every part signed exactly once");
    assert!(calls.len() <= 4, "{} signing requests for 40 parts", calls.len());
}

#[test]
fn a_store_that_asks_to_slow_down_gets_fewer_requests_at_once() {
    let mut h = Harness::new(StoreBehaviour::Accept, 8);
    h.transport.slow_down_above = Some(2);
    h.run(200 * MIB).expect("a throttling store still gets the whole file");
    let (limit, slow_downs) = (h.budget.limit(), h.transport.slow_downs.get());
    assert!((2..=3).contains(&limit), "the budget settled near what the store takes: {limit}");
    // 40 parts: without adapting, 6 of every 8 requests would be refused.
    assert!(slow_downs < 20, "{slow_downs} requests refused with SlowDown");
}

#[test]
fn a_file_of_higher_priority_goes_ahead_of_a_large_one_under_way() {
    let h = Harness::new(StoreBehaviour::Accept, 1);
    let sink = |_: &ProgressSnapshot, _: Option<&str>| {};
    let (large, small) = (FakeSource(60 * MIB), FakeSource(10));
    let (pl, ps) =
        (ProgressReporter::new(large.0, &h.runtime, &sink), ProgressReporter::new(small.0, &h.runtime, &sink));
    let (cx_large, mut cx_small) = (h.cx(6), h.cx(6));
    cx_small.priority = 5;
    // The small file is picked once the large one is under way, its parts queued for the budget.
    let small_later = async {
        eventually(|| h.transport.attempts.get() >= 2).await;
        upload_file(&cx_small, &small, &file("small", small.0), &ps).await
    };
    let (rl, rs) = block_on(join(upload_file(&cx_large, &large, &file("large", large.0), &pl), small_later));
    assert!(rl.is_ok() && rs.is_ok());
    let bodies = h.transport.bodies.borrow();
    let small_at = bodies.iter().position(|b| *b == (0..10)).expect("the small file was sent");
    assert!(small_at <= 3, "sent {small_at}th of {}, not behind the large file's 12 parts", bodies.len());
}

#[test]
fn one_budget_bounds_requests_across_files() {
    let h = Harness::new(StoreBehaviour::Accept, 3);
    let sink = |_: &ProgressSnapshot, _: Option<&str>| {};
    let (a, b) = (FakeSource(40 * MIB), FakeSource(30 * MIB));
    let pa = ProgressReporter::new(a.0, &h.runtime, &sink);
    let pb = ProgressReporter::new(b.0, &h.runtime, &sink);
    let cx = h.cx(6);
    let (ra, rb) =
        block_on(join(upload_file(&cx, &a, &file("a", a.0), &pa), upload_file(&cx, &b, &file("b", b.0), &pb)));
    assert!(ra.is_ok() && rb.is_ok());
    assert_eq!(h.transport.max_in_flight.get(), 3, "parallel, but never more than the budget");
}

/// A fake file that counts how many of its kind are being read at once.
struct CountedSource<'a> {
    size: u64,
    reading: &'a Cell<usize>,
    most: &'a Cell<usize>,
}

impl Source for CountedSource<'_> {
    type Body = Range<u64>;
    fn size(&self) -> u64 {
        self.size
    }
    fn slice(&self, range: Range<u64>) -> Range<u64> {
        range
    }
    async fn read(&self, range: Range<u64>, into: &mut Vec<u8>) -> Result<(), UploadError> {
        self.reading.set(self.reading.get() + 1);
        self.most.set(self.most.get().max(self.reading.get()));
        let fake = FakeSource(self.size);
        let read = fake.read(range, into).await;
        yield_now().await;
        self.reading.set(self.reading.get() - 1);
        read
    }
}

#[test]
fn many_small_files_added_at_once_are_hashed_a_few_at_a_time() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    h.checksum = Some(ChecksumAlgorithm::Crc32c);
    let sink = |_: &ProgressSnapshot, _: Option<&str>| {};
    let (reading, most) = (Cell::new(0), Cell::new(0));
    let sources: Vec<_> =
        (0..40).map(|i| CountedSource { size: 100_000 + i, reading: &reading, most: &most }).collect();
    let reporters: Vec<_> = sources.iter().map(|s| ProgressReporter::new(s.size, &h.runtime, &sink)).collect();
    let files: Vec<_> = sources.iter().map(|s| file("small", s.size)).collect();
    let cx = h.cx(6);
    let uploads = sources.iter().zip(&reporters).zip(&files).map(|((s, p), f)| upload_file(&cx, s, f, p));
    let stored = block_on(futures::future::join_all(uploads));
    assert!(stored.iter().all(Result::is_ok), "every file stored");
    assert_eq!(most.get(), FILES_HASHED_AT_ONCE, "40 files read for hashing, never more than a few at once");
}

#[test]
fn a_hidden_etag_fails_fast_and_aborts_the_upload() {
    let h = Harness::new(StoreBehaviour::HideEtag, 6);
    let err = h.run(12 * MIB).unwrap_err();
    assert_eq!(err.code, ErrorCode::EtagNotExposed);
    assert!(err.message.contains("ExposeHeaders"), "{}", err.message);
    assert_eq!(h.backend.aborted.get(), 1);
    assert!(h.backend.completed.borrow().is_none());
}

#[test]
fn a_rejected_part_fails_the_upload_and_aborts_it() {
    let h = Harness::new(StoreBehaviour::RejectPart(2), 6);
    let err = h.run(12 * MIB).unwrap_err();
    assert_eq!((err.code, err.status), (ErrorCode::PartUploadFailed, Some(403)));
    assert_eq!(h.backend.aborted.get(), 1);
}

#[test]
fn a_part_the_backend_did_not_sign_is_a_backend_error() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    h.backend.skip_signing = vec![2];
    let err = h.run(12 * MIB).unwrap_err();
    assert_eq!(err.code, ErrorCode::BackendError);
    assert!(err.message.contains("part 2"), "{}", err.message);
    assert_eq!(h.backend.aborted.get(), 1);
}

#[test]
fn abort_cancels_a_hanging_part_and_aborts_the_upload() {
    let h = Harness::new(StoreBehaviour::HangOnPart(1), 6);
    let sink = |_: &ProgressSnapshot, _: Option<&str>| {};
    let progress = ProgressReporter::new(12 * MIB, &h.runtime, &sink);
    let cx = h.cx(6);
    let aborter = async {
        for _ in 0..20 {
            yield_now().await;
        }
        h.control.aborted.set(true);
    };
    let (result, ()) =
        block_on(join(upload_file(&cx, &FakeSource(12 * MIB), &file("a", 12 * MIB), &progress), aborter));
    assert_eq!(result.unwrap_err().code, ErrorCode::Aborted);
    assert_eq!(h.backend.aborted.get(), 1);
    assert!(h.backend.completed.borrow().is_none());
}

#[test]
fn small_files_use_one_put_and_the_location_carries_no_signature() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    let stored = h.run(1).unwrap();
    assert_eq!(stored.location.as_deref(), Some("https://store/obj"));
    assert_eq!((stored.upload_id, stored.parts), (None, None));
    assert_eq!(*h.transport.bodies.borrow(), vec![0..1]);
}

#[test]
fn progress_only_grows_and_reaches_the_total() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    let seen = RefCell::new(Vec::new());
    let sink = |s: &ProgressSnapshot, _: Option<&str>| seen.borrow_mut().push(s.loaded);
    let size = 31 * MIB;
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    block_on(upload_file(&h.cx(6), &FakeSource(size), &file("a", size), &progress)).unwrap();
    progress.set_state(UploadState::Done);
    let seen = seen.borrow();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(*seen.last().unwrap(), size);
}

fn transient(status: u16) -> UploadError {
    UploadError::new(ErrorCode::PartUploadFailed, "flaky").with_status(status).with_observed(Observed::status(status))
}

#[test]
fn transient_failures_are_retried_until_the_part_is_stored() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    h.transport.failures.borrow_mut().insert(2, vec![transient(500), transient(503), transient(429)]);
    let stored = h.run(12 * MIB).unwrap();
    assert_eq!(stored.parts, Some(3));
    assert_eq!(h.transport.attempts.get(), 6, "3 parts + 3 retries of part 2");
    assert!(h.runtime.slept_ms.get() >= 300.0, "backed off between retries");
    assert_eq!(h.backend.aborted.get(), 0);
}

#[test]
fn an_expired_url_is_signed_again_before_the_retry() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    let expired = UploadError::new(ErrorCode::PartUploadFailed, "expired")
        .with_status(403)
        .with_observed(Observed::Status { status: 403, code: Some("AccessDenied".into()), expired: true });
    h.transport.failures.borrow_mut().insert(3, vec![expired]);
    h.run(12 * MIB).unwrap();
    let calls = h.backend.sign_calls.borrow();
    assert_eq!(calls.last().unwrap(), &vec![3], "part 3 alone was signed again: {calls:?}");
    let reasons = h.backend.sign_reasons.borrow();
    assert_eq!(*reasons, vec![SignReason::First, SignReason::Expired], "the backend is told why");
}

#[test]
fn failures_that_never_stop_end_the_upload_within_the_retry_bound() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    h.retry = RetryPolicy { max_retries: 4, ..RetryPolicy::default() };
    h.transport.failures.borrow_mut().insert(1, (0..100).map(|_| transient(503)).collect());
    let err = h.run(12 * MIB).unwrap_err();
    assert_eq!(err.code, ErrorCode::PartUploadFailed);
    assert!(err.message.contains("gave up after 4 retries"), "{}", err.message);
    assert_eq!(h.backend.aborted.get(), 1, "the multipart upload was aborted");
}

#[test]
fn a_store_that_never_answered_is_given_up_on_within_the_short_bound() {
    let h = Harness::new(StoreBehaviour::Accept, 1);
    let silent = || UploadError::new(ErrorCode::PartUploadFailed, "CORS?").with_observed(Observed::NeverAnswered);
    h.transport.failures.borrow_mut().insert(1, (0..100).map(|_| silent()).collect());
    let err = h.run(12 * MIB).unwrap_err();
    assert!(err.message.contains("no answer from the store in 3 s"), "{}", err.message);
    assert!(h.transport.attempts.get() < 10, "{} attempts: not the whole retry budget", h.transport.attempts.get());
    assert_eq!(h.backend.aborted.get(), 1, "the multipart upload was aborted");
}

#[test]
fn permanent_failures_are_not_retried() {
    let h = Harness::new(StoreBehaviour::RejectPart(1), 6);
    h.run(12 * MIB).unwrap_err();
    assert_eq!(h.transport.attempts.get(), 3, "one attempt per part, none repeated");
}

#[test]
fn failures_while_offline_wait_for_the_network_without_using_retries() {
    let mut h = Harness::new(StoreBehaviour::Accept, 1);
    h.retry = RetryPolicy { max_retries: 0, ..RetryPolicy::default() };
    h.transport.failures.borrow_mut().insert(1, vec![transient(500)]);
    h.transport.offline_on_failure = Some(h.offline.clone());
    let states = RefCell::new(Vec::new());
    let sink = |s: &ProgressSnapshot, _: Option<&str>| states.borrow_mut().push(s.state);
    let progress = ProgressReporter::new(12 * MIB, &h.runtime, &sink);
    let cx = h.cx(1);
    let network_returns = async {
        h.offline.until(true).await;
        for _ in 0..50 {
            yield_now().await;
        }
        h.offline.set(false);
    };
    let (result, ()) =
        block_on(join(upload_file(&cx, &FakeSource(12 * MIB), &file("a", 12 * MIB), &progress), network_returns));
    assert!(result.is_ok(), "{result:?}");
    assert!(states.borrow().contains(&UploadState::WaitingForNetwork));
}

#[test]
fn pause_cancels_parts_in_flight_and_resume_sends_them_again() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    let states = RefCell::new(Vec::new());
    let sink = |s: &ProgressSnapshot, _: Option<&str>| states.borrow_mut().push(s.state);
    let size = 30 * MIB;
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    let cx = h.cx(6);
    let pauser = async {
        for _ in 0..8 {
            yield_now().await;
        }
        h.control.paused.set(true);
        let in_flight_when_paused = h.transport.in_flight.get();
        for _ in 0..100 {
            yield_now().await;
        }
        let attempts_while_paused = h.transport.attempts.get();
        for _ in 0..100 {
            yield_now().await;
        }
        assert_eq!(h.transport.attempts.get(), attempts_while_paused, "nothing starts while paused");
        h.control.paused.set(false);
        in_flight_when_paused
    };
    let (result, in_flight_when_paused) =
        block_on(join(upload_file(&cx, &FakeSource(size), &file("a", size), &progress), pauser));
    assert_eq!(result.unwrap().parts, Some(6));
    assert!(in_flight_when_paused > 0, "the pause caught parts in flight");
    assert!(states.borrow().contains(&UploadState::Paused));
    let mut bodies = h.transport.bodies.borrow().clone();
    bodies.sort_by_key(|r| r.start);
    bodies.dedup();
    assert_eq!(bodies.len(), 6, "every part stored");
}

#[derive(Default)]
struct MemoryResumeStore(RefCell<HashMap<String, ResumeRecord>>);

impl MemoryResumeStore {
    fn load(&self, fingerprint: &str) -> Option<ResumeRecord> {
        self.0.borrow().get(fingerprint).cloned()
    }
}

impl ResumeStore for MemoryResumeStore {
    fn save(&self, fingerprint: &str, record: &ResumeRecord) {
        self.0.borrow_mut().insert(fingerprint.to_owned(), record.clone());
    }
    fn remove(&self, fingerprint: &str) {
        self.0.borrow_mut().remove(fingerprint);
    }
}

fn record(part_size: u64) -> ResumeRecord {
    ResumeRecord {
        key: "uploads/a".into(),
        upload_id: "earlier".into(),
        part_size,
        created_ms: 0.0,
        checksum_algorithm: None,
    }
}

fn listed(part_number: u32, size: u64) -> ListedPart {
    ListedPart { part_number, etag: format!("\"stored-{part_number}\""), size }
}

/// Uploads 23 MiB + 5 (5 parts) with resumption through `store`.
fn run_resumable(h: &Harness, store: &MemoryResumeStore) -> (Result<StoredObject, UploadError>, Vec<u64>) {
    let size = 23 * MIB + 5;
    let seen = RefCell::new(Vec::new());
    let sink = |s: &ProgressSnapshot, _: Option<&str>| seen.borrow_mut().push(s.loaded);
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    let mut cx = h.cx(6);
    cx.resume = Some(Resume { store, fingerprint: "a.bin".into(), found: store.load("a.bin") });
    let result = block_on(upload_file(&cx, &FakeSource(size), &file("a.bin", size), &progress));
    (result, seen.into_inner())
}

#[test]
fn a_recorded_upload_resumes_and_sends_only_the_missing_parts() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    // Parts 1 and 3 are stored; part 4 is there but with the wrong size (a different file).
    h.backend.listed = vec![listed(1, 5 * MIB), listed(3, 5 * MIB), listed(4, 123)];
    let store = MemoryResumeStore::default();
    store.save("a.bin", &record(5 * MIB));
    let (result, seen) = run_resumable(&h, &store);
    let stored = result.unwrap();
    assert_eq!(stored.upload_id.as_deref(), Some("earlier"));
    assert_eq!(h.backend.created.get(), 0, "no new upload was created");
    let mut sent: Vec<u64> = h.transport.bodies.borrow().iter().map(|r| r.start / (5 * MIB) + 1).collect();
    sent.sort();
    assert_eq!(sent, vec![2, 4, 5], "only the missing parts were sent");
    let signed: Vec<u32> = h.backend.sign_calls.borrow().iter().flatten().copied().collect();
    assert_eq!(signed, vec![2, 4, 5], "only the missing parts were signed");
    let completed = h.backend.completed.borrow().clone().unwrap();
    assert_eq!(completed.iter().map(|p| p.part_number).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert_eq!(completed[0].etag, "\"stored-1\"");
    assert!(seen.iter().all(|&l| l >= 10 * MIB), "progress starts from the stored parts: {seen:?}");
    assert!(store.0.borrow().is_empty(), "the record is removed once the upload is done");
}

#[test]
fn parts_listed_out_of_order_and_twice_are_completed_in_order_once_each() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    let mut repeated = listed(3, 5 * MIB);
    repeated.etag = "\"listed-again\"".into();
    h.backend.listed = vec![listed(3, 5 * MIB), listed(1, 5 * MIB), repeated, listed(9, 5 * MIB)];
    let store = MemoryResumeStore::default();
    store.save("a.bin", &record(5 * MIB));
    let (result, _) = run_resumable(&h, &store);
    result.unwrap();
    let mut sent: Vec<u64> = h.transport.bodies.borrow().iter().map(|r| r.start / (5 * MIB) + 1).collect();
    sent.sort();
    assert_eq!(sent, vec![2, 4, 5], "parts 1 and 3 were stored; part 9 is not in the plan");
    let completed = h.backend.completed.borrow().clone().unwrap();
    assert_eq!(completed.iter().map(|p| p.part_number).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert_eq!(completed[2].etag, "\"stored-3\"", "the first listing of a part counts");
}

#[test]
fn a_record_from_another_plan_is_dropped_and_the_upload_starts_afresh() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    h.backend.listed = vec![listed(1, 8 * MIB)];
    let store = MemoryResumeStore::default();
    store.save("a.bin", &record(8 * MIB));
    let (result, _) = run_resumable(&h, &store);
    assert_eq!(result.unwrap().upload_id.as_deref(), Some("u-1"));
    assert_eq!(h.backend.created.get(), 1);
    assert_eq!(h.transport.bodies.borrow().len(), 5);
}

#[test]
fn a_fresh_upload_keeps_a_record_until_it_ends() {
    let h = Harness::new(StoreBehaviour::HangOnPart(5), 6);
    let store = MemoryResumeStore::default();
    let size = 23 * MIB + 5;
    let sink = |_: &ProgressSnapshot, _: Option<&str>| {};
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    let mut cx = h.cx(6);
    cx.resume = Some(Resume { store: &store, fingerprint: "a.bin".into(), found: store.load("a.bin") });
    let check = async {
        for _ in 0..50 {
            yield_now().await;
        }
        let kept = store.load("a.bin");
        h.control.aborted.set(true);
        kept
    };
    let (result, kept) = block_on(join(upload_file(&cx, &FakeSource(size), &file("a.bin", size), &progress), check));
    let kept = kept.expect("a record is kept while the upload runs");
    assert_eq!((kept.upload_id.as_str(), kept.part_size), ("u-1", 5 * MIB));
    assert_eq!(result.unwrap_err().code, ErrorCode::Aborted);
    assert!(store.load("a.bin").is_none(), "an aborted upload is not resumed");
}

#[test]
fn the_last_figures_before_progress_stops_are_reported() {
    // Parts 1 and 2 are stored within the 100 ms throttle; part 3 never answers.
    let h = Harness::new(StoreBehaviour::HangOnPart(3), 6);
    let seen = RefCell::new(Vec::new());
    let sink = |s: &ProgressSnapshot, _: Option<&str>| seen.borrow_mut().push(s.loaded);
    let size = 12 * MIB;
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    let cx = h.cx(6);
    let stop_later = async {
        for _ in 0..200 {
            yield_now().await;
        }
        h.control.aborted.set(true);
    };
    let _ = block_on(join(upload_file(&cx, &FakeSource(size), &file("a", size), &progress), stop_later));
    // 10 MiB stored, and half of the 2 MiB last part on its way when it stalled.
    assert_eq!(seen.borrow().last(), Some(&(11 * MIB)), "held-back figures were sent: {:?}", seen.borrow());
}

#[test]
fn a_batch_url_past_its_expiry_is_signed_again_before_it_is_sent() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    // Signed at the epoch for 1 s: expired by the time the fake clock reads it.
    h.backend.url_suffix = "&X-Amz-Date=19700101T000000Z&X-Amz-Expires=1".into();
    h.run(12 * MIB).unwrap();
    let calls = h.backend.sign_calls.borrow();
    assert_eq!(calls[0], vec![1, 2, 3], "one batch");
    let mut singles: Vec<u32> = calls[1..].iter().map(|c| c[0]).collect();
    singles.sort();
    assert_eq!(singles, vec![2, 3], "each expiring batch URL signed again alone: {calls:?}");
    assert_eq!(h.transport.attempts.get(), 3, "no request was sent with an expired URL");
}

#[test]
fn loaded_goes_back_only_in_reports_flagged_restarted() {
    let h = Harness::new(StoreBehaviour::Accept, 1);
    h.transport.failures.borrow_mut().insert(2, vec![transient(500), transient(503)]);
    let seen = RefCell::new(Vec::new());
    let sink = |s: &ProgressSnapshot, _: Option<&str>| seen.borrow_mut().push((s.loaded, s.restarted));
    let size = 12 * MIB;
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    block_on(upload_file(&h.cx(1), &FakeSource(size), &file("a", size), &progress)).unwrap();
    let seen = seen.borrow();
    assert!(seen.windows(2).all(|w| w[1].0 >= w[0].0 || w[1].1), "an unflagged step back: {seen:?}");
    assert!(seen.iter().any(|r| r.1), "the restarts were reported: {seen:?}");
    assert_eq!(seen.last().unwrap().0, size);
}

/// The whole fake file, for computing what its checksums must be.
fn source_bytes(size: u64) -> Vec<u8> {
    (0..size).map(source_byte).collect()
}

fn with_checksums(algorithm: ChecksumAlgorithm) -> Harness {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    h.checksum = Some(algorithm);
    h.backend.does_checksums = true;
    h
}

#[test]
fn every_part_is_signed_with_its_checksum_and_complete_gets_the_whole_objects() {
    let h = with_checksums(ChecksumAlgorithm::Crc32c);
    let size = 12 * MIB + 7;
    let bytes = source_bytes(size);
    let stored = h.run(size).unwrap();
    let part_crc = |n: usize| {
        let range = (n - 1) * 5 * MIB as usize..(n * 5 * MIB as usize).min(bytes.len());
        base64(&digest(ChecksumAlgorithm::Crc32c, &bytes[range]))
    };
    // Each signing request carried exactly its parts' checksums.
    let calls = h.backend.sign_calls.borrow();
    let checksums = h.backend.signed_checksums.borrow();
    for (numbers, sums) in calls.iter().zip(checksums.iter()) {
        let expected: Vec<String> = numbers.iter().map(|&n| part_crc(n as usize)).collect();
        assert_eq!(sums, &expected);
    }
    assert_eq!(calls.iter().flatten().count(), 3, "each part signed once");
    let completed = h.backend.completed.borrow().clone().unwrap();
    let sent: Vec<Option<String>> = completed.iter().map(|p| p.checksum.clone()).collect();
    assert_eq!(sent, (1..=3).map(|n| Some(part_crc(n))).collect::<Vec<_>>());
    let whole = base64(&digest(ChecksumAlgorithm::Crc32c, &bytes));
    let given = h.backend.completed_checksum.borrow().clone().unwrap();
    assert_eq!((given.value.as_str(), given.kind), (whole.as_str(), ChecksumType::FullObject));
    assert_eq!(stored.checksum, Some(given));
}

#[test]
fn a_store_reporting_another_object_checksum_is_a_checksum_mismatch() {
    let mut h = with_checksums(ChecksumAlgorithm::Sha256);
    h.backend.reported_checksum = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=-3".into());
    let err = h.run(12 * MIB).unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch);
    assert!(err.message.contains("SHA256") && err.message.contains("not this file"), "{}", err.message);
}

#[test]
fn a_backend_without_checksums_gets_none_and_nothing_is_hashed() {
    let mut h = with_checksums(ChecksumAlgorithm::Crc32c);
    h.backend.does_checksums = false;
    let hashed = Cell::new(0);
    let sink = |s: &ProgressSnapshot, _: Option<&str>| hashed.set(s.hashed);
    let size = 12 * MIB;
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    let stored = block_on(upload_file(&h.cx(6), &FakeSource(size), &file("a", size), &progress)).unwrap();
    assert_eq!(stored.checksum, None);
    assert!(h.backend.signed_checksums.borrow().iter().all(Vec::is_empty));
    assert_eq!(h.backend.completed_checksum.borrow().clone(), None);
    assert_eq!(hashed.get(), 0);
}

#[test]
fn a_part_url_signed_without_its_checksum_is_refused_before_sending() {
    let mut h = with_checksums(ChecksumAlgorithm::Crc32c);
    h.backend.drops_checksum_headers = true;
    let err = h.run(12 * MIB).unwrap_err();
    assert_eq!(err.code, ErrorCode::BackendError);
    assert!(err.message.contains("x-amz-checksum-crc32c"), "{}", err.message);
    assert_eq!(h.transport.attempts.get(), 0, "no part went out unprotected");
    assert_eq!(h.backend.aborted.get(), 1);
}

#[test]
fn hashing_is_reported_and_reaches_the_file_size() {
    let h = with_checksums(ChecksumAlgorithm::Md5);
    let seen = RefCell::new(Vec::new());
    let sink = |s: &ProgressSnapshot, _: Option<&str>| seen.borrow_mut().push(s.hashed);
    let size = 12 * MIB;
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    block_on(upload_file(&h.cx(6), &FakeSource(size), &file("a", size), &progress)).unwrap();
    let seen = seen.borrow();
    assert!(seen.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
    assert_eq!(seen.last(), Some(&size));
}

#[test]
fn a_single_put_is_hashed_first_and_its_checksum_signed() {
    let h = with_checksums(ChecksumAlgorithm::Sha1);
    let bytes = source_bytes(1000);
    let stored = h.run(1000).unwrap();
    let expected = base64(&digest(ChecksumAlgorithm::Sha1, &bytes));
    let asked = h.backend.put_file.borrow().clone().unwrap();
    assert_eq!(
        (asked.checksum_algorithm, asked.checksum.as_deref()),
        (Some(ChecksumAlgorithm::Sha1), Some(expected.as_str()))
    );
    assert_eq!(stored.checksum.map(|c| c.value), Some(expected));
}

#[test]
fn hashing_waits_while_paused() {
    let h = with_checksums(ChecksumAlgorithm::Crc32c);
    h.control.paused.set(true);
    let hashed = Cell::new(0);
    let sink = |s: &ProgressSnapshot, _: Option<&str>| hashed.set(s.hashed);
    let size = 12 * MIB;
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    let cx = h.cx(6);
    let check = async {
        for _ in 0..50 {
            yield_now().await;
        }
        let while_paused = hashed.get();
        h.control.paused.set(false);
        while_paused
    };
    let (result, while_paused) =
        block_on(join(upload_file(&cx, &FakeSource(size), &file("a", size), &progress), check));
    assert_eq!(while_paused, 0, "nothing read while paused");
    assert!(result.unwrap().checksum.is_some());
}

#[test]
fn a_checksummed_part_is_signed_and_sent_once_hashed_not_after_its_batch() {
    // The fake source yields once per chunk: hashing is slower than signing here.
    let h = with_checksums(ChecksumAlgorithm::Crc32c);
    h.run(60 * MIB).unwrap(); // 12 parts
    let calls = h.backend.sign_calls.borrow();
    assert_eq!(calls[0], vec![1], "part 1 is signed as soon as it is hashed: {calls:?}");
    let mut signed: Vec<u32> = calls.iter().flatten().copied().collect();
    signed.sort_unstable();
    assert_eq!(signed, (1..=12).collect::<Vec<u32>>(), "each part signed once");
    assert!(calls.len() < 12, "later parts are signed in batches of what is hashed: {calls:?}");
}

#[test]
fn hashing_leaves_the_thread_between_slices_of_a_mebibyte() {
    let h = with_checksums(ChecksumAlgorithm::Sha256);
    h.run(20 * MIB + 1).unwrap();
    assert!(h.runtime.tasks.get() >= 21, "{} tasks for 20 MiB and a byte", h.runtime.tasks.get());
}

#[test]
fn when_hashing_is_ahead_checksummed_parts_are_signed_in_full_batches() {
    let h = with_checksums(ChecksumAlgorithm::Crc32c);
    h.transport.delay_yields.set(400); // sending is slow: hashing runs far ahead
    h.run(200 * MIB).unwrap(); // 40 parts, batches of 12 at concurrency 6
    let calls = h.backend.sign_calls.borrow();
    // The first batches are what is hashed by then; once hashing is ahead they are full.
    assert!(calls.iter().filter(|c| c.len() == 12).count() >= 2, "{calls:?}");
    assert!(calls.len() <= 12, "40 parts in a few signing requests: {calls:?}");
}

#[test]
fn post_mode_sends_the_whole_file_as_one_form_with_the_signed_fields() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    h.post_forms = PostForms::Always;
    let size = 40 * MIB; // far above the multipart threshold: still one POST
    let stored = h.run(size).unwrap();
    assert_eq!(h.transport.bodies.borrow().clone(), vec![0..size]);
    let forms = h.transport.forms.borrow();
    assert_eq!(forms.len(), 1);
    assert!(forms[0].contains(&("Policy".to_owned(), "e30=".to_owned())));
    assert_eq!((stored.key.as_str(), stored.parts), ("uploads/a.bin", None));
    assert_eq!(stored.location.as_deref(), Some("https://store/bucket/uploads/a.bin"));
    assert_eq!(stored.display_url.as_deref(), Some("https://store/bucket/shown"));
}

#[test]
fn post_mode_refuses_files_over_five_gib_before_asking_the_backend() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    h.post_forms = PostForms::Always;
    let err = h.run(5 * 1024 * MIB + 1).unwrap_err();
    assert_eq!(err.code, ErrorCode::FileTooLarge);
    assert!(h.transport.forms.borrow().is_empty());
}

#[test]
fn small_files_go_as_forms_with_their_checksum_and_large_ones_as_multipart() {
    let mut h = with_checksums(ChecksumAlgorithm::Crc32c);
    h.post_forms = PostForms::SmallFiles;
    let stored = h.run(MIB).unwrap();
    assert_eq!(h.transport.forms.borrow().len(), 1);
    assert_eq!(h.transport.bodies.borrow().clone(), vec![0..MIB]);
    let signed = h.backend.put_file.borrow().clone().unwrap();
    let expected = base64(&digest(ChecksumAlgorithm::Crc32c, &source_bytes(MIB)));
    assert_eq!(signed.checksum.as_deref(), Some(expected.as_str()), "the policy is signed with the file's checksum");
    assert_eq!(stored.checksum.map(|c| c.value), Some(expected));

    let h = {
        let mut h = with_checksums(ChecksumAlgorithm::Crc32c);
        h.post_forms = PostForms::SmallFiles;
        h
    };
    let stored = h.run(12 * MIB).unwrap();
    assert!(h.transport.forms.borrow().is_empty());
    assert_eq!(stored.parts, Some(3));
}

/// Runs an upload of `size` bytes alongside `driver`, which plays the user.
fn run_with(h: &Harness, size: u64, driver: impl Future<Output = ()>) -> Result<StoredObject, UploadError> {
    let sink = |_: &ProgressSnapshot, _: Option<&str>| {};
    let progress = ProgressReporter::new(size, &h.runtime, &sink);
    let cx = h.cx(6);
    block_on(join(upload_file(&cx, &FakeSource(size), &file("a", size), &progress), driver)).0
}

/// Yields until `ready()` holds (at most 1000 times).
async fn eventually(ready: impl Fn() -> bool) {
    for _ in 0..1000 {
        if ready() {
            return;
        }
        yield_now().await;
    }
    panic!("the condition never held");
}

#[test]
fn abort_while_the_backend_creates_the_upload_aborts_it_once_it_exists() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    let gate = Rc::new(Flag::default());
    h.backend.create_gate = Some(gate.clone());
    let driver = async {
        eventually(|| h.backend.created.get() == 1).await;
        h.control.aborted.set(true);
        for _ in 0..10 {
            yield_now().await;
        }
        assert_eq!(h.backend.aborted.get(), 0, "nothing to abort before the backend answers");
        gate.set(true);
    };
    let result = run_with(&h, 12 * MIB, driver);
    assert_eq!(result.unwrap_err().code, ErrorCode::Aborted);
    assert_eq!(h.backend.aborted.get(), 1, "the upload created after abort() is aborted, not orphaned");
    assert_eq!(h.transport.attempts.get(), 0, "no part is sent");
}

#[test]
fn abort_once_complete_was_sent_leaves_the_answer_to_complete() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    let gate = Rc::new(Flag::default());
    h.backend.complete_gate = Some(gate.clone());
    let driver = async {
        eventually(|| h.backend.complete_calls.get() == 1).await;
        h.control.aborted.set(true);
        yield_now().await;
        gate.set(true);
    };
    let stored = run_with(&h, 12 * MIB, driver).expect("the store completed the object: done resolves with it");
    assert_eq!(stored.parts, Some(3));
    assert_eq!(h.backend.aborted.get(), 0, "a completed upload is not aborted");
}

#[test]
fn retries_of_a_failed_part_reuse_its_url_until_it_expires() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    let reset = UploadError::new(ErrorCode::PartUploadFailed, "reset").with_observed(Observed::Network);
    let stalled = UploadError::new(ErrorCode::PartUploadFailed, "stalled").with_observed(Observed::TimedOut);
    h.transport.failures.borrow_mut().insert(2, vec![transient(500), reset, stalled]);
    h.run(12 * MIB).unwrap();
    assert_eq!(h.transport.attempts.get(), 6);
    let calls = h.backend.sign_calls.borrow();
    assert_eq!(calls.iter().flatten().count(), 3, "each part signed once, whatever its retries: {calls:?}");
}

#[test]
fn one_corrupt_md5_part_among_five_is_a_checksum_mismatch() {
    let mut h = with_checksums(ChecksumAlgorithm::Md5);
    h.transport.md5_etags = true;
    h.transport.corrupt_part = Some(3);
    h.backend.multipart_etag = true;
    let err = h.run(21 * MIB).unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch, "{}", err.message);
    assert!(err.message.contains("part 3"), "{}", err.message);
    h.transport.corrupt_part = None;
    let h = {
        let mut clean = with_checksums(ChecksumAlgorithm::Md5);
        clean.transport.md5_etags = true;
        clean.backend.multipart_etag = true;
        clean
    };
    assert!(h.run(21 * MIB).unwrap().checksum.is_some(), "the same upload without corruption is verified");
}

#[test]
fn a_single_put_sends_the_content_type_it_declared() {
    let h = Harness::new(StoreBehaviour::Accept, 6);
    let sink = |_: &ProgressSnapshot, _: Option<&str>| {};
    let progress = ProgressReporter::new(10, &h.runtime, &sink);
    let mut png = file("a.png", 10);
    png.content_type = "image/png".into();
    block_on(upload_file(&h.cx(6), &FakeSource(10), &png, &progress)).unwrap();
    let sent = h.transport.sent_headers.borrow();
    assert_eq!(sent[0].get("content-type"), Some("image/png"), "{sent:?}");
}

#[test]
fn a_form_posted_to_a_path_style_url_without_a_slash_reports_the_object_url() {
    let mut h = Harness::new(StoreBehaviour::Accept, 6);
    h.post_forms = PostForms::Always;
    h.backend.post_url = Some("http://127.0.0.1:9000/bucket".into());
    let stored = h.run(10).unwrap();
    assert_eq!(stored.location.as_deref(), Some("http://127.0.0.1:9000/bucket/uploads/a.bin"));
}
