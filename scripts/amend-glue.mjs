// Amends wasm-bindgen's JS glue (the npm module's, which the drop-in script bundles):
// * until init() has finished, using the library throws an S3DirectUploadError with code
//   `not_initialized` that says what to do (the glue as generated fails with "Cannot read
//   properties of undefined (reading 'uploader_new')");
// * `isUploadError(value)`, the type guard declared in src/js/types.d.ts, in plain JS so that
//   it works before init() too;
// * when the .wasm URL answers with an HTML page (a dev server's fallback, as
//   Vite's gives for a pre-bundled dependency), init() says so and what to do, instead of
//   "expected magic word 00 61 73 6d".
// Every edit must find exactly what it expects, so a new wasm-bindgen fails the build, not a user.
// `minify` then shrinks what ships (esbuild, from tools/; names kept, for stack traces).
import { createRequire } from "node:module";

const { transformSync } = createRequire(import.meta.url)("../tools/node_modules/esbuild");

/** The unsigned LEB128 number at `at` in `bytes`, and where it ends. */
function readLeb(bytes, at) {
  let [value, shift] = [0, 0];
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

/** The length-prefixed name at `at` in `bytes`, and where it ends. */
function readName(bytes, at) {
  const [length, start] = readLeb(bytes, at);
  return [new TextDecoder().decode(bytes.subarray(start, start + length)), start + length];
}

/** Where section `id` of `wasm` (bytes) is: its first byte, its contents' start, their size. */
function findSection(wasm, id) {
  for (let at = 8; at < wasm.length; ) {
    const [size, start] = readLeb(wasm, at + 1);
    if (wasm[at] === id) return { at, start, size };
    at = start + size;
  }
  throw new Error(`amend-glue: the .wasm has no section ${id}`);
}

/** The module name every import of `wasm` (bytes) has: one, after binaryen's renaming. */
function importModule(wasm) {
  const imports = findSection(wasm, 2);
  const [, first] = readLeb(wasm, imports.start);
  return readName(wasm, first)[0];
}

/** `wasm` (bytes) with the export `from` named `to`: the export section rebuilt. */
function renameExport(wasm, from, to) {
  const encode = (n) => {
    const bytes = [];
    do {
      bytes.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
      n = Math.floor(n / 128);
    } while (n > 0);
    return bytes;
  };
  const exports = findSection(wasm, 7);
  let [count, cursor] = readLeb(wasm, exports.start);
  const body = [...encode(count)];
  let renamed = 0;
  while (count--) {
    const [text, nameEnd] = readName(wasm, cursor);
    const [, entryEnd] = readLeb(wasm, nameEnd + 1); // the kind, then the index
    renamed += text === from;
    const name = Buffer.from(text === from ? to : text);
    body.push(...encode(name.length), ...name, ...wasm.subarray(nameEnd, entryEnd));
    cursor = entryEnd;
  }
  if (renamed !== 1) throw new Error(`amend-glue: the .wasm exports ${from} ${renamed} times`);
  const section = Buffer.from([7, ...encode(body.length), ...body]);
  return Buffer.concat([wasm.subarray(0, exports.at), section, wasm.subarray(exports.start + exports.size)]);
}

/**
 * The glue, the type declarations (`dts`: the module's, `wasmDts`: the .wasm's) and the .wasm
 * (bytes) with the import and export names binaryen's `--minify-imports-and-exports-and-modules`
 * gave it, from its `map`. `memory` keeps its name: `init()` resolves to the exports, and
 * `(await init()).memory` is how a page measures the library's memory.
 */
export function renameWasmNames({ glue, dts, wasmDts, wasm }, map) {
  const module = importModule(wasm);
  let out = replaceExactly(glue, `"./s3_direct_upload_bg.js": import0`, `${JSON.stringify(module)}: import0`, 1);
  // Each import becomes a method (`to(…) {`): under `minify`'s keepNames, a function
  // expression under a key gets a wrapper naming it, 0.7 KB gzip for 130 shims.
  for (const [, from, to] of map.imports) {
    out = replaceExactly(out, `\n        ${from}: function(`, `\n        ${to}(`, 1);
  }
  for (const [from, to] of map.exports) {
    if (from === "memory") {
      wasm = renameExport(wasm, to, "memory");
      continue;
    }
    out = out.replace(new RegExp(`\\bwasm\\.${from}\\b`, "g"), `wasm.${to}`);
    // (Exports binaryen adds, such as `__abort_handler`, are not declared.)
    wasmDts = wasmDts.replace(`export const ${from}:`, `export const ${to}:`);
    dts = dts.replace(`    readonly ${from}:`, `    readonly ${to}:`);
  }
  return { glue: out, dts, wasmDts, wasm };
}

/** The ES module `code` minified, its exports kept (and `import.meta.url`, which bundlers follow). */
export function minify(code) {
  return transformSync(code, { minify: true, keepNames: true, format: "esm", target: "es2020" }).code;
}

const preamble = `
function isUploadError(value) {
    return value instanceof Error && value.name === "S3DirectUploadError" && typeof value.code === "string";
}
// Stands in for the module's exports until init() has finished.
const NOT_READY = new Proxy({}, {
    get() {
        throw Object.assign(new Error(
            "s3-direct-upload is not initialized yet: await init() (the module's default export) once before " +
            "using it; with the drop-in script, await S3DirectUpload.ready"), { name: "S3DirectUploadError", code: "not_initialized" });
    },
});
`;

function replaceExactly(text, from, to, times) {
  const found = text.split(from).length - 1;
  if (found !== times) throw new Error(`amend-glue: expected ${times} of ${JSON.stringify(from)} in the glue, found ${found}`);
  return text.split(from).join(to);
}

/**
 * The glue with src/js/bridge.js (`bridge`, its text) in place of its import of it: one module,
 * in which the bridge's worker engine reaches the glue's `Uploader`, `initSync` and `wasmModule`,
 * and which exports what the worker script and the drop-in script call.
 */
function inlineBridge(glue, bridge) {
  const imported = glue.match(/^import \{[^}]*\} from '\.\/snippets\/[^']*\/src\/js\/bridge\.js';\n/m);
  if (!imported) throw new Error("amend-glue: the glue does not import src/js/bridge.js");
  const body = bridge.replace(/^export function /gm, "function ");
  if (/^export /m.test(body)) throw new Error("amend-glue: src/js/bridge.js exports something other than functions");
  if (glue.includes("./snippets/", imported.index + imported[0].length)) throw new Error("amend-glue: the glue imports another snippet");
  return glue.replace(imported[0], `${body}\n`);
}

/** The ES module glue with the edits above; `bridge` is src/js/bridge.js's text. */
export function amendGlue(glue, bridge) {
  glue = inlineBridge(glue, bridge);
  let out = replaceExactly(glue, "let wasmModule, wasmInstance, wasm;", `${preamble}let wasmModule, wasmInstance, wasm = NOT_READY;`, 1);
  out = replaceExactly(out, "if (wasm !== undefined) return wasm;", "if (wasm !== NOT_READY) return wasm;", 2);
  if (/wasm [!=]== undefined/.test(out)) throw new Error("amend-glue: the glue still tests `wasm` against undefined");
  out = replaceExactly(out, "        if (!module.ok) {\n", `        if (module.ok && (module.headers.get("Content-Type") ?? "").startsWith("text/html")) {
          throw Object.assign(new Error(
              \`s3-direct-upload could not load its .wasm: \${module.url} answered with an HTML page. With Vite's dev server, \` +
              'add optimizeDeps: { exclude: ["s3-direct-upload"] } to vite.config.js; otherwise serve s3_direct_upload_bg.wasm ' +
              "beside s3_direct_upload.js, or pass its URL to init()"), { name: "S3DirectUploadError", code: "not_initialized" });
      }
      if (!module.ok) {
`, 1);
  return replaceExactly(
    out,
    "export { initSync, __wbg_init as default };",
    "export { initSync, isUploadError, filesFrom, pathOptions, serveWorker, workerFrom, __wbg_init as default };",
    1,
  );
}
