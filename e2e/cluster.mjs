// The reference server as many instances: two of them on one PostgreSQL, behind nginx as a
// round-robin load balancer, with the embedded store in a process of its own. Everything is
// started here on loopback (PostgreSQL with initdb in a throwaway directory) and stopped by PID.
// Checked:
// - 200 parallel creations spread over both instances against a quota of 3: exactly 3 admitted;
// - a 128 MiB upload from headless Chromium whose backend calls alternate between the instances
//   is stored byte-identical;
// - one instance killed with SIGKILL mid-upload: the upload finishes through the other, and no
//   upload is left open, in the database or the store.
//
// Env: SERVER (the reference-server binary), FILE (128 MiB), PAGES (e2e/pages, served by the
// instances), PKG (the built package).
import { chromium } from "playwright-core";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chownSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sameBytes } from "./same-bytes.mjs";

const { SERVER, FILE, PAGES, PKG } = process.env;
const dir = mkdtempSync(join(tmpdir(), "s3du-cluster-"));
const children = [];
const results = [];

function check(name, failure) {
  results.push({ name, failure });
  console.log(`cluster: ${name}: ${failure ? `FAILED: ${failure}` : "ok"}`);
}

/** A free loopback port. */
const freePort = () =>
  new Promise((resolve, reject) => {
    const probe = createServer().once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

/** Starts `command`, logging to DIR/NAME.log; remembered for the stop by PID at the end. */
function start(name, command, args) {
  const log = join(dir, `${name}.log`);
  writeFileSync(log, "");
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr.on("data", (d) => writeFileSync(log, d, { flag: "a" }));
  child.name = name;
  children.push(child);
  return child;
}

/** Waits (20 s at most) until `ready()` holds. */
async function until(what, ready) {
  const started = Date.now();
  while (!(await ready())) {
    if (Date.now() - started > 20_000) throw new Error(`${what} did not start in 20 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const readyFile = async (name) => {
  const file = join(dir, `${name}.json`);
  await until(name, () => existsSync(file) && readFileSync(file, "utf8").length > 0);
  return JSON.parse(readFileSync(file, "utf8"));
};

/** PostgreSQL's programs: on PATH, or Debian's /usr/lib/postgresql/VERSION/bin. */
function postgresBin(program) {
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort((a, b) => b - a) : [];
  const found = versions.map((v) => `/usr/lib/postgresql/${v}/bin/${program}`).find(existsSync);
  return found ?? program;
}

/** PostgreSQL in DIR/pg on a free port: its URL. As root, it runs as the postgres user. */
async function startPostgres() {
  const data = join(dir, "pg");
  const asRoot = process.getuid() === 0;
  const as = (program, args) => (asRoot ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", postgresBin(program), ...args]] : [postgresBin(program), args]);
  if (asRoot) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"])), Number(execFileSync("id", ["-g", "postgres"])));
  execFileSync(...as("initdb", ["-D", data, "-U", "s3du", "--auth=trust", "-E", "UTF8", "--no-sync"]), { stdio: "ignore" });
  const port = await freePort();
  const server = start("postgres", ...as("postgres", ["-D", data, "-p", String(port), "-k", data, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]));
  await until("PostgreSQL", () => {
    try {
      execFileSync(postgresBin("pg_isready"), ["-h", "127.0.0.1", "-p", String(port), "-U", "s3du"], { stdio: "ignore" });
      return true;
    } catch {
      return server.exitCode !== null ? Promise.reject(new Error("PostgreSQL exited")) : false;
    }
  });
  return `postgres://s3du@127.0.0.1:${port}/postgres`;
}

/** An API instance on the shared database and store. */
async function startInstance(name, database, store) {
  const child = start(name, SERVER, [
    "--listen", "127.0.0.1:0", "--ready-file", join(dir, `${name}.json`), "--data-dir", join(dir, name),
    "--database", database, "--s3-endpoint", store.store, "--path-style", "--s3-keys-file", store.keysFile,
    "--auth", "sessions", "--session-secret-file", join(dir, "session-secret"), "--quota-uploads", "3",
    "--test-hooks", "--www", PAGES, "--pkg", PKG,
  ]);
  const ready = await readyFile(name);
  return { child, address: ready.app.replace("http://", "") };
}

/** nginx, round-robin over `instances`, with its own config, logs and temp files in DIR/nginx. */
async function startNginx(instances) {
  const home = join(dir, "nginx");
  execFileSync("mkdir", ["-p", join(home, "tmp")]);
  const port = await freePort();
  const config = `
${process.getuid() === 0 ? "user root;" : ""}
worker_processes 1;
daemon off;
pid ${home}/nginx.pid;
error_log ${home}/error.log;
events { worker_connections 1024; }
http {
  log_format upstream '$upstream_addr $request_method $uri $status';
  access_log ${home}/access.log upstream;
  client_body_temp_path ${home}/tmp/body;
  proxy_temp_path ${home}/tmp/proxy;
  fastcgi_temp_path ${home}/tmp/fastcgi;
  uwsgi_temp_path ${home}/tmp/uwsgi;
  scgi_temp_path ${home}/tmp/scgi;
  client_body_buffer_size 4m;
  client_max_body_size 8m;
  upstream api {
${instances.map((i) => `    server ${i.address} max_fails=1 fail_timeout=60s;`).join("\n")}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      add_header X-Upstream $upstream_addr always;
    }
  }
}`;
  writeFileSync(join(home, "nginx.conf"), config);
  const nginx = existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";
  start("nginx", nginx, ["-p", home, "-c", join(home, "nginx.conf"), "-e", join(home, "error.log")]);
  const url = `http://127.0.0.1:${port}`;
  await until("nginx", () => fetch(`${url}/module.html`).then((r) => r.ok, () => false));
  return { url, accessLog: join(home, "access.log") };
}

/** Upstreams that served API calls whose path ends with `suffix`, from nginx's access log. */
const upstreamsOf = (accessLog, suffix) =>
  readFileSync(accessLog, "utf8").split("\n").filter((l) => l.split(" ")[2]?.endsWith(suffix)).map((l) => l.split(" ")[0]);

async function stopAll() {
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(child.name === "postgres" ? "SIGINT" : "SIGTERM"); // PostgreSQL's fast shutdown
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

let browser;
try {
  writeFileSync(join(dir, "session-secret"), "a-shared-secret-of-the-instances-0123456789");
  const database = await startPostgres();
  start("store", SERVER, ["--store-only", "--store-listen", "127.0.0.1:0", "--data-dir", join(dir, "store"), "--ready-file", join(dir, "store.json")]);
  const store = await readyFile("store");
  const instances = [await startInstance("one", database, store), await startInstance("two", database, store)];
  const lb = await startNginx(instances);
  const session = (user) =>
    execFileSync(SERVER, ["--auth", "sessions", "--session-secret-file", join(dir, "session-secret"), "--issue-session", user]).toString().trim();

  // 200 parallel creations against a quota of 3 uploads a day.
  {
    const headers = { "content-type": "application/json", authorization: `Bearer ${session("carol")}` };
    const body = JSON.stringify({ filename: "q.bin", size: 6 << 20, contentType: "application/octet-stream", metadata: {} });
    const answers = await Promise.all(Array.from({ length: 200 }, () =>
      fetch(`${lb.url}/api/uploads/multipart`, { method: "POST", headers, body }).then((r) => ({ status: r.status, by: r.headers.get("x-upstream") }))));
    const admitted = answers.filter((a) => a.status === 200).length;
    const refused = answers.filter((a) => a.status === 403).length;
    const by = new Set(answers.map((a) => a.by));
    const failures = [];
    if (admitted !== 3) failures.push(`${admitted} admitted`);
    if (refused !== 197) failures.push(`${refused} refused with 403 (others: ${JSON.stringify(answers.filter((a) => ![200, 403].includes(a.status)).slice(0, 3))})`);
    if (by.size !== 2) failures.push(`served by ${[...by].join(", ")}, not both instances`);
    check("200 parallel creations over both instances against a quota of 3: exactly 3 admitted", failures.join("; ") || null);
  }

  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
  const page = await browser.newPage();
  await page.goto(`${lb.url}/module.html`);
  await page.waitForFunction(() => window.lib, null, { timeout: 30_000 });
  await page.setInputFiles("#picker", FILE);
  const token = session("alice");
  const upload = () =>
    page.evaluate(async (token) => {
      const uploader = new lib.Uploader({ backend: "/api/uploads", backendHeaders: { authorization: `Bearer ${token}` }, concurrency: 4, partSize: 8 << 20 });
      window.loaded = 0;
      const handle = uploader.upload(picker.files[0], { onProgress: (r) => (window.loaded = r.loaded) });
      try {
        return { result: await handle.done };
      } catch (e) {
        return { error: `${e.code}: ${e.message}` };
      }
    }, token);

  // A 128 MiB upload whose backend calls go to both instances in turn.
  {
    const { result, error } = await upload();
    const failures = [];
    if (error) failures.push(error);
    else {
      const bytes = await sameBytes(join(store.bucketDir, result.key), FILE);
      if (bytes) failures.push(bytes);
      const signers = upstreamsOf(lb.accessLog, "/multipart/sign");
      const counts = instances.map((i) => signers.filter((s) => s === i.address).length);
      if (counts.some((c) => c === 0)) failures.push(`sign calls per instance: ${counts.join(", ")}`);
      const completer = upstreamsOf(lb.accessLog, "/multipart/complete").at(-1);
      const creator = upstreamsOf(lb.accessLog, "/multipart").at(-1);
      console.log(`cluster: created by ${creator}, completed by ${completer}, sign calls per instance ${counts.join(" / ")}`);
    }
    check("a 128 MiB upload with backend calls alternating between the instances is stored byte-identical", failures.join("; ") || null);
  }

  // One instance killed mid-upload.
  {
    const done = upload();
    await page.waitForFunction(() => window.loaded > 40 << 20, null, { timeout: 60_000, polling: 50 });
    instances[0].child.kill("SIGKILL");
    const { result, error } = await done;
    const failures = [];
    if (error) failures.push(error);
    else {
      const bytes = await sameBytes(join(store.bucketDir, result.key), FILE);
      if (bytes) failures.push(bytes);
    }
    const open = await (await fetch(`http://${instances[1].address}/__test/open-uploads`)).json();
    // carol's three creations are open on purpose: the quota test never completes them.
    if (open.backend.length !== 3) failures.push(`${open.backend.length} uploads open in the database, not carol's 3`);
    const inStore = readdirSync(store.storeRoot).filter((n) => n.startsWith(".upload-")).length;
    if (inStore !== 3) failures.push(`${inStore} multipart uploads open in the store, not carol's 3`);
    check("an instance killed with SIGKILL mid-upload: it finishes through the other, byte-identical, none left open", failures.join("; ") || null);
  }
} catch (e) {
  check("the cluster runs", e.stack ?? String(e));
} finally {
  await browser?.close();
  await stopAll();
  const failed = results.filter((r) => r.failure);
  if (failed.length) for (const name of ["one", "two", "store", "postgres"]) console.log(`--- ${name}.log\n${existsSync(join(dir, `${name}.log`)) ? readFileSync(join(dir, `${name}.log`), "utf8").slice(-2000) : ""}`);
  rmSync(dir, { recursive: true, force: true });
  if (failed.length || !results.length) process.exit(1);
}
