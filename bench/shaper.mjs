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

/** Forwards `from` to `to` through `direction`, in order: one queue and one timer per
 * connection and direction (separate timers could fire out of order). */
function forward(from, to, direction) {
  const queue = [];
  let timer = null;
  let ended = false;
  const flush = () => {
    timer = null;
    const now = performance.now();
    while (queue.length && queue[0].at <= now) {
      const { chunk } = queue.shift();
      if (to.writable) to.write(chunk);
    }
    if (queue.length) timer = setTimeout(flush, queue[0].at - now);
    else if (ended) to.end();
    // A link holds little: the sender waits while more than 100 ms of bytes are queued.
    if (from.isPaused() && (!queue.length || queue[queue.length - 1].at - now < BUFFER_MS)) from.resume();
  };
  from.on("data", (chunk) => {
    const at = Math.max(direction.departure(chunk.length), queue.length ? queue[queue.length - 1].at : 0);
    queue.push({ at, chunk });
    timer ??= setTimeout(flush, Math.max(0, at - performance.now()));
    if (at - performance.now() > BUFFER_MS) from.pause();
  });
  from.on("end", () => {
    ended = true;
    if (!timer && !queue.length) to.end();
  });
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
      // Without this, Nagle's algorithm meets delayed ACKs and adds up to 40 ms a request.
      s.setNoDelay(true);
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
