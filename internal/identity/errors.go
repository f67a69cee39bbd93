package identity

import (
	"errors"

	"github.com/stewardhq/steward"
)

// reason is why a token was refused: a metric label and a fixed message that
// is safe to show the caller (it never echoes the token or internal URLs).
type reason struct {
	label   string
	message string
	kind    steward.ErrorKind
}

var (
	reasonMalformed   = reason{"malformed", "token malformed", steward.EUnauthenticated}
	reasonTooLarge    = reason{"too_large", "token too large", steward.EUnauthenticated}
	reasonAlg         = reason{"unsupported_alg", "unsupported signing algorithm", steward.EUnauthenticated}
	reasonSignature   = reason{"bad_signature", "token signature invalid", steward.EUnauthenticated}
	reasonUnknownKey  = reason{"unknown_key", "token signature invalid", steward.EUnauthenticated}
	reasonExpired     = reason{"expired", "token expired", steward.EUnauthenticated}
	reasonNotYet      = reason{"not_yet_valid", "token not yet valid", steward.EUnauthenticated}
	reasonAudience    = reason{"audience", "token audience not accepted", steward.EUnauthenticated}
	reasonIssuer      = reason{"issuer", "token issuer not accepted", steward.EUnauthenticated}
	reasonTokenType   = reason{"token_type", "token type not accepted", steward.EUnauthenticated}
	reasonNoUsername  = reason{"no_username", "token has no username", steward.EUnauthenticated}
	reasonClaimType   = reason{"claim_type", "token claim has the wrong type", steward.EUnauthenticated}
	reasonUnavailable = reason{"unavailable", "identity provider unavailable", steward.EUnavailable}
)

// errorf builds the *steward.Error for r with cause kept for logs.
func (r reason) err(cause error) *steward.Error {
	return &steward.Error{Kind: r.kind, Op: "identity.Verify", Message: r.message, Err: cause}
}

// verifyError carries the reason along the internal call chain; Verify
// converts it to a *steward.Error and counts it.
type verifyError struct {
	r     reason
	cause error
}

func (e *verifyError) Error() string {
	if e.cause != nil {
		return e.r.message + ": " + e.cause.Error()
	}
	return e.r.message
}

func (e *verifyError) Unwrap() error { return e.cause }

func fail(r reason, cause error) error { return &verifyError{r: r, cause: cause} }

func failf(r reason, detail string) error { return &verifyError{r: r, cause: errors.New(detail)} }

// reasonOf returns the reason carried by err, or reasonMalformed.
func reasonOf(err error) reason {
	var ve *verifyError
	if errors.As(err, &ve) {
		return ve.r
	}
	return reasonMalformed
}
