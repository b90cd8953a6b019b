// The Vite example: the npm package imported as any dependency; Vite bundles the JS and emits
// the .wasm as an asset found through `new URL(..., import.meta.url)`.
import init, { Uploader, type S3DirectUploadError, type UploadProgress } from "s3-direct-upload";

await init();
const uploader = new Uploader({ backend: "/api/uploads", transport: "xhr" });
const picker = document.querySelector<HTMLInputElement>("#picker")!;
const list = document.querySelector<HTMLUListElement>("#files")!;

picker.addEventListener("change", () => {
  for (const file of Array.from(picker.files ?? [])) {
    const item = document.createElement("li");
    item.className = "file";
    const bar = document.createElement("progress");
    const status = document.createElement("span");
    status.className = "status";
    item.append(`${file.name} `, bar, status);
    list.append(item);
    const upload = uploader.upload(file, {
      onProgress: (p: UploadProgress) => {
        bar.value = p.total ? p.loaded / p.total : 1;
        item.dataset.state = p.state;
      },
    });
    upload.done.then(
      (result) => {
        item.dataset.state = "done";
        item.dataset.key = result.key;
        status.textContent = ` stored as ${result.key}`;
      },
      (error: S3DirectUploadError) => {
        item.dataset.state = "failed";
        status.textContent = ` ${error.code}: ${error.message}`;
      },
    );
  }
});
document.body.dataset.ready = "true";
