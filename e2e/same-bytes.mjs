// Byte-for-byte comparison of two files on disk, in 8 MiB chunks (files may be GiBs).
import { open } from "node:fs/promises";

/** `null` when the files are identical, otherwise what differs. */
export async function sameBytes(a, b) {
  const [fa, fb] = [await open(a), await open(b)];
  try {
    const [sa, sb] = [await fa.stat(), await fb.stat()];
    if (sa.size !== sb.size) return `sizes differ: ${sa.size} stored, ${sb.size} source`;
    const chunk = 8 * 1024 * 1024;
    const [ba, bb] = [Buffer.alloc(chunk), Buffer.alloc(chunk)];
    for (let at = 0; at < sa.size; at += chunk) {
      const { bytesRead } = await fa.read(ba, 0, chunk, at);
      await fb.read(bb, 0, chunk, at);
      if (ba.compare(bb, 0, bytesRead, 0, bytesRead) !== 0) return `bytes differ in the chunk at ${at}`;
    }
    return null;
  } finally {
    await fa.close();
    await fb.close();
  }
}
