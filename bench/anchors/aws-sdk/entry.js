// AWS SDK v3 (@aws-sdk/client-s3 + @aws-sdk/lib-storage), wired as its docs recommend for the
// browser: temporary credentials from the reference server, one `Upload` per file. Bundled by
// bench/upload.mjs.
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

globalThis.benchAnchors = { ...globalThis.benchAnchors, awsSdk: async (files, { api, partSize, concurrency }) => {
  const grant = await fetch(api + "/credentials", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
    .then((r) => r.json());
  const client = new S3Client({
    region: grant.region,
    endpoint: grant.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: grant.accessKeyId, secretAccessKey: grant.secretAccessKey, sessionToken: grant.sessionToken },
  });
  const stamp = Date.now();
  return Promise.all(files.map(async (file, i) => {
    const Key = `${grant.keyPrefix}aws-sdk-${stamp}-${i}/${file.name}`;
    await new Upload({ client, params: { Bucket: grant.bucket, Key, Body: file, ContentType: file.type || "application/octet-stream" },
      queueSize: concurrency, partSize }).done();
    return Key;
  }));
} };
