// Builds the drop-in script pkg/s3-direct-upload.global.js: wasm-bindgen's no-modules glue and
// the .wasm (inlined as base64) in one classic script, for plain HTML pages with no bundler, no
// module loader and no server MIME type to get right. It defines `S3DirectUpload`:
// `await S3DirectUpload.ready`, then `new S3DirectUpload.Uploader({...})`.
// Input: target/drop-in/ from `wasm-pack build --target no-modules` (scripts/common.sh).
import { readFile, writeFile } from "node:fs/promises";
import { amendGlue } from "./amend-glue.mjs";

const from = (file) => new URL(`../target/drop-in/${file}`, import.meta.url);
const glue = amendGlue(await readFile(from("s3_direct_upload.js"), "utf8"), { esModule: false });
const wasm = await readFile(from("s3_direct_upload_bg.wasm"));
const { version, license } = JSON.parse(await readFile(new URL("../pkg/package.json", import.meta.url), "utf8"));

const script = `/*! s3-direct-upload ${version} (${license}): drop-in build, defines S3DirectUpload */
(function () {
${glue}
const bytes = Uint8Array.from(atob("${wasm.toString("base64")}"), (c) => c.charCodeAt(0));
globalThis.S3DirectUpload = {
  /** Resolves once the library is ready; create Uploaders after it. */
  ready: wasm_bindgen({ module_or_path: bytes }).then(() => undefined),
  Uploader: wasm_bindgen.Uploader,
  Upload: wasm_bindgen.Upload,
  isUploadError: wasm_bindgen.isUploadError,
};
})();
`;
await writeFile(new URL("../pkg/s3-direct-upload.global.js", import.meta.url), script);
