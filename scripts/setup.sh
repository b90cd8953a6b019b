#!/usr/bin/env bash
# Installs what building and testing s3-direct-upload needs, skipping what is already there:
# the Rust toolchain pinned in rust-toolchain.toml (with the wasm32 target), wasm-pack,
# wasm-bindgen-cli at exactly the version in Cargo.lock, Debian's chromium, chromium-driver,
# firefox-esr, webkit2gtk-driver, xvfb, postgresql, nginx and wrk, geckodriver,
# the e2e test's npm packages, and npm's binaryen (tools/: its wasm-opt shrinks the .wasm; Debian's
# is too old for the wasm rustc emits). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

# Rust toolchain and target (rust-toolchain.toml names them; rustup may not install on its own).
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$toolchain"; then
  log "installing Rust $toolchain"
  rustup toolchain install "$toolchain" --profile minimal -c clippy -c rustfmt -t wasm32-unknown-unknown
fi
if ! rustup target list --installed --toolchain "$toolchain" | grep -q wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown --toolchain "$toolchain"
fi

# Debian packages: the browsers (wasm-pack cannot download them here), WebKitGTK's WebDriver and
# Xvfb for the WebKit test (e2e/webkit.mjs); PostgreSQL and nginx for the reference server's
# many-instances test (e2e/cluster.mjs); wrk for its load benchmark.
missing=()
for pair in chromium:/usr/bin/chromium chromium-driver:/usr/bin/chromedriver firefox-esr:/usr/bin/firefox-esr \
  webkit2gtk-driver:/usr/bin/WebKitWebDriver xvfb:/usr/bin/Xvfb nginx:/usr/sbin/nginx wrk:/usr/bin/wrk; do
  [ -x "${pair#*:}" ] || missing+=("${pair%%:*}")
done
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# wasm-pack, and wasm-bindgen-cli matching the wasm-bindgen in Cargo.lock exactly.
if ! command -v wasm-pack >/dev/null; then
  log "installing wasm-pack (a few minutes)"
  cargo install wasm-pack
fi
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
  log "installing wasm-bindgen-cli $wb_version (a few minutes)"
  cargo install wasm-bindgen-cli --version "$wb_version" --force
fi

# Firefox's WebDriver, from crates.io.
if ! command -v geckodriver >/dev/null; then
  log "installing geckodriver (a few minutes)"
  cargo install geckodriver
fi

# npm packages of the end-to-end and type tests (playwright-core drives Debian's chromium; tsc
# checks the shipped TypeScript definitions; axe-core checks the widget's accessibility).
if [ ! -d e2e/node_modules/playwright-core ] || [ ! -x e2e/node_modules/.bin/tsc ] || [ ! -d e2e/node_modules/axe-core ]; then
  log "installing e2e npm packages"
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

# wasm-opt, from npm's binaryen (a build of the current release; wasm-pack cannot download one),
# and esbuild, which minifies the JS glue.
if [ ! -x tools/node_modules/.bin/wasm-opt ] || [ ! -x tools/node_modules/.bin/esbuild ]; then
  log "installing binaryen and esbuild (npm)"
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi

# moto (an AWS mock) for the reference server's STS test.
if ! command -v moto_server >/dev/null; then
  log "installing moto (PyPI)"
  python3 -m pip install --quiet 'moto[server]'
fi

# npm packages of the benchmarks: the JS implementations measured against, and playwright-core.
if [ ! -x bench/node_modules/.bin/esbuild ] || [ ! -d bench/node_modules/playwright-core ]; then
  log "installing benchmark npm packages"
  (cd bench && npm ci --no-audit --no-fund --loglevel=error)
fi
# The uploaders the upload benchmark measures against, each with its own dependencies.
for anchor in uppy5 uppy6 aws-sdk; do
  if [ ! -d "bench/anchors/$anchor/node_modules" ]; then
    log "installing the $anchor benchmark anchor"
    (cd "bench/anchors/$anchor" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
log "ready"
