// The worker engine against the page engine, in Chromium and in Firefox: one file uploaded with
// the default CRC32C through e2e/pages/module.html, on the page (`worker: false`), in the worker
// (`worker: true`), and on the page without checksums, alternately, ROUNDS rounds. Measured:
// MiB/s, and how late a 10 ms timer on the page got at worst (the main thread's longest busy
// spell, which Firefox, lacking the Long Tasks API, can report too). Driven over plain WebDriver
// (chromedriver, geckodriver), so both engines are driven alike. Loopback only.
//
// Env: APP (a reference server with `--www e2e/pages`), FILE, BENCH_ROUNDS (default 3),
// BENCH_OUT (default bench/results/engines.json). Run through scripts/bench-engines.sh.
import { readFile, stat, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { ELEMENT, webdriverSession } from "../e2e/webdriver.mjs";

const { APP, FILE } = process.env;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const root = new URL("..", import.meta.url);
const VARIANTS = {
  page: { worker: false },
  worker: { worker: true },
  "page, checksum: false": { worker: false, checksum: false },
};

/** A browser through its WebDriver `command`: a page opened with `file` picked, and runs on it. */
async function session(command, capabilities) {
  const driver = await webdriverSession(command, capabilities);
  return {
    async open(url, file) {
      await driver.open(url, "window.lib");
      const picker = await driver.call("POST", "/element", { using: "css selector", value: "#picker" });
      await driver.call("POST", `/element/${picker[ELEMENT]}/value`, { text: resolve(file) });
    },
    run: (options) =>
      driver.run(`const [options] = args;
  const file = picker.files[0];
  let worst = 0, last = performance.now();
  const timer = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last - 10); last = now; }, 10);
  const started = performance.now();
  const uploader = new lib.Uploader({ backend: "/api/uploads", ...options });
  const result = await uploader.upload(file).done;
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  uploader.free();
  return { mibPerSecond: file.size / 1048576 / seconds, worstTimerLateMs: worst, checksum: result.checksum?.algorithm ?? null };`, [options]),
    close: () => driver.close(),
  };
}

const webdriver = JSON.parse(await readFile(new URL("webdriver.json", root)));
const browsers = {
  chromium: ["/usr/bin/chromedriver", { browserName: "chrome", "goog:chromeOptions": webdriver["goog:chromeOptions"] }],
  firefox: ["geckodriver", { browserName: "firefox", "moz:firefoxOptions": webdriver["moz:firefoxOptions"] }],
};
const results = { file: { bytes: (await stat(FILE)).size }, rounds: ROUNDS, browsers: {} };
for (const [name, [command, capabilities]] of Object.entries(browsers)) {
  const browser = await session(command, capabilities);
  const runs = Object.fromEntries(Object.keys(VARIANTS).map((v) => [v, []]));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [variant, options] of Object.entries(VARIANTS)) {
        await browser.open(`${APP}/module.html`, FILE); // a fresh page each run
        const run = await browser.run(options);
        if (run.error) throw new Error(`${name}, ${variant}: ${run.error}`);
        runs[variant].push(run);
      }
    }
  } finally {
    await browser.close();
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  results.browsers[name] = Object.fromEntries(Object.entries(runs).map(([variant, list]) => [variant, {
    mibPerSecond: median(list.map((r) => r.mibPerSecond)),
    worstTimerLateMs: Math.max(...list.map((r) => r.worstTimerLateMs)),
    runs: list,
  }]));
}
await writeFile(new URL(process.env.BENCH_OUT ?? "bench/results/engines.json", root), JSON.stringify(results, null, 2) + "\n");

console.log(`\n| browser | engine | MiB/s (median of ${ROUNDS}) | ÷ page | worst lateness of a 10 ms timer on the page |`);
console.log("|---|---|---|---|---|");
for (const [name, variants] of Object.entries(results.browsers)) {
  for (const [variant, r] of Object.entries(variants)) {
    console.log(`| ${name} | ${variant} | ${r.mibPerSecond.toFixed(1)} | ${(r.mibPerSecond / variants.page.mibPerSecond).toFixed(2)} | ${r.worstTimerLateMs.toFixed(0)} ms |`);
  }
}
