#!/usr/bin/env bash
# Runs versitygw's own integration suite (the tests of `versitygw test
# full-flow`) against a Steward started by steward-up.sh, one test per
# process: full-flow stops at the first panic of its harness (v1.8.0 panics
# in ListObjects_with_checksum when a listing has no checksum algorithm).
# Builds versitygw VGW_VERSION into /tmp/steward-peers/bin (the Go module
# proxy is the only network it needs) and reads the full-flow test list
# from its source in the module cache. Writes WORK/versitygw.log and prints
# the PASS/FAIL counts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
W=${W:-/tmp/steward-compat}
VGW_VERSION=${VGW_VERSION:-v1.8.0}
BIN=/tmp/steward-peers/bin
# shellcheck disable=SC1091
. "$W/env"
if ! go version -m "$BIN/versitygw" 2>/dev/null | grep -q "versitygw[[:space:]]*$VGW_VERSION"; then
  mkdir -p "$BIN"
  (cd /tmp && GOBIN=$BIN go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION")
fi
src="$(go env GOMODCACHE)/github.com/versity/versitygw@$VGW_VERSION/tests/integration/group-tests.go"
tests=$(/usr/bin/python3 "$here/fullflow-tests.py" "$src")
# A failed test may leave its buckets behind, and the next test that creates
# the same name would fail too: after a failure, remove every bucket the
# demo did not create.
cleanup() {
  AWS_ACCESS_KEY_ID=$MAIN_KEY AWS_SECRET_ACCESS_KEY=$MAIN_SECRET "$W/bin/s3clean" -endpoint "$S3_ENDPOINT" -keep home,public,mortgages || true
}
cd "$BIN" # some tests run ./versitygw
log="$W/versitygw.log"
: >"$log"
pass=0 fail=0
failed=()
for t in $tests; do
  # The SDK in versitygw cannot combine AWS_CA_BUNDLE with its transport.
  if env -u AWS_CA_BUNDLE timeout 120 "$BIN/versitygw" test -a "$MAIN_KEY" -s "$MAIN_SECRET" -e "$S3_ENDPOINT" "$t" >>"$log" 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); failed+=("$t")
    cleanup
  fi
done
printf '%s\n' "${failed[@]}" >"$W/versitygw-failed.txt"
echo "versitygw $VGW_VERSION full-flow against Steward: $pass passed, $fail failed of $((pass + fail)) (failures in $W/versitygw-failed.txt, output in $log)"
