// End-to-end test of the demo page: headless Chromium (Debian's, driven by playwright-core)
// picks a file from disk in the page's <s3-upload>, which (from the drop-in script) uploads it through the
// reference server to the embedded store, and the stored object is compared with the source
// byte for byte. Also checks the drop-in build's promises: no separate .wasm request, one global.
//
// Env: APP (reference server URL; its page at / is tested), STORE_DIR (embedded store's bucket
// directory), FILE (the file to upload), ARTIFACTS and SHOT (where the screenshot goes), DROP_IN
// ("1" when the page uses the drop-in script, whose promises are then checked too). Prints the
// throughput it measured.
import { chromium } from "playwright-core";
import { readFile, mkdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { sameBytes } from "./same-bytes.mjs";

const { APP, STORE_DIR, FILE, ARTIFACTS, SHOT = "demo.png", DROP_IN } = process.env;
const UPLOAD_TIMEOUT_MS = 10 * 60 * 1000;

const webdriver = JSON.parse(await readFile(new URL("../webdriver.json", import.meta.url)));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: webdriver["goog:chromeOptions"].args.filter((a) => !a.startsWith("--headless")),
  headless: true,
});
let failure = null;
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const wasmRequests = [];
  page.on("request", (r) => r.url().endsWith(".wasm") && wasmRequests.push(r.url()));
  await page.goto(`${APP}/`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });

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
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, SHOT), fullPage: true });

  if (data.state !== "done") {
    failure = `the demo page reported ${data.status}`;
  } else if (data.bar !== 1) {
    failure = `the progress bar stopped at ${data.bar}`;
  } else if (pageErrors.length) {
    failure = `the page threw: ${pageErrors.join("; ")}`;
  } else if (DROP_IN && wasmRequests.length) {
    failure = `the drop-in script fetched ${wasmRequests.join(", ")}`;
  } else if (DROP_IN && globals.join() !== "function,undefined") {
    failure = `globals S3DirectUpload.Uploader/wasm_bindgen are ${globals.join("/")}`;
  } else {
    failure = await sameBytes(join(STORE_DIR, data.key), FILE);
    const { size } = await stat(FILE);
    console.log(`e2e: ${basename(FILE)}: ${(size / 2 ** 20).toFixed(0)} MiB stored byte-identical as ${data.key} ` +
      `in ${seconds.toFixed(1)} s = ${(size / 2 ** 20 / seconds).toFixed(0)} MiB/s (${SHOT.replace(".png", "")} page, headless Chromium, loopback)`);
  }
} finally {
  await browser.close();
}
if (failure) {
  console.log(`e2e: ${SHOT.replace(".png", "")} upload FAILED: ${failure}`);
  console.log("e2e: 0 passed, 1 failed");
  process.exit(1);
}
console.log("e2e: 1 passed, 0 failed");
