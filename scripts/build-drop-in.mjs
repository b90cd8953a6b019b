// Builds the drop-in script pkg/s3-direct-upload.global.js from the npm package in pkg/: its ES
// module bundled by esbuild into one classic script with the .wasm inside, for plain HTML pages
// with no bundler, no module loader and no server MIME type to get right. It defines
// `S3DirectUpload`: `await S3DirectUpload.ready`, then `new S3DirectUpload.Uploader({...})`. The
// .wasm is inlined deflated, then base64 (base64 of the raw bytes gzips badly: it was 40 KB of
// the script's gzip size); the page inflates it with `DecompressionStream` (every current
// browser). Run by scripts/common.sh after scripts/finish-package.mjs.
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { deflateRawSync } from "node:zlib";

const { buildSync } = createRequire(import.meta.url)("../tools/node_modules/esbuild");
const pkg = new URL("../pkg/", import.meta.url);
const wasm = await readFile(new URL("s3_direct_upload_bg.wasm", pkg));
const { version, license } = JSON.parse(await readFile(new URL("package.json", pkg), "utf8"));

// The script is wrapped in a function named s3DirectUpload (below), whose own text starts the
// worker engine's worker (`worker: true`): no second file to serve. In that worker it serves.
const entry = `
import init, { Uploader, Upload, isUploadError, filesFrom, pathOptions, serveWorker, workerFrom } from "./s3_direct_upload.js";
import { S3UploadElement, whenLibraryReady } from "./element.js";
const inflate = () => {
  if (typeof DecompressionStream !== "function") {
    const message = "s3-direct-upload needs DecompressionStream (Chrome 80, Firefox 113, Safari 16.4 or later)";
    return Promise.reject(Object.assign(new Error(message), { name: "S3DirectUploadError", code: "not_initialized" }));
  }
  const deflated = Uint8Array.from(atob("${deflateRawSync(wasm, { level: 9 }).toString("base64")}"), (c) => c.charCodeAt(0));
  const stream = new Blob([deflated]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Response(stream).arrayBuffer();
};
if (typeof WorkerGlobalScope === "function" && self instanceof WorkerGlobalScope) {
  serveWorker();
} else {
  let source;
  workerFrom(() => {
    source ??= URL.createObjectURL(new Blob(["(" + s3DirectUpload + ")()"], { type: "text/javascript" }));
    return new Worker(source);
  });
  const ready = inflate().then((module_or_path) => init({ module_or_path })).then(() => undefined);
  // <s3-upload> (defined by ./element.js) waits for the same.
  whenLibraryReady(() => ready);
  globalThis.S3DirectUpload = {
    /** Resolves once the library is ready; create Uploaders after it. */
    ready,
    Uploader,
    Upload,
    isUploadError,
    filesFrom,
    pathOptions,
    S3UploadElement,
  };
}
`;
const { outputFiles } = buildSync({
  stdin: { contents: entry, resolveDir: new URL(".", pkg).pathname, loader: "js" },
  bundle: true,
  format: "iife",
  minify: true,
  keepNames: true,
  target: "es2020",
  write: false,
  banner: { js: `/*! s3-direct-upload ${version} (${license}): drop-in build, defines S3DirectUpload */` },
  // The glue's default .wasm URL (import.meta.url) is never used here: the bytes are given.
  logOverride: { "empty-import-meta": "silent" },
});
const [banner, ...code] = outputFiles[0].text.split("\n");
await writeFile(new URL("s3-direct-upload.global.js", pkg), `${banner}\n(function s3DirectUpload(){${code.join("\n")}})();\n`);
