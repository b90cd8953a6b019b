#!/usr/bin/env bash
# Starts the three reference servers the browser tests use and runs the tests in headless
# Chromium (extra arguments go to the test binary, e.g. a test name). Called by scripts/test.sh;
# run it alone, after one scripts/test.sh, to iterate on browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
build_server
mkdir -p .tmp
trap stop_servers EXIT
start_server main --test-hooks \
  --allowed-types "image/*,video/*,audio/*,text/*,application/octet-stream,application/pdf,application/zip"
start_server no-etag --test-hooks --no-expose-etag
start_server faults --test-hooks
S3DU_TEST_APP=$(ready_field main app) \
S3DU_TEST_APP_NO_ETAG=$(ready_field no-etag app) \
S3DU_TEST_APP_FAULTS=$(ready_field faults app) \
CHROMEDRIVER=/usr/bin/chromedriver \
WASM_BINDGEN_TEST_TIMEOUT=600 \
  cargo test -p s3-direct-upload --target wasm32-unknown-unknown --test browser --test reliability -- "$@"
