// Checks the npm package in pkg/: `npm pack` ships exactly the library's files, and every path
// package.json names exists in the tarball, and its README is the package's own short one.
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";

const pkg = new URL("../pkg/", import.meta.url);
const [report] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json"], { cwd: pkg, encoding: "utf8" }));
const shipped = report.files.map((f) => f.path).sort();
const expected = [
  "README.md",
  "package.json",
  "s3_direct_upload.d.ts",
  "s3_direct_upload.js",
  "s3_direct_upload_bg.wasm",
  "s3_direct_upload_bg.wasm.d.ts",
  "s3-direct-upload.global.js",
  "worker.js",
  "element.js",
  "element.d.ts",
].sort();
const manifest = JSON.parse(await readFile(new URL("package.json", pkg), "utf8"));
const named = [manifest.main, manifest.module, manifest.types, ...Object.values(manifest.exports).flatMap((e) =>
  typeof e === "string" ? [e] : Object.values(e))].map((p) => p.replace(/^\.\//, ""));
const failures = [];
if (JSON.stringify(shipped) !== JSON.stringify(expected)) failures.push(`tarball holds ${shipped.join(", ")}`);
for (const path of named) if (!shipped.includes(path)) failures.push(`package.json names ${path}, not in the tarball`);
for (const field of ["name", "version", "description", "license", "repository", "types", "exports"]) {
  if (!manifest[field]) failures.push(`package.json lacks ${field}`);
}
if (JSON.stringify(manifest.sideEffects) !== '["./s3-direct-upload.global.js","./worker.js","./element.js"]') {
  failures.push("sideEffects must name only the drop-in script, the worker's script and the element's entry");
}
if (manifest.type !== "module") failures.push("not an ES module package");
const readme = await readFile(new URL("README.md", pkg), "utf8");
if (readme !== (await readFile(new URL("../docs/npm-readme.md", import.meta.url), "utf8"))) {
  failures.push("the package's README is not docs/npm-readme.md");
}
if (failures.length) {
  failures.forEach((f) => console.log(`pack: ${f}`));
  console.log("pack: 0 passed, 1 failed");
  process.exit(1);
}
console.log(`pack: ${report.filename}, ${shipped.length} files, ${report.size} bytes packed, ${report.unpackedSize} unpacked`);
console.log("pack: 1 passed, 0 failed");
