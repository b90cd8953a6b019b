// What the end-to-end tests of the persistent queue (e2e/persist.mjs, e2e/demo.mjs) look at in
// the page's storage. Each is a function for `page.evaluate`: it runs in the page.

/** Whether an entry of the library's queue names an OPFS copy: the copy is written. */
export const aCopyIsRecorded = () => new Promise((resolve) => {
  const opening = indexedDB.open("s3-direct-upload");
  opening.onerror = () => resolve(false);
  opening.onsuccess = () => {
    const all = opening.result.transaction("queue").objectStore("queue").getAll();
    all.onsuccess = () => resolve(all.result.some((entry) => entry.copy));
    all.onerror = () => resolve(false);
  };
});

/** Waits until `test` (run in `page`) is true, polling every 100 ms, `seconds` at most. */
export async function until(page, test, arg, seconds = 60) {
  const end = Date.now() + seconds * 1000;
  while (!(await page.evaluate(test, arg))) {
    if (Date.now() > end) throw new Error(`not true in ${seconds} s: ${test}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
