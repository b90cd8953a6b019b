#!/usr/bin/env bash
# The worker engine against the page engine in Chromium and Firefox (bench/engines.mjs): a
# 512 MiB file (BENCH_MIB), CRC32C, on the page, in the worker and without checksums. Writes
# bench/results/engines.json and prints the table docs/benchmarks.md shows. BENCH_ROUNDS is
# passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

bash scripts/setup.sh
build_pkg
build_server
mkdir -p .tmp
# The store keeps every upload (GBs over a run): it goes with the file.
trap 'stop_servers; rm -rf .tmp/bench-engines.bin .tmp/engines-store' EXIT
start_server engines --www e2e/pages
head -c $((${BENCH_MIB:-512} * 1024 * 1024)) /dev/urandom > .tmp/bench-engines.bin
APP=$(ready_field engines app) FILE=.tmp/bench-engines.bin node bench/engines.mjs
