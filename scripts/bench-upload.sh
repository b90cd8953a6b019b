#!/usr/bin/env bash
# The upload benchmark (bench/upload.mjs): the ceiling, s3-direct-upload, Uppy 5 and 6 and the
# AWS SDK's lib-storage, interleaved, in headless Chromium against the reference server. Writes
# bench/results/upload.json and prints the README's table. BENCH_SCENARIOS, BENCH_ROUNDS and
# BENCH_SMALL=1 (tiny files) are passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

bash scripts/setup.sh
build_pkg
build_server
bundle_bench_anchors
node bench/upload.mjs
