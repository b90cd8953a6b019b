// Your own API, whatever its routes: each step of an upload is a function that returns a value
// or a Promise. Here: POST /files/start, /files/part-urls, /files/complete, /files/abort and
// /files/put-url, JSON in and out.
const api = (route, body) =>
  fetch(`/files/${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .then((r) => (r.ok ? r.json() : Promise.reject(Object.assign(new Error(`${route}: HTTP ${r.status}`), { status: r.status }))));

export const backend = {
  // Large files: a multipart upload, its parts signed in batches.
  createMultipartUpload: (file) => api("start", { name: file.filename, size: file.size, type: file.contentType }),
  signParts: async ({ key, uploadId, partNumbers }) => {
    const { urls } = await api("part-urls", { key, uploadId, partNumbers });
    return partNumbers.map((partNumber) => ({ partNumber, url: urls[partNumber] }));
  },
  completeMultipartUpload: ({ key, uploadId, parts }) =>
    api("complete", { key, uploadId, parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) }),
  abortMultipartUpload: ({ key, uploadId }) => api("abort", { key, uploadId }),
  // Small files: one presigned PUT.
  signPut: async (file) => {
    const { key, url } = await api("put-url", { name: file.filename, size: file.size, type: file.contentType });
    return { key, url, headers: { "Content-Type": file.contentType } };
  },
};
