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

let records = null;

/** The IndexedDB store of resume records; rejects where there is none. */
function recordStore(mode) {
  records ??= new Promise((resolve, reject) => {
    const opening = indexedDB.open("s3-direct-upload", 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore("resume");
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
  return records.then((db) => db.transaction("resume", mode).objectStore("resume"));
}

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

/** An `Error` of this library, as the page makes it from what the worker sent. */
function uploadError({ message, code, status }) {
  const error = Object.assign(new Error(message), { name: "S3DirectUploadError", code });
  if (status !== undefined) error.status = status;
  return error;
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
  const { onProgress, worker: _, ...rest } = options;
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
