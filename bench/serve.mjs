// A static file server on a free loopback port for the benchmark pages: the repository's bench/
// and pkg/ folders only, plus, for the driver check of bench/upload.mjs, one test file at
// /bench-file and a /report endpoint a page without a driver posts its result to. Shared by
// bench/hashing.mjs and bench/upload.mjs.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, resolve } from "node:path";

export const root = resolve(import.meta.dirname, "..");
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

/** Starts the server; resolves with `{ origin, close, serve }`: `serve({ file, onReport })` sets
 * the path served at /bench-file and the function /report's JSON body is given to. */
export async function serveRepository() {
  const extra = { file: null, onReport: null };
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (path === "/bench-file" && extra.file) {
      res.writeHead(200, { "content-type": "application/octet-stream" }).end(await readFile(extra.file));
      return;
    }
    if (path === "/report" && req.method === "POST" && extra.onReport) {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      extra.onReport(JSON.parse(Buffer.concat(chunks).toString()));
      res.writeHead(204).end();
      return;
    }
    const file = join(root, path);
    if (!file.startsWith(root + "/") || !(path.startsWith("/bench/") || path.startsWith("/pkg/"))) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => server.close(),
    serve: (options) => Object.assign(extra, options),
  };
}

/** Headless Chromium (Debian's), with the flags of webdriver.json. */
export async function launchChromium(chromium) {
  const webdriver = JSON.parse(await readFile(join(root, "webdriver.json")));
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: webdriver["goog:chromeOptions"].args.filter((a) => !a.startsWith("--headless")),
    headless: true,
  });
}
