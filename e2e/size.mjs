// Size budget of what ships, gzip -9 as a server would send it: the npm package (the .wasm and
// its JS glue) and the drop-in script. Bytes are not noisy, so this is a test: a change that
// makes the library heavier fails here. The budgets sit just above today's sizes and are
// lowered as the library shrinks (the goal, issue 14: 80 KB and 100 KB; 225 and 290 KB before
// serde, float formatting and the CRC crates left the page). It also lists the .wasm's 15
// largest functions (from target/s3_direct_upload_named.wasm, which build_pkg leaves), so that a
// regression names itself.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";

// The drop-in script carries <s3-upload> (about 3.5 KB of it); npm users pay for the element only
// when they import s3-direct-upload/element.
// The persistent queue and folder uploads (issue 18) cost 4.3 KB: 131,451 -> 135,813 and 137,472 -> 141,546;
// <s3-upload persist> (the restored uploads' rows) and folder keys in the widget 0.6 KB more:
// element 3,994 -> 4,544, drop-in 141,546 -> 142,123. Messages quoting values without `{:?}`: -0.2 KB.
// Signing small files together (`/files`, issue 16) +2.9 KB: 135,664 -> 138,532, 141,936 -> 144,775;
// hashing 4 files at a time and each upload started in its own task: 138,593 and 144,808.
const BUDGETS = { "npm package (wasm + glue)": 128_950, "drop-in script": 135_200, "element (s3-direct-upload/element)": 4_600 };
const gzipped = async (file) => gzipSync(await readFile(new URL(`../pkg/${file}`, import.meta.url)), { level: 9 }).length;
const sizes = {
  "npm package (wasm + glue)": (await gzipped("s3_direct_upload_bg.wasm")) + (await gzipped("s3_direct_upload.js")),
  "drop-in script": await gzipped("s3-direct-upload.global.js"),
  "element (s3-direct-upload/element)": await gzipped("element.js"),
};
/** The unsigned LEB128 number at `at` in `bytes`, and where it ends. */
function leb(bytes, at) {
  let [value, shift, byte] = [0, 0, 0];
  do {
    byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

/**
 * The `count` largest function bodies of `file` (a .wasm with its name section, whose names
 * wasm-bindgen has demangled), with their names, and the code and data sections' sizes.
 */
function largestFunctions(file, count) {
  const bytes = readFileSync(file);
  const names = new Map();
  const bodies = [];
  let [imported, code, data] = [0, 0, 0];
  for (let at = 8; at < bytes.length; ) {
    const id = bytes[at];
    const [size, start] = leb(bytes, at + 1);
    const end = start + size;
    if (id === 2) { // imports: functions among them come first in the index space
      let [entries, p] = leb(bytes, start);
      for (; entries > 0; entries--) {
        for (let strings = 0; strings < 2; strings++) {
          const [length, after] = leb(bytes, p);
          p = after + length;
        }
        const kind = bytes[p++];
        if (kind === 0) imported++;
        // Only function imports come before the others here (wasm-bindgen imports nothing else).
        if (kind !== 0) throw new Error(`size: ${file} imports something other than functions`);
        [, p] = leb(bytes, p);
      }
    } else if (id === 10) {
      code = size;
      let [functions, p] = leb(bytes, start);
      for (let index = imported; functions > 0; functions--, index++) {
        const [length, body] = leb(bytes, p);
        bodies.push({ index, length });
        p = body + length;
      }
    } else if (id === 11) {
      data = size;
    } else if (id === 0) {
      const [nameLength, nameStart] = leb(bytes, start);
      if (bytes.subarray(nameStart, nameStart + nameLength).toString() === "name") {
        for (let p = nameStart + nameLength; p < end; ) {
          const kind = bytes[p];
          const [length, sub] = leb(bytes, p + 1);
          if (kind === 1) {
            let [entries, q] = leb(bytes, sub);
            for (; entries > 0; entries--) {
              const [index, afterIndex] = leb(bytes, q);
              const [length, text] = leb(bytes, afterIndex);
              names.set(index, bytes.subarray(text, text + length).toString());
              q = text + length;
            }
          }
          p = sub + length;
        }
      }
    }
    at = end;
  }
  const largest = bodies.sort((a, b) => b.length - a.length).slice(0, count)
    .map(({ index, length }) => ({ length, name: (names.get(index) ?? `function ${index}`).replace(/::h[0-9a-f]{16}$/, "") }));
  return { code, data, largest };
}

let failed = 0;
for (const [what, bytes] of Object.entries(sizes)) {
  const over = bytes > BUDGETS[what];
  failed += over;
  console.log(`size: ${what}: ${bytes} bytes gzip, budget ${BUDGETS[what]}${over ? ": OVER" : ""}`);
}
// What to look at first when a budget fails: the largest functions, as wasm-opt leaves them
// (target/s3_direct_upload_named.wasm: the shipped build before its names are stripped; raw bytes).
const named = new URL("../target/s3_direct_upload_named.wasm", import.meta.url);
const { code, data, largest } = largestFunctions(named, 15);
console.log(`size: the .wasm holds ${code} bytes of code and ${data} of data (raw); its 15 largest functions:`);
for (const { length, name } of largest) console.log(`size: ${String(length).padStart(7)}  ${name.slice(0, 140)}`);
console.log(`size: ${Object.keys(sizes).length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
