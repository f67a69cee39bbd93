#!/usr/bin/env bash
# Installs what `make s3-compat` needs from Debian: the s3cmd and rclone
# clients and the Python modules ceph/s3-tests imports (PyPI is not used).
# Idempotent: installs only what is missing.
set -euo pipefail

pkgs=(s3cmd rclone python3-pytest python3-boto3 python3-munch python3-isodate
  python3-requests python3-httplib2 python3-lxml python3-tz python3-gevent)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "s3-compat: installing ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
