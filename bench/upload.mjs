// The upload benchmark: the same files, fed from disk through <input type=file>, uploaded by the
// ceiling (plain fetch, every URL signed up front), s3-direct-upload (default options), Uppy 5,
// Uppy 6 and the AWS SDK v3's lib-storage, interleaved, several rounds, to the reference server's
// embedded store, in headless Chromium. Every stored object's size is checked, and its bytes on
// each uploader's first round. Writes bench/results/upload.json and prints the README's table.
//
// S5 (2,000 files of 4 KiB) is measured in files per second. S2, S3 and S5 go through bench/shaper.mjs, a loopback proxy that delays (and paces) every byte, in
// front of both the API and the store (which signs URLs for the proxy's address).
//
// S4 tracks memory: the renderer processes' resident memory (from /proc) and the wasm linear
// memory are sampled during every run, and main-thread long tasks (over 50 ms) are counted. The
// driver check runs the ceiling on one Blob in this Playwright-driven page and in a Chromium with
// no driver attached, to show whether the driver distorts the figures.
//
// Env: BENCH_SCENARIOS (default "S1,S2,S3,S4,S5"; may be empty), BENCH_UPLOADERS (default all),
// BENCH_ROUNDS (default 3), BENCH_SMALL=1 (tiny files, for a quick check), BENCH_DRIVER_CHECK=0
// (skip it), BENCH_S3_RTT_MS (S3's delay, default 50), BENCH_OUT. Run through scripts/bench-upload.sh, which builds everything first.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { createServer } from "node:net";
import { join } from "node:path";
import { startShaper } from "./shaper.mjs";
import { launchChromium, root, serveRepository } from "./serve.mjs";

const MIB = 1024 * 1024;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SMALL = process.env.BENCH_SMALL === "1";
const SCENARIOS = {
  S1: { about: "one 512 MiB file, plain loopback", files: [[SMALL ? 12 * MIB : 512 * MIB, 1]] },
  S2: {
    about: "one 64 MiB file, 50 ms round trips and 100 Mbit/s (bench/shaper.mjs)",
    files: [[SMALL ? 6 * MIB : 64 * MIB, 1]],
    link: { rttMs: 50, mbitPerSecond: 100 },
  },
  S3: { about: "200 files of 256 KiB, 50 ms round trips", files: [[256 * 1024, SMALL ? 10 : 200]], link: { rttMs: Number(process.env.BENCH_S3_RTT_MS ?? 50) } },
  // For memory: one round, and without the AWS SDK (at its 12 MiB/s, 4 GiB takes 6 minutes).
  S4: {
    about: "one 4 GiB file, plain loopback, memory tracked",
    files: [[SMALL ? 24 * MIB : 4096 * MIB, 1]],
    rounds: 1,
    uploaders: ["ceiling", "ours", "oursWorker", "oursCredentials", "uppy5", "uppy6"],
  },
  // Many thumbnails: measured in files per second, where round trips are all that counts.
  // Two rounds: one is about 8 minutes for all uploaders.
  S5: { about: "2,000 files of 4 KiB, 50 ms round trips", files: [[4096, SMALL ? 20 : 2000]], link: { rttMs: 50 }, unit: "files/s", rounds: 2 },
};
const UPLOADERS = (process.env.BENCH_UPLOADERS ?? "ceiling,ours,oursWorker,oursNoChecksum,oursCredentials,uppy5,uppy6,awsSdk").split(",");
const OPTIONS = { partSize: 5 * MIB, concurrency: 6 };
const work = join(root, ".tmp/bench");

/** Writes `count` files of `size` random bytes; their paths. */
async function makeFiles(name, size, count) {
  const dir = join(work, "files", name);
  await mkdir(dir, { recursive: true });
  const paths = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `f${i}.bin`);
    const existing = await stat(path).catch(() => null);
    if (existing?.size !== size) {
      const file = await open(path, "w");
      for (let at = 0; at < size; at += 8 * MIB) {
        const chunk = Buffer.alloc(Math.min(8 * MIB, size - at));
        for (let j = 0; j < chunk.length; j += 65536) globalThis.crypto.getRandomValues(chunk.subarray(j, j + 65536));
        await file.write(chunk);
      }
      await file.close();
    }
    paths.push(path);
  }
  return paths;
}

/** A free loopback port. */
async function freePort() {
  const probe = createServer();
  await new Promise((ready) => probe.listen(0, "127.0.0.1", ready));
  const { port } = probe.address();
  await new Promise((done) => probe.close(done));
  return port;
}

/** Starts the reference server with a fresh embedded store, behind shapers when `link` is given;
 * its API URL, store folder, and how to stop it all. */
async function startServer(link) {
  await rm(join(work, "store"), { recursive: true, force: true });
  const ready = join(work, "server.json");
  await rm(ready, { force: true });
  // The benchmark pages are served from another loopback origin (bench/serve.mjs).
  const args = ["--listen", "127.0.0.1:0", "--data-dir", join(work, "store"), "--ready-file", ready, "--api-origins", "*"];
  const shapers = [];
  if (link) {
    const storePort = await freePort();
    const storeShaper = await startShaper(storePort, link);
    shapers.push(storeShaper);
    args.push("--store-listen", `127.0.0.1:${storePort}`, "--store-public-url", `http://127.0.0.1:${storeShaper.port}`);
  }
  const server = spawn(join(root, "target/server/reference-server"), args, { stdio: "ignore" });
  const stop = () => { server.kill(); shapers.forEach((s) => s.close()); };
  for (let i = 0; i < 100; i++) {
    const text = await readFile(ready, "utf8").catch(() => "");
    if (text) {
      const info = JSON.parse(text);
      let app = info.app;
      if (link) {
        const appShaper = await startShaper(Number(new URL(app).port), link);
        shapers.push(appShaper);
        app = `http://127.0.0.1:${appShaper.port}`;
      }
      return { api: `${app}/api/uploads`, store: info.bucketDir, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error("the reference server did not start");
}

/** The resident memory of Chromium's renderer processes together, in bytes (Linux /proc). */
async function rendererRss() {
  let total = 0;
  for (const pid of await readdir("/proc").catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (!cmdline.includes("--type=renderer")) continue;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    total += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  }
  return total;
}

/** Samples the renderers' memory and s3-direct-upload's wasm memory every 200 ms until
 * `stop()`; resolves with the peaks in bytes. */
function sampleMemory(page) {
  let running = true;
  const peaks = { rss: 0, wasm: 0 };
  const done = (async () => {
    while (running) {
      peaks.rss = Math.max(peaks.rss, await rendererRss());
      peaks.wasm = Math.max(peaks.wasm, await page.evaluate(() => window.wasmMemoryBytes()).catch(() => 0));
      await new Promise((r) => setTimeout(r, 200));
    }
    return peaks;
  })();
  return () => { running = false; return done; };
}

/** Whether two files hold the same bytes. */
async function sameBytes(a, b) {
  const [sa, sb] = [await stat(a), await stat(b)];
  if (sa.size !== sb.size) return false;
  const read = async (path) => { const parts = []; for await (const c of createReadStream(path)) parts.push(c); return Buffer.concat(parts); };
  if (sa.size <= 64 * MIB) return (await read(a)).equals(await read(b));
  const [fa, fb] = [await open(a), await open(b)];
  try {
    const [ba, bb] = [Buffer.alloc(8 * MIB), Buffer.alloc(8 * MIB)];
    for (let at = 0; at < sa.size; at += 8 * MIB) {
      const { bytesRead } = await fa.read(ba, 0, 8 * MIB, at);
      await fb.read(bb, 0, 8 * MIB, at);
      if (ba.compare(bb, 0, bytesRead, 0, bytesRead) !== 0) return false;
    }
    return true;
  } finally {
    await fa.close();
    await fb.close();
  }
}

/** The same work in a Chromium that no driver is attached to: it opens upload.html with
 * `?undriven`, runs the Blob ceiling and posts the result to /report; it is stopped by its PID. */
async function runUndriven(serving, api) {
  const webdriver = JSON.parse(await readFile(join(root, "webdriver.json")));
  const profile = join(work, "undriven-profile");
  await rm(profile, { recursive: true, force: true });
  const reported = new Promise((resolve) => serving.serve({ onReport: resolve }));
  const query = new URLSearchParams({ undriven: "1", api, partSize: OPTIONS.partSize, concurrency: OPTIONS.concurrency });
  const args = [...webdriver["goog:chromeOptions"].args, `--user-data-dir=${profile}`, `${serving.origin}/bench/upload.html?${query}`];
  const chromium = spawn("/usr/bin/chromium", args, { stdio: "ignore", detached: true });
  try {
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no report in 5 minutes")), 300_000).unref());
    const report = await Promise.race([reported, timeout]);
    if (report.error) throw new Error(`the undriven page: ${report.error}`);
    return report;
  } finally {
    try {
      process.kill(-chromium.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** Whether Playwright distorts the figures: the ceiling on one file, fetched into the page as a
 * Blob, in the driven page and in a Chromium without a driver, alternately; their speeds. */
async function driverCheck(serving, page) {
  const [path] = await makeFiles("driver", SMALL ? 8 * MIB : 128 * MIB, 1);
  const size = (await stat(path)).size;
  serving.serve({ file: path });
  const { api, store, stop } = await startServer();
  const speeds = { driven: [], undriven: [] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, run] of [
        ["driven", () => page.evaluate((o) => window.runBlobCeiling(o), { api, ...OPTIONS })],
        ["undriven", () => runUndriven(serving, api)],
      ]) {
        const { ms, keys } = await run();
        const stored = await stat(join(store, keys[0]));
        if (stored.size !== size) throw new Error(`driver check ${name}: ${stored.size} bytes stored, not ${size}`);
        speeds[name].push(size / MIB / (ms / 1000));
        console.log(`driver check round ${round + 1} ${name}: ${(size / MIB / (ms / 1000)).toFixed(1)} MiB/s`);
        await rm(join(store, "uploads"), { recursive: true, force: true });
      }
    }
  } finally {
    stop();
  }
  return { bytes: size, mibPerSecond: { driven: median(speeds.driven), undriven: median(speeds.undriven) }, runs: speeds };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gzipSize = async (path) => gzipSync(await readFile(join(root, path)), { level: 9 }).length;

const serving = await serveRepository();
const { origin, close } = serving;
const browser = await launchChromium(chromium);
const results = { chromium: browser.version(), rounds: ROUNDS, small: SMALL, options: OPTIONS, scenarios: {} };
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${origin}/bench/upload.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 });
  const cdp = await page.context().newCDPSession(page);
  for (const name of (process.env.BENCH_SCENARIOS ?? "S1,S2,S3,S4,S5").split(",").filter(Boolean)) {
    const scenario = SCENARIOS[name];
    const uploaders = UPLOADERS.filter((u) => !scenario.uploaders || scenario.uploaders.includes(u));
    const rounds = scenario.rounds ?? ROUNDS;
    const { api, store, stop } = await startServer(scenario.link);
    try {
    const paths = (await Promise.all(scenario.files.map(([size, count]) => makeFiles(`${name}-${size}`, size, count)))).flat();
    const bytes = (await Promise.all(paths.map((p) => stat(p)))).reduce((sum, s) => sum + s.size, 0);
    const speeds = Object.fromEntries(uploaders.map((u) => [u, []]));
    const memory = Object.fromEntries(uploaders.map((u) => [u, []]));
    const longTasks = Object.fromEntries(uploaders.map((u) => [u, []]));
    const storeRequests = Object.fromEntries(uploaders.map((u) => [u, []]));
    // An uploader that fails a run is out of the scenario, with its reason in the table.
    const failed = {};
    for (let round = 0; round < rounds; round++) {
      // Interleaved, and each round starting with another uploader.
      const order = uploaders.map((_, i) => uploaders[(i + round) % uploaders.length]).filter((u) => !failed[u]);
      for (const uploader of order) {
        await page.setInputFiles("#files", paths);
        await cdp.send("HeapProfiler.collectGarbage");
        const before = { rss: await rendererRss(), wasm: await page.evaluate(() => window.wasmMemoryBytes()) };
        const stopSampling = sampleMemory(page);
        const run = await page.evaluate(([u, o]) => window.runUpload(u, o), [uploader, { api, ...OPTIONS }]).catch((e) => ({ error: e.message.split("\n")[0] }));
        if (run.error) {
          await stopSampling();
          failed[uploader] = run.error;
          console.log(`${name} round ${round + 1} ${uploader}: FAILED: ${run.error}`);
          await rm(join(store, "uploads"), { recursive: true, force: true });
          continue;
        }
        const peak = await stopSampling();
        await cdp.send("HeapProfiler.collectGarbage");
        const after = { rss: await rendererRss(), wasm: await page.evaluate(() => window.wasmMemoryBytes()) };
        memory[uploader].push({ before, peak, after });
        longTasks[uploader].push({ count: run.longTasks, longestMs: run.longestTaskMs });
        if (run.requests) storeRequests[uploader].push(run.requests);
        const { ms, keys } = run;
        if (keys.length !== paths.length) throw new Error(`${name} ${uploader}: ${keys.length} objects for ${paths.length} files`);
        // Keys are given in file order by every uploader; check sizes always, bytes once.
        for (const [i, key] of keys.entries()) {
          const stored = join(store, key);
          const [a, b] = [await stat(stored), await stat(paths[i])];
          if (a.size !== b.size) throw new Error(`${name} ${uploader}: ${key} is ${a.size} bytes, not ${b.size}`);
          if (round === 0 && !(await sameBytes(stored, paths[i]))) throw new Error(`${name} ${uploader}: ${key} differs`);
        }
        speeds[uploader].push(scenario.unit === "files/s" ? paths.length / (ms / 1000) : bytes / MIB / (ms / 1000));
        const mib = (b) => (b / MIB).toFixed(0);
        const r = run.requests;
        const requests = r ? `; ${r.count} store requests, median ${r.medianMs.toFixed(0)} ms, ${r.meanInFlight.toFixed(2)} in flight` : "";
        console.log(
          `${name} round ${round + 1} ${uploader}: ${(ms / 1000).toFixed(2)} s, ${(bytes / MIB / (ms / 1000)).toFixed(1)} MiB/s; ` +
            `renderer ${mib(before.rss)} → peak ${mib(peak.rss)} → ${mib(after.rss)} MiB; wasm ${mib(before.wasm)} → ` +
            `${mib(peak.wasm)} → ${mib(after.wasm)} MiB; long tasks ${run.longTasks} (longest ${run.longestTaskMs.toFixed(0)} ms)${requests}`,
        );
        await rm(join(store, "uploads"), { recursive: true, force: true });
      }
    }
    const measured = uploaders.filter((u) => !failed[u]);
    const medians = Object.fromEntries(measured.map((u) => [u, median(speeds[u])]));
    // Peak renderer memory above what it was just before the run, the worst round.
    const peakGrowth = Object.fromEntries(measured.map((u) => [u, Math.max(...memory[u].map((m) => m.peak.rss - m.before.rss))]));
    results.scenarios[name] = {
      about: scenario.about, bytes, unit: scenario.unit ?? "MiB/s", [scenario.unit === "files/s" ? "filesPerSecond" : "mibPerSecond"]: medians,
      peakRendererGrowthBytes: peakGrowth, runs: speeds, memory, longTasks, storeRequests, failed,
    };
    } finally {
      stop();
    }
  }
  if (process.env.BENCH_DRIVER_CHECK !== "0") results.driverCheck = await driverCheck(serving, page);
} finally {
  await browser.close();
  close();
}

results.gzipBytes = {
  ours: (await gzipSize("pkg/s3_direct_upload_bg.wasm")) + (await gzipSize("pkg/s3_direct_upload.js")),
  uppy5: await gzipSize("bench/dist/uppy5.js"),
  uppy6: await gzipSize("bench/dist/uppy6.js"),
  awsSdk: await gzipSize("bench/dist/aws-sdk.js"),
};
const out = join(root, process.env.BENCH_OUT ?? "bench/results/upload.json");
await mkdir(join(out, ".."), { recursive: true });
await writeFile(out, JSON.stringify(results, null, 2) + "\n");

const names = {
  ceiling: "ceiling (plain fetch)",
  ours: "**s3-direct-upload** (defaults)",
  oursWorker: "s3-direct-upload, `worker: true`",
  oursNoChecksum: "s3-direct-upload, `checksum: false`",
  oursCredentials: "s3-direct-upload, `mode: \"credentials\"`",
  uppy5: "Uppy 5 aws-s3",
  uppy6: "Uppy 6 aws-s3 (signs in the page)",
  awsSdk: "AWS SDK v3 lib-storage (signs in the page)",
};
console.log(`\nMedians of ${ROUNDS} interleaved rounds (S4: 1, S5: 2), Chromium ${results.chromium}, loopback, 2 cores:`);
for (const [name, s] of Object.entries(results.scenarios)) console.log(`- ${name}: ${s.about}`);
console.log("");
console.log(`| uploader | ${Object.entries(results.scenarios).map(([name, s]) => `${name} ${s.unit} | ÷ ceiling | ÷ ours`).join(" | ")} | min+gzip |`);
console.log(`|---|${Object.keys(results.scenarios).map(() => "---|---|---").join("|")}|---|`);
for (const u of UPLOADERS) {
  const cells = Object.values(results.scenarios).map((s) => {
    const speeds = s.mibPerSecond ?? s.filesPerSecond;
    const v = speeds[u];
    if (s.failed?.[u]) return "failed | – | –";
    if (v === undefined) return "– | – | –";
    return `${v.toFixed(1)} | ${(v / speeds.ceiling).toFixed(2)} | ${(v / speeds.ours).toFixed(2)}`;
  });
  const size = results.gzipBytes[u] ? `${(results.gzipBytes[u] / 1024).toFixed(1)} KB` : u.startsWith("ours") ? "same" : "–";
  console.log(`| ${names[u]} | ${cells.join(" | ")} | ${size} |`);
}

// Memory and jank: the worst round of each.
const scenarioNames = Object.keys(results.scenarios);
console.log("\nPeak renderer memory above its level before the run, MiB (worst round); wasm memory peak → after, MiB;");
console.log("main-thread long tasks over 50 ms (most in a round, longest):\n");
console.log(`| uploader | ${scenarioNames.map((s) => `${s} renderer | ${s} long tasks`).join(" | ")} | wasm memory (S4) |`);
console.log(`|---|${scenarioNames.map(() => "---|---").join("|")}|---|`);
for (const u of UPLOADERS) {
  const cells = Object.values(results.scenarios).map((s) => {
    if (!s.memory[u] || s.failed?.[u]) return "– | –";
    const tasks = s.longTasks[u];
    const longest = Math.max(...tasks.map((t) => t.longestMs));
    return `${(s.peakRendererGrowthBytes[u] / MIB).toFixed(0)} | ${Math.max(...tasks.map((t) => t.count))} (${longest.toFixed(0)} ms)`;
  });
  const s4 = results.scenarios.S4?.memory[u]?.[0];
  // The page's instance only: the worker's runs in its own memory (counted in the renderer's).
  const wasm = u.startsWith("ours") && u !== "oursWorker" && s4 ? `${(s4.peak.wasm / MIB).toFixed(0)} → ${(s4.after.wasm / MIB).toFixed(0)}` : "–";
  console.log(`| ${names[u]} | ${cells.join(" | ")} | ${wasm} |`);
}

// Where small files' time goes: the browser keeps 6 connections to the store, so a file costs
// about (its requests' time) / 6 at best; a preflight shows up as a longer request.
console.log("\nStore requests (page engines; Resource Timing): count, median time to the answer's end, mean in flight (of 6):\n");
console.log(`| uploader | ${scenarioNames.map((s) => `${s} requests | ${s} median ms | ${s} in flight`).join(" | ")} |`);
console.log(`|---|${scenarioNames.map(() => "---|---|---").join("|")}|`);
for (const u of UPLOADERS) {
  const cells = Object.values(results.scenarios).map((s) => {
    const rounds = s.storeRequests?.[u] ?? [];
    if (rounds.length === 0) return "– | – | –";
    const r = [...rounds].sort((a, b) => a.meanInFlight - b.meanInFlight)[Math.floor(rounds.length / 2)];
    return `${r.count} | ${r.medianMs.toFixed(0)} | ${r.meanInFlight.toFixed(2)}`;
  });
  console.log(`| ${names[u]} | ${cells.join(" | ")} |`);
}

if (results.driverCheck) {
  const { bytes, mibPerSecond: d } = results.driverCheck;
  console.log(
    `\nDriver check, the ceiling on a ${bytes / MIB} MiB Blob: with Playwright attached ${d.driven.toFixed(1)} MiB/s, ` +
      `without a driver ${d.undriven.toFixed(1)} MiB/s (${(d.driven / d.undriven).toFixed(2)}×).`,
  );
}
