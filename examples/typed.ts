// A typed use of s3-direct-upload, compiled with `tsc --strict` by scripts/test.sh against the
// generated pkg/ definitions: if the shipped types drift from how the library is meant to be
// used, the tests fail. Not run; compiled only.
import init, {
  Uploader,
  isUploadError,
  type BackendCallbacks,
  type TemporaryCredentials,
  type UploadProgress,
  type UploadResult,
} from "../pkg/s3_direct_upload.js";

declare const file: File;
declare function render(progress: UploadProgress): void;

export async function uploadWithJsonBackend(): Promise<UploadResult> {
  await init();
  const uploader = new Uploader({
    backend: "/api/uploads",
    backendHeaders: { Authorization: "Bearer token" },
    concurrency: 6,
    partSize: 8 * 1024 * 1024,
    retry: { maxRetries: 5, maxBackoffMs: 10_000 },
    stallTimeoutMs: 20_000,
    resume: true,
    transport: "xhr",
    maxBytesPerSecond: 10_000_000,
    onProgress: (p) => {
      const fraction: number = p.total ? p.loaded / p.total : 1;
      const eta: number | null = p.etaSeconds;
      const budget: number = p.budget;
      if (p.state === "waiting_for_network" || p.restarted || fraction > 0.5 || eta === 0 || budget < 6) render(p);
    },
  });
  // @ts-expect-error upload() takes a Blob (or File), not a file name
  uploader.upload("a.mp4");
  const upload = uploader.upload(file, { key: "videos/a.mp4", contentType: "video/mp4", metadata: { owner: "42" }, priority: 1 });
  upload.pause();
  upload.resume();
  try {
    const result = await upload.done;
    const shown: string | null = result.displayUrl;
    console.log(result.key, result.parts ?? 1, shown);
    return result;
  } catch (e) {
    // The guard narrows `unknown` to S3DirectUploadError; other values stay unknown.
    if (isUploadError(e) && e.code === "etag_not_exposed") console.error("add ETag to the bucket's CORS ExposeHeaders");
    throw e;
  } finally {
    uploader.free();
  }
}

// An existing Flask/boto3-style backend, adapted with callbacks.
const post = (path: string, body: unknown): Promise<any> =>
  fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json());

export const flaskBackend: BackendCallbacks = {
  createMultipartUpload: async (f) => ({
    key: f.filename,
    uploadId: (await post("/initiate-multipart-upload/", { file_name: f.filename })).upload_id,
  }),
  signPart: async (r) => ({
    url: (await post("/get-s3-presigned-url/", { file_name: r.key, upload_id: r.uploadId, part_number: r.partNumber }))
      .presigned_url,
  }),
  completeMultipartUpload: (r) =>
    post("/complete-multipart-upload/", {
      file_name: r.key,
      upload_id: r.uploadId,
      parts: r.parts.map((p) => ({ ETag: p.etag, PartNumber: p.partNumber })),
    }),
  abortMultipartUpload: (r) => post("/abort-multipart-upload/", { file_name: r.key, upload_id: r.uploadId }),
  listParts: async (r) => (await post("/list-parts/", { file_name: r.key, upload_id: r.uploadId })).parts,
  signPut: async (f) => ({
    url: (await post("/get-s3-presigned-url/", { file_name: f.filename, file_type: f.contentType })).presigned_url,
    headers: { "Content-Type": f.contentType },
  }),
};

export async function abortable(): Promise<void> {
  const uploader = new Uploader({ backend: flaskBackend, concurrency: 4 });
  const upload = uploader.upload(file);
  await upload.abort();
  await upload.done.catch((e: unknown) => isUploadError(e) && e.code === "aborted");
}

/** The other modes: a form POST under a signed policy, and temporary credentials the page signs with. */
export const formUploader = new Uploader({ backend: "/api/uploads", mode: "post" });

export const credentialsUploader = new Uploader({
  mode: "credentials",
  backend: {
    getCredentials: async (): Promise<TemporaryCredentials> => post("/api/uploads/credentials", {}),
  },
  checksum: "sha256",
});

export async function signedInThePage(): Promise<string | undefined> {
  const result = await credentialsUploader.upload(file, { key: "reports/q3.pdf" }).done;
  return result.checksum?.value;
}

// The <s3-upload> element: its properties, and its events typed on any element they bubble to.
import { S3UploadElement, formatBytes } from "../pkg/element.js";

export function configureWidget(): S3UploadElement {
  const widget = document.createElement("s3-upload");
  widget.backend = "/api/uploads";
  widget.options = { concurrency: 4, checksum: "sha256" };
  widget.addEventListener("upload-done", (e) => console.log(e.detail.result.key, formatBytes(e.detail.file.size)));
  widget.addEventListener("upload-error", (e) => console.log(e.detail.error.code));
  document.body.addEventListener("upload-progress", (e) => render(e.detail));
  return widget;
}
