#!/usr/bin/env bash
# The reference server's load benchmark (bench/server.mjs): wrk against one instance with SQLite,
# one on PostgreSQL, and two behind nginx. Writes bench/results/server.json and prints the table
# of docs/benchmarks.md. BENCH_SECONDS and BENCH_CONNECTIONS are passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

bash scripts/setup.sh
build_server
SERVER=target/server/reference-server node bench/server.mjs
