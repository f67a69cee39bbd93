// Package identity turns bearer tokens into principals: it verifies OpenID
// Connect access and ID tokens (JWS compact serialization) from any issuer,
// Keycloak in production and Steward's built-in provider by default, and maps
// their claims to one *steward.Principal.
//
// The verifier is written on go-jose and is deliberately strict: the signing
// algorithm must be an allowed asymmetric one and must match the key type
// (so "none" and HMAC-with-a-public-key are refused), the issuer must match
// exactly, the audience or authorized party must be accepted, expiry is
// required and time checks allow only a small bounded skew. Signing keys come
// from a KeySource; the remote one discovers the issuer's JWKS, caches it,
// refreshes it in the background as Cache-Control allows, and re-fetches on
// an unknown key id at most once per MinRefreshInterval so that a flood of
// forged tokens cannot hammer the issuer.
//
// Every failure is a *steward.Error of kind EUnauthenticated (or EUnavailable
// when the issuer cannot be reached) whose message is short, fixed and safe to
// return to the caller; detail stays in the wrapped error for logs.
package identity
