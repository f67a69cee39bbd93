#!/usr/bin/env bash
# `make s3-compat`: installs the clients from Debian, starts a demo Steward,
# and runs the s3cmd/rclone flows, the core of ceph/s3-tests (when
# S3TESTS_DIR names a local checkout; nothing is fetched) and versitygw's
# full-flow tests (SKIP_VERSITYGW=1 to leave them out). Stops Steward at the
# end. Exit status: non-zero if the client flows fail; the suites' counts
# are printed (they are not expected to pass 100%).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export W=${W:-/tmp/steward-compat}
"$here/deps.sh" || exit 1
"$here/steward-up.sh" "$W" || exit 1
trap 'kill "$(cat "$W/steward.pid")" 2>/dev/null' EXIT
"$here/clients.sh"
rc=$?
if [ -n "${S3TESTS_DIR:-}" ]; then
  "$here/s3tests.sh" -rfE --tb=line | tee "$W/s3tests.log" | tail -5
else
  echo "s3-tests skipped: set S3TESTS_DIR to a local checkout of github.com/ceph/s3-tests"
fi
if [ -z "${SKIP_VERSITYGW:-}" ]; then
  "$here/versitygw.sh"
fi
exit $rc
