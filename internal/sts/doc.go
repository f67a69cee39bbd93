// Package sts issues Steward's short-term S3 credentials and keeps the
// long-lived access keys of service accounts; it is the CredentialResolver
// behind the S3 gateway (internal/s3api).
//
// AssumeRoleWithWebIdentity works as AWS defines it: a form POST to the S3
// endpoint root with a web identity token (any token the configured
// identity.TokenVerifier accepts), answered in STS XML, so the aws CLI and
// the AWS SDKs' web-identity providers work unchanged.
//
// Sessions are stateless, so any replica verifies them without shared
// session state:
//
//   - The session token is "stw1.<key id>.<base64url(nonce || AES-256-GCM
//     ciphertext)>" of the session (principal, groups, roles, expiry,
//     narrowing, a random session id), sealed under a cluster key with the
//     key id as associated data.
//   - AccessKeyId = "ASIA" + the first 16 characters of base32(HMAC-SHA256(
//     cluster key, "steward-sts-akid:" + session id)).
//   - SecretAccessKey = the first 40 characters of base64(HMAC-SHA256(
//     cluster key, "steward-sts-secret:" + session id)).
//
// A replica that opens the token recomputes both, so it needs nothing but
// the cluster keys. Cluster keys (32 random bytes each, with an id) live in
// the metastore encrypted under the key-encryption key given to New; a new
// key is made daily and old ones are kept for the longest session.
//
// Revocation: revoking a session id, or a user (every session issued up to
// that moment), writes a row in the metastore; each replica refreshes its
// copy of the list at least every 15 seconds, so a revocation takes
// effect within a minute everywhere.
//
// Verification is cached: a session token that verified is kept (a
// bounded cache of successes only), and later requests with it skip the
// decryption and key derivations but are still checked for the access
// key, expiry, the cluster key still being known, and revocation. The
// credential returned is then shared by those requests and read-only.
//
// Service accounts get long-lived access keys (AKIA...), created and
// deleted by admins, whose secrets are stored encrypted under the KEK
// because SigV4 verification needs the plaintext secret. A replica caches
// a key for at most 5 s, so a deletion, rotation or disabled account takes
// effect everywhere within that (at once on the replica that makes it).
package sts
