// Uppy 5 (@uppy/core + @uppy/aws-s3), wired as its docs recommend for a custom backend: the
// plugin's callbacks call the reference server's JSON API. Bundled by bench/upload.mjs.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

const post = (api, path, body) =>
  fetch(api + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .then((r) => r.json());
const described = (f) => ({ filename: f.name, size: f.size, contentType: f.type || "application/octet-stream", metadata: {} });

globalThis.benchAnchors = { ...globalThis.benchAnchors, uppy5: async (files, { api, partSize, concurrency }) => {
  const keys = {};
  const keep = (file, answer) => { keys[file.name] = answer.key; return answer; };
  const uppy = new Uppy({ autoProceed: false }).use(AwsS3, {
    limit: concurrency,
    shouldUseMultipart: (file) => file.size > partSize,
    getChunkSize: () => partSize,
    createMultipartUpload: (file) => post(api, "/multipart", described(file.data)).then((a) => keep(file, a)),
    signPart: (file, { key, uploadId, partNumber }) =>
      post(api, "/multipart/sign", { key, uploadId, partNumbers: [partNumber] }).then((a) => a.parts[0]),
    completeMultipartUpload: (file, { key, uploadId, parts }) =>
      post(api, "/multipart/complete", { key, uploadId, parts: parts.map((p) => ({ partNumber: p.PartNumber, etag: p.ETag })) })
        .then((a) => ({ location: a.location })),
    abortMultipartUpload: (file, { key, uploadId }) => post(api, "/multipart/abort", { key, uploadId }),
    listParts: (file, { key, uploadId }) => post(api, "/multipart/list", { key, uploadId })
      .then((a) => a.parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, Size: p.size }))),
    getUploadParameters: (file) => post(api, "/put", described(file.data))
      .then((a) => keep(file, a)).then((a) => ({ method: "PUT", url: a.url, headers: a.headers })),
  });
  uppy.addFiles(files.map((f) => ({ name: f.name, type: f.type, data: f })));
  const result = await uppy.upload();
  if (result.failed?.length) throw new Error(`uppy5: ${result.failed[0].error}`);
  return files.map((f) => keys[f.name]);
} };
