// A static file server on a free loopback port for the benchmark pages: the repository's bench/
// and pkg/ folders only. Shared by bench/hashing.mjs and bench/upload.mjs.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, resolve } from "node:path";

export const root = resolve(import.meta.dirname, "..");
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

/** Starts the server; resolves with `{ origin, close }`. */
export async function serveRepository() {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
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
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
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
