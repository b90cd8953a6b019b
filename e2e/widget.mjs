// The <s3-upload> widget (s3-direct-upload/element) as a user drives it, in headless Chromium
// against a reference server whose policy refuses PDFs: files picked, a folder of three levels
// picked (stored under its paths), files dropped, a pause and resume from the keyboard, a cancel
// and a retry, a type the server refuses, a file over `max-size`; every stored object compared
// with its file byte for byte; the DOM events; axe-core (0 serious or critical violations, light and dark); no
// horizontal scrolling at 320 px; screenshots at 1280 and 390 px, light and dark, in ARTIFACTS.
//
// Env: APP and STORE_DIR (a reference server with `--www e2e/pages` and `--allowed-types`
// without application/pdf, and its bucket directory), BIG_FILE (64 MiB), ARTIFACTS.
import { chromium } from "playwright-core";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { sameBytes } from "./same-bytes.mjs";

const { APP, STORE_DIR, BIG_FILE, ARTIFACTS = "e2e/artifacts" } = process.env;
const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const results = [];

function check(name, failure) {
  results.push({ name, failure });
  console.log(`widget: ${name}: ${failure ? `FAILED: ${failure}` : "ok"}`);
}

/** A 1×1 PNG, for the preview. */
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");
const bytes = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed * 13) % 251));

/** Rows of the widget: path, state, key, error text. */
const rows = (page) =>
  page.evaluate(() => [...widget.shadowRoot.querySelectorAll("li")].map((li) => ({
    name: li.querySelector(".name").textContent,
    state: li.dataset.state,
    key: li.dataset.key,
    error: li.querySelector(".error").textContent,
  })));

/** Waits until every row has ended (done, failed, aborted), 120 s at most. */
const settled = (page, count) =>
  page.waitForFunction((count) => {
    const all = [...widget.shadowRoot.querySelectorAll("li")];
    return all.length >= count && all.every((li) => ["done", "failed", "aborted"].includes(li.dataset.state));
  }, count, { timeout: 120_000, polling: 100 });

/** The row whose name starts with `path`. */
const row = (page, path) => page.locator("s3-upload li", { has: page.locator(".name", { hasText: path }) });

async function storedAs(page, path, source) {
  const found = (await rows(page)).find((r) => r.name.startsWith(`${path} (`));
  if (!found) return `no row for ${path}`;
  if (found.state !== "done") return `${path}: ${found.state} ${found.error}`;
  return sameBytes(join(STORE_DIR, found.key), source);
}

const work = await mkdtemp(join(tmpdir(), "s3du-widget-"));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${APP}/widget.html`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });

  // Files picked: an image (previewed from its display URL) and a multipart file.
  const photo = join(work, "photo.png");
  const notes = join(work, "notes.txt");
  await writeFile(photo, PNG);
  await writeFile(notes, bytes(300_000, 1));
  await page.setInputFiles("s3-upload input.files", [photo, notes]);
  await settled(page, 2);
  {
    const failures = [];
    for (const [path, file] of [["photo.png", photo], ["notes.txt", notes]]) {
      const wrong = await storedAs(page, path, file);
      if (wrong) failures.push(wrong);
    }
    const preview = await page.evaluate(async () => {
      const img = widget.shadowRoot.querySelector("img");
      if (!img) return "no preview";
      await img.decode().catch(() => {});
      return img.naturalWidth === 1 ? null : `preview ${img.naturalWidth} px wide`;
    });
    if (preview) failures.push(preview);
    check("two picked files are stored byte-identical, the image previewed from its display URL", failures.join("; ") || null);
  }

  // A folder of three levels, picked.
  const folder = join(work, "album");
  await mkdir(join(folder, "2026", "december"), { recursive: true });
  const inFolder = [["album/cover.txt", bytes(1000, 2)], ["album/2026/list.txt", bytes(2000, 3)], ["album/2026/december/day.bin", bytes(6 << 20, 4)]];
  for (const [path, content] of inFolder) await writeFile(join(work, path), content);
  await page.setInputFiles("s3-upload input.folders", folder);
  await settled(page, 5);
  {
    const failures = [];
    for (const [path] of inFolder) {
      const wrong = await storedAs(page, path, join(work, path));
      if (wrong) failures.push(wrong);
      const { key } = (await rows(page)).find((r) => r.name.startsWith(`${path} (`)) ?? {};
      if (!key?.endsWith(`/${path}`)) failures.push(`${path} stored as ${key}, not under its path`);
    }
    check("a folder of three levels is uploaded with each file's path shown and kept in its key, byte-identical", failures.join("; ") || null);
  }

  // Files dropped on the drop zone.
  {
    const dropped = await page.evaluate(async () => {
      const transfer = new DataTransfer();
      const content = new Uint8Array(200_000).map((_, i) => (i * 31) % 256);
      transfer.items.add(new File([content], "dropped.bin", { type: "application/octet-stream" }));
      const zone = widget.shadowRoot.querySelector(".zone");
      zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
      const highlighted = zone.classList.contains("over");
      zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
      return { highlighted };
    });
    await settled(page, 6);
    const source = join(work, "dropped.bin");
    await writeFile(source, Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 256)));
    const wrong = await storedAs(page, "dropped.bin", source);
    check("a dropped file is stored byte-identical (the zone highlights while dragged over)", [wrong, dropped.highlighted ? null : "no highlight"].filter(Boolean).join("; ") || null);
  }

  // Pause and resume from the keyboard, then cancel and retry.
  await page.evaluate(() => (widget.options = { concurrency: 1, partSize: 5 << 20, transport: "xhr" }));
  await page.setInputFiles("s3-upload input.files", BIG_FILE);
  const big = row(page, "e2e-widget-big.bin");
  {
    const failures = [];
    await page.waitForFunction(() => [...widget.shadowRoot.querySelectorAll("li")].at(-1).querySelector("progress").value > 0.1, null, { timeout: 30_000, polling: 20 });
    await big.locator("button.pause").focus();
    await page.keyboard.press("Enter");
    await page.waitForTimeout(700);
    const state = await big.getAttribute("data-state");
    const at = await big.locator("progress").evaluate((p) => p.value);
    await page.waitForTimeout(1000);
    const later = await big.locator("progress").evaluate((p) => p.value);
    if (state !== "paused") failures.push(`state ${state} after Pause`);
    if (later !== at) failures.push(`progress moved while paused: ${at} → ${later}`);
    if ((await big.locator("button.pause").textContent()) !== "Resume") failures.push("the button does not offer Resume");
    await page.keyboard.press("Enter");
    await settled(page, 7);
    const wrong = await storedAs(page, "e2e-widget-big.bin", BIG_FILE);
    if (wrong) failures.push(wrong);
    check("pause and resume from the keyboard: no progress while paused, then stored byte-identical", failures.join("; ") || null);
  }
  {
    const failures = [];
    await big.locator("button.remove").click();
    await page.setInputFiles("s3-upload input.files", BIG_FILE);
    await page.waitForFunction(() => [...widget.shadowRoot.querySelectorAll("li")].at(-1).querySelector("progress").value > 0.1, null, { timeout: 30_000, polling: 20 });
    await big.locator("button.cancel").click();
    await settled(page, 7);
    if ((await big.getAttribute("data-state")) !== "aborted") failures.push(`state ${await big.getAttribute("data-state")} after Cancel`);
    const cancelled = await page.evaluate(() => window.events.filter((e) => e.name === "upload-error" && e.detail.error.code === "aborted").length);
    if (cancelled !== 1) failures.push(`${cancelled} upload-error events with code aborted`);
    await big.locator("button.retry").click();
    await settled(page, 7);
    const wrong = await storedAs(page, "e2e-widget-big.bin", BIG_FILE);
    if (wrong) failures.push(`after Retry: ${wrong}`);
    check("cancel, then retry: the upload ends as cancelled with an upload-error event, and the retry stores it byte-identical", failures.join("; ") || null);
  }

  // A type the server refuses, and a file over max-size: errors shown with what to do.
  {
    const failures = [];
    const pdf = join(work, "report.pdf");
    await writeFile(pdf, bytes(5000, 5));
    await page.setInputFiles("s3-upload input.files", pdf);
    await settled(page, 8);
    const refused = (await rows(page)).find((r) => r.name.startsWith("report.pdf"));
    if (refused?.state !== "failed" || !/content type|type/i.test(refused.error)) failures.push(`report.pdf: ${JSON.stringify(refused)}`);
    if (!(await row(page, "report.pdf").locator("button.retry").isVisible())) failures.push("no Retry on the failed row");
    await page.evaluate(() => widget.setAttribute("max-size", "1000"));
    await page.setInputFiles("s3-upload input.files", notes);
    await settled(page, 9);
    const tooBig = (await rows(page)).at(-1);
    if (tooBig.state !== "failed" || !tooBig.error.includes("largest file allowed is 1000 B")) failures.push(`over max-size: ${JSON.stringify(tooBig)}`);
    await page.evaluate(() => widget.removeAttribute("max-size"));
    const errors = await page.evaluate(() => window.events.filter((e) => e.name === "upload-error").map((e) => e.detail.error.code));
    if (!errors.includes("backend_error") || !errors.includes("invalid_file")) failures.push(`upload-error codes ${errors.join(", ")}`);
    check("a type the server refuses and a file over max-size fail with the reason shown, an upload-error event and Retry", failures.join("; ") || null);
  }

  // The events carry the callbacks' objects.
  {
    const seen = await page.evaluate(() => ({
      progress: window.events.filter((e) => e.name === "upload-progress").length,
      progressShaped: window.events.filter((e) => e.name === "upload-progress").every((e) => e.detail.file instanceof Blob && typeof e.detail.loaded === "number"),
      done: window.events.filter((e) => e.name === "upload-done").map((e) => e.detail.result.key).filter(Boolean).length,
    }));
    const failures = [];
    if (!seen.progress || !seen.progressShaped) failures.push(`progress events: ${JSON.stringify(seen)}`);
    if (seen.done !== 8) failures.push(`${seen.done} upload-done events with a key, not 8`);
    check("upload-progress, upload-done and upload-error events bubble out of the widget with the callbacks' objects", failures.join("; ") || null);
  }

  // Accessibility, layout and screenshots, light and dark.
  await page.addScriptTag({ path: axePath });
  await mkdir(ARTIFACTS, { recursive: true });
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    const violations = await page.evaluate(async () => {
      const { violations } = await axe.run(document, { resultTypes: ["violations"] });
      return violations.filter((v) => ["serious", "critical"].includes(v.impact)).map((v) => `${v.id}: ${v.nodes.length}`);
    });
    check(`axe-core finds no serious or critical violation (${scheme})`, violations.join("; ") || null);
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      await page.screenshot({ path: join(ARTIFACTS, `widget-${width}-${scheme}.png`), fullPage: true });
    }
  }
  await page.setViewportSize({ width: 320, height: 700 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  check("usable at 320 px: nothing scrolls sideways", overflow > 320 ? `the page is ${overflow} px wide` : null);
  check("the page threw nothing", pageErrors.join("; ") || null);
} catch (e) {
  check("the widget runs", e.stack ?? String(e));
} finally {
  await browser.close();
  await rm(work, { recursive: true, force: true });
}
const failed = results.filter((r) => r.failure).length;
console.log(`widget: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
