# Shared by scripts/demo.sh and scripts/test.sh: build steps and server start-up.
# Source it from the repository root.

# Builds the library into pkg/ as an npm package (wasm-pack, release profile), with the
# drop-in script pkg/s3-direct-upload.global.js beside the ES module.
build_pkg() {
  wasm-pack build --target web --release --out-dir pkg 2>&1 | grep -v '^\[INFO\]' || true
  test -f pkg/s3_direct_upload_bg.wasm
  # The same optimisation with the function names kept, for e2e/size.mjs's list of the largest.
  tools/node_modules/.bin/wasm-opt pkg/s3_direct_upload_bg.wasm $WASM_OPT_PASSES -g -o target/s3_direct_upload_named.wasm
  # One- and two-letter import and export names (the map is applied to the glue), then the
  # optimisation: in this order the .wasm is 270 B gzip smaller than the other way round.
  tools/node_modules/.bin/wasm-opt pkg/s3_direct_upload_bg.wasm --minify-imports-and-exports-and-modules \
    -o pkg/s3_direct_upload_bg.wasm > target/wasm-names.json
  optimize_wasm pkg/s3_direct_upload_bg.wasm
  node scripts/finish-package.mjs
  node scripts/build-drop-in.mjs
}

# The wasm-opt passes that measured smallest: size-optimised (-Oz) but without its inlining pass
# (plain -Oz gzips larger). wasm-opt reads the features rustc used from the target_features section.
WASM_OPT_PASSES="-Oz --skip-pass=inlining-optimizing"

# optimize_wasm FILE: shrinks a .wasm in place with wasm-opt: those passes, names and debug
# sections dropped.
optimize_wasm() {
  tools/node_modules/.bin/wasm-opt "$1" $WASM_OPT_PASSES --strip-debug --strip-producers \
    -o "$1.opt"
  mv "$1.opt" "$1"
}

# Bundles each library the upload benchmark measures against, as shipped: esbuild, minified.
bundle_bench_anchors() {
  for anchor in uppy5 uppy6 aws-sdk; do
    (cd "bench/anchors/$anchor" && ../../node_modules/.bin/esbuild entry.js --bundle --minify --format=iife \
      --platform=browser --outfile="../../dist/$anchor.js" --log-level=error)
  done
}

# Builds the reference server.
build_server() {
  cargo build -p reference-server --profile server --quiet
}

# build_example_app NAME: examples/NAME (a Vite app) installed as a user would, in
# target/NAME-app: a copy outside the source tree (target/ is ignored), depending on the tarball
# `npm pack` makes of pkg/ (not a symlink to pkg/, which Vite's dev server refuses to serve files
# from), then built into target/NAME-app/dist.
build_example_app() {
  local app="target/$1-app"
  rm -rf "$app" && mkdir -p "$app"
  (cd "examples/$1" && cp -r $(ls -A | grep -vx -e node_modules -e dist) "../../$app/")
  (cd pkg && npm pack --pack-destination "../$app" --silent >/dev/null)
  (cd "$app" && mv s3-direct-upload-*.tgz s3-direct-upload.tgz \
    && npm pkg set dependencies.s3-direct-upload=file:s3-direct-upload.tgz \
    && npm install --no-audit --no-fund --loglevel=error && node_modules/.bin/vite build --logLevel warn)
}

# start_server NAME ARGS...: starts the reference server on free loopback ports with an empty
# store, waits (10 s at most) for its ready file .tmp/NAME.json, and appends its PID to .tmp/pids.
start_server() {
  local name=$1; shift
  rm -rf ".tmp/$name.json" ".tmp/$name-store"
  target/server/reference-server --listen 127.0.0.1:0 --ready-file ".tmp/$name.json" \
    --data-dir ".tmp/$name-store" "$@" > ".tmp/$name.log" 2>&1 &
  echo $! >> .tmp/pids
  for _ in $(seq 100); do
    [ -s ".tmp/$name.json" ] && return 0
    sleep 0.1
  done
  echo "reference server '$name' did not start:" >&2
  cat ".tmp/$name.log" >&2
  return 1
}

# ready_field NAME FIELD: a field of server NAME's ready file.
ready_field() {
  python3 -c "import json,sys; print(json.load(open('.tmp/$1.json'))['$2'])"
}

# Stops every server this run started, by PID.
stop_servers() {
  if [ -f .tmp/pids ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done < .tmp/pids
    rm -f .tmp/pids
  fi
}
