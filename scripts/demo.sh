#!/usr/bin/env bash
# Builds s3-direct-upload and the reference server, then serves the demo page with an embedded
# S3 store. Installs what is missing first. PORT (default 8080) picks the page's port.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

bash scripts/setup.sh
build_pkg
build_server
mkdir -p .tmp
exec target/server/reference-server --listen "127.0.0.1:${PORT:-8080}" --data-dir .tmp/demo-store
