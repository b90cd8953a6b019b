// The README's "First upload in 5 minutes", run as a newcomer would: each path's example is
// opened in headless Chromium, uploads a file (multipart) and an empty one through a reference
// server to its embedded store, and each stored object is compared with the source byte for
// byte. The paths: the <s3-upload> widget in three lines (examples/widget/), the drop-in script
// tag (examples/script-tag/), the npm package in a Vite app
// installed from the packed tarball, both under Vite's dev server (its proxy carrying the API
// calls) and built, and an app's own API through callbacks (examples/callbacks/, e2e/own-api.mjs).
// Also: the README's snippets are these files, character for character; and using the library
// before init() is an error that says so.
//
// Env: APP and STORE_DIR (a reference server with `--www examples`, and its bucket directory),
// VITE_BUILT_APP and VITE_BUILT_STORE_DIR (one serving the Vite build), VITE_APP_DIR (the Vite
// app installed from the tarball), REACT_APP and REACT_STORE_DIR, VUE_APP and VUE_STORE_DIR (the
// React and Vue examples' builds: the widget in a component, the Uploader in a hook or
// composable), FILE (the file to upload), ARTIFACTS (screenshots).
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { sameBytes } from "./same-bytes.mjs";
import { startOwnApi } from "./own-api.mjs";

const { APP, STORE_DIR, VITE_BUILT_APP, VITE_BUILT_STORE_DIR, VITE_APP_DIR, FILE, ARTIFACTS } = process.env;
const { REACT_APP, REACT_STORE_DIR, VUE_APP, VUE_STORE_DIR } = process.env;
const root = new URL("..", import.meta.url);
const UPLOAD_TIMEOUT_MS = 120_000;
const results = [];

function check(name, failure) {
  results.push({ name, failure });
  console.log(`quickstart: ${name}: ${failure ? `FAILED: ${failure}` : "ok"}`);
}

// Every code block the README (and the npm package's, docs/npm-readme.md) marks with
// `<!-- from FILE -->` is that file, whole; and the README shows each example.
async function readmeSnippetsAreTheTestedFiles() {
  const failures = [];
  let count = 0;
  for (const doc of ["README.md", "docs/npm-readme.md"]) {
    const text = await readFile(new URL(doc, root), "utf8");
    const marked = [...text.matchAll(/<!-- from (\S+) -->\n```\w*\n([\s\S]*?)```/g)];
    count += marked.length;
    for (const [, path, block] of marked) {
      if (block !== (await readFile(new URL(path, root), "utf8"))) failures.push(`${doc}'s copy of ${path} differs from the file`);
    }
    const expected = doc === "README.md"
      ? ["examples/widget/index.html", "examples/script-tag/index.html", "examples/vite/src/main.js", "examples/vite/vite.config.js", "examples/callbacks/backend.js"]
      : ["examples/vite/src/main.js"];
    for (const path of expected) if (!marked.some(([, p]) => p === path)) failures.push(`${doc} does not show ${path}`);
  }
  check(`the READMEs' ${count} marked snippets are the tested files`, failures.join("; ") || null);
}

// Picks `file` on the page at `url` and waits for #result to say how it ended; the stored
// object is compared with the file. Page errors fail the check.
async function uploadThrough(browser, name, url, storeDir, shot) {
  const page = await browser.newPage({ viewport: { width: 900, height: 400 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(m.text()));
  // The Vite example asks for the worker engine: a bundle that cannot start it falls back, warning.
  page.on("console", (m) => m.type() === "warning" && m.text().includes("worker engine") && errors.push(m.text()));
  page.on("response", (r) => r.status() >= 400 && !r.url().endsWith("/favicon.ico") && errors.push(`HTTP ${r.status()} for ${r.url()}`));
  try {
    await page.goto(url);
    // Each example enables its picker once the library is ready.
    await page.waitForSelector("#picker:not([disabled])", { timeout: 30_000 }).catch((e) => {
      throw new Error(`the page never became ready (${errors.join("; ") || e.message})`);
    });
    for (const [label, source] of [["a 24 MiB file", FILE], ["an empty file", `${FILE}.empty`]]) {
      const started = Date.now();
      await page.locator("#result").evaluate((e) => (e.textContent = ""));
      await page.setInputFiles("#picker", source);
      const status = await page
        .waitForFunction(() => /^(stored as|failed)/.test(document.querySelector("#result").textContent) &&
          document.querySelector("#result").textContent, null, { timeout: UPLOAD_TIMEOUT_MS })
        .then((h) => h.jsonValue());
      const bar = await page.locator("#bar").evaluate((e) => e.value);
      let failure = null;
      if (!status.startsWith("stored as ")) failure = `the page says ${status}`;
      else if (bar !== 1) failure = `the progress bar stopped at ${bar}`;
      else failure = await sameBytes(join(storeDir, status.slice("stored as ".length)), source);
      if (!failure && errors.length) failure = `the page logged errors: ${errors.join("; ")}`;
      check(`${name}: ${label} stored byte-identical in ${((Date.now() - started) / 1000).toFixed(1)} s`, failure);
    }
    await page.screenshot({ path: join(ARTIFACTS, shot) });
  } catch (e) {
    check(`${name}: the upload`, e.message.split("\n")[0]);
  } finally {
    await page.close();
  }
}

// <s3-upload> on the page at `url` (the README's three lines, or a framework's app): a file and
// an empty one picked in it, stored byte-identical; where the app counts the widget's
// upload-done events (#stored), they reached it.
async function uploadThroughTheWidget(browser, name, url, storeDir, shot) {
  const page = await browser.newPage({ viewport: { width: 900, height: 400 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(url);
    for (const [label, source, count] of [["a 24 MiB file", FILE, 1], ["an empty file", `${FILE}.empty`, 2]]) {
      await page.setInputFiles("s3-upload input.files", source);
      const last = await page
        .waitForFunction((count) => {
          const rows = [...document.querySelector("s3-upload").shadowRoot.querySelectorAll("li")];
          const row = rows[count - 1];
          return row && ["done", "failed", "aborted"].includes(row.dataset.state) &&
            { state: row.dataset.state, key: row.dataset.key, error: row.querySelector(".error").textContent };
        }, count, { timeout: UPLOAD_TIMEOUT_MS })
        .then((h) => h.jsonValue());
      let failure = last.state === "done" ? await sameBytes(join(storeDir, last.key), source) : `${last.state}: ${last.error}`;
      if (!failure && errors.length) failure = `the page threw: ${errors.join("; ")}`;
      const counted = await page.locator("#stored").textContent({ timeout: 1000 }).catch(() => null);
      if (!failure && counted !== null && !counted.startsWith(`${count} stored`)) failure = `the app says "${counted}"`;
      check(`${name}: ${label} stored byte-identical${counted === null ? "" : ", the app told"}`, failure);
    }
    await page.screenshot({ path: join(ARTIFACTS, shot) });
  } catch (e) {
    check(`${name}: the upload`, e.message.split("\n")[0]);
  } finally {
    await page.close();
  }
}

// Before init() (the module) or S3DirectUpload.ready (the drop-in), using the library throws an
// S3DirectUploadError with code not_initialized, which isUploadError recognizes.
async function beforeInitIsAClearError(browser) {
  const page = await browser.newPage();
  try {
    await page.goto(`${APP}/script-tag/`);
    const module = await page.evaluate(async () => {
      const m = await import("/pkg/s3_direct_upload.js");
      const attempt = () => {
        try {
          new m.Uploader({ backend: "/api/uploads" });
          return null;
        } catch (e) {
          return { code: e.code, message: e.message, guard: m.isUploadError(e), plain: m.isUploadError(new Error("x")) };
        }
      };
      const before = attempt();
      await m.default();
      return { before, after: attempt() };
    });
    const drop = await page.evaluate(async () => {
      // A fresh copy of the drop-in, used in the same task as it loads: before its ready.
      delete globalThis.S3DirectUpload;
      const source = await (await fetch("/pkg/s3-direct-upload.global.js")).text();
      (0, eval)(source);
      try {
        new S3DirectUpload.Uploader({ backend: "/api/uploads" });
        return null;
      } catch (e) {
        await S3DirectUpload.ready;
        new S3DirectUpload.Uploader({ backend: "/api/uploads" });
        return { code: e.code, guard: S3DirectUpload.isUploadError(e) };
      }
    });
    const failures = [];
    const { before, after } = module;
    if (!before || before.code !== "not_initialized" || !before.guard || before.plain || !/await init\(\)/.test(before.message)) {
      failures.push(`the module before init(): ${JSON.stringify(before)}`);
    }
    if (after) failures.push(`the module after init() still throws: ${JSON.stringify(after)}`);
    if (!drop || drop.code !== "not_initialized" || !drop.guard) failures.push(`the drop-in before ready: ${JSON.stringify(drop)}`);
    check("using the library before init() is a not_initialized error, and works once initialized", failures.join("; ") || null);
  } finally {
    await page.close();
  }
}

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Vite's dev server on the app installed from the tarball (with `config`, a file in it), its
// proxy sending /api to APP; stopped (with its children) by its process group.
async function withViteDev(config, run) {
  const port = await freePort();
  const args = ["--host", "127.0.0.1", "--port", String(port), "--strictPort", "--config", config, "--force"];
  const vite = spawn("node_modules/.bin/vite", args, {
    cwd: VITE_APP_DIR,
    env: { ...process.env, API_URL: APP },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  vite.stdout.on("data", (d) => (log += d));
  vite.stderr.on("data", (d) => (log += d));
  const url = `http://127.0.0.1:${port}/`;
  try {
    const deadline = Date.now() + 30_000;
    while (!(await fetch(url).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline || vite.exitCode !== null) throw new Error(`Vite's dev server did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await run(url);
  } catch (e) {
    check("Vite dev server", e.message);
  } finally {
    process.kill(-vite.pid, "SIGTERM");
  }
  return log;
}

// A newcomer's vite.config.js without the example's optimizeDeps line: init() says what to add.
async function viteDevWithoutTheExclusionSaysWhatToAdd(browser) {
  const example = await readFile(join(VITE_APP_DIR, "vite.config.js"), "utf8");
  const without = example.replace(/^\s*optimizeDeps: .*$/m, "");
  if (without === example) return check("a Vite config without optimizeDeps", "the example has no optimizeDeps line");
  await writeFile(join(VITE_APP_DIR, "vite.without-exclude.config.js"), without);
  await withViteDev("vite.without-exclude.config.js", async (url) => {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url);
    const deadline = Date.now() + 20_000;
    while (!errors.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await page.close();
    const said = errors.find((e) => e.includes('optimizeDeps: { exclude: ["s3-direct-upload"] }'));
    check("Vite dev server without the exclusion: init() names the line to add", said ? null : `the page said ${errors.join("; ") || "nothing"}`);
  });
}

await mkdir(ARTIFACTS, { recursive: true });
await writeFile(`${FILE}.empty`, "");
await readmeSnippetsAreTheTestedFiles();
const webdriver = JSON.parse(await readFile(new URL("webdriver.json", root)));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: webdriver["goog:chromeOptions"].args.filter((a) => !a.startsWith("--headless")),
  headless: true,
});
const ownApi = await startOwnApi(`${APP}/api/uploads`);
try {
  await beforeInitIsAClearError(browser);
  await uploadThroughTheWidget(browser, "the widget in three lines", `${APP}/widget/`, STORE_DIR, "quickstart-widget.png");
  await uploadThrough(browser, "script tag", `${APP}/script-tag/`, STORE_DIR, "quickstart-script-tag.png");
  const log = await withViteDev("vite.config.js", (url) =>
    uploadThrough(browser, "npm + Vite, dev server", url, STORE_DIR, "quickstart-vite-dev.png"));
  check("Vite's dev server logged no error", /error/i.test(log) ? log : null);
  await viteDevWithoutTheExclusionSaysWhatToAdd(browser);
  await uploadThrough(browser, "npm + Vite, built", `${VITE_BUILT_APP}/`, VITE_BUILT_STORE_DIR, "quickstart-vite-built.png");
  for (const [framework, app, storeDir] of [["React", REACT_APP, REACT_STORE_DIR], ["Vue", VUE_APP, VUE_STORE_DIR]]) {
    await uploadThroughTheWidget(browser, `${framework}: <s3-upload> in a component`, `${app}/`, storeDir, `quickstart-${framework.toLowerCase()}-widget.png`);
    await uploadThrough(browser, `${framework}: the Uploader in a ${framework === "React" ? "hook" : "composable"}`, `${app}/`, storeDir, `quickstart-${framework.toLowerCase()}-hook.png`);
  }
  await uploadThrough(browser, "your own API, through callbacks", `${ownApi.url}/`, STORE_DIR, "quickstart-callbacks.png");
} finally {
  await browser.close();
  await ownApi.close();
}
const failed = results.filter((r) => r.failure).length;
console.log(`quickstart: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
