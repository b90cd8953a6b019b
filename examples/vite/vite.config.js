// In development (`npx vite`), API calls go through Vite's server to your backend, so the page
// and the API share an origin. Built (`npx vite build`), dist/ is served by your backend, under
// any path (relative asset URLs).
export default {
  base: "./",
  build: { target: "es2022" }, // top-level await
  server: {
    proxy: { "/api": process.env.API_URL ?? "http://127.0.0.1:8080" },
  },
  // Vite's dev server pre-bundles dependencies into node_modules/.vite, away from the .wasm the
  // package loads from beside its module: leave this one as it is.
  optimizeDeps: { exclude: ["s3-direct-upload"] },
};
