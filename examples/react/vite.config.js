// As examples/vite/vite.config.js, with React's plugin.
import react from "@vitejs/plugin-react";

export default {
  plugins: [react()],
  base: "./",
  build: { target: "es2022" }, // top-level await
  server: { proxy: { "/api": process.env.API_URL ?? "http://127.0.0.1:8080" } },
  // The package loads its .wasm from beside its module: Vite must not pre-bundle it.
  optimizeDeps: { exclude: ["s3-direct-upload"] },
};
