// Many small files signed together (issue 16), in headless Chromium against a reference server:
// files started at once are signed in a few `POST /api/uploads/files` calls, not one call each
// (the backend answers after 300 ms here, so that files wait for calls as on a real network;
// on loopback, calls are free again before the next file is hashed, and each goes alone),
// and go up as form POSTs (which need no CORS preflight), on the page and in the worker engine;
// a file the backend refuses fails alone, with its reason; a backend without `/files` (an older
// one: answered 404 here) gets each file's `/put` instead, after one try; callbacks with
// `signFiles` get arrays of files. Every stored object is compared with its bytes.
//
// Env: APP and STORE_DIR (a reference server with `--www e2e/pages`, and its bucket directory).
import { chromium } from "playwright-core";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

const { APP, STORE_DIR } = process.env;
const COUNT = 60;
const results = [];

function check(name, failure) {
  results.push({ name, failure });
  console.log(`batch: ${name}: ${failure ? `FAILED: ${failure}` : "ok"}`);
}

/** Byte `i` of file `n`: the same formula runs in the page. */
const byteOf = (i, n) => (i * 13 + n * 7 + (i >>> 9)) & 255;
const sizeOf = (n) => 4096 + n * 613;

/** Starts COUNT uploads at once in the page (`options` for the Uploader; file 7 asks for `badKey`). */
const uploadAll = (page, options, badKey) =>
  page.evaluate(async ({ count, options, badKey }) => {
    const sizeOf = (n) => 4096 + n * 613;
    const fileOf = (n) => {
      const bytes = new Uint8Array(sizeOf(n));
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 13 + n * 7 + (i >>> 9)) & 255;
      return new File([bytes], `small-${n}.bin`, { type: "application/octet-stream" });
    };
    window.signFilesCalls = [];
    const http = (path, body) =>
      fetch(`/api/uploads${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
        .then(async (r) => (r.ok ? r.json() : Promise.reject(Object.assign(new Error((await r.json()).error), { status: r.status }))));
    const callbacks = {
      signPut: (file) => http("/put", file),
      signFiles: async ({ files }) => {
        window.signFilesCalls.push(files.length);
        await new Promise((r) => setTimeout(r, 300)); // a backend far away
        return http("/files", { files });
      },
    };
    const uploader = new lib.Uploader({ ...options, backend: options.backend === "callbacks" ? callbacks : options.backend });
    const outcomes = await Promise.all(Array.from({ length: count }, (_, n) =>
      uploader.upload(fileOf(n), n === 7 && badKey ? { key: badKey } : {}).done
        .then((result) => ({ n, key: result.key }), (error) => ({ n, error: { code: error.code, status: error.status, message: error.message } }))));
    return { outcomes, signFilesCalls: window.signFilesCalls };
  }, { count: COUNT, options, badKey });

/** What was wrong with the stored objects of `outcomes` (all but `refused` stored, byte for byte). */
async function storedWrong(outcomes, refused) {
  const wrong = [];
  for (const { n, key, error } of outcomes) {
    if (n === refused) continue;
    if (error) {
      wrong.push(`file ${n}: ${error.code}: ${error.message}`);
      continue;
    }
    const stored = await readFile(join(STORE_DIR, key)).catch(() => null);
    if (!stored || stored.length !== sizeOf(n) || stored.some((b, i) => b !== byteOf(i, n))) wrong.push(`file ${n}: ${key} differs`);
  }
  return wrong.slice(0, 3);
}

/** A fresh page on module.html, counting the backend calls and the store requests it makes. */
async function open(context) {
  const page = await context.newPage();
  const seen = { files: 0, put: 0, storePosts: 0, storePuts: 0 };
  page.on("request", (request) => {
    const { pathname } = new URL(request.url());
    if (pathname === "/api/uploads/files") seen.files++;
    else if (pathname === "/api/uploads/put") seen.put++;
    else if (!pathname.startsWith("/api/") && request.method() === "POST") seen.storePosts++;
    else if (!pathname.startsWith("/api/") && request.method() === "PUT") seen.storePuts++;
  });
  await page.goto(`${APP}/module.html`);
  await page.waitForFunction(() => window.lib, null, { timeout: 30_000 });
  return { page, seen };
}

const webdriver = JSON.parse(await readFile(new URL("../webdriver.json", import.meta.url)));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: webdriver["goog:chromeOptions"].args.filter((a) => !a.startsWith("--headless")),
  headless: true,
});
try {
  const context = await browser.newContext();
  for (const worker of [false, true]) {
    const { page, seen } = await open(context);
    // A backend far away (the page's calls; the worker's are not routed through the page).
    await page.route("**/api/uploads/files", (route) => new Promise((r) => setTimeout(r, 300)).then(() => route.continue()));
    const { outcomes } = await uploadAll(page, { backend: "/api/uploads", worker }, "../../escape");
    const failures = await storedWrong(outcomes, 7);
    const refused = outcomes[7].error;
    if (refused?.code !== "backend_error" || refused.status !== 400 || !/refused the file.*key/.test(refused.message)) {
      failures.push(`file 7 (a key out of the prefix): ${JSON.stringify(outcomes[7])}`);
    }
    // The worker's requests are the worker's: Playwright sees the page's only.
    if (!worker && (seen.files >= COUNT / 2 || seen.put || seen.storePuts || seen.storePosts !== COUNT - 1)) {
      failures.push(`${seen.files} /files and ${seen.put} /put calls, ${seen.storePosts} form POSTs and ${seen.storePuts} PUTs to the store`);
    }
    check(`${COUNT} files at once${worker ? " (worker engine)" : ""}: signed in a few /files calls, sent as form POSTs, byte-identical; a refused key fails that file alone`, failures.join("; ") || null);
    if (!worker) console.log(`batch: ${COUNT} files took ${seen.files} /files calls`);
    await page.close();
  }
  {
    const { page, seen } = await open(context);
    await page.route("**/api/uploads/files", (route) => route.fulfill({ status: 404, contentType: "application/json", body: '{"error":"not found"}' }));
    const { outcomes } = await uploadAll(page, { backend: "/api/uploads" });
    const failures = await storedWrong(outcomes);
    if (seen.files < 1 || seen.files > 6 || seen.put !== COUNT || seen.storePuts !== COUNT) failures.push(`${seen.files} /files and ${seen.put} /put calls, ${seen.storePuts} PUTs`);
    check("a backend without /files (404): each file signed by /put, after at most one /files try per call place, byte-identical", failures.join("; ") || null);
    await page.close();
  }
  {
    const { page } = await open(context);
    const { outcomes, signFilesCalls } = await uploadAll(page, { backend: "callbacks" });
    const failures = await storedWrong(outcomes);
    const signed = signFilesCalls.reduce((a, b) => a + b, 0);
    if (signed !== COUNT || signFilesCalls.length >= COUNT / 2) failures.push(`signFiles calls: ${JSON.stringify(signFilesCalls)}`);
    check("callbacks with signFiles: called with arrays of files, every file once, byte-identical", failures.join("; ") || null);
    await page.close();
  }
} catch (e) {
  check("the run", e.stack);
} finally {
  await browser.close();
}
const failed = results.filter((r) => r.failure).length;
console.log(`batch: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
