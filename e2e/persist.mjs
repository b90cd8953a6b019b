// The persistent queue (`persist`, `restore()`) and folder uploads (`uploadAll`, `filesFrom`) in
// headless Chromium (Playwright) and Firefox (geckodriver) against a reference server. A "reload"
// is the page left mid-upload (closed in Chromium, navigated away from in Firefox) and a fresh one
// opened with the same origin and storage. Checked in both engines: a 200 MiB upload from an OPFS
// file handle resumes without a new pick and sends only the missing parts; a small file comes back
// from its OPFS copy, which is deleted once stored; an upload without a handle or copy needs the
// file, refuses another one, and takes the same file picked again; a folder of 3 levels and 50
// files (picked with `webkitdirectory` in Chromium, where a driver can pick folders; an OPFS folder
// handle in both) keeps its paths as keys and metadata; with IndexedDB and OPFS refused, uploads
// still work and restore() finds nothing. Every stored object is compared with its file byte for
// byte.
//
// Env: APP and STORE_DIR (a reference server with `--www e2e/pages`, and its bucket directory),
// BIG_FILE (200 MiB), WORK (a scratch directory).
import { chromium } from "playwright-core";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { aCopyIsRecorded, until } from "./queue-probe.mjs";
import { sameBytes } from "./same-bytes.mjs";
import { ELEMENT, webdriverSession } from "./webdriver.mjs";

const { APP, STORE_DIR, BIG_FILE, WORK } = process.env;
const root = new URL("..", import.meta.url);
const webdriver = JSON.parse(await readFile(new URL("webdriver.json", root)));
const results = [];
const MiB = 1024 * 1024;
let engine = "";

function check(name, failure) {
  results.push({ name: `${engine}: ${name}`, failure });
  console.log(`persist: ${engine}: ${name}: ${failure ? `FAILED: ${failure}` : "ok"}`);
}

/**
 * Chromium through Playwright. `open(query)` gives a new page of one context on
 * e2e/pages/persist.html (+ `query`), the library ready; the page's `close()` closes it.
 */
async function chromiumPages() {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: webdriver["goog:chromeOptions"].args.filter((a) => !a.startsWith("--headless")),
    headless: true,
  });
  const context = await browser.newContext();
  return {
    name: "chromium",
    picksFolders: true,
    async open(query = "") {
      const page = await context.newPage();
      page.on("pageerror", (e) => console.log(`persist: pageerror: ${e.message}`));
      await page.goto(`${APP}/persist.html${query}`);
      await page.waitForFunction(() => window.lib, null, { timeout: 30_000 });
      return page;
    },
    close: () => browser.close(),
  };
}

/**
 * Firefox through geckodriver, one window: `open(query)` navigates it to the page (a reload when
 * it is there already), and the page's `close()` navigates away, which ends what it was doing.
 * Its pages answer `evaluate` and `setInputFiles` as Playwright's do.
 */
async function firefoxPages() {
  const session = await webdriverSession("geckodriver", { browserName: "firefox", "moz:firefoxOptions": webdriver["moz:firefoxOptions"] });
  const page = {
    async evaluate(fn, arg) {
      const value = await session.run(`return (${fn})(args[0]);`, [arg ?? null]);
      if (value && typeof value.error === "string" && Object.keys(value).length === 1) throw new Error(value.error);
      return value;
    },
    async setInputFiles(selector, path) {
      const input = await session.call("POST", "/element", { using: "css selector", value: selector });
      await session.call("POST", `/element/${input[ELEMENT]}/value`, { text: resolve(path) });
    },
    close: () => session.call("POST", "/url", { url: "about:blank" }),
  };
  return {
    name: "firefox",
    picksFolders: false,
    async open(query = "") {
      await session.open(`${APP}/persist.html${query}`, "window.lib");
      return page;
    },
    close: () => session.close(),
  };
}

const storedIs = (key, path) => sameBytes(join(STORE_DIR, key), path);

/** Starts a throttled upload of `picker`'s file (copied into OPFS first when `viaHandle`). */
function startUpload(page, options) {
  return page.evaluate(async ({ viaHandle, persist, cap }) => {
    let file = picker.files[0];
    let handle;
    if (viaHandle) {
      const dir = await navigator.storage.getDirectory();
      handle = await dir.getFileHandle("big.bin", { create: true });
      const writable = await handle.createWritable();
      await writable.write(file);
      await writable.close();
      file = await handle.getFile();
    }
    window.loaded = 0;
    const uploader = new lib.Uploader({ backend: "/api/uploads", persist, maxBytesPerSecond: cap });
    uploader.upload(file, { handle, onProgress: (r) => (window.loaded = r.loaded) });
  }, options);
}

/** Restores on `page` and resumes the first upload (with `pick`'s file, if given). */
function restoreAndResume(page, persist, pick) {
  return page.evaluate(async ({ persist, pick }) => {
    const uploader = new lib.Uploader({ backend: "/api/uploads", persist });
    const records = Object.keys(localStorage).length;
    const restored = await uploader.restore();
    const first = restored[0];
    if (!first) return { count: 0 };
    const states = restored.map((r) => r.state);
    const refusals = [];
    if (pick) {
      for (const attempt of [() => first.resume(), () => first.resume(new File(["other"], first.name))]) {
        await attempt().then(() => refusals.push("accepted"), (e) => refusals.push(e.code));
      }
    }
    const upload = await first.resume(pick ? picker.files[0] : undefined);
    const result = await upload.done;
    const after = await uploader.restore();
    return { count: restored.length, states, refusals, result, left: after.length, parts: partRequests(), records };
  }, { persist, pick });
}

async function aLargeUploadFromAHandleResumesAfterAReload(pages) {
  const first = await pages.open();
  await first.setInputFiles("#picker", BIG_FILE);
  await startUpload(first, { viaHandle: true, persist: "handles", cap: 40 * MiB });
  await until(first, (least) => window.loaded >= least, 64 * MiB);
  const before = await first.evaluate(() => window.loaded);
  await first.close();
  const second = await pages.open();
  try {
    const seen = await restoreAndResume(second, "handles");
    const failures = [];
    if (seen.count !== 1 || seen.states[0] !== "ready") failures.push(`restored ${JSON.stringify(seen.states ?? [])}`);
    else {
      const partSize = 200 * MiB / seen.result.parts;
      const missing = seen.result.parts - Math.floor(before / partSize);
      if (seen.parts > missing) failures.push(`${seen.parts} part PUTs after the reload; at most ${missing} were missing (${seen.records} resume records, ${seen.result.parts} parts)`);
      if (seen.left) failures.push(`restore() still offers ${seen.left} uploads once it is stored`);
      const bytes = await storedIs(seen.result.key, BIG_FILE);
      if (bytes) failures.push(bytes);
    }
    check(`200 MiB from an OPFS handle, interrupted at ${before / MiB} MiB: resumed at once after a reload, only the missing parts sent`, failures.join("; ") || null);
  } finally {
    await second.close();
  }
}

async function aSmallFileComesBackFromItsCopy(pages, small) {
  const first = await pages.open();
  await first.setInputFiles("#picker", small);
  // A backend that never answers: the upload cannot end before the page goes.
  await first.evaluate(async () => {
    const hang = () => new Promise(() => {});
    const uploader = new lib.Uploader({ backend: { signPut: hang }, persist: "copies" });
    uploader.upload(picker.files[0]);
  });
  const copies = () => navigator.storage.getDirectory()
    .then((d) => d.getDirectoryHandle("s3-direct-upload")).then((d) => d.getDirectoryHandle("copies"))
    .then(async (d) => { const names = []; for await (const name of d.keys()) names.push(name); return names.length; }, () => 0);
  await until(first, aCopyIsRecorded, null, 20);
  await first.close();
  const second = await pages.open();
  try {
    const seen = await restoreAndResume(second, "copies");
    const failures = [];
    if (seen.count !== 1 || seen.states[0] !== "ready") failures.push(`restored ${JSON.stringify(seen.states ?? [])}`);
    else {
      const bytes = await storedIs(seen.result.key, small);
      if (bytes) failures.push(bytes);
      const left = await second.evaluate(copies);
      if (left) failures.push(`${left} copies left in OPFS once stored`);
    }
    check("a small file picked, the page gone before it was sent: restored from its OPFS copy, the copy deleted once stored", failures.join("; ") || null);
  } finally {
    await second.close();
  }
}

async function anUploadWithoutACopyNeedsTheFile(pages, medium) {
  const first = await pages.open();
  await first.setInputFiles("#picker", medium);
  await startUpload(first, { persist: { name: "picks", copyUpTo: 0 }, cap: 8 * MiB });
  await until(first, (least) => window.loaded >= least, 16 * MiB);
  const before = await first.evaluate(() => window.loaded);
  await first.close();
  const second = await pages.open();
  try {
    await second.setInputFiles("#picker", medium);
    const seen = await restoreAndResume(second, { name: "picks", copyUpTo: 0 }, true);
    const failures = [];
    if (seen.count !== 1 || seen.states[0] !== "needs-file") failures.push(`restored ${JSON.stringify(seen.states ?? [])}`);
    else {
      if (seen.refusals.join() !== "invalid_file,invalid_file") failures.push(`resume() without the file, then with another: ${seen.refusals}`);
      const missing = seen.result.parts - Math.floor(before / (48 * MiB / seen.result.parts));
      if (seen.parts > missing) failures.push(`${seen.parts} part PUTs after the new pick; at most ${missing} were missing`);
      const bytes = await storedIs(seen.result.key, medium);
      if (bytes) failures.push(bytes);
    }
    check("without a handle or a copy: needs the file, refuses none or another, resumes from the same file picked again", failures.join("; ") || null);
  } finally {
    await second.close();
  }
}

/** Writes a folder of 3 levels and 50 files under `dir`; their relative paths and contents. */
async function makeFolder(dir) {
  const files = [];
  for (let i = 0; i < 50; i++) {
    const path = ["album", `level-${i % 3}`, ...(i % 2 ? [`deeper-${i % 5}`] : []), i === 7 ? "café ünïcode.txt" : `file-${i}.txt`].join("/");
    files.push({ path, body: `${path}\n`.repeat(1 + i * 37) });
  }
  for (const { path, body } of files) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), body);
  }
  return files;
}

async function foldersKeepTheirPaths(pages) {
  const page = await pages.open();
  try {
    const files = await makeFolder(join(WORK, "picked"));
    if (pages.picksFolders) await page.setInputFiles("#folder", join(WORK, "picked", "album"));
    const failures = [];
    for (const from of pages.picksFolders ? ["picked", "opfs"] : ["opfs"]) {
      const seen = await page.evaluate(async ({ from, files, engine }) => {
        let source = folder.files;
        if (from === "opfs") {
          const root = await navigator.storage.getDirectory();
          let top = await root.getDirectoryHandle("opfs-tree", { create: true });
          for (const { path, body } of files) {
            const parts = path.split("/");
            let dir = top;
            for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
            const writable = await (await dir.getFileHandle(parts.at(-1), { create: true })).createWritable();
            await writable.write(body);
            await writable.close();
          }
          source = await top.getDirectoryHandle("album");
        }
        const reports = [];
        const uploader = new lib.Uploader({ backend: "/api/uploads" });
        const batch = uploader.uploadAll(source, { prefix: `${engine}/${from}/`, onProgress: (p) => reports.push(p) });
        const { successful, failed } = await batch.done;
        return {
          stored: successful.map(({ path, result }) => ({ path, key: result.key })),
          failed: failed.map(({ path, error }) => `${path}: ${error.message}`),
          last: reports.at(-1),
        };
      }, { from, files, engine });
      if (seen.failed.length) failures.push(`${from}: failed ${seen.failed.join("; ")}`);
      if (seen.stored.length !== 50) failures.push(`${from}: ${seen.stored.length} of 50 stored`);
      const total = files.reduce((sum, f) => sum + Buffer.byteLength(f.body), 0);
      const last = seen.last ?? {};
      if (last.files !== 50 || last.done !== 50 || last.loaded !== total || last.total !== total) failures.push(`${from}: last batch progress ${JSON.stringify(last)}`);
      for (const { path, key } of seen.stored) {
        if (!key.endsWith(`${engine}/${from}/${path}`)) failures.push(`${from}: ${path} stored as ${key}`);
        else if (await storedIs(key, join(WORK, "picked", path))) failures.push(`${from}: ${key} differs`);
      }
      const paths = new Set(seen.stored.map((s) => s.path));
      if (!files.every((f) => paths.has(f.path))) failures.push(`${from}: paths ${[...paths].slice(0, 3)}...`);
    }
    check(`${pages.picksFolders ? "a picked folder and an OPFS folder handle" : "an OPFS folder handle"}, 3 levels and 50 files: one uploadAll each, keys keep the paths, byte-identical`, failures.join("; ") || null);
  } finally {
    await page.close();
  }
}

async function refusedStorageLeavesUploadsWorking(pages, small) {
  const page = await pages.open("?refused");
  try {
    await page.setInputFiles("#picker", small);
    const seen = await page.evaluate(async () => {
      const uploader = new lib.Uploader({ backend: "/api/uploads", persist: true });
      const result = await uploader.upload(picker.files[0]).done;
      return { result, restored: (await uploader.restore()).length };
    });
    const failures = [];
    if (seen.restored) failures.push(`restore() offered ${seen.restored}`);
    const bytes = await storedIs(seen.result.key, small);
    if (bytes) failures.push(bytes);
    check("IndexedDB and OPFS refused: the upload still works, restore() finds nothing", failures.join("; ") || null);
  } finally {
    await page.close();
  }
}

await mkdir(WORK, { recursive: true });
const small = join(WORK, "small.bin");
await writeFile(small, (await readFile(BIG_FILE)).subarray(0, 3 * MiB + 5));
const medium = join(WORK, "medium.bin");
await writeFile(medium, (await readFile(BIG_FILE)).subarray(0, 48 * MiB));
for (const start of [chromiumPages, firefoxPages]) {
  let pages;
  try {
    pages = await start();
    engine = pages.name;
    await aLargeUploadFromAHandleResumesAfterAReload(pages);
    await aSmallFileComesBackFromItsCopy(pages, small);
    await anUploadWithoutACopyNeedsTheFile(pages, medium);
    await foldersKeepTheirPaths(pages);
    await refusedStorageLeavesUploadsWorking(pages, small);
  } catch (e) {
    check("the run", e.stack);
  } finally {
    await pages?.close();
  }
}
const failed = results.filter((r) => r.failure).length;
console.log(`persist: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
