// The smallest use of the package, for the webpack build check.
import init, { Uploader } from "s3-direct-upload";

await init();
window.uploader = new Uploader({ backend: "/api/uploads" });
