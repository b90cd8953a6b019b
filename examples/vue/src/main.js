import { createApp } from "vue";
import init from "s3-direct-upload";
import "s3-direct-upload/element"; // defines <s3-upload>
import App from "./App.vue";

await init(); // loads the .wasm; once, before the first Uploader
createApp(App).mount("#app");
