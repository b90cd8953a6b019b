// A userspace link shaper: a loopback TCP proxy that delays every byte by half the round-trip
// time in each direction and, optionally, paces each direction to a bandwidth shared by all its
// connections, as one access link would. Unlike DevTools network emulation it needs nothing from
// the browser, so it slows every uploader alike.
import { createServer, connect } from "node:net";

/** How much a direction queues before the sender has to wait, in milliseconds of sending. */
const BUFFER_MS = 100;

/** A direction of the link: bytes leave no earlier than `delayMs` after they arrived, and no
 * faster than `bytesPerSecond` (0: unlimited) across every connection. */
class Direction {
  constructor(delayMs, bytesPerSecond) {
    this.delayMs = delayMs;
    this.bytesPerSecond = bytesPerSecond;
    this.freeAt = 0;
  }

  /** When `bytes` that arrive now may leave. */
  departure(bytes) {
    const now = performance.now();
    const earliest = now + this.delayMs;
    if (!this.bytesPerSecond) return earliest;
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + (bytes / this.bytesPerSecond) * 1000;
    return Math.max(earliest, this.freeAt);
  }
}

/** Forwards `from` to `to` through `direction`, in order. */
function forward(from, to, direction) {
  let last = 0;
  from.on("data", (chunk) => {
    // Departures never go backwards, so chunks stay in order.
    last = Math.max(last, direction.departure(chunk.length));
    const wait = last - performance.now();
    setTimeout(() => to.writable && to.write(chunk), Math.max(0, wait));
    // A link holds little: past 100 ms of queued bytes, the sender waits (TCP back-pressure).
    if (wait > BUFFER_MS) {
      from.pause();
      setTimeout(() => from.resume(), wait - BUFFER_MS);
    }
  });
  from.on("end", () => setTimeout(() => to.end(), Math.max(0, last - performance.now())));
  from.on("error", () => to.destroy());
}

/** Starts a shaper in front of `127.0.0.1:targetPort`; resolves with `{ port, close }`. */
export async function startShaper(targetPort, { rttMs, mbitPerSecond = 0 }) {
  const rate = (mbitPerSecond * 1e6) / 8;
  const up = new Direction(rttMs / 2, rate);
  const down = new Direction(rttMs / 2, rate);
  const sockets = new Set();
  const server = createServer((client) => {
    const target = connect(targetPort, "127.0.0.1");
    for (const s of [client, target]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    }
    forward(client, target, up);
    forward(target, client, down);
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  return {
    port: server.address().port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
