// Uppy 6 (@uppy/core + @uppy/aws-s3), wired as its docs recommend without Companion: temporary
// credentials from the reference server, signing in the page. Bundled by bench/upload.mjs.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

globalThis.benchAnchors = { ...globalThis.benchAnchors, uppy6: async (files, { api, partSize, concurrency }) => {
  const grant = await fetch(api + "/credentials", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
    .then((r) => r.json());
  let n = 0;
  const keys = {};
  const uppy = new Uppy({ autoProceed: false }).use(AwsS3, {
    s3Endpoint: `${grant.endpoint}/${grant.bucket}`,
    region: grant.region,
    getCredentials: () => ({
      credentials: { accessKeyId: grant.accessKeyId, secretAccessKey: grant.secretAccessKey, sessionToken: grant.sessionToken, expiration: grant.expiration },
      region: grant.region,
    }),
    limit: concurrency, // v6 counts files, not parts
    shouldUseMultipart: (file) => file.size > partSize,
    getChunkSize: () => partSize,
    generateObjectKey: (file) => (keys[file.name] = `${grant.keyPrefix}uppy6-${Date.now()}-${n++}/${file.name}`),
  });
  uppy.addFiles(files.map((f) => ({ name: f.name, type: f.type, data: f })));
  const result = await uppy.upload();
  if (result.failed?.length) throw new Error(`uppy6: ${result.failed[0].error}`);
  return files.map((f) => keys[f.name]);
} };
