#!/usr/bin/env bash
# The hashing benchmark (bench/hashing.mjs): wasm checksums against JS implementations in
# headless Chromium. Writes bench/results/hashing.json and prints the README's table.
# BENCH_MIB and BENCH_ROUNDS change the input size (default 64) and rounds (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

bash scripts/setup.sh
build_pkg
node bench/hashing.mjs
