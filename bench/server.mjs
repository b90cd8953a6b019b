// The reference server under load (wrk, from Debian), in three deployments started by
// e2e/cluster-kit.mjs: one instance with SQLite and its embedded store; one instance on
// PostgreSQL with the store in a process of its own; two such instances behind nginx. For each:
// `POST /multipart/sign` (10 parts a call) and `POST /multipart` at 32 connections, then
// `POST /multipart` again with at least 10,000 open uploads recorded; requests/s, p50 and p99,
// the instances' resident memory before and after. Not a test: figures for docs/benchmarks.md.
//
// Env: SERVER (the binary), BENCH_SECONDS (default 20), BENCH_CONNECTIONS (default 32), BENCH_OUT.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster } from "../e2e/cluster-kit.mjs";

const SERVER = process.env.SERVER ?? "target/server/reference-server";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const OUT = process.env.BENCH_OUT ?? "bench/results/server.json";
const OPEN_BEFORE = 10_000;
const USERS = 100;
const FILE_INFO = { filename: "load.bin", size: 64 << 20, contentType: "application/octet-stream", metadata: {} };

/** Resident memory of a process, MiB. */
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;

/** A latency as wrk prints it (`812.00us`, `1.20ms`, `2.01s`), in ms. */
function ms(text) {
  const [, value, unit] = /([\d.]+)(us|ms|s|m)/.exec(text);
  return Number(value) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit];
}

/** Runs wrk against `url` with POSTs of `body`, as the users of `tokens` in turn: requests/s,
 * p50, p99, and how many failed. */
function wrk(dir, url, tokens, body) {
  const script = join(dir, "post.lua");
  writeFileSync(script, `local body = [==[${JSON.stringify(body)}]==]
local tokens = { ${tokens.map((t) => `"${t}"`).join(", ")} }
local n = 0
request = function()
  n = n + 1
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[n % #tokens + 1] }
  return wrk.format("POST", nil, headers, body)
end
`);
  const out = execFileSync("wrk", ["-t2", `-c${CONNECTIONS}`, `-d${SECONDS}s`, "--latency", "-s", script, url], { encoding: "utf8" });
  const requests = Number(/(\d+) requests in/.exec(out)[1]);
  const failed = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors: .*?(\d+) timeout/.exec(out)?.[1] ?? 0);
  return {
    perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]),
    p50: ms(/ 50%\s+(\S+)/.exec(out)[1]),
    p99: ms(/ 99%\s+(\S+)/.exec(out)[1]),
    requests,
    failed,
  };
}

/** POSTs `body` to the API at `base` as `token`'s user: the JSON answer. */
async function api(base, path, token, body) {
  const response = await fetch(`${base}/api/uploads${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Creates uploads, as the users of `tokens` in turn, until `atLeast` are open (32 at a time). */
async function fillTo(base, tokens, open, atLeast) {
  let made = open;
  const worker = async () => {
    while (made < atLeast) {
      made++;
      await api(base, "/multipart", tokens[made % tokens.length], FILE_INFO);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return made;
}

async function measure(name, deploy) {
  const cluster = new Cluster(SERVER);
  try {
    const { base, pids } = await deploy(cluster);
    // Uploads are created by 100 users (each may hold 1,000 open), parts signed for one.
    const tokens = Array.from({ length: USERS }, (_, i) => cluster.session(`user${i}`));
    const upload = await api(base, "/multipart", tokens[0], FILE_INFO);
    const memoryBefore = pids.map(rssMiB);
    const sign = wrk(cluster.dir, `${base}/api/uploads/multipart/sign`, [tokens[0]], {
      key: upload.key,
      uploadId: upload.uploadId,
      partNumbers: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    });
    const create = wrk(cluster.dir, `${base}/api/uploads/multipart`, tokens, FILE_INFO);
    const open = await fillTo(base, tokens, 1 + create.requests - create.failed, OPEN_BEFORE);
    const createWithOpen = wrk(cluster.dir, `${base}/api/uploads/multipart`, tokens, FILE_INFO);
    const memoryAfter = pids.map(rssMiB);
    const row = { name, sign, create, createWithOpen, openBefore: open, memoryBefore, memoryAfter };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    await cluster.stop();
  }
}

const rows = [
  await measure("SQLite, one instance (embedded store)", async (c) => {
    const one = await c.instance("sqlite", []);
    return { base: one.app, pids: [one.child.pid] };
  }),
  await measure("PostgreSQL, one instance", async (c) => {
    const flags = Cluster.shared(await c.postgres(), await c.store());
    const one = await c.instance("one", flags);
    return { base: one.app, pids: [one.child.pid] };
  }),
  await measure("PostgreSQL, two instances behind nginx", async (c) => {
    const flags = Cluster.shared(await c.postgres(), await c.store());
    const instances = [await c.instance("one", flags), await c.instance("two", flags)];
    const lb = await c.nginx(instances);
    return { base: lb.url, pids: instances.map((i) => i.child.pid) };
  }),
];
/** wrk's version line (`wrk -v` prints it and exits with 1). */
function wrkVersion() {
  try {
    return execFileSync("wrk", ["-v"], { encoding: "utf8" }).split("\n")[0];
  } catch (e) {
    return String(e.stdout).split("\n")[0];
  }
}
const machine = { cores: Number(execFileSync("nproc", { encoding: "utf8" })), wrk: wrkVersion() };
writeFileSync(OUT, JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, connections: CONNECTIONS, machine, rows }, null, 2) + "\n");

const f = (r) => `${Math.round(r.perSecond)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)}${r.failed ? ` (${r.failed} failed)` : ""}`;
const mem = (list) => list.map((m) => m.toFixed(0)).join(" + ");
console.log(`\n${CONNECTIONS} connections, ${SECONDS} s each, ${machine.cores} cores (wrk, server, store and PostgreSQL share them):\n`);
console.log("| deployment | sign (10 parts) req/s | p50 ms | p99 ms | create req/s | p50 ms | p99 ms | create, ≥10,000 open: req/s | p50 ms | p99 ms | RSS before → after, MiB |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.name} | ${f(r.sign)} | ${f(r.create)} | ${f(r.createWithOpen)} | ${mem(r.memoryBefore)} → ${mem(r.memoryAfter)} |`);
