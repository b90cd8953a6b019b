// As examples/vite/vite.config.js, with Vue's plugin, told that <s3-upload> is a custom element.
import vue from "@vitejs/plugin-vue";

export default {
  plugins: [vue({ template: { compilerOptions: { isCustomElement: (tag) => tag === "s3-upload" } } })],
  base: "./",
  build: { target: "es2022" }, // top-level await
  server: { proxy: { "/api": process.env.API_URL ?? "http://127.0.0.1:8080" } },
  // The package loads its .wasm from beside its module: Vite must not pre-bundle it.
  optimizeDeps: { exclude: ["s3-direct-upload"] },
};
