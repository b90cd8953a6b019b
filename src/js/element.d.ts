// Types of `s3-direct-upload/element`: importing it defines <s3-upload>.
import type { BackendCallbacks, RestoredUpload, S3DirectUploadError, UploaderOptions, UploadProgress, UploadResult } from "./s3_direct_upload.js";

/**
 * `<s3-upload backend="/api/uploads" multiple>`: a drop zone, file and folder pickers, and a list
 * of uploads with progress, pause/resume, cancel, retry, previews and errors. Attributes:
 * `backend`, `mode`, `accept`, `max-size` (bytes), `multiple`, `directory`, `worker`, `persist`
 * (a persistent queue: uploads a reload interrupted are listed with Resume), `theme` (`light` or
 * `dark`; default: the page's colour scheme). A folder's files are stored under their paths. Themed with `--s3u-*` custom
 * properties and the parts `drop-zone`, `button`, `list`, `file`, `progress`, `error`, `preview`.
 */
export class S3UploadElement extends HTMLElement {
  /** A URL (as the `backend` attribute) or callbacks. */
  backend: string | BackendCallbacks | null;
  /** The attributes, reflected. */
  mode: "presigned" | "post" | "credentials" | null;
  accept: string | null;
  maxSize: number | null;
  multiple: boolean;
  directory: boolean;
  worker: boolean;
  persist: boolean;
  /** Any other Uploader option, applied when the first file is added. */
  options: Partial<UploaderOptions>;
  /**
   * Uploads these files (a path shown for each: a folder's relative path, which becomes the key
   * asked for, as with `pathOptions`; a handle, kept with `persist`).
   */
  add(files: Iterable<File | { file: File; path: string; handle?: FileSystemFileHandle }>): void;
}

/** `bytes` as people read it, e.g. "1.5 MiB". */
export function formatBytes(bytes: number): string;

/** How the library is made ready before the first upload (default: the module's `init()`). */
export function whenLibraryReady(ready: () => Promise<unknown>): void;

export interface S3UploadEventMap {
  "upload-progress": CustomEvent<UploadProgress>;
  "upload-done": CustomEvent<{ file: File | RestoredUpload; result: UploadResult }>;
  "upload-error": CustomEvent<{ file: File | RestoredUpload; error: S3DirectUploadError }>;
}

declare global {
  interface HTMLElementTagNameMap {
    "s3-upload": S3UploadElement;
  }
  interface HTMLElementEventMap extends S3UploadEventMap {}
}
