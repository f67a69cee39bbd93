// Package s3api is the S3 protocol front of Steward's gateway: it verifies
// AWS Signature Version 4 (Authorization header, presigned query and
// aws-chunked streaming bodies with their trailing checksums), routes
// path-style and virtual-host-style requests to S3 operations, maps every
// operation to an access type and resource (see ACCESS.md), asks the
// policy engine through an Authorizer, audits every request (allowed,
// denied or failed) and serves it from an objectstore.Store, answering in
// S3's own XML and error format.
//
// Credentials come from a CredentialResolver (internal/sts: short-term
// sessions from AssumeRoleWithWebIdentity and long-lived service-account
// keys). Requests to the endpoint root that carry an STS Action are handed
// to the resolver when it also implements STSHandler.
//
// Deny by default and fail closed: there is no anonymous access, a request
// is decided before the store is touched (a denied GET of a missing key is
// AccessDenied, never NoSuchKey), and if the audit record cannot be written
// the request fails with 503 ServiceUnavailable.
package s3api
