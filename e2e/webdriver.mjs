// A plain W3C WebDriver client, for engines Playwright does not drive here (Firefox through
// geckodriver, WebKitGTK through WebKitWebDriver): one session through a driver started on a free
// loopback port and stopped by PID in `close()`. Used by bench/engines.mjs and e2e/webkit.mjs.
import { spawn } from "node:child_process";
import http from "node:http";
import { createServer } from "node:net";

/** The key under which WebDriver names an element. */
export const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

const freePort = () =>
  new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });

/** A session through the driver `command` (with `env` added to its environment). */
export async function webdriverSession(command, capabilities, env = {}) {
  const port = await freePort();
  const driver = spawn(command, [`--port=${port}`], { stdio: process.env.WEBDRIVER_LOG ? "inherit" : "ignore", env: { ...process.env, ...env } });
  const base = `http://127.0.0.1:${port}`;
  // A new connection per command: WebKitWebDriver closes idle ones, which a pooled client would
  // then find dead ("fetch failed") when it next sends on one.
  const request = (method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? "" : JSON.stringify(body);
      const sent = http.request(`${base}${path}`, { method, agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } }, (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk) => (text += chunk));
        response.on("end", () => {
          const { value } = JSON.parse(text || "{}");
          if (response.statusCode >= 400) reject(new Error(`${method} ${path}: ${value?.message ?? response.statusCode}`));
          else resolve(value);
        });
      });
      sent.on("error", reject);
      sent.end(payload);
    });
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    ready = await request("GET", "/status").then(() => true, () => false);
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  let sessionId;
  try {
    if (!ready) throw new Error(`${command} did not start in 10 s`);
    ({ sessionId } = await request("POST", "/session", { capabilities: { alwaysMatch: capabilities } }));
  } catch (e) {
    driver.kill();
    throw e;
  }
  const call = (method, path, body) => request(method, `/session/${sessionId}${path}`, body);
  await call("POST", "/timeouts", { script: 600_000 });
  return {
    call,
    /** Opens `url` and waits (30 s at most) until `ready` (a JS expression) holds. */
    async open(url, ready) {
      await call("POST", "/url", { url });
      const waited = await call("POST", "/execute/async", {
        script: `const done = arguments[0], until = Date.now() + 30000;
(function wait() { if (${ready}) done(true); else if (Date.now() > until) done(false); else setTimeout(wait, 50); })();`,
        args: [],
      });
      if (!waited) throw new Error(`${url} was not ready (${ready}) in 30 s`);
    },
    /** Runs `body` (an async function's body, given `args`) in the page: what it returns. */
    run: (body, args = []) =>
      call("POST", "/execute/async", {
        script: `const done = arguments[arguments.length - 1];
(async (...args) => { ${body} })(...Array.from(arguments).slice(0, -1)).then(done, (e) => done({ error: e && e.message ? e.name + (e.code ? " (" + e.code + ")" : "") + ": " + e.message : String(e) }));`,
        args,
      }),
    async close() {
      await call("DELETE", "").catch(() => {});
      driver.kill();
    },
  };
}
