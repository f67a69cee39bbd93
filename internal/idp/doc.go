// Package idp is Steward's built-in OpenID provider, the embedded default
// identity provider (Keycloak or any OpenID provider replaces it at scale).
//
// It is built on github.com/zitadel/oidc/v3/pkg/op and offers discovery,
// JWKS with key rotation, the authorization code flow with PKCE (S256 only)
// for the portal and the CLI, the device authorization grant for the CLI,
// the resource-owner password grant (for scripts and tests; can be switched
// off), client credentials for service accounts, and rotating refresh
// tokens with reuse detection.
//
// Users, groups and service accounts come from a steward.IdentityStore; all
// provider state (signing keys, auth requests, codes, device authorizations,
// refresh tokens, revocations, login throttling) lives in the metastore so
// that several replicas on one PostgreSQL behave as one provider. Signing
// keys are sealed with AES-256-GCM under Config.KeyEncryptionKey.
//
// Every login, token issuance, refresh, revocation and key rotation is
// recorded through a steward.Auditor; if recording fails, the action fails.
package idp
