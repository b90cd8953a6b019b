import { onBeforeUnmount, ref } from "vue";
import { Uploader } from "s3-direct-upload";

/** The Uploader in a composable: one per component, freed when it unmounts. */
export function useUpload(options) {
  const uploader = new Uploader(options);
  onBeforeUnmount(() => uploader.free());
  const progress = ref(0);
  const status = ref("");
  async function upload(file) {
    status.value = "uploading…";
    const onProgress = (p) => (progress.value = p.total ? p.loaded / p.total : 1); // a 0-byte file has total 0
    try {
      const { key } = await uploader.upload(file, { onProgress }).done;
      status.value = `stored as ${key}`;
    } catch (err) {
      status.value = `failed (${err.code}): ${err.message}`;
    }
  }
  return { upload, progress, status };
}
