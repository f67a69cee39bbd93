#!/usr/bin/env bash
# Drives s3cmd and rclone against a Steward started by steward-up.sh, as
# the demo administrator carol with short-term credentials from
# `steward creds` (static key + session token written into each client's
# config). Flows: make bucket, put, list, get, delete, sync of a small
# tree, multipart upload of a large file. Prints one line per step and
# exits non-zero on the first failure.
set -euo pipefail
W=${W:-/tmp/steward-compat}
# shellcheck disable=SC1091
. "$W/env"
export STEWARD_HOME
T="$W/clients"
rm -rf "$T" && mkdir -p "$T/tree/a/b" "$T/out"

creds=$("$STEWARD" creds)
field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$creds" "$1"; }
AK=$(field AccessKeyId); SK=$(field SecretAccessKey); TOKEN=$(field SessionToken)
hostport=${S3_ENDPOINT#http://}

cat >"$T/s3cfg" <<CFG
[default]
host_base = $hostport
host_bucket = $hostport
use_https = False
signature_v2 = False
bucket_location = us-east-1
multipart_chunk_size_mb = 16
CFG
cat >"$T/rclone.conf" <<CFG
[steward]
type = s3
provider = Other
access_key_id = $AK
secret_access_key = $SK
session_token = $TOKEN
endpoint = $S3_ENDPOINT
region = us-east-1
force_path_style = true
CFG

step() { echo "== $*"; }
# s3cmd takes the session from the environment: with a token in its config
# it would also try to refresh an EC2 role on every request.
s3c() { AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SESSION_TOKEN=$TOKEN s3cmd -c "$T/s3cfg" --no-progress "$@"; }
# rclone's SDK cannot combine a custom CA bundle with its own transport.
rcl() { env -u AWS_CA_BUNDLE rclone --config "$T/rclone.conf" --s3-upload-cutoff 16M --s3-chunk-size 16M "$@"; }

echo "hello from s3cmd" >"$T/small.txt"
for i in 1 2 3; do echo "file $i" >"$T/tree/a/f$i.txt"; echo "deep $i" >"$T/tree/a/b/g$i.txt"; done
head -c $((80 << 20)) /dev/urandom >"$T/large.bin"   # 80 MiB: 5 parts of 16 MiB
sum_large=$(sha256sum <"$T/large.bin" | cut -d' ' -f1)

# Leftovers of an interrupted run.
s3c del --recursive --force s3://compat-s3cmd/ >/dev/null 2>&1 || true
s3c rb s3://compat-s3cmd >/dev/null 2>&1 || true
rcl purge steward:compat-rclone >/dev/null 2>&1 || true

step "s3cmd mb/put/ls/get/del"
s3c mb s3://compat-s3cmd
s3c put "$T/small.txt" s3://compat-s3cmd/dir/small.txt
s3c ls s3://compat-s3cmd/dir/ | grep small.txt >/dev/null
s3c ls | grep compat-s3cmd >/dev/null
s3c get --force s3://compat-s3cmd/dir/small.txt "$T/out/small.txt"
cmp "$T/small.txt" "$T/out/small.txt"
s3c info s3://compat-s3cmd/dir/small.txt >/dev/null
step "s3cmd sync (tree up, tree down)"
s3c sync "$T/tree/" s3://compat-s3cmd/tree/
[ "$(s3c ls -r s3://compat-s3cmd/tree/ | wc -l)" = 6 ]
s3c sync s3://compat-s3cmd/tree/ "$T/out/s3cmd-tree/"
diff -r "$T/tree" "$T/out/s3cmd-tree"
step "s3cmd multipart (80 MiB in 16 MiB parts)"
s3c put "$T/large.bin" s3://compat-s3cmd/large.bin
s3c get --force s3://compat-s3cmd/large.bin "$T/out/large-s3cmd.bin"
[ "$(sha256sum <"$T/out/large-s3cmd.bin" | cut -d' ' -f1)" = "$sum_large" ]
step "s3cmd del/rb"
s3c del s3://compat-s3cmd/dir/small.txt
s3c del --recursive --force s3://compat-s3cmd/
s3c rb s3://compat-s3cmd

step "rclone mkdir/copy/ls/cat/delete"
rcl mkdir steward:compat-rclone
rcl copyto "$T/small.txt" steward:compat-rclone/dir/small.txt
rcl ls steward:compat-rclone | grep dir/small.txt >/dev/null
rcl lsd steward: | grep compat-rclone >/dev/null
[ "$(rcl cat steward:compat-rclone/dir/small.txt)" = "hello from s3cmd" ]
rcl deletefile steward:compat-rclone/dir/small.txt
step "rclone sync (tree up, check, tree down)"
rcl sync "$T/tree" steward:compat-rclone/tree
rcl check "$T/tree" steward:compat-rclone/tree
rcl sync steward:compat-rclone/tree "$T/out/rclone-tree"
diff -r "$T/tree" "$T/out/rclone-tree"
step "rclone multipart (80 MiB in 16 MiB parts)"
rcl copyto "$T/large.bin" steward:compat-rclone/large.bin
rcl copyto steward:compat-rclone/large.bin "$T/out/large-rclone.bin"
[ "$(sha256sum <"$T/out/large-rclone.bin" | cut -d' ' -f1)" = "$sum_large" ]
step "rclone purge"
rcl purge steward:compat-rclone
! rcl lsd steward: | grep compat-rclone >/dev/null
echo "clients: s3cmd and rclone flows passed"
