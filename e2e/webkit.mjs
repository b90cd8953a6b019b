// The upload flows in WebKit, Safari's engine: Debian's WebKitGTK (MiniBrowser) driven through
// WebKitWebDriver, under Xvfb (both started here and stopped by PID). wasm-bindgen-test cannot
// drive WebKitGTK, so this runs the flows end to end: the npm module with the page engine and
// with `worker: true`, and every checksum algorithm; the drop-in script; and <s3-upload> with a
// pause and resume, a cancel and a retry. Files are made in the page from a formula and the
// stored objects compared, byte for byte, with the same bytes made here.
//
// Env: APP and STORE_DIR (a reference server with `--www e2e/pages`, and its bucket directory).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { webdriverSession } from "./webdriver.mjs";

const { APP, STORE_DIR } = process.env;
const MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const MIB = 1 << 20;
const results = [];

function check(name, failure) {
  results.push({ name, failure });
  console.log(`webkit: ${name}: ${failure ? `FAILED: ${failure}` : "ok"}`);
}

/** Byte `i` of a test file of seed `seed`: the same formula runs in the page (FILE_OF). */
const byteOf = (i, seed) => ((i * 31 + seed * 7 + (i >>> 11)) & 255);
const FILE_OF = `const fileOf = (size, seed, name, type = "application/octet-stream") => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >>> 11)) & 255;
  return new File([bytes], name, { type });
};`;

/** `null` when the stored object `key` holds `size` bytes of seed `seed`. */
async function storedIs(key, size, seed) {
  if (!key) return "no key";
  const stored = await readFile(join(STORE_DIR, key));
  if (stored.length !== size) return `${key}: ${stored.length} bytes stored, not ${size}`;
  for (let i = 0; i < size; i++) if (stored[i] !== byteOf(i, seed)) return `${key}: byte ${i} differs`;
  return null;
}

/** Xvfb on a free display number: its process and `DISPLAY`. */
async function startXvfb() {
  for (let n = 90; n < 110; n++) {
    if (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue;
    const xvfb = spawn("Xvfb", [`:${n}`, "-screen", "0", "1280x900x24", "-nolisten", "tcp"], { stdio: "ignore" });
    for (let i = 0; i < 50 && !existsSync(`/tmp/.X11-unix/X${n}`); i++) await new Promise((r) => setTimeout(r, 100));
    if (existsSync(`/tmp/.X11-unix/X${n}`)) return { xvfb, display: `:${n}` };
    xvfb.kill();
  }
  throw new Error("no free X display for Xvfb");
}

const { xvfb, display } = await startXvfb();
let browser;
try {
  browser = await webdriverSession("WebKitWebDriver", {
    browserName: "MiniBrowser",
    "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] },
  }, { DISPLAY: display });
  const version = await browser.run("return navigator.userAgent");
  console.log(`webkit: ${version}`);

  // The npm module: page engine and worker engine, each checksum algorithm, multipart and single PUT.
  await browser.open(`${APP}/module.html`, "window.lib");
  const cases = [
    ["page engine, CRC32C, 24 MiB multipart", { worker: false }, 24 * MIB + 5, 1],
    ["worker engine, CRC32C, 24 MiB multipart", { worker: true }, 24 * MIB + 5, 2],
    ["page engine, SHA-256, 12 MiB", { checksum: "sha256" }, 12 * MIB, 3],
    ["page engine, SHA-1, 1 MiB single PUT", { checksum: "sha1" }, MIB, 4],
    ["page engine, MD5, 7 MiB", { checksum: "md5" }, 7 * MIB, 5],
    ["page engine, CRC32, an empty file", { checksum: "crc32" }, 0, 6],
  ];
  for (const [name, options, size, seed] of cases) {
    const outcome = await browser.run(`${FILE_OF}
  const [options, size, seed] = args;
  const uploader = new lib.Uploader({ backend: "/api/uploads", ...options });
  let reports = 0;
  const result = await uploader.upload(fileOf(size, seed, "webkit.bin"), { onProgress: () => reports++ }).done;
  return { key: result.key, checksum: result.checksum?.algorithm ?? null, reports };`, [options, size, seed]);
    let failure = outcome.error ?? (await storedIs(outcome.key, size, seed));
    if (!failure && !outcome.reports) failure = "no progress report";
    if (!failure && !outcome.checksum) failure = "the result carries no checksum";
    check(`${name}: stored byte-identical, checksum ${outcome.checksum}`, failure);
  }

  // The drop-in script.
  await browser.open(`${APP}/drop-in.html`, "window.lib");
  {
    const outcome = await browser.run(`${FILE_OF}
  const uploader = new lib.Uploader({ backend: "/api/uploads", worker: true });
  const result = await uploader.upload(fileOf(6 * 1048576, 7, "drop-in.bin")).done;
  return { key: result.key };`);
    check("the drop-in script (worker: true): 6 MiB stored byte-identical", outcome.error ?? (await storedIs(outcome.key, 6 * MIB, 7)));
  }

  // <s3-upload>: files added, a pause and resume, a cancel and a retry.
  await browser.open(`${APP}/widget.html`, "document.body.dataset.ready");
  {
    const outcome = await browser.run(`${FILE_OF}
  const root = widget.shadowRoot;
  const rows = () => [...root.querySelectorAll("li")];
  const until = async (test, what) => {
    for (const end = Date.now() + 60000; !test();) {
      if (Date.now() > end) throw new Error("timed out waiting for " + what + ": " + rows().map((r) => r.dataset.state).join(","));
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  widget.options = { concurrency: 1, partSize: 5 << 20, transport: "xhr" };
  widget.add([fileOf(40 << 20, 8, "paused.bin"), fileOf(300000, 9, "small.bin")]);
  const [big] = rows();
  await until(() => big.querySelector("progress").value > 0.1, "progress");
  big.querySelector("button.pause").click();
  await new Promise((r) => setTimeout(r, 700));
  const pausedState = big.dataset.state, at = big.querySelector("progress").value;
  await new Promise((r) => setTimeout(r, 1000));
  const later = big.querySelector("progress").value;
  big.querySelector("button.pause").click();
  await until(() => rows().every((r) => ["done", "failed", "aborted"].includes(r.dataset.state)), "both to end");
  widget.add([fileOf(40 << 20, 10, "cancelled.bin")]);
  const third = rows()[2];
  await until(() => third.querySelector("progress").value > 0.1, "the third's progress");
  third.querySelector("button.cancel").click();
  await until(() => third.dataset.state === "aborted", "the cancel");
  third.querySelector("button.retry").click();
  await until(() => third.dataset.state === "done" || third.dataset.state === "failed", "the retry");
  return { pausedState, movedWhilePaused: later !== at, rows: rows().map((r) => ({ state: r.dataset.state, key: r.dataset.key, error: r.querySelector(".error").textContent })) };`);
    const failures = [];
    if (outcome.error) failures.push(outcome.error);
    else {
      if (outcome.pausedState !== "paused") failures.push(`state ${outcome.pausedState} after Pause`);
      if (outcome.movedWhilePaused) failures.push("progress moved while paused");
      for (const [row, size, seed] of [[outcome.rows[0], 40 * MIB, 8], [outcome.rows[1], 300000, 9], [outcome.rows[2], 40 * MIB, 10]]) {
        const wrong = row.state === "done" ? await storedIs(row.key, size, seed) : `${row.state}: ${row.error}`;
        if (wrong) failures.push(wrong);
      }
    }
    check("<s3-upload>: pause and resume, cancel and retry; every file stored byte-identical", failures.join("; ") || null);
  }
} catch (e) {
  check("WebKit runs the flows", e.stack ?? String(e));
} finally {
  await browser?.close();
  xvfb.kill();
}
const failed = results.filter((r) => r.failure).length;
console.log(`webkit: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
