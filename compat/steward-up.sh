#!/usr/bin/env bash
# Starts a demo Steward for the compatibility suites in WORK (default
# /tmp/steward-compat), logs carol in, and gives two service accounts
# (s3main, s3alt in group s3compat, allowed everything by policy.yaml)
# long-lived access keys. Writes WORK/env with STEWARD, STEWARD_HOME,
# S3_ENDPOINT, S3_PORT, MAIN_KEY, MAIN_SECRET, ALT_KEY, ALT_SECRET, and
# WORK/steward.pid. Stop it with: kill "$(cat WORK/steward.pid)".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
W=${1:-/tmp/steward-compat}
HTTP_PORT=${HTTP_PORT:-47080}
S3_PORT=${S3_PORT:-47900}
PASSWORD=compat-demo-password

mkdir -p "$W/bin"
if [ -z "${NO_BUILD:-}" ]; then
  (cd "$root" && go build -o "$W/bin/steward" ./cmd/steward && go build -o "$W/bin/s3key" ./compat/s3key && go build -o "$W/bin/s3clean" ./compat/s3clean)
fi
if [ -f "$W/steward.pid" ] && kill -0 "$(cat "$W/steward.pid")" 2>/dev/null; then
  kill "$(cat "$W/steward.pid")"; sleep 1
fi
rm -rf "$W/data" "$W/home"
mkdir -p "$W/data" "$W/home"
"$W/bin/steward" serve --demo --demo-rows 10000 --demo-password "$PASSWORD" --data-dir "$W/data" \
  --http-addr "127.0.0.1:$HTTP_PORT" --s3-addr "127.0.0.1:$S3_PORT" --log-level warn \
  >"$W/steward.log" 2>&1 &
echo $! >"$W/steward.pid"
for _ in $(seq 100); do
  kill -0 "$(cat "$W/steward.pid")" 2>/dev/null || { cat "$W/steward.log"; exit 1; }
  curl -fs "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null || { cat "$W/steward.log"; exit 1; }

export STEWARD_HOME="$W/home"
st() { "$W/bin/steward" "$@"; }
echo "$PASSWORD" | st login --server "http://127.0.0.1:$HTTP_PORT" --username carol --password-stdin >/dev/null
st group create s3compat --description "S3 compatibility suites" >/dev/null
st sa create s3main --group s3compat >/dev/null
st sa create s3alt --group s3compat >/dev/null
st policy apply -f "$here/policy.yaml" >/dev/null
read -r MAIN_KEY MAIN_SECRET < <("$W/bin/s3key" -data-dir "$W/data" s3main)
read -r ALT_KEY ALT_SECRET < <("$W/bin/s3key" -data-dir "$W/data" s3alt)
cat >"$W/env" <<ENV
STEWARD=$W/bin/steward
STEWARD_HOME=$W/home
S3_ENDPOINT=http://127.0.0.1:$S3_PORT
S3_PORT=$S3_PORT
MAIN_KEY=$MAIN_KEY
MAIN_SECRET=$MAIN_SECRET
ALT_KEY=$ALT_KEY
ALT_SECRET=$ALT_SECRET
ENV
echo "steward up: pid $(cat "$W/steward.pid"), S3 at http://127.0.0.1:$S3_PORT, env in $W/env"
