// <s3-upload>: a drop zone, a picker of files and folders, and a list of uploads with progress,
// speed, time left, pause/resume, cancel, retry, a preview and errors, over the library's
// Uploader. Shipped as the package's `s3-direct-upload/element` entry (importing it defines the
// element) and inside the drop-in script. Themed with CSS custom properties (--s3u-*) and
// ::part(); light and dark follow the page's colour scheme unless `theme` says which.
import init, { Uploader, filesFrom, pathOptions } from "./s3_direct_upload.js";

let libraryReady = () => init();

/** How the library is made ready (the drop-in script has its own way): called once, lazily. */
export function whenLibraryReady(ready) {
  libraryReady = ready;
}

const STYLE = `
:host { --s3u-fg: #1d1f24; --s3u-muted: #5b606b; --s3u-bg: #fff; --s3u-zone: #f5f7fb; --s3u-border: #8a90a0;
  --s3u-accent: #2458c6; --s3u-accent-fg: #fff; --s3u-error: #b3261e; --s3u-success: #1d7a35; --s3u-radius: 8px;
  --s3u-font: system-ui, sans-serif; display: block; font: 15px/1.45 var(--s3u-font); color: var(--s3u-fg); }
@media (prefers-color-scheme: dark) { :host(:not([theme=light])) { --s3u-fg: #e8eaf0; --s3u-muted: #aab0bd;
  --s3u-bg: #1b1d22; --s3u-zone: #23262d; --s3u-border: #7d8496; --s3u-accent: #8fb0ff; --s3u-accent-fg: #10131a;
  --s3u-error: #ffb4ab; --s3u-success: #86d99a; } }
:host([theme=dark]) { --s3u-fg: #e8eaf0; --s3u-muted: #aab0bd; --s3u-bg: #1b1d22; --s3u-zone: #23262d;
  --s3u-border: #7d8496; --s3u-accent: #8fb0ff; --s3u-accent-fg: #10131a; --s3u-error: #ffb4ab; --s3u-success: #86d99a; }
* { box-sizing: border-box; }
.zone { border: 2px dashed var(--s3u-border); border-radius: var(--s3u-radius); background: var(--s3u-zone);
  padding: 1.5rem 1rem; text-align: center; }
.zone.over { border-color: var(--s3u-accent); border-style: solid; }
.zone p { margin: 0 0 .75rem; }
button { font: inherit; color: var(--s3u-accent); background: var(--s3u-bg); border: 1px solid var(--s3u-accent);
  border-radius: calc(var(--s3u-radius) / 2); padding: .3rem .8rem; cursor: pointer; min-height: 2rem; }
button.primary { background: var(--s3u-accent); color: var(--s3u-accent-fg); }
button:focus-visible { outline: 3px solid var(--s3u-accent); outline-offset: 2px; }
ul { list-style: none; margin: .75rem 0 0; padding: 0; }
li { border-bottom: 1px solid var(--s3u-border); padding: .6rem 0; }
.name { font-weight: 600; overflow-wrap: anywhere; }
progress { width: 100%; height: .8rem; accent-color: var(--s3u-accent); }
.row { display: flex; flex-wrap: wrap; gap: .3rem 1rem; align-items: center; font-size: .87rem; color: var(--s3u-muted); }
.actions { margin-left: auto; display: flex; gap: .4rem; }
li[data-state=failed] .status, li[data-state=aborted] .status { color: var(--s3u-error); }
li[data-state=done] .status { color: var(--s3u-success); }
.error { color: var(--s3u-error); margin: .3rem 0 0; overflow-wrap: anywhere; }
img, video { display: block; max-width: 100%; max-height: 14rem; margin-top: .5rem; border-radius: calc(var(--s3u-radius) / 2); }
.hidden { display: none; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

const STATE_TEXT = {
  queued: "Queued", uploading: "Uploading", paused: "Paused", waiting_for_network: "Waiting for the network",
  retrying: "Retrying", completing: "Completing", done: "Uploaded", failed: "Failed", aborted: "Cancelled",
  interrupted: "Not finished",
};

/** `bytes` as people read it: 1.5 MiB. */
export function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) {
    bytes /= 1024;
    i++;
  }
  return `${bytes.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** Whether `file` matches an `accept` list (`image/*`, `application/pdf`, `.png`). */
function accepted(file, accept) {
  if (!accept) return true;
  const type = (file.type || "").toLowerCase();
  const name = file.name.toLowerCase();
  return accept.split(",").map((a) => a.trim().toLowerCase()).filter(Boolean).some((a) =>
    a.startsWith(".") ? name.endsWith(a) : a.endsWith("/*") ? type.startsWith(a.slice(0, -1)) : type === a);
}

/** An error like the library's, for a file refused before it is sent. */
function refusal(message) {
  return Object.assign(new Error(message), { name: "S3DirectUploadError", code: "invalid_file" });
}

let instances = 0;
// (In a worker, where the drop-in script runs too, there is no HTMLElement and nothing is defined.)

/**
 * `<s3-upload backend="/api/uploads">`. Attributes: `backend` (a URL; or the `backend` property,
 * a URL or callbacks), `mode`, `accept`, `max-size` (bytes), `multiple`, `directory` (offer a
 * folder picker), `worker`, `persist` (keep a queue, or the queue named by its value, and list
 * the uploads a reload interrupted, each with Resume), `theme` (light or dark). Files from a
 * folder are stored under their relative paths. The `options` property adds any other
 * Uploader option. Events (bubbling, composed): `upload-progress` (detail: the progress report),
 * `upload-done` (detail: {file, result}), `upload-error` (detail: {file, error}).
 */
export class S3UploadElement extends (globalThis.HTMLElement ?? class {}) {
  static observedAttributes = ["accept", "multiple", "directory", "backend", "mode", "worker", "persist"];

  constructor() {
    super();
    this._options = {};
    this.uploader = null;
    const id = `s3u-${++instances}`;
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${STYLE}</style>
<div class="zone" part="drop-zone" role="group" aria-labelledby="${id}-hint">
  <p id="${id}-hint">Drop files here, or</p>
  <button type="button" class="primary choose" part="button">Choose files</button>
  <button type="button" class="folder hidden" part="button">Choose a folder</button>
  <input type="file" class="files" hidden>
  <input type="file" class="folders" webkitdirectory hidden>
  <input type="file" class="again" hidden>
</div>
<ul part="list" aria-label="Uploads"></ul>
<div class="sr" aria-live="polite" role="status"></div>`;
    const $ = (selector) => root.querySelector(selector);
    this._list = $("ul");
    this._announcer = $("[aria-live]");
    this._files = $(".files");
    this._folders = $(".folders");
    $(".choose").onclick = () => this._files.click();
    $(".folder").onclick = () => this._folders.click();
    for (const input of [this._files, this._folders]) {
      input.onchange = () => {
        this.add([...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name })));
        input.value = "";
      };
    }
    const zone = $(".zone");
    zone.ondragover = (e) => {
      e.preventDefault();
      zone.classList.add("over");
    };
    zone.ondragleave = () => zone.classList.remove("over");
    zone.ondrop = async (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      const files = await filesFrom(e.dataTransfer).catch((error) => {
        this._announce(error.message);
        return [];
      });
      this.add(this.hasAttribute("multiple") ? files : files.slice(0, 1));
    };
    this.attributeChangedCallback();
  }

  attributeChangedCallback(name) {
    // Files added from now on go through an Uploader made with the new settings.
    if (["backend", "mode", "worker", "persist"].includes(name)) this.uploader = null;
    this._files.accept = this.getAttribute("accept") ?? "";
    this._files.multiple = this.hasAttribute("multiple");
    this.shadowRoot.querySelector(".folder").classList.toggle("hidden", !this.hasAttribute("directory"));
    const hint = this.shadowRoot.querySelector("p");
    hint.textContent = this.hasAttribute("multiple") ? "Drop files here, or" : "Drop a file here, or";
  }

  connectedCallback() {
    // In a microtask: an element already in the page connects while this module is defining it,
    // before the drop-in script has said how the library is made ready (whenLibraryReady).
    if (this.hasAttribute("persist") && !this._restored) queueMicrotask(() => this._restore());
  }

  /** Any other Uploader option (e.g. `backendHeaders`, `checksum`), for files added from now on. */
  get options() {
    return this._options;
  }

  set options(value) {
    this._options = value ?? {};
    this.uploader = null;
  }

  /** Where uploads are signed: the `backend` attribute, or a URL or callbacks object. */
  get backend() {
    return this._backend ?? this.getAttribute("backend");
  }

  set backend(value) {
    this._backend = value;
    this.uploader = null;
  }

  /** Uploads `files` ({file, path, handle?} or File), each in its own row; a folder's under their paths. */
  add(files) {
    for (const item of files) {
      const { file, path, handle } = item instanceof Blob ? { file: item, path: item.name } : item;
      const options = { ...(path !== file.name && pathOptions(path)), ...(handle && { handle }) };
      this._start(this._row(file, path), file, options);
    }
  }

  /** Lists the uploads of the persistent queue a reload interrupted, each with Resume and Remove. */
  async _restore() {
    if (this._restored) return;
    this._restored = true;
    let restored = [];
    try {
      restored = await (await this._uploaderReady()).restore();
    } catch (error) {
      this._announce(error.message);
    }
    for (const item of restored) this._offer(item);
  }

  _offer(item) {
    let path = item.options.metadata?.["relative-path"] ?? item.name;
    try {
      path = decodeURIComponent(path);
    } catch {} // not percent-encoded by us: shown as it is
    const row = this._row(item, path);
    const $ = (s) => row.querySelector(s);
    this._set(row, "interrupted");
    const needsFile = item.state === "needs-file";
    if (needsFile) $(".status").textContent = `Not finished: choose ${item.name} again to go on`;
    $(".retry").textContent = needsFile ? "Choose file" : "Resume";
    $(".retry").setAttribute("aria-label", `${needsFile ? "Choose the file to resume" : "Resume"} ${path}`);
    const resume = async (file) => {
      $(".error").classList.add("hidden");
      let upload;
      try {
        upload = await item.resume(file, { onProgress: this._progress(row) });
      } catch (error) {
        $(".error").textContent = error.message;
        $(".error").classList.remove("hidden");
        return;
      }
      $(".retry").textContent = "Retry";
      $(".retry").setAttribute("aria-label", `Retry ${path}`);
      row.announced = false;
      this._set(row, "queued");
      this._follow(row, file ?? item, upload, () => resume(file));
    };
    $(".retry").onclick = () => {
      if (!needsFile) return resume();
      const again = this.shadowRoot.querySelector(".again");
      again.onchange = () => {
        const [file] = again.files;
        again.value = "";
        if (file) resume(file);
      };
      again.click();
    };
    $(".remove").onclick = () => {
      item.discard();
      row.remove();
      this._announce(`${path}: removed`);
    };
  }

  async _uploaderReady() {
    await libraryReady();
    if (!this.uploader) {
      const mode = this.getAttribute("mode") ?? undefined;
      const persist = this.hasAttribute("persist") ? this.getAttribute("persist") || true : undefined;
      this.uploader = new Uploader({ backend: this.backend, mode, worker: this.hasAttribute("worker"), persist, ...this._options });
    }
    return this.uploader;
  }

  _row(file, path) {
    const row = document.createElement("li");
    row.setAttribute("part", "file");
    row.innerHTML = `<div class="name"></div><progress part="progress" max="1" value="0"></progress>
<div class="row"><span class="status">Queued</span><span class="loaded"></span><span class="speed"></span><span class="eta"></span>
<span class="actions"><button type="button" class="pause" part="button">Pause</button><button type="button" class="cancel" part="button">Cancel</button>
<button type="button" class="retry hidden" part="button">Retry</button><button type="button" class="remove hidden" part="button">Remove</button></span></div>
<p class="error hidden" part="error" role="alert"></p>`;
    row.querySelector(".name").textContent = `${path} (${formatBytes(file.size)})`;
    row.querySelector("progress").setAttribute("aria-label", `${path}: uploaded`);
    for (const [button, verb] of [["pause", "Pause"], ["cancel", "Cancel"], ["retry", "Retry"], ["remove", "Remove"]]) {
      row.querySelector(`.${button}`).setAttribute("aria-label", `${verb} ${path}`);
    }
    row.path = path;
    this._list.append(row);
    return row;
  }

  _announce(text) {
    this._announcer.textContent = text;
  }

  _set(row, state) {
    if (row.dataset.state === state) return;
    row.dataset.state = state;
    row.querySelector(".status").textContent = STATE_TEXT[state] ?? state;
    if (["done", "failed", "aborted", "paused"].includes(state) || row.announced !== true) {
      row.announced = true;
      this._announce(`${row.path}: ${STATE_TEXT[state] ?? state}`);
    }
    const ended = ["done", "failed", "aborted", "interrupted"].includes(state);
    const $ = (s) => row.querySelector(s);
    $(".pause").classList.toggle("hidden", ended);
    $(".cancel").classList.toggle("hidden", ended);
    $(".retry").classList.toggle("hidden", !["failed", "aborted", "interrupted"].includes(state));
    $(".remove").classList.toggle("hidden", !ended);
  }

  _emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true }));
  }

  _fail(row, file, error) {
    this._set(row, error.code === "aborted" ? "aborted" : "failed");
    row.dataset.error = error.code ?? "";
    const shown = row.querySelector(".error");
    shown.textContent = error.code === "aborted" ? "" : error.message;
    shown.classList.toggle("hidden", error.code === "aborted");
    this._emit("upload-error", { file, error });
  }

  async _start(row, file, options) {
    const $ = (s) => row.querySelector(s);
    $(".error").classList.add("hidden");
    $("progress").value = 0;
    row.announced = false;
    this._set(row, "queued");
    const most = Number(this.getAttribute("max-size"));
    if (this.getAttribute("max-size") && file.size > most) {
      return this._fail(row, file, refusal(`${row.path} is ${formatBytes(file.size)}; the largest file allowed is ${formatBytes(most)}`));
    }
    if (!accepted(file, this.getAttribute("accept"))) {
      return this._fail(row, file, refusal(`${row.path} is not a type this form takes (${this.getAttribute("accept")})`));
    }
    let upload;
    try {
      upload = (await this._uploaderReady()).upload(file, { ...options, onProgress: this._progress(row) });
    } catch (error) {
      return this._fail(row, file, error);
    }
    this._follow(row, file, upload, () => this._start(row, file, options));
  }

  /** What shows `row`'s progress reports. */
  _progress(row) {
    const $ = (s) => row.querySelector(s);
    return (report) => {
      this._set(row, report.state);
      $("progress").value = report.total ? report.loaded / report.total : 1;
      $(".loaded").textContent = `${formatBytes(report.loaded)} of ${formatBytes(report.total)}`;
      $(".speed").textContent = report.bytesPerSecond ? `${formatBytes(report.bytesPerSecond)}/s` : "";
      $(".eta").textContent = report.etaSeconds != null && report.state === "uploading" ? `${Math.ceil(report.etaSeconds)} s left` : "";
      this._emit("upload-progress", report);
    };
  }

  /** Gives `row`'s buttons to `upload` of `file` (`retry` starts it again), and shows how it ends. */
  async _follow(row, file, upload, retry) {
    const $ = (s) => row.querySelector(s);
    $(".pause").textContent = "Pause";
    $(".pause").onclick = () => {
      const paused = row.dataset.state === "paused";
      if (paused) upload.resume();
      else upload.pause();
      $(".pause").textContent = paused ? "Pause" : "Resume";
      $(".pause").setAttribute("aria-label", `${paused ? "Pause" : "Resume"} ${row.path}`);
      this._set(row, paused ? "uploading" : "paused");
    };
    $(".cancel").onclick = () => upload.abort();
    $(".retry").onclick = retry;
    $(".remove").onclick = () => {
      row.remove();
      this._announce(`${row.path}: removed`);
    };
    try {
      const result = await upload.done;
      this._set(row, "done");
      $("progress").value = 1;
      $(".eta").textContent = "";
      row.dataset.key = result.key;
      this._preview(row, file, result.displayUrl);
      this._emit("upload-done", { file, result });
    } catch (error) {
      this._fail(row, file, error);
    }
  }

  _preview(row, file, url) {
    if (!url || row.querySelector("img, video")) return;
    const type = file.type || "";
    let view;
    if (type.startsWith("image/")) view = Object.assign(document.createElement("img"), { src: url, alt: row.path });
    else if (type.startsWith("video/")) view = Object.assign(document.createElement("video"), { src: url, controls: true });
    if (!view) return;
    view.setAttribute("part", "preview");
    if (view.tagName === "VIDEO") view.setAttribute("aria-label", row.path);
    row.append(view);
  }
}

// The attributes as properties: `mode`, `accept`, `maxSize` (a number), and the booleans.
for (const [property, attribute, kind] of [["mode", "mode", String], ["accept", "accept", String], ["maxSize", "max-size", Number],
  ["multiple", "multiple", Boolean], ["directory", "directory", Boolean], ["worker", "worker", Boolean], ["persist", "persist", Boolean]]) {
  Object.defineProperty(S3UploadElement.prototype, property, {
    get() {
      if (kind === Boolean) return this.hasAttribute(attribute);
      const value = this.getAttribute(attribute);
      return value === null ? null : kind(value);
    },
    set(value) {
      if (kind === Boolean ? value : value != null) this.setAttribute(attribute, kind === Boolean ? "" : String(value));
      else this.removeAttribute(attribute);
    },
  });
}

if (globalThis.customElements && !customElements.get("s3-upload")) customElements.define("s3-upload", S3UploadElement);
