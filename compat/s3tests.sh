#!/usr/bin/env bash
# Runs the core of ceph/s3-tests against a Steward started by steward-up.sh.
# S3TESTS_DIR must name a local checkout of https://github.com/ceph/s3-tests
# (nothing is fetched here). Extra arguments go to pytest.
#
# The core selection: bucket and object CRUD, listing v1 and v2, multipart,
# ranges, copy, presigned URLs, metadata and headers, versioning, object
# tagging, conditional requests. Left out: features Steward's gateway does
# not implement (ACLs, bucket policies, CORS, lifecycle, encryption, logging,
# website, object lock, POST object, bucket tagging, IAM/STS/SNS/select,
# storage classes, append, GetObjectAttributes, GetObject by part number,
# additional checksums), tests that need ACLs to set up (canned ACLs, the
# alt user denied by ACL) and anonymous access, which Steward refuses by
# design; conditional writes, which Debian's boto3 1.26 cannot send.
# S3TESTS_PYTHON picks another Python (with pytest, boto3, munch, isodate)
# than Debian's /usr/bin/python3, e.g. one with a current botocore.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
W=${W:-/tmp/steward-compat}
: "${S3TESTS_DIR:?set S3TESTS_DIR to a local checkout of ceph/s3-tests}"
# shellcheck disable=SC1091
. "$W/env"

conf="$W/s3tests.conf"
section() { # name steward-user key secret (user_id: the Owner ID the gateway reports)
  cat <<SEC
[$1]
display_name = $2
user_id = $2
email = $2@example.com
access_key = $3
secret_key = $4
SEC
}
{
  cat <<CONF
[DEFAULT]
host = 127.0.0.1
port = $S3_PORT
is_secure = False
ssl_verify = False

[fixtures]
bucket prefix = s3t-{random}-

CONF
  section "s3 main" s3main "$MAIN_KEY" "$MAIN_SECRET"; echo
  section "s3 alt" s3alt "$ALT_KEY" "$ALT_SECRET"; echo
  section "s3 tenant" s3alt "$ALT_KEY" "$ALT_SECRET"; echo "tenant = none"; echo
  section "iam" s3alt "$ALT_KEY" "$ALT_SECRET"; echo
  section "iam root" s3alt "$ALT_KEY" "$ALT_SECRET"; echo
  section "iam alt root" s3alt "$ALT_KEY" "$ALT_SECRET"
} >"$conf"

MARKERS='not (lifecycle or lifecycle_expiration or lifecycle_transition or cloud_transition or cloud_restore
 or encryption or sse_s3 or bucket_encryption or bucket_policy or bucket_logging or bucket_logging_cleanup
 or object_lock or s3website or s3website_routing_rules or s3website_redirect_location or s3select or sns
 or iam_account or iam_cross_account or iam_role or iam_tenant or iam_user or user_policy or role_policy
 or group_policy or session_policy or appendobject or storage_class or abac_test or test_of_sts
 or webidentity_test or object_ownership or fails_on_aws or auth_aws2 or fails_with_subdomain
 or conditional_write)'
NAMES='not (acl or cors or policy or post_object or website or lifecycle or encrypt or sse or logging
 or ownership or object_lock or bucket_tagging or public_access or restore or append or storage_class
 or grant or anon or torrent or bucketv2 or tenant or block or notification or 100_continue
 or access_bucket or raw_get or bucket_gone or not_owned or nonowner or object_attributes or get_part
 or checksum or cksum)'
MARKERS=$(echo "$MARKERS" | tr '\n' ' ')
NAMES=$(echo "$NAMES" | tr '\n' ' ')
cd "$S3TESTS_DIR"
set -x
S3TEST_CONF="$conf" "${S3TESTS_PYTHON:-/usr/bin/python3}" -m pytest -q -p no:cacheprovider -o addopts= \
  -m "$MARKERS" -k "$NAMES" \
  s3tests/functional/test_s3.py s3tests/functional/test_headers.py "$@"
