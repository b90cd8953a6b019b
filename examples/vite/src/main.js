import init, { Uploader, isUploadError } from "s3-direct-upload";

await init(); // loads the .wasm; once, before the first Uploader

const picker = document.querySelector("#picker");
const bar = document.querySelector("#bar");
const result = document.querySelector("#result");
const cancel = document.querySelector("#cancel");

const uploader = new Uploader({
  backend: "/api/uploads", // your backend's base URL (see "The backend contract"), or callbacks
  worker: true, // hashing and every request in a Web Worker, off the page's main thread
  onProgress: (p) => (bar.value = p.total ? p.loaded / p.total : 1), // a 0-byte file has total 0
});

picker.addEventListener("change", async () => {
  const file = picker.files[0];
  if (!file) return;
  const upload = uploader.upload(file, { metadata: { picked: "vite" } }); // content type: the file's
  cancel.onclick = () => upload.abort();
  result.textContent = "uploading…";
  try {
    const { key } = await upload.done;
    result.textContent = `stored as ${key}`;
  } catch (err) {
    if (!isUploadError(err)) throw err;
    result.textContent = `failed (${err.code}): ${err.message}`; // e.g. "aborted"
  }
});
picker.disabled = false;
