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
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster } from "./cluster-kit.mjs";
import { sameBytes } from "./same-bytes.mjs";

const { SERVER, FILE, PAGES, PKG } = process.env;
const results = [];

function check(name, failure) {
  results.push({ name, failure });
  console.log(`cluster: ${name}: ${failure ? `FAILED: ${failure}` : "ok"}`);
}

/** Upstreams that served API calls whose path ends with `suffix`, from nginx's access log. */
const upstreamsOf = (accessLog, suffix) =>
  readFileSync(accessLog, "utf8").split("\n").filter((l) => l.split(" ")[2]?.endsWith(suffix)).map((l) => l.split(" ")[0]);

const cluster = new Cluster(SERVER);
let browser;
try {
  const database = await cluster.postgres();
  const store = await cluster.store();
  const flags = [...Cluster.shared(database, store), "--quota-uploads", "3", "--test-hooks", "--www", PAGES, "--pkg", PKG];
  const instances = [await cluster.instance("one", flags), await cluster.instance("two", flags)];
  const lb = await cluster.nginx(instances);
  const session = (user) => cluster.session(user);

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
  const failed = results.filter((r) => r.failure);
  if (failed.length) for (const name of ["one", "two", "store", "postgres", "nginx"]) console.log(`--- ${name}.log\n${cluster.log(name)}`);
  await cluster.stop();
  if (failed.length || !results.length) process.exit(1);
}
