// The parts of a many-instances deployment of the reference server, on loopback, for
// e2e/cluster.mjs and bench/server.mjs: PostgreSQL (initdb in a throwaway directory), the
// embedded store alone (`--store-only`), API instances, and nginx as a round-robin load balancer.
// Every process is started here and stopped by PID in `stop()`, which also removes the directory.
import { execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A free loopback port. */
export const freePort = () =>
  new Promise((resolve, reject) => {
    const probe = createServer().once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

/** Waits (20 s at most) until `ready()` holds. */
async function until(what, ready) {
  const started = Date.now();
  while (!(await ready())) {
    if (Date.now() - started > 20_000) throw new Error(`${what} did not start in 20 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** PostgreSQL's programs: Debian's /usr/lib/postgresql/VERSION/bin (newest), or on PATH. */
function postgresBin(program) {
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort((a, b) => b - a) : [];
  return versions.map((v) => `/usr/lib/postgresql/${v}/bin/${program}`).find(existsSync) ?? program;
}

export class Cluster {
  /** `server`: the reference-server binary. */
  constructor(server) {
    this.server = server;
    this.dir = mkdtempSync(join(tmpdir(), "s3du-cluster-"));
    this.children = [];
    writeFileSync(join(this.dir, "session-secret"), "a-shared-secret-of-the-instances-0123456789");
  }

  /** Starts `command`, its stderr in DIR/NAME.log. */
  start(name, command, args) {
    const log = join(this.dir, `${name}.log`);
    writeFileSync(log, "");
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr.on("data", (d) => writeFileSync(log, d, { flag: "a" }));
    child.name = name;
    this.children.push(child);
    return child;
  }

  /** The last lines of NAME's log. */
  log(name) {
    const file = join(this.dir, `${name}.log`);
    return existsSync(file) ? readFileSync(file, "utf8").slice(-2000) : "";
  }

  async readyFile(name) {
    const file = join(this.dir, `${name}.json`);
    await until(name, () => existsSync(file) && readFileSync(file, "utf8").length > 0);
    return JSON.parse(readFileSync(file, "utf8"));
  }

  /** PostgreSQL in DIR/pg on a free port: its URL. As root, it runs as the postgres user. */
  async postgres() {
    const data = join(this.dir, "pg");
    const asRoot = process.getuid() === 0;
    const as = (program, args) =>
      asRoot ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", postgresBin(program), ...args]] : [postgresBin(program), args];
    if (asRoot) chownSync(this.dir, Number(execFileSync("id", ["-u", "postgres"])), Number(execFileSync("id", ["-g", "postgres"])));
    execFileSync(...as("initdb", ["-D", data, "-U", "s3du", "--auth=trust", "-E", "UTF8", "--no-sync"]), { stdio: "ignore" });
    const port = await freePort();
    const flags = ["-D", data, "-p", String(port), "-k", data, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"];
    const server = this.start("postgres", ...as("postgres", flags));
    await until("PostgreSQL", () => {
      if (server.exitCode !== null) throw new Error(`PostgreSQL exited: ${this.log("postgres")}`);
      try {
        execFileSync(postgresBin("pg_isready"), ["-h", "127.0.0.1", "-p", String(port), "-U", "s3du"], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    });
    return `postgres://s3du@127.0.0.1:${port}/postgres`;
  }

  /** The embedded store alone: its ready file ({store, storeRoot, bucketDir, keysFile}). */
  async store() {
    const args = ["--store-only", "--store-listen", "127.0.0.1:0", "--data-dir", join(this.dir, "store"), "--ready-file", join(this.dir, "store.json")];
    this.start("store", this.server, args);
    return this.readyFile("store");
  }

  /** An API instance with `--auth sessions` (the shared secret) and `flags`: {child, address, app}. */
  async instance(name, flags) {
    const child = this.start(name, this.server, [
      "--listen", "127.0.0.1:0", "--ready-file", join(this.dir, `${name}.json`), "--data-dir", join(this.dir, name),
      "--auth", "sessions", "--session-secret-file", join(this.dir, "session-secret"), ...flags,
    ]);
    const ready = await this.readyFile(name);
    return { child, app: ready.app, address: ready.app.replace("http://", ""), ready };
  }

  /** Flags of an instance on `database` and the separate `store`. */
  static shared(database, store) {
    return ["--database", database, "--s3-endpoint", store.store, "--path-style", "--s3-keys-file", store.keysFile];
  }

  /** A session token for `user`. */
  session(user) {
    const args = ["--auth", "sessions", "--session-secret-file", join(this.dir, "session-secret"), "--issue-session", user];
    return execFileSync(this.server, args).toString().trim();
  }

  /** nginx, round-robin over `instances`, its config, logs and temp files in DIR/nginx: {url, accessLog}. */
  async nginx(instances) {
    const home = join(this.dir, "nginx");
    mkdirSync(join(home, "tmp"), { recursive: true });
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
    keepalive 64;
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
    this.start("nginx", nginx, ["-p", home, "-c", join(home, "nginx.conf"), "-e", join(home, "error.log")]);
    const url = `http://127.0.0.1:${port}`;
    await until("nginx", () => fetch(`${url}/`).then(() => true, () => false));
    return { url, accessLog: join(home, "access.log") };
  }

  /** Stops every process, last started first, by PID (PostgreSQL with its fast shutdown), and removes DIR. */
  async stop() {
    for (const child of this.children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill(child.name === "postgres" ? "SIGINT" : "SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
