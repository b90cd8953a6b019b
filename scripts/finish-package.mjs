// Completes the package.json that wasm-pack writes into pkg/: an `exports` map (the module, its
// types, and the .wasm for tools that want the file itself) and `sideEffects: false`, so that
// bundlers tree-shake it; and amends and minifies the module's glue (scripts/amend-glue.mjs). Run by
// scripts/common.sh after every build. Also writes the package's README from docs/npm-readme.md.
import { readFile, rm, writeFile } from "node:fs/promises";
import { amendGlue, minify, renameWasmNames } from "./amend-glue.mjs";

const at = (file) => new URL(`../pkg/${file}`, import.meta.url);
const names = JSON.parse(await readFile(new URL("../target/wasm-names.json", import.meta.url), "utf8"));
const renamed = renameWasmNames(
  {
    glue: await readFile(at("s3_direct_upload.js"), "utf8"),
    dts: await readFile(at("s3_direct_upload.d.ts"), "utf8"),
    wasmDts: await readFile(at("s3_direct_upload_bg.wasm.d.ts"), "utf8"),
    wasm: await readFile(at("s3_direct_upload_bg.wasm")),
  },
  names,
);
const bridge = await readFile(new URL("../src/js/bridge.js", import.meta.url), "utf8");
await writeFile(at("s3_direct_upload.js"), minify(amendGlue(renamed.glue, bridge)));
await rm(at("snippets"), { recursive: true, force: true }); // inlined into the glue
// The worker engine's script (`worker: true`): the glue again, serving the page's Uploader.
await writeFile(at("worker.js"), 'import { serveWorker } from "./s3_direct_upload.js";\nserveWorker();\n');
// The <s3-upload> element's entry point (s3-direct-upload/element): importing it defines it.
await writeFile(at("element.js"), minify(await readFile(new URL("../src/js/element.js", import.meta.url), "utf8")));
await writeFile(at("element.d.ts"), await readFile(new URL("../src/js/element.d.ts", import.meta.url), "utf8"));
await writeFile(at("s3_direct_upload.d.ts"), renamed.dts);
await writeFile(at("s3_direct_upload_bg.wasm.d.ts"), renamed.wasmDts);
await writeFile(at("s3_direct_upload_bg.wasm"), renamed.wasm);

const path = new URL("../pkg/package.json", import.meta.url);
const manifest = JSON.parse(await readFile(path, "utf8"));
manifest.exports = {
  ".": { types: "./s3_direct_upload.d.ts", default: "./s3_direct_upload.js" },
  "./s3_direct_upload_bg.wasm": "./s3_direct_upload_bg.wasm",
  "./element": { types: "./element.d.ts", default: "./element.js" },
  "./global": "./s3-direct-upload.global.js",
  "./package.json": "./package.json",
};
manifest.module = manifest.main;
// The drop-in script defines a global when loaded, the element's entry defines <s3-upload>, and
// the worker's script serves its page; the ES module has no side effects.
manifest.sideEffects = ["./s3-direct-upload.global.js", "./worker.js", "./element.js"];
manifest.files = [
  ...new Set([
    ...manifest.files.filter((f) => f !== "snippets"),
    "s3_direct_upload_bg.wasm.d.ts",
    "worker.js",
    "element.js",
    "element.d.ts",
    "s3-direct-upload.global.js",
    "README.md",
  ]),
];
await writeFile(path, JSON.stringify(manifest, null, 2) + "\n");
// The package's own short README (wasm-pack copies the repository's, written for GitHub).
await writeFile(new URL("../pkg/README.md", import.meta.url), await readFile(new URL("../docs/npm-readme.md", import.meta.url)));
