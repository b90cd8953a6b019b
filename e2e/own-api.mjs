// "Your own API" for the callbacks example (examples/callbacks/): a small Node server with
// routes of its own shape (POST /files/start, /files/part-urls, /files/complete, /files/abort,
// /files/put-url), which gets its signatures from a reference server's JSON contract, as an app
// would from its AWS SDK. It also serves the example page and pkg/. Loopback only.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname } from "node:path";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const root = new URL("..", import.meta.url);

async function contract(api, path, body) {
  const response = await fetch(`${api}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw Object.assign(new Error(`${path}: ${await response.text()}`), { status: response.status });
  return response.json();
}

// The routes, each mapped onto the contract (`api` is its base URL).
const routes = {
  start: async (api, { name, size, type }) => {
    const { key, uploadId } = await contract(api, "/multipart", { filename: name, size, contentType: type, metadata: {} });
    return { key, uploadId };
  },
  "part-urls": async (api, { key, uploadId, partNumbers }) => {
    const { parts } = await contract(api, "/multipart/sign", { key, uploadId, partNumbers, reason: "first" });
    return { urls: Object.fromEntries(parts.map((p) => [p.partNumber, p.url])) };
  },
  complete: async (api, { key, uploadId, parts }) => {
    const list = parts.map((p) => ({ partNumber: p.PartNumber, etag: p.ETag }));
    const { location } = await contract(api, "/multipart/complete", { key, uploadId, parts: list });
    return { key, location };
  },
  abort: (api, { key, uploadId }) => contract(api, "/multipart/abort", { key, uploadId }),
  "put-url": async (api, { name, size, type }) => {
    const { key, url } = await contract(api, "/put", { filename: name, size, contentType: type, metadata: {} });
    return { key, url };
  },
};

/** Starts the server on a free loopback port; resolves to `{ url, close }`. `api` is the contract's base URL. */
export async function startOwnApi(api) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x");
    try {
      const route = url.pathname.startsWith("/files/") && routes[url.pathname.slice("/files/".length)];
      if (req.method === "POST" && route) {
        let body = "";
        for await (const chunk of req) body += chunk;
        const answer = await route(api, JSON.parse(body));
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer ?? {}));
        return;
      }
      const file = url.pathname.startsWith("/pkg/")
        ? new URL(`.${url.pathname}`, root)
        : new URL(`examples/callbacks${url.pathname === "/" ? "/index.html" : url.pathname}`, root);
      const bytes = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file.pathname)] ?? "application/octet-stream" }).end(bytes);
    } catch (e) {
      res.writeHead(e.status ?? (e.code === "ENOENT" ? 404 : 500), { "content-type": "text/plain" }).end(e.message);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
