// What the wasm needs from JS beyond the DOM: resume records (localStorage on a page, IndexedDB
// in a worker) and the worker engine (`worker: true`), both sides of it.
//
// scripts/amend-glue.mjs inlines this file into the package's glue, where `Uploader`, `initSync`
// and `wasmModule` are the glue's own: the worker engine runs only there. wasm-bindgen-test
// loads it as a module of its own, for the records.

const RECORD_PREFIX = "s3-direct-upload:";

/** localStorage, where this global has one that works. */
function pageStorage() {
  try {
    return typeof localStorage === "object" && localStorage ? localStorage : null;
  } catch {
    return null; // access denied (sandboxed frames, blocked storage)
  }
}

let database = null;

/**
 * The library's IndexedDB object store `name`: "resume" (resume records, in a worker) or
 * "queue" (persistent queues); rejects where there is no IndexedDB.
 */
function objectStore(name, mode) {
  database ??= new Promise((resolve, reject) => {
    const opening = indexedDB.open("s3-direct-upload", 2);
    opening.onupgradeneeded = () => {
      const db = opening.result;
      if (!db.objectStoreNames.contains("resume")) db.createObjectStore("resume");
      if (!db.objectStoreNames.contains("queue")) db.createObjectStore("queue", { keyPath: "id" });
    };
    opening.onsuccess = () => {
      // A newer version opened elsewhere (another tab) must not wait for this page to close.
      opening.result.onversionchange = () => {
        opening.result.close();
        database = null;
      };
      resolve(opening.result);
    };
    opening.onerror = () => reject(opening.error);
  });
  return database.then((db) => db.transaction(name, mode).objectStore(name));
}
const recordStore = (mode) => objectStore("resume", mode);

/** The request's result, once it succeeds. */
const settled = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

/** Records a page had in localStorage, handed to its worker (which has no localStorage). */
let pageRecords = new Map();
/** Tells the page to forget a record it handed over. */
let forgetOnPage = () => {};

/** The resume record (JSON text) under `key`, or null. Never rejects. */
export function recordGet(key) {
  const storage = pageStorage();
  if (storage) return Promise.resolve(storage.getItem(RECORD_PREFIX + key));
  return recordStore("readonly")
    .then((store) => settled(store.get(key)))
    .catch(() => undefined)
    .then((text) => text ?? pageRecords.get(key) ?? null);
}

/** Keeps `text` under `key`; storage failures are ignored (the upload would start afresh). */
export function recordSet(key, text) {
  const storage = pageStorage();
  if (storage) {
    try {
      storage.setItem(RECORD_PREFIX + key, text);
    } catch {}
    return;
  }
  recordStore("readwrite").then((store) => store.put(text, key), () => {});
}

/** Forgets the record under `key`. */
export function recordDelete(key) {
  const storage = pageStorage();
  if (storage) return storage.removeItem(RECORD_PREFIX + key);
  recordStore("readwrite").then((store) => store.delete(key), () => {});
  if (pageRecords.delete(key)) forgetOnPage(key);
}

let channel = null;
const queued = [];

/** A Promise that resolves in a task of its own: a message to itself, which no timer clamps. */
export function nextTask() {
  if (!channel) {
    channel = new MessageChannel();
    channel.port1.onmessage = () => queued.shift()();
  }
  return new Promise((resolve) => {
    queued.push(resolve);
    channel.port2.postMessage(0);
  });
}

/**
 * `url` made absolute against the page's address (in a worker the engine started, the page
 * resolved it already): a backend URL names the same API on a page and in a worker.
 */
export function resolveUrl(url) {
  try {
    return new URL(url, globalThis.document?.baseURI ?? location.href).href;
  } catch {
    return url; // the engine says what is wrong with it when it is used
  }
}

// Files from picks, drops and folders (`filesFrom`, `uploadAll`).

/** An Error of this library, with `code` (and `status` when known). */
function uploadError({ message, code, status }) {
  const error = Object.assign(new Error(message), { name: "S3DirectUploadError", code });
  if (status !== undefined) error.status = status;
  return error;
}

/** Whether `value` is a `DataTransferItem` (one item of a drop or a paste). */
const isDropItem = (value) => typeof value.getAsFile === "function";

/**
 * The files in `source`, each with its path in the pick, drop or folder and, where the browser
 * gave one, its `FileSystemFileHandle`: Promises of lists. Called synchronously from a drop's
 * event handler, it reads the drop's items before they expire (they live as long as the event).
 */
function collect(source, prefix) {
  if (source instanceof Blob) {
    return [Promise.resolve([{ file: source, path: prefix + (source.webkitRelativePath || source.name || "blob") }])];
  }
  if (source === null || typeof source !== "object") throw new TypeError(`${source} is no file or folder`);
  if (globalThis.DataTransfer && source instanceof DataTransfer) {
    return source.items?.length ? collect(source.items, prefix) : collect(source.files, prefix);
  }
  if (isDropItem(source)) {
    if (source.kind !== "file") return [];
    // A handle can be kept for restore(); an entry (Firefox, Safari) walks folders as well;
    // items a script made have neither, only their File. All three are taken now.
    const [handle, entry, file] = [source.getAsFileSystemHandle?.(), source.webkitGetAsEntry?.(), source.getAsFile()];
    const otherwise = () => (entry ? walkEntry(entry, prefix) : file ? Promise.all(collect(file, prefix)).then((l) => l.flat()) : []);
    return [Promise.resolve(handle).then((h) => (h ? walkHandle(h, prefix) : otherwise()), otherwise)];
  }
  if (source.file instanceof Blob) return [Promise.resolve([{ ...source, path: source.path ?? source.file.name }])];
  if (typeof source.getFile === "function" || typeof source.values === "function" && source.kind === "directory") {
    return [walkHandle(source, prefix)];
  }
  if (source.isFile || source.isDirectory) return [walkEntry(source, prefix)];
  if (typeof source.length === "number" || typeof source[Symbol.iterator] === "function") {
    return Array.from(source).flatMap((item) => collect(item, prefix));
  }
  throw new TypeError("it is no File, FileList, DataTransfer, file or folder handle, or entry");
}

/** The files under a `FileSystemHandle`, with their handles. */
async function walkHandle(handle, prefix) {
  if (handle.kind === "file") return [{ file: await handle.getFile(), path: prefix + handle.name, handle }];
  const found = [];
  const inside = handle.name ? `${prefix}${handle.name}/` : prefix; // the OPFS root has no name
  for await (const child of handle.values()) found.push(...(await walkHandle(child, inside)));
  return found;
}

/** The files under a `FileSystemEntry` (`webkitGetAsEntry()`). */
async function walkEntry(entry, prefix) {
  if (entry.isFile) return [{ file: await new Promise((resolve, reject) => entry.file(resolve, reject)), path: prefix + entry.name }];
  const found = [];
  const reader = entry.createReader();
  // readEntries gives a batch at a time, and an empty batch at the end.
  for (let batch; (batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject))).length; ) {
    for (const child of batch) found.push(...(await walkEntry(child, `${prefix}${entry.name}/`)));
  }
  return found;
}

/**
 * Every file in `source` (a File, FileList, DataTransfer or its items, FileSystemHandle,
 * FileSystemEntry, or a list of them) as `{ file, path, handle? }`, `path` its place in the pick,
 * drop or folder. Call it from a drop's event handler, before any `await`.
 */
export function filesFrom(source) {
  const fail = (e) => Promise.reject(uploadError({ code: "invalid_file", message: `the files to upload could not be read: ${e?.message ?? e}` }));
  try {
    return Promise.all(collect(source, "")).then((lists) => lists.flat(), fail);
  } catch (e) {
    return fail(e);
  }
}

/**
 * The upload options that keep a folder's shape: the key `prefix + path`, and the metadata
 * `relative-path` (printable ASCII: other characters, and `%`, percent-encoded).
 */
export function pathOptions(path, prefix = "") {
  const printable = path.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
  return { key: prefix + path, metadata: { "relative-path": printable } };
}

/**
 * Starts an upload with `uploader` for every file in `source` (see `filesFrom`), each under the
 * key `prefix + path` and with its path in the metadata `relative-path`: one handle for them all.
 */
export function uploadAll(uploader, source, options) {
  const { prefix = "", onProgress, onFileProgress, metadata, ...shared } = options ?? {};
  if (typeof prefix !== "string") throw uploadError({ code: "invalid_option", message: "`prefix` must be a string, such as \"albums/2026/\"" });
  for (const [name, f] of [["onProgress", onProgress], ["onFileProgress", onFileProgress]]) {
    if (f !== undefined && typeof f !== "function") throw uploadError({ code: "invalid_option", message: `\`${name}\` must be a function` });
  }
  const total = { loaded: 0, total: 0, files: 0, done: 0, failed: 0 };
  let [paused, aborted, told] = [false, false, false];
  const tell = () => {
    try {
      onProgress?.({ ...total });
    } catch (thrown) {
      if (!told) console.error("s3-direct-upload: the onProgress callback threw (the uploads go on):", thrown);
      told = true;
    }
  };
  const started = filesFrom(source).then((found) => {
    total.files = found.length;
    total.total = found.reduce((sum, { file }) => sum + file.size, 0);
    tell();
    return found.map(({ file, path, handle }) => {
      let loaded = 0;
      const placed = pathOptions(path, prefix);
      const settle = (outcome) => {
        total[outcome.error ? "failed" : "done"]++;
        tell();
        return outcome;
      };
      let upload = null;
      try {
        upload = uploader.upload(file, {
          ...shared,
          ...placed,
          metadata: { ...metadata, ...placed.metadata },
          ...(handle && { handle }),
          onProgress: (report) => {
            total.loaded += report.loaded - loaded;
            loaded = report.loaded;
            onFileProgress?.(report);
            tell();
          },
        });
      } catch (error) {
        return { upload, outcome: Promise.resolve(settle({ file, path, error })) };
      }
      if (paused) upload.pause();
      if (aborted) upload.abort();
      const outcome = upload.done.then((result) => settle({ file, path, result }), (error) => settle({ file, path, error }));
      return { upload, outcome };
    });
  });
  const each = (act) => started.then((list) => Promise.all(list.map(({ upload }) => upload && act(upload))), () => {});
  return {
    uploads: started.then((list) => list.map(({ upload }) => upload).filter(Boolean)),
    done: started.then(async (list) => {
      const outcomes = await Promise.all(list.map(({ outcome }) => outcome));
      return { successful: outcomes.filter((o) => !o.error), failed: outcomes.filter((o) => o.error) };
    }),
    pause() {
      paused = true;
      each((u) => u.pause());
    },
    resume() {
      paused = false;
      each((u) => u.resume());
    },
    abort() {
      aborted = true;
      return each((u) => u.abort()).then(() => {});
    },
  };
}

// The persistent queue (`persist`): what each upload an Uploader accepts needs in order to be
// started again after a reload, kept in IndexedDB until the upload ends. After a reload the file
// comes back from its stored FileSystemFileHandle or from a copy in the origin-private file
// system (OPFS); otherwise the app asks the user to pick it again. The parts already stored are
// found through the upload's resume record, as when a file is given again.

/** How long an unfinished upload is offered: as long as its resume record is trusted. */
const QUEUE_TTL_MS = 7 * 86_400_000;
/** How old an unnamed OPFS copy must be before restore() deletes it. */
const COPY_SWEEP_AGE_MS = 3_600_000;
/** Queue entries of uploads running on this page: restore() offers only the others. */
const running = new Set();

/** Whether starting `error`'s upload again cannot help: then it leaves the queue. */
const isFinal = ({ code, status } = {}) =>
  ["invalid_option", "invalid_file", "file_too_large", "etag_not_exposed", "checksum_mismatch", "aborted"].includes(code) ||
  (status >= 400 && status < 500 && ![401, 403, 408, 429].includes(status));

/** Whether `file` is the file `entry` was recorded for (as resume fingerprints compare them). */
const sameFile = (file, entry) => file.name === entry.name && file.size === entry.size && file.lastModified === entry.lastModified;

/**
 * The persistent queue `name`. Files up to `copyUpTo` bytes given without a handle are copied
 * into OPFS, while the copies take at most `copyBudget` bytes together.
 */
export function openQueue(name, copyUpTo, copyBudget) {
  const folder = () =>
    navigator.storage
      .getDirectory()
      .then((root) => root.getDirectoryHandle("s3-direct-upload", { create: true }))
      .then((dir) => dir.getDirectoryHandle(encodeURIComponent(name), { create: true }));
  // Work on one entry runs in order: its copy is written before it is deleted.
  const chains = new Map();
  const inOrder = (id, work) => {
    const next = (chains.get(id) ?? Promise.resolve()).then(work).catch(() => {});
    chains.set(id, next);
    next.then(() => chains.get(id) === next && chains.delete(id));
    return next;
  };
  const store = (mode, act) => objectStore("queue", mode).then((s) => settled(act(s)));
  const save = (entry) =>
    store("readwrite", (s) => s.put(entry)).catch((e) => {
      // Where handles cannot be stored, the entry is kept without one (the user picks again).
      if (!entry.handle || e?.name !== "DataCloneError") throw e;
      delete entry.handle;
      return save(entry);
    });
  const entries = () => store("readonly", (s) => s.getAll()).then((all) => all.filter((e) => e.queue === name));
  let copied = null; // bytes the queue's copies take, once counted
  const reserve = async (size) => {
    copied ??= entries().then((all) => all.reduce((sum, e) => sum + (e.copy ? e.size : 0), 0));
    const used = await copied;
    if (used + size > copyBudget) return false;
    copied = Promise.resolve(used + size);
    return true;
  };
  const writeCopy = async (file) => {
    const copy = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    const dir = await folder();
    try {
      const writable = await (await dir.getFileHandle(copy, { create: true })).createWritable(); // missing in some browsers
      await writable.write(file);
      await writable.close();
      return copy;
    } catch (e) {
      await dir.removeEntry(copy).catch(() => {});
      throw e;
    }
  };
  /**
   * Deletes copies no entry names that are older than an hour: a page that closed while writing
   * one leaves it behind. (A younger one may be one that this or another page is writing now, or
   * has just named in an entry that `all`, read before, does not show.)
   */
  const sweep = async (all) => {
    const named = new Set(all.map((entry) => entry.copy));
    const dir = await folder();
    const old = Date.now() - COPY_SWEEP_AGE_MS;
    for await (const copy of dir.keys()) {
      if (!named.has(copy) && parseInt(copy, 36) < old) await dir.removeEntry(copy);
    }
  };
  const readCopy = async (entry) => {
    const copy = await (await (await folder()).getFileHandle(entry.copy)).getFile();
    return new File([copy], entry.name, { type: entry.type, lastModified: entry.lastModified });
  };
  const end = (id) => {
    running.delete(id);
    return inOrder(id, async () => {
      const entry = await store("readonly", (s) => s.get(id));
      await store("readwrite", (s) => s.delete(id));
      if (entry?.copy) {
        copied = copied?.then((used) => used - entry.size);
        await (await folder()).removeEntry(entry.copy);
      }
    });
  };
  /** The file of `entry` if the page can read it now (`ask`: asking the user, on a gesture). */
  const fileOf = async (entry, ask) => {
    if (entry.handle) {
      try {
        const options = { mode: "read" };
        let permission = (await entry.handle.queryPermission?.(options)) ?? "granted";
        if (permission === "prompt" && ask) permission = await entry.handle.requestPermission(options);
        if (permission === "prompt") return "needs-permission";
        const file = permission === "granted" && (await entry.handle.getFile());
        if (file && sameFile(file, entry)) return file;
      } catch {} // gone, or moved: the copy, or the user
    }
    if (entry.copy) return readCopy(entry).catch(() => null);
    return null;
  };
  return {
    add(file, options, done) {
      if (!(file instanceof File)) return; // only a File can be recognised again
      const { key, contentType, metadata, priority, handle } = options ?? {};
      const id = [name, file.name, file.size, file.lastModified, file.type, key ?? ""].join("\n");
      const entry = { id, queue: name, name: file.name, size: file.size, type: file.type, lastModified: file.lastModified, options: { key, contentType, metadata, priority }, added: Date.now() };
      if (handle) entry.handle = handle;
      running.add(id);
      inOrder(id, async () => {
        const before = await store("readonly", (s) => s.get(id)).catch(() => null);
        if (before?.copy) entry.copy = before.copy; // restored: its copy still serves
        await save(entry);
        if (!entry.copy && !entry.handle && file.size <= copyUpTo && (await reserve(file.size))) {
          entry.copy = await writeCopy(file).catch(() => {
            copied = copied.then((used) => used - file.size);
          });
          if (entry.copy) await save(entry);
        }
      });
      done.then(
        () => end(id),
        (error) => (isFinal(error) ? end(id) : running.delete(id)),
      );
    },
    async restore(uploader) {
      await Promise.all(chains.values()); // entries being written or deleted
      const found = await entries().catch(() => []); // no IndexedDB: nothing was kept
      await sweep(found).catch(() => {});
      const waiting = found.filter((entry) => !running.has(entry.id));
      for (const old of waiting.filter((entry) => Date.now() - entry.added > QUEUE_TTL_MS)) end(old.id);
      const fresh = waiting.filter((entry) => Date.now() - entry.added <= QUEUE_TTL_MS);
      return Promise.all(fresh.map(async (entry) => {
        const now = await fileOf(entry, false);
        const { name, size, type, lastModified, options } = entry;
        return {
          name,
          size,
          type,
          lastModified,
          key: options.key,
          options: { ...options },
          state: now instanceof File ? "ready" : now ?? "needs-file",
          async resume(picked, callbacks) {
            let file = picked;
            if (picked !== undefined && !(picked instanceof File && sameFile(picked, entry))) {
              const when = new Date(lastModified).toISOString();
              throw uploadError({ code: "invalid_file", message: `resume() was given another file than ${name} (${size} bytes, changed ${when}): pick that file` });
            }
            file ??= await fileOf(entry, true);
            if (!(file instanceof File)) {
              const why = file === "needs-permission" ? "the user did not allow reading it (call resume() from a click)" : "the page cannot read it again";
              throw uploadError({ code: "invalid_file", message: `${name}: ${why}; ask the user to pick it, and pass it to resume(file)` });
            }
            return uploader.upload(file, { ...callbacks, ...options, ...(entry.handle && { handle: entry.handle }) });
          },
          discard: () => end(entry.id).then(() => {}),
        };
      }));
    },
  };
}

// The worker engine. The page keeps the API (`Uploader`, `Upload`, callbacks, errors); the
// worker runs the engine. Functions in the options stay on the page, called over messages.

const FUNCTION = "s3du:function";
/** The property by which the worker's copy of a callback's rejection names the page's original. */
const CAUSE = "s3du:cause";

/**
 * `value` with every function replaced by a numbered stand-in: `functions` gets the function
 * and `owner`, the object it was found on (the page calls it as a method of it).
 */
function toWire(value, functions, owner) {
  if (typeof value === "function") return { [FUNCTION]: functions.push([value, owner]) - 1 };
  if (Array.isArray(value)) return value.map((v) => toWire(v, functions));
  if (value === null || typeof value !== "object" || value instanceof Blob || ArrayBuffer.isView(value)) return value;
  const out = {};
  // Methods of a class instance too: the engine reads them as properties.
  for (let o = value; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name !== "constructor" && !(name in out)) out[name] = toWire(value[name], functions, value);
    }
  }
  return out;
}

/** The value `toWire` made, with each stand-in replaced by `call(number)`'s function. */
function fromWire(value, call) {
  if (Array.isArray(value)) return value.map((v) => fromWire(v, call));
  if (value === null || typeof value !== "object" || value instanceof Blob) return value;
  if (FUNCTION in value) return call(value[FUNCTION]);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v, call)]));
}

/** What a callback rejected with, as it crosses to the worker: enough to retry it as the page would. */
function rejectionToWire(thrown, id) {
  if (thrown === null || typeof thrown !== "object") return { value: thrown };
  const { message, status } = thrown;
  return { id, message: String(message ?? thrown), status, type: thrown instanceof TypeError };
}

/** The worker's copy of a rejection: an `Error` carrying the page's id for it. */
function rejectionFromWire(wire) {
  if (!("id" in wire)) return wire.value;
  const error = wire.type ? new TypeError(wire.message) : new Error(wire.message);
  return Object.assign(error, { status: wire.status, [CAUSE]: wire.id });
}

/** Starts the worker; the drop-in script sets its own way (`workerFrom`). */
let makeWorker = () => new Worker(new URL("./worker.js", import.meta.url), { type: "module" });

/** How the worker engine's worker is started (the drop-in script starts it from its own code). */
export function workerFrom(start) {
  makeWorker = start;
}

/**
 * Starts a worker engine for an Uploader with `options` (already checked on the page). Returns
 * what the Uploader hands each upload to: `upload(file, options)` gives an Upload-like handle.
 * When the worker cannot start, uploads run on the page, with a warning.
 */
export function startWorker(options) {
  const functions = [];
  // The page keeps the persistent queue: the worker only runs uploads.
  const { onProgress, worker: _, persist: __, ...rest } = options;
  if (typeof rest.backend === "string") rest.backend = resolveUrl(rest.backend);
  const uploads = new Map();
  const causes = new Map();
  let local = null;
  let worker = null;
  let nextId = 0;
  // The page's Uploader was freed (garbage-collected, or `free()`): the worker stops once the
  // uploads it runs have ended, not before (an `await uploader.upload(file).done` holds no
  // reference to the Uploader, and a worker stopped mid-upload would leave `done` unsettled).
  let ending = false;
  const onPage = (why) => {
    if (local) return;
    console.warn(`s3-direct-upload: the worker engine could not start (${why}); uploads run on the page`);
    local = new Uploader({ ...options, worker: false });
    worker?.terminate();
    for (const entry of uploads.values()) entry.run();
  };
  const post = (message) => {
    try {
      worker.postMessage(message);
    } catch (e) {
      onPage(e);
    }
  };
  const answer = async ({ call, fn, args }) => {
    try {
      const [method, owner] = functions[fn];
      const value = await method.apply(owner, args);
      worker.postMessage({ t: "answer", call, value });
    } catch (thrown) {
      const id = call;
      causes.set(id, thrown);
      if (causes.size > 100) causes.delete(causes.keys().next().value);
      worker.postMessage({ t: "answer", call, error: rejectionToWire(thrown, id) });
    }
  };
  try {
    worker = makeWorker();
    worker.onmessage = ({ data }) => {
      if (data.t === "call") return answer(data);
      if (data.t === "forget") return pageStorage()?.removeItem(RECORD_PREFIX + data.key);
      const entry = uploads.get(data.id);
      if (!entry) return;
      if (data.t === "progress") return entry.progress(data.report);
      uploads.delete(data.id);
      if (ending && !uploads.size) worker.terminate();
      if (!data.error) return entry.resolve(data.value);
      const error = uploadError(data.error);
      if ("cause" in data.error) error.cause = causes.has(data.error.causeId) ? causes.get(data.error.causeId) : data.error.cause;
      entry.reject(error);
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      onPage(event.message || "the worker failed to load");
    };
    const storage = pageStorage();
    const handed = [];
    for (let i = 0; storage && i < storage.length; i++) {
      const key = storage.key(i);
      if (key?.startsWith(RECORD_PREFIX)) handed.push([key.slice(RECORD_PREFIX.length), storage.getItem(key)]);
    }
    worker.postMessage({ t: "init", module: wasmModule, options: toWire(rest, functions), records: handed });
  } catch (e) {
    onPage(e);
  }
  return {
    upload(file, uploadOptions) {
      const id = nextId++;
      const { onProgress: onFileProgress, ...wire } = uploadOptions ?? {};
      const listeners = [onProgress, onFileProgress].filter(Boolean);
      let told = false;
      let handle = null;
      const entry = { file };
      const done = new Promise((resolve, reject) => Object.assign(entry, { resolve, reject }));
      entry.progress = (report) => {
        report.file = file;
        for (const listener of listeners) {
          try {
            listener(report);
          } catch (thrown) {
            if (!told) console.error("s3-direct-upload: the onProgress callback threw (the upload goes on):", thrown);
            told = true;
          }
        }
      };
      // On the page after all: the same upload, through a page engine.
      entry.run = () => {
        uploads.delete(id);
        try {
          handle = local.upload(file, uploadOptions);
          handle.done.then(entry.resolve, entry.reject);
        } catch (e) {
          entry.reject(e);
        }
      };
      const tell = (t) => (handle ? handle[t]() : post({ t, id }));
      if (local) entry.run();
      else {
        uploads.set(id, entry);
        post({ t: "upload", id, file, options: wire });
      }
      return {
        done,
        pause: () => tell("pause"),
        resume: () => tell("resume"),
        abort: () => {
          tell("abort");
          return done.then(
            () => {},
            () => {},
          );
        },
      };
    },
    terminate: () => {
      ending = true;
      if (!uploads.size) worker?.terminate();
    },
  };
}

/** The worker's side: waits for the page's `init`, then runs the uploads it is sent. */
export function serveWorker() {
  const uploads = new Map();
  const calls = new Map();
  let uploader = null;
  let nextCall = 0;
  const call = (fn) => (...args) =>
    new Promise((resolve, reject) => {
      const id = nextCall++;
      calls.set(id, { resolve, reject });
      postMessage({ t: "call", call: id, fn, args });
    });
  onmessage = ({ data }) => {
    if (data.t === "init") {
      initSync({ module: data.module });
      pageRecords = new Map(data.records);
      forgetOnPage = (key) => postMessage({ t: "forget", key });
      uploader = new Uploader(fromWire(data.options, call));
    } else if (data.t === "answer") {
      const waiting = calls.get(data.call);
      calls.delete(data.call);
      if (data.error) waiting.reject(rejectionFromWire(data.error));
      else waiting.resolve(data.value);
    } else if (data.t === "upload") {
      const { id } = data;
      const send = (message) => {
        try {
          postMessage(message);
        } catch {
          // A value that cannot be cloned: sent without it.
          delete message.error?.cause;
          postMessage(message);
        }
      };
      const onProgress = (report) => {
        delete report.file;
        postMessage({ t: "progress", id, report });
      };
      try {
        const handle = uploader.upload(data.file, { ...data.options, onProgress });
        uploads.set(id, handle);
        handle.done.then(
          (value) => send({ t: "done", id, value }),
          (e) => send({ t: "done", id, error: errorToWire(e) }),
        );
      } catch (e) {
        send({ t: "done", id, error: errorToWire(e) });
      }
    } else {
      const handle = uploads.get(data.id);
      handle?.[data.t]();
      if (data.t === "abort") uploads.delete(data.id);
    }
  };
}

/** An error of the engine, as it crosses to the page. */
function errorToWire({ message, code, status, cause }) {
  const wire = { message, code, status };
  if (cause !== undefined) {
    wire.cause = cause;
    wire.causeId = cause?.[CAUSE];
  }
  return wire;
}
