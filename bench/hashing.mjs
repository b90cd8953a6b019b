// Hashing throughput in headless Chromium: the wasm checksums (the `Checksum` class, the code the
// uploader hashes parts with) against well-known JS implementations, on the same random bytes,
// interleaved, several rounds each; every digest is checked to agree. Serves the repository root
// on a loopback port for the page (bench/hashing.html). Writes bench/results/hashing.json and
// prints a table. Env: BENCH_MIB (input size, default 64), BENCH_ROUNDS (default 5), BENCH_OUT
// (where the JSON goes, default bench/results/hashing.json).
// Run through scripts/bench-hashing.sh, which builds pkg/ first.
import { chromium } from "playwright-core";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { launchChromium, root, serveRepository } from "./serve.mjs";

const MIB = Number(process.env.BENCH_MIB ?? 64);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const { origin, close } = await serveRepository();
const browser = await launchChromium(chromium);
let results;
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${origin}/bench/hashing.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 });
  results = await page.evaluate(([mib, rounds]) => window.runBench(mib, rounds), [MIB, ROUNDS]);
  results = { chromium: browser.version(), mib: MIB, rounds: ROUNDS, algorithms: results };
} finally {
  await browser.close();
  close();
}

const out = resolve(root, process.env.BENCH_OUT ?? "bench/results/hashing.json");
await mkdir(dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(results, null, 2) + "\n");
const fmt = (x) => (x === null ? "–" : x.toFixed(0));
console.log(`Hashing ${MIB} MiB in 1 MiB chunks, median of ${ROUNDS} rounds, Chromium ${results.chromium} (MiB/s):\n`);
console.log("| algorithm | s3-direct-upload (wasm) | JS anchor | anchor library | wasm ÷ anchor | WebCrypto (one-shot) |");
console.log("|---|---|---|---|---|---|");
for (const [name, r] of Object.entries(results.algorithms)) {
  const { wasm, anchor, webCrypto } = r.mibPerSecond;
  console.log(`| ${name} | ${fmt(wasm)} | ${fmt(anchor)} | ${r.anchor} | ${(wasm / anchor).toFixed(2)}× | ${fmt(webCrypto)} |`);
}
