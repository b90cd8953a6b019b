// End-to-end test of the demo page: headless Chromium (Debian's, driven by playwright-core)
// picks a file from disk in the page's <s3-upload>, which (from the drop-in script) uploads it through the
// reference server to the embedded store, and the stored object is compared with the source
// byte for byte. Also checks the drop-in build's promises: no separate .wasm request, one global.
// Then the page's persistent queue: two uploads interrupted by a reload are listed as not
// finished; Resume finishes the one the page kept a copy of, Choose file the one it did not (only
// its missing parts sent), both byte-identical.
//
// Env: APP (reference server URL; its page at / is tested), STORE_DIR (embedded store's bucket
// directory), FILE (the file to upload; at least 49 MiB), ARTIFACTS and SHOT (where the
// screenshots go), DROP_IN ("1" when the page uses the drop-in script, whose promises are then
// checked too). Prints the throughput it measured.
import { chromium } from "playwright-core";
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { aCopyIsRecorded, until } from "./queue-probe.mjs";
import { sameBytes } from "./same-bytes.mjs";

const { APP, STORE_DIR, FILE, ARTIFACTS, SHOT = "demo.png", DROP_IN } = process.env;
const UPLOAD_TIMEOUT_MS = 10 * 60 * 1000;
const MiB = 1 << 20;
const results = [];

function check(name, failure) {
  results.push({ name, failure });
  console.log(`e2e: ${name}: ${failure ? `FAILED: ${failure}` : "ok"}`);
}

/** The widget's rows: name, state, status text, key, error text and progress. */
const rows = (page) =>
  page.evaluate(() => [...document.querySelector("s3-upload").shadowRoot.querySelectorAll("li")].map((li) => ({
    name: li.querySelector(".name").textContent,
    state: li.dataset.state,
    key: li.dataset.key,
    status: li.querySelector(".status").textContent,
    error: li.querySelector(".error").textContent,
    bar: li.querySelector("progress").value,
  })));

/** The demo page, ready; `pageErrors` gets what it throws. */
async function openDemo(page, pageErrors) {
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${APP}/`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
}

async function aLargeFileIsStored(page) {
  const pageErrors = [];
  const wasmRequests = [];
  page.on("request", (r) => r.url().endsWith(".wasm") && wasmRequests.push(r.url()));
  await openDemo(page, pageErrors);
  // The drop-in build: one script, the .wasm inside it, one global.
  const globals = await page.evaluate(() => [typeof globalThis.S3DirectUpload?.Uploader, typeof globalThis.wasm_bindgen]);
  const started = Date.now();
  await page.setInputFiles("s3-upload input.files", FILE);
  const row = await page.waitForSelector('s3-upload li[data-state="done"], s3-upload li[data-state="failed"], s3-upload li[data-state="aborted"]', {
    timeout: UPLOAD_TIMEOUT_MS,
  });
  const seconds = (Date.now() - started) / 1000;
  const data = await row.evaluate((e) => ({
    ...e.dataset,
    bar: e.querySelector("progress")?.value,
    status: `${e.querySelector(".status").textContent} ${e.querySelector(".error").textContent}`,
  }));
  await page.screenshot({ path: join(ARTIFACTS, SHOT), fullPage: true });
  let failure;
  if (data.state !== "done") failure = `the demo page reported ${data.status}`;
  else if (data.bar !== 1) failure = `the progress bar stopped at ${data.bar}`;
  else if (pageErrors.length) failure = `the page threw: ${pageErrors.join("; ")}`;
  else if (DROP_IN && wasmRequests.length) failure = `the drop-in script fetched ${wasmRequests.join(", ")}`;
  else if (DROP_IN && globals.join() !== "function,undefined") failure = `globals S3DirectUpload.Uploader/wasm_bindgen are ${globals.join("/")}`;
  else failure = await sameBytes(join(STORE_DIR, data.key), FILE);
  const { size } = await stat(FILE);
  check(`${basename(FILE)}: ${(size / MiB).toFixed(0)} MiB picked on the demo page, stored byte-identical` +
    (failure ? "" : ` in ${seconds.toFixed(1)} s = ${(size / MiB / seconds).toFixed(0)} MiB/s (headless Chromium, loopback)`), failure);
}

async function uploadsAReloadInterruptedAreListedAndResumed(context, work) {
  const copied = join(work, "demo-copied.bin");
  const picked = join(work, "demo-picked.bin");
  const source = Buffer.alloc(49 * MiB);
  const opened = await open(FILE);
  await opened.read(source, 0, source.length, 0);
  await opened.close();
  // 20 MiB: copied into OPFS (up to 32 MiB by default); 48 MiB: not copied, needs the file.
  await writeFile(copied, source.subarray(0, 20 * MiB));
  await writeFile(picked, source.subarray(MiB, 49 * MiB));
  const pageErrors = [];
  const first = await context.newPage();
  await openDemo(first, pageErrors);
  // One request at a time, 6 MiB/s: by 9 MiB sent, the 48 MiB file's first part (5 MiB) is stored.
  await first.evaluate((cap) => (document.querySelector("s3-upload").options = { transport: "xhr", maxBytesPerSecond: cap, concurrency: 1 }), 6 * MiB);
  await first.setInputFiles("s3-upload input.files", [picked, copied]);
  // Until the copy is written and 9 MiB of the 48 are sent.
  await until(first, aCopyIsRecorded);
  await until(first, () => [...document.querySelector("s3-upload").shadowRoot.querySelectorAll("li")]
    .some((li) => li.querySelector(".name").textContent.startsWith("demo-picked.bin") && li.querySelector("progress").value > 9 / 48));
  const before = await rows(first);
  await first.close();

  const second = await context.newPage();
  const parts = [];
  second.on("request", (r) => r.url().includes("partNumber=") && r.method() === "PUT" && parts.push(r.url()));
  await openDemo(second, pageErrors);
  const failures = [];
  await second.waitForFunction(() => document.querySelector("s3-upload").shadowRoot.querySelectorAll("li").length >= 2, null, { timeout: 30_000 });
  const listed = await rows(second);
  await second.screenshot({ path: join(ARTIFACTS, "demo-restored.png"), fullPage: true });
  const rowOf = (name) => second.locator("s3-upload li", { has: second.locator(".name", { hasText: name }) });
  const offered = Object.fromEntries(listed.map((r) => [r.name.split(" (")[0], r]));
  if (before.some((r) => r.state === "done")) failures.push(`an upload ended before the reload: ${JSON.stringify(before)}`);
  if (listed.length !== 2 || !listed.every((r) => r.state === "interrupted")) failures.push(`after the reload: ${JSON.stringify(listed)}`);
  else if (!offered["demo-picked.bin"].status.includes("choose demo-picked.bin again")) failures.push(`the 48 MiB row says "${offered["demo-picked.bin"].status}"`);
  else {
    await rowOf("demo-copied.bin").locator("button.retry").click();
    const chooser = second.waitForEvent("filechooser", { timeout: 10_000 });
    await rowOf("demo-picked.bin").locator("button.retry").click();
    await (await chooser).setFiles(picked);
    const ended = await second.waitForFunction(() => [...document.querySelector("s3-upload").shadowRoot.querySelectorAll("li")]
      .every((li) => ["done", "failed", "aborted"].includes(li.dataset.state)), null, { timeout: 120_000, polling: 100 }).catch(() => false);
    const after = await rows(second);
    if (!ended) failures.push(`not ended in 120 s: ${JSON.stringify(after)}`);
    for (const [name, file] of [["demo-copied.bin", copied], ["demo-picked.bin", picked]]) {
      const row = after.find((r) => r.name.startsWith(`${name} (`));
      if (row?.state !== "done") failures.push(`${name}: ${row?.state} ${row?.error}`);
      else {
        const wrong = await sameBytes(join(STORE_DIR, row.key), file);
        if (wrong) failures.push(wrong);
      }
    }
    // 20 MiB in 4 parts and 48 MiB in 10 (5 MiB parts), of which the first was stored.
    if (!parts.length || parts.length > 4 + 9) failures.push(`${parts.length} part PUTs after the reload; 1 to 13 were missing`);
  }
  if (pageErrors.length) failures.push(`the page threw: ${pageErrors.join("; ")}`);
  check("two uploads a reload interrupted are listed; Resume (from the OPFS copy) and Choose file finish them, byte-identical, only missing parts sent", failures.join("; ") || null);
}

const webdriver = JSON.parse(await readFile(new URL("../webdriver.json", import.meta.url)));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: webdriver["goog:chromeOptions"].args.filter((a) => !a.startsWith("--headless")),
  headless: true,
});
const work = await mkdtemp(join(tmpdir(), "s3du-demo-"));
try {
  await mkdir(ARTIFACTS, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  await aLargeFileIsStored(await context.newPage());
  await uploadsAReloadInterruptedAreListedAndResumed(context, work);
} catch (e) {
  check("the run", e.stack);
} finally {
  await browser.close();
  await rm(work, { recursive: true, force: true });
}
const failed = results.filter((r) => r.failure).length;
console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
