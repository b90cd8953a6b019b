// Built into dist/ with relative asset paths, so the reference server can serve it under any
// path (the tests open it at /examples/vite/dist/).
export default { base: "./", build: { target: "es2022" } };
