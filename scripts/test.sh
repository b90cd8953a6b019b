#!/usr/bin/env bash
# Runs every test of s3-direct-upload: formatting and lints, native unit tests (library and
# reference server), browser tests in headless Chromium against two live reference servers, and
# the end-to-end demo-page test uploading a 1 GiB file. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

step() { printf '\n== %s\n' "$*"; }

bash scripts/setup.sh
# The run must leave the work tree as it found it (installs and builds go to ignored folders).
tree_before=$(git status --porcelain 2>/dev/null || true)

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p s3-direct-upload --target wasm32-unknown-unknown --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p s3-direct-upload --no-deps --quiet

step "native unit tests"
cargo test -p s3-direct-upload --lib --test checksum_vectors
cargo test -p reference-server --profile server

step "build"
build_pkg
build_server

step "TypeScript: examples/typed.ts compiles with --strict against the shipped definitions"
e2e/node_modules/.bin/tsc -p examples/tsconfig.json && echo "types: ok"

step "checksums: wasm and JS implementations agree in Chromium (the hashing benchmark, briefly)"
BENCH_MIB=4 BENCH_ROUNDS=1 BENCH_OUT=.tmp/hashing-smoke.json node bench/hashing.mjs

step "upload benchmark, briefly: every uploader it measures still stores the files byte-identical"
bundle_bench_anchors
BENCH_SMALL=1 BENCH_ROUNDS=1 BENCH_OUT=.tmp/upload-smoke.json node bench/upload.mjs | tail -12

step "npm package: what npm pack ships, and the size budget"
node e2e/pack.mjs
node e2e/size.mjs

step "Vite, React and Vue examples, installed as a user would: from the packed tarball, then built"
build_example_app vite
build_example_app react
build_example_app vue

step "webpack 5: the package bundles with no configuration and its .wasm is emitted unchanged"
(cd examples/webpack && { [ -x node_modules/.bin/webpack ] || npm install --no-save --no-audit --no-fund --loglevel=error; } \
  && rm -rf dist && node_modules/.bin/webpack --mode production --entry ./src/index.js --output-path dist --stats errors-only)
cmp pkg/s3_direct_upload_bg.wasm examples/webpack/dist/*.wasm && echo "webpack: ok"

rm -rf .tmp && mkdir -p .tmp
step "browser tests (headless Chromium, then headless Firefox)"
bash scripts/browser-tests.sh

trap stop_servers EXIT
start_server main
start_server examples --www examples
start_server vite --www target/vite-app/dist
start_server react --www target/react-app/dist
start_server vue --www target/vue-app/dist
start_server worker --www e2e/pages
start_server widget --www e2e/pages --allowed-types 'image/*,video/*,text/plain,application/octet-stream'
step "end-to-end: the demo page (drop-in script) uploads ${E2E_SIZE_MIB:=1024} MiB, and lists and resumes two uploads a reload interrupted"
head -c $((E2E_SIZE_MIB * 1024 * 1024)) /dev/urandom > .tmp/e2e-upload.bin
APP=$(ready_field main app) STORE_DIR="$(ready_field main bucketDir)" \
FILE=.tmp/e2e-upload.bin ARTIFACTS=e2e/artifacts SHOT=demo.png DROP_IN=1 \
  timeout 900 node e2e/demo.mjs

step "end-to-end: every README quickstart (the widget, script tag, Vite dev server and build, React, Vue, callbacks) uploads 24 MiB and an empty file"
head -c $((24 * 1024 * 1024)) .tmp/e2e-upload.bin > .tmp/e2e-quickstart.bin
APP=$(ready_field examples app) STORE_DIR="$(ready_field examples bucketDir)" \
VITE_BUILT_APP=$(ready_field vite app) VITE_BUILT_STORE_DIR="$(ready_field vite bucketDir)" \
REACT_APP=$(ready_field react app) REACT_STORE_DIR="$(ready_field react bucketDir)" \
VUE_APP=$(ready_field vue app) VUE_STORE_DIR="$(ready_field vue bucketDir)" \
VITE_APP_DIR=target/vite-app FILE=.tmp/e2e-quickstart.bin ARTIFACTS=e2e/artifacts \
  timeout 600 node e2e/quickstart.mjs

step "end-to-end: the worker engine through the npm module and the drop-in script: the API, callbacks, fallback, resume, long tasks"
head -c $((256 * 1024 * 1024)) .tmp/e2e-upload.bin > .tmp/e2e-worker-big.bin
APP=$(ready_field worker app) STORE_DIR="$(ready_field worker bucketDir)" FILE=.tmp/e2e-quickstart.bin \
BIG_FILE=.tmp/e2e-worker-big.bin timeout 600 node e2e/worker.mjs

step "end-to-end: the <s3-upload> widget: picks, a folder, drops, pause, cancel, retry, refusals, events, axe-core, screenshots"
head -c $((64 * 1024 * 1024)) .tmp/e2e-upload.bin > .tmp/e2e-widget-big.bin
APP=$(ready_field widget app) STORE_DIR="$(ready_field widget bucketDir)" BIG_FILE=.tmp/e2e-widget-big.bin \
ARTIFACTS=e2e/artifacts timeout 300 node e2e/widget.mjs

step "end-to-end: the persistent queue and folders, in Chromium and Firefox: a reload mid-upload resumed from a handle, from an OPFS copy, from a new pick; 50 files in 3 levels; storage refused"
start_server persist --www e2e/pages
head -c $((200 * 1024 * 1024)) .tmp/e2e-upload.bin > .tmp/e2e-persist.bin
APP=$(ready_field persist app) STORE_DIR="$(ready_field persist bucketDir)" BIG_FILE=.tmp/e2e-persist.bin \
WORK=.tmp/persist-work timeout 300 node e2e/persist.mjs

step "end-to-end: many small files signed together (/files), as form POSTs, on the page and in a worker; a refused file alone; a backend without /files; signFiles callbacks"
start_server batch --www e2e/pages
APP=$(ready_field batch app) STORE_DIR="$(ready_field batch bucketDir)" timeout 300 node e2e/batch.mjs

step "end-to-end: WebKit (Safari's engine, WebKitGTK under Xvfb): the npm module on the page and in a worker, every checksum, the drop-in script, <s3-upload>"
APP=$(ready_field worker app) STORE_DIR="$(ready_field worker bucketDir)" timeout 600 node e2e/webkit.mjs

step "end-to-end: two reference-server instances on one PostgreSQL behind nginx: a quota across them, a 128 MiB upload alternating between them, one killed mid-upload"
head -c $((128 * 1024 * 1024)) .tmp/e2e-upload.bin > .tmp/e2e-cluster.bin
SERVER=target/server/reference-server FILE=.tmp/e2e-cluster.bin PAGES=e2e/pages PKG=pkg timeout 300 node e2e/cluster.mjs
rm -rf .tmp/persist-work
rm -f .tmp/e2e-persist.bin .tmp/e2e-upload.bin .tmp/e2e-quickstart.bin .tmp/e2e-quickstart.bin.empty .tmp/e2e-worker-big.bin .tmp/e2e-cluster.bin .tmp/e2e-widget-big.bin

step "the work tree is as the run found it"
if [ "$(git status --porcelain 2>/dev/null || true)" != "$tree_before" ]; then
  echo "scripts/test.sh changed tracked or unignored files:" >&2
  git status --short >&2
  exit 1
fi
echo "tree: ok"
