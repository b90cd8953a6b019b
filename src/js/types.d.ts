
/** Stable error codes carried by every error this library throws or rejects with. */
export type UploadErrorCode =
  | "invalid_option"
  | "invalid_file"
  | "file_too_large"
  | "backend_unreachable"
  | "backend_error"
  | "part_upload_failed"
  | "etag_not_exposed"
  | "checksum_mismatch"
  | "aborted"
  | "not_initialized";

/** The `Error` this library throws or rejects with. Branch on `code`, show `message`. */
export interface S3DirectUploadError extends Error {
  name: "S3DirectUploadError";
  code: UploadErrorCode;
  /** HTTP status of the failed response, when there was one. */
  status?: number;
  /** What a backend callback threw or rejected with, unchanged. */
  cause?: unknown;
}

/** Whether `value` is an error of this library: narrows what a `catch` caught. Works before `init()`. */
export function isUploadError(value: unknown): value is S3DirectUploadError;

/** Life-cycle state of one upload. */
export type UploadState =
  | "queued"
  | "uploading"
  | "paused"
  | "waiting_for_network"
  | "retrying"
  | "completing"
  | "done"
  | "failed"
  | "aborted";

/** A progress report; at most ~10 a second per file, and always a last one with `loaded === total` on success. */
export interface UploadProgress {
  file: Blob;
  /** Object key, once the backend has chosen it. */
  key: string | null;
  loaded: number;
  total: number;
  bytesPerSecond: number;
  /** Seconds left at the recent speed; null while unknown. */
  etaSeconds: number | null;
  state: UploadState;
  /**
   * `loaded` went back since the last report: an attempt failed or was paused, and its bytes
   * will be sent again (only with `transport: "xhr"`, which counts bytes in flight).
   */
  restarted: boolean;
  /**
   * Bytes read and checksummed so far (0 with `checksum: false`). Hashing runs ahead of
   * sending; while it is the slower of the two, this is what moves.
   */
  hashed: number;
  /**
   * The uploader's request budget now: how many store requests may be in flight for all files
   * together, from 1 to `concurrency`. It halves when the store asks to slow down (503
   * `SlowDown`, 429) or a request stalls, and grows back by one after as many successes.
   */
  budget: number;
}

/** A checksum algorithm, as S3 names it. */
export type ChecksumAlgorithmName = "CRC32C" | "CRC32" | "SHA256" | "SHA1" | "MD5";

/**
 * An object checksum: the whole object's CRC (`FULL_OBJECT`), the hash of the part hashes with
 * `-N` appended (`COMPOSITE`, SHA-1 and SHA-256), or for MD5 the multipart ETag.
 */
export interface ObjectChecksum {
  algorithm: ChecksumAlgorithmName;
  type: "FULL_OBJECT" | "COMPOSITE";
  /** base64 (hex for MD5). */
  value: string;
}

/** What `upload.done` resolves with. */
export interface UploadResult {
  key: string;
  /** Object URL without any signature. */
  location: string | null;
  etag: string | null;
  /** A presigned GET URL to show the object, when the backend gives one. */
  displayUrl: string | null;
  size: number;
  /** S3 upload id (multipart uploads only). */
  uploadId: string | null;
  /** Number of parts (multipart uploads only). */
  parts: number | null;
  /**
   * The object's checksum, computed from the file. Present when the store checked every part
   * against its checksum (and the object against this, where it reports one); null when the
   * backend did not sign checksums or `checksum: false`.
   */
  checksum: ObjectChecksum | null;
}

/** The file as the backend is asked to authorize it. */
export interface FileDescription {
  filename: string;
  size: number;
  contentType: string;
  /** The key the page would like; the backend decides. */
  key?: string;
  metadata: Record<string, string>;
  /** The checksum algorithm the parts will carry. A backend that supports checksums creates the upload with it and echoes it. */
  checksumAlgorithm?: ChecksumAlgorithmName;
  /** The file's checksum (base64), when signing a single PUT: sign it in as the algorithm's header. */
  checksum?: string;
  /**
   * When creating a multipart upload: the size of every part but the last, so each part's exact
   * length can be signed (`Content-Length`; the browser sends that header itself).
   */
  partSize?: number;
}

/** Why parts are being signed: the first time, or again because the store refused the last URLs as expired. */
export type SignReason = "first" | "expired";

/** A presigned request: send exactly these headers, they are part of the signature. */
export interface SignedRequest {
  url: string;
  headers?: Record<string, string>;
}

export interface MultipartSession {
  key: string;
  uploadId: string;
  /** Echo the requested algorithm when the upload was created with it; leave out if checksums are not supported. */
  checksumAlgorithm?: ChecksumAlgorithmName | null;
}

export interface SignedPart extends SignedRequest {
  partNumber: number;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
  /** The part's checksum (base64), for the CompleteMultipartUpload body. */
  checksum?: string;
}

/**
 * A backend made of functions, for any server API. Each takes one object and returns a value
 * or a Promise of one. Give `signPut` for small files and the multipart trio for large ones.
 */
export interface BackendCallbacks {
  createMultipartUpload?: (file: FileDescription) => MultipartSession | Promise<MultipartSession>;
  /**
   * Signs several parts at once (preferred: fewer round trips). With checksums, `checksums[i]`
   * is part `partNumbers[i]`'s (base64): sign it in as the algorithm's header
   * (`x-amz-checksum-crc32c`, ..., or `content-md5`) and return that header in `headers`.
   */
  signParts?: (request: MultipartSession & { partNumbers: number[]; checksums?: string[]; reason: SignReason }) =>
    { parts: SignedPart[] } | SignedPart[] | Promise<{ parts: SignedPart[] } | SignedPart[]>;
  /** Signs one part; used when `signParts` is not given. */
  signPart?: (request: MultipartSession & { partNumber: number; checksum?: string; reason: SignReason }) =>
    SignedRequest | Promise<SignedRequest>;
  completeMultipartUpload?: (request: MultipartSession & { parts: CompletedPart[]; checksum?: ObjectChecksum }) =>
    CompletedObject | void | Promise<CompletedObject | void>;
  abortMultipartUpload?: (request: MultipartSession) => unknown;
  /** The parts the store holds; needed to resume an upload after a page reload. */
  listParts?: (request: MultipartSession) =>
    { parts: ListedPart[] } | ListedPart[] | Promise<{ parts: ListedPart[] } | ListedPart[]>;
  signPut?: (file: FileDescription) => SignedPut | Promise<SignedPut>;
  /** `mode: "post"`: a POST policy for an HTML-form upload of the file. */
  signPost?: (file: FileDescription) => SignedPost | Promise<SignedPost>;
  /**
   * Signs many files, each to go up in one request, in one call (up to 100; files started
   * together, or waiting for a call, are gathered). Answer each, in order, as `signPost` (a form,
   * which needs no CORS preflight) or `signPut` would, or as `{ error, status }` to refuse that
   * file alone. `signPut` is still needed beside it.
   */
  signFiles?: (request: { files: FileDescription[] }) =>
    { files: (SignedPost | SignedPut | { error: string; status?: number })[] }
    | Promise<{ files: (SignedPost | SignedPut | { error: string; status?: number })[] }>;
  /** `mode: "credentials"`: temporary credentials for the page to sign with. */
  getCredentials?: () => TemporaryCredentials | Promise<TemporaryCredentials>;
}

/** A signed POST policy: post the `fields`, then the file, to `url`. */
export interface SignedPost {
  /** The bucket URL. */
  url: string;
  /** Form fields: `key`, `Content-Type`, `Policy`, `X-Amz-Signature`, `x-amz-credential`, ... */
  fields: Record<string, string>;
  /** The object key; defaults to `fields.key`. */
  key?: string;
  displayUrl?: string;
}

/**
 * Temporary credentials (e.g. from STS) confined to `keyPrefix`, for `mode: "credentials"`. The
 * page signs every S3 request with them; they are fetched again before `expiration` and after
 * the store answers `ExpiredToken`.
 */
export interface TemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** ISO 8601, e.g. `2026-11-21T13:00:00Z`. */
  expiration: string;
  region: string;
  bucket: string;
  /** A custom endpoint (`http(s)://host[:port]`: MinIO, R2, ...); AWS's when left out. */
  endpoint?: string | null;
  /** Path-style addressing (custom endpoints usually need it). */
  forcePathStyle?: boolean;
  /** S3 Transfer Acceleration (AWS only). */
  accelerate?: boolean;
  /** Dual-stack (IPv6) endpoints (AWS only). */
  dualstack?: boolean;
  /** Every key the page creates starts with this. */
  keyPrefix: string;
}

export interface ListedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/**
 * How failed requests are retried: network failures, time-outs, 5xx, 429/503 SlowDown and 408,
 * with decorrelated-jitter backoff. Other 4xx fail at once; an expired URL is signed again.
 */
export interface RetryOptions {
  /** Retries of one request after its first attempt; default 10. */
  maxRetries?: number;
  /** Stop retrying one request this long after its first attempt; default 180000 (3 min). */
  retryTimeoutMs?: number;
  /** First wait; default 100. */
  initialBackoffMs?: number;
  /** Longest wait; default 15000. */
  maxBackoffMs?: number;
}

export interface CompletedObject {
  key?: string;
  location?: string;
  etag?: string;
  displayUrl?: string;
  /** The object checksum the store reported on completion, passed on unchanged. */
  checksum?: string | null;
  /** `FULL_OBJECT` or `COMPOSITE`, as the store reported it. */
  checksumType?: string | null;
}

export interface SignedPut extends SignedRequest {
  /** The object key; defaults to the requested key, then the file name. */
  key?: string;
  displayUrl?: string;
}

export interface UploaderOptions {
  /** Base URL of the JSON upload API (see the README), or an object of callbacks. */
  backend: string | BackendCallbacks;
  /**
   * How files reach the store. "presigned" (default): the backend presigns PUTs and parts.
   * "post": each file is one HTML-form POST under a policy the backend signs (5 GiB at most).
   * "credentials": the backend hands out temporary credentials once and the page signs every
   * request itself (`POST backend/credentials`, or `getCredentials`).
   */
  mode?: "presigned" | "post" | "credentials";
  /** Headers sent with every request to a URL backend, e.g. `Authorization`. */
  backendHeaders?: Record<string, string>;
  /** Simultaneous requests to the store for all files together: 1 to 64, default 6. */
  concurrency?: number;
  /** Part size in bytes, 5 MiB to 5 GiB; default: 5 MiB, grown so a file fits in 10,000 parts. */
  partSize?: number;
  /** Files up to this many bytes go up in one PUT; default 5 MiB. 0-byte files always do. */
  multipartThreshold?: number;
  /** Retry policy; see `RetryOptions` for the defaults. */
  retry?: RetryOptions;
  /**
   * How long a PUT may make no progress before it is cancelled and retried. With "xhr", no byte
   * sent and no answer for this long; with "fetch" (which cannot see bytes leave), no answer this
   * long after the time the body needs at `minBytesPerSecond`. Default 30000.
   */
  stallTimeoutMs?: number;
  /** The slowest acceptable upload rate, for stall detection with fetch; default 50000 (400 kbit/s). */
  minBytesPerSecond?: number;
  /**
   * "fetch" (default): progress per stored part. "xhr": XMLHttpRequest, with progress per byte
   * sent, and a stall detected as no progress for `stallTimeoutMs`.
   */
  transport?: "fetch" | "xhr";
  /**
   * Remember multipart uploads of `File`s (in localStorage; in IndexedDB with `worker: true`)
   * so that the same file, given again after a reload, sends only its missing parts. Needs a
   * backend that lists parts. Default true.
   */
  resume?: boolean;
  /**
   * Run the engine (hashing, signing, every store request) in a Web Worker, off the page's main
   * thread. The API is the same; backend callbacks and `onProgress` still run on the page.
   * Where workers are refused (a CSP without `worker-src 'self'`, or `blob:` for the drop-in
   * script), uploads run on the page, with a console warning. Default false.
   */
  worker?: boolean;
  /**
   * The checksum each part carries, computed in wasm and checked by the store: "crc32c"
   * (default), "crc32", "sha256", "sha1", "md5" (sent as Content-MD5), or false for none.
   */
  checksum?: "crc32c" | "crc32" | "sha256" | "sha1" | "md5" | false;
  /** Called with the progress of every file. */
  onProgress?: (progress: UploadProgress) => void;
  /**
   * A bandwidth cap for all files together, in bytes per second (no cap when left out). Each
   * request starts once the cap allows the bytes before it, so the average keeps to the cap,
   * with bursts of one request at most (a request itself goes at the link's speed).
   */
  maxBytesPerSecond?: number;
  /**
   * Keep a persistent queue: every upload of a `File` is recorded in IndexedDB until it is done
   * or aborted (or fails in a way starting again cannot mend), so that `restore()` offers it
   * after a reload. `true` is the queue "default"; a string names the queue. Files given without
   * a `handle`, up to `copyUpTo` bytes (default 32 MiB), are copied into the origin-private file
   * system while all copies take at most `copyBudget` bytes (default 256 MiB); copies are
   * deleted when their upload ends. Needs `resume` (on by default). Storage failures leave the
   * uploads as they would be without it. Default off.
   */
  persist?: boolean | string | { name?: string; copyUpTo?: number; copyBudget?: number };
}

export interface UploadOptions {
  /** The key the page would like; the backend has the last word. */
  key?: string;
  /** Defaults to the file's type, then `application/octet-stream`. */
  contentType?: string;
  /** User metadata, stored as `x-amz-meta-*`. ASCII only. */
  metadata?: Record<string, string>;
  /** Called with the progress of this file. */
  onProgress?: (progress: UploadProgress) => void;
  /**
   * Whole number, default 0: requests of a higher priority get the uploader's request budget
   * first, so a small file can go ahead of a large one already under way.
   */
  priority?: number;
  /**
   * The file's `FileSystemFileHandle` (from `showOpenFilePicker()`, a drop's
   * `getAsFileSystemHandle()`, or OPFS): with `persist`, it is stored so that `restore()` can
   * read the file again after a reload without a new pick.
   */
  handle?: FileSystemFileHandle;
}

/** A file of a pick, a drop or a folder, where it sits in it, and its handle when the browser gave one. */
export interface FoundFile {
  file: File;
  /** Its relative path: `photos/2026/a.jpg` for a file in a picked or dropped folder, else its name. */
  path: string;
  handle?: FileSystemFileHandle;
}

/** What a file pick or drop yields, or a list of such values. */
export type FileSource =
  | Blob
  | FileList
  | DataTransfer
  | DataTransferItemList
  | DataTransferItem
  | FileSystemHandle
  | FileSystemEntry
  | FoundFile
  | Iterable<Blob | DataTransferItem | FileSystemHandle | FileSystemEntry | FoundFile>;

/**
 * Every file in `source`, with its path: folders (`webkitdirectory` inputs, dropped folders,
 * directory handles) are walked. Call it from a drop's event handler before any `await`: a
 * drop's items can only be read while the event lasts. Rejects with `invalid_file` when a folder
 * cannot be read.
 */
export function filesFrom(source: FileSource): Promise<FoundFile[]>;

/**
 * The upload options `uploadAll` gives each file, to keep a folder's shape when an app uploads
 * the files of `filesFrom` one by one: `key` is `prefix + path`, and `metadata` holds the path
 * as `relative-path` (percent-encoded where it is not printable ASCII).
 */
export function pathOptions(path: string, prefix?: string): { key: string; metadata: Record<string, string> };

/** The options of `uploader.uploadAll(source, ...)`: those of `upload()` shared by every file, and these. */
export interface BatchOptions extends Omit<UploadOptions, "key" | "onProgress" | "handle"> {
  /** Put before each file's path to form the key the page asks for, e.g. "albums/2026/". Default "". */
  prefix?: string;
  /** Called with the progress of all the files together. */
  onProgress?: (progress: BatchProgress) => void;
  /** Called with the progress of each file. */
  onFileProgress?: (progress: UploadProgress) => void;
}

/** The progress of an `uploadAll`. */
export interface BatchProgress {
  /** Bytes of all files stored. */
  loaded: number;
  /** Bytes of all files. */
  total: number;
  /** How many files there are (0 until the folders are walked). */
  files: number;
  /** How many are stored. */
  done: number;
  /** How many failed. */
  failed: number;
}

/** The uploads of one `uploadAll` call, steered together. */
export interface UploadBatch {
  /** Every file's `Upload`, once the folders are walked and the uploads started. */
  uploads: Promise<Upload[]>;
  /**
   * Once every upload has ended: those stored and those that failed. Rejects only when the
   * files could not be read (`invalid_file`).
   */
  done: Promise<{
    successful: { file: File; path: string; result: UploadResult }[];
    failed: { file: File; path: string; error: S3DirectUploadError }[];
  }>;
  pause(): void;
  resume(): void;
  /** Aborts every upload; resolves once they have ended. */
  abort(): Promise<void>;
}

/** An upload of an earlier page that did not finish, offered by `uploader.restore()`. */
export interface RestoredUpload {
  name: string;
  size: number;
  type: string;
  lastModified: number;
  /** The key asked for, if any. */
  key?: string;
  /** The options it was started with (without callbacks). */
  options: UploadOptions;
  /**
   * "ready": `resume()` goes on at once (from its handle or its OPFS copy). "needs-permission":
   * its handle needs the user's leave: call `resume()` from a click. "needs-file": ask the user
   * to pick the file again and pass it to `resume(file)`.
   */
  state: "ready" | "needs-permission" | "needs-file";
  /**
   * Goes on with the upload, with the options it was started with and `callbacks`, sending only
   * the parts not yet stored. Rejects with `invalid_file` when the file cannot be read, or `file`
   * is not the same file (name, size and last change).
   */
  resume(file?: File, callbacks?: Pick<UploadOptions, "onProgress">): Promise<Upload>;
  /** Forgets it: it is no longer offered, and its copy is deleted. */
  discard(): Promise<void>;
}
