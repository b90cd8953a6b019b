#!/usr/bin/env bash
# Runs the browser tests (tests/browser.rs, tests/reliability.rs, tests/integrity.rs) in headless
# Chromium and then in headless Firefox, each on a page and in a dedicated worker, each against fresh reference servers: a normal one, one whose store
# hides ETag, one for fault injection, one whose store's CORS rule lacks DELETE, one whose store's CORS rule does not allow the test page's origin, and one that wants a token. Extra arguments go to the test binaries (e.g. a test
# name). Called by scripts/test.sh; run it alone, after one scripts/test.sh, to iterate.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
# The token of the test user of the server with authentication (tests/modes.rs has it too).
S3DU_TEST_ALICE_TOKEN=alice-token-for-the-browser-tests
build_server
mkdir -p .tmp
trap stop_servers EXIT

# run_in DRIVER_VARIABLE DRIVER_PATH: the browser tests in the browser that driver drives.
# The test pages come from wasm-bindgen-test-runner's own origin: the API must allow it.
run_in() {
  stop_servers
  start_server main --test-hooks --api-origins '*' \
    --allowed-types "image/*,video/*,audio/*,text/*,application/octet-stream,application/pdf,application/zip"
  start_server no-etag --test-hooks --api-origins '*' --no-expose-etag
  start_server faults --test-hooks --api-origins '*'
  start_server no-delete --api-origins '*' --allowed-methods GET,PUT,POST,HEAD
  start_server wrong-origin --api-origins '*' --allowed-origins https://app.example.com
  printf 'alice %s\n' "$S3DU_TEST_ALICE_TOKEN" > .tmp/tokens
  start_server auth --api-origins '*' --auth tokens --tokens-file .tmp/tokens --quota-uploads 3
  env "$1=$2" \
    S3DU_TEST_APP="$(ready_field main app)" \
    S3DU_TEST_APP_NO_ETAG="$(ready_field no-etag app)" \
    S3DU_TEST_APP_FAULTS="$(ready_field faults app)" \
    S3DU_TEST_APP_NO_DELETE="$(ready_field no-delete app)" \
    S3DU_TEST_APP_WRONG_ORIGIN="$(ready_field wrong-origin app)" \
    S3DU_TEST_APP_AUTH="$(ready_field auth app)" S3DU_TEST_ALICE_TOKEN="$S3DU_TEST_ALICE_TOKEN" \
    WASM_BINDGEN_TEST_TIMEOUT=600 \
    cargo test -p s3-direct-upload --target wasm32-unknown-unknown $3 \
    --test browser --test reliability --test integrity --test checksum_vectors --test modes -- "${@:4}"
}

# in_both DRIVER_VARIABLE DRIVER_PATH: the browser tests on a page, then in a dedicated worker
# (where the worker engine runs the library: no window, no localStorage).
# S3DU_PLACES=page (or worker) runs one of them only.
in_both() {
  if [[ " ${S3DU_PLACES:-page worker} " == *" page "* ]]; then
    printf '\n--- on a page\n'
    run_in "$1" "$2" "" "${@:3}"
  fi
  if [[ " ${S3DU_PLACES:-page worker} " == *" worker "* ]]; then
    printf '\n--- in a dedicated worker\n'
    run_in "$1" "$2" "--features test-in-worker" "${@:3}"
  fi
}

# S3DU_BROWSERS=chromium (or firefox) runs one engine only, to iterate faster.
if [[ " ${S3DU_BROWSERS:-chromium firefox} " == *" chromium "* ]]; then
  printf '\n-- in Chromium\n'
  in_both CHROMEDRIVER /usr/bin/chromedriver "$@"
fi
if [[ " ${S3DU_BROWSERS:-chromium firefox} " == *" firefox "* ]]; then
  printf '\n-- in Firefox\n'
  in_both GECKODRIVER "$(command -v geckodriver)" "$@"
fi
