// Package steward holds the domain types every part of Steward shares: the
// Principal that identity produces and every component consumes, the users,
// groups and service accounts the metastore keeps, the audit event every
// component records, and the one error type whose kinds each transport maps to
// its own codes (HTTP status, S3 error XML, PostgreSQL SQLSTATE).
//
// Implementations live in packages named for what they depend on
// (internal/metastore, internal/audit, internal/identity, internal/idp, ...);
// this package imports none of them.
package steward
