package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stewardhq/steward"
)

// Multi verifies tokens from several issuers (the built-in provider and an
// external one, say) by dispatching on the token's unverified "iss" claim to
// the verifier for that issuer, which then checks everything, "iss" included.
type Multi struct {
	byIssuer map[string]*Verifier
	order    []*Verifier
	metrics  *Metrics
}

var _ TokenVerifier = (*Multi)(nil)

// NewMulti returns a Multi over verifiers, which must have distinct issuers.
// Refusals of unknown issuers are counted on metrics (which may be nil).
func NewMulti(metrics *Metrics, verifiers ...*Verifier) (*Multi, error) {
	m := &Multi{byIssuer: make(map[string]*Verifier), metrics: metrics}
	for _, v := range verifiers {
		if v == nil {
			continue
		}
		if _, dup := m.byIssuer[v.Issuer()]; dup {
			return nil, steward.Errorf(steward.EInvalid, "identity: issuer %q configured twice", v.Issuer())
		}
		m.byIssuer[v.Issuer()] = v
		m.order = append(m.order, v)
	}
	if len(m.order) == 0 {
		return nil, steward.Errorf(steward.EInvalid, "identity: no issuers configured")
	}
	return m, nil
}

// Verify dispatches rawToken to the verifier of its issuer.
func (m *Multi) Verify(ctx context.Context, rawToken string) (*steward.Principal, error) {
	iss, err := unverifiedIssuer(rawToken)
	if err != nil {
		r := reasonOf(err)
		m.metrics.observe(r.label)
		return nil, r.err(errors.Unwrap(err))
	}
	v, ok := m.byIssuer[iss]
	if !ok {
		m.metrics.observe(reasonIssuer.label)
		return nil, reasonIssuer.err(errors.New("no verifier for issuer"))
	}
	return v.Verify(ctx, rawToken)
}

// Ready reports whether every issuer's keys are available.
func (m *Multi) Ready(ctx context.Context) error {
	for _, v := range m.order {
		if err := v.Ready(ctx); err != nil {
			return fmt.Errorf("issuer %s: %w", v.Issuer(), err)
		}
	}
	return nil
}

// unverifiedIssuer reads "iss" from a token without verifying anything; it
// serves only to pick the verifier.
func unverifiedIssuer(raw string) (string, error) {
	tok, err := splitToken(raw)
	if err != nil {
		return "", err
	}
	b, err := base64.RawURLEncoding.DecodeString(tok.payload)
	if err != nil {
		return "", fail(reasonMalformed, err)
	}
	// A map, not a struct: struct fields match names case-insensitively,
	// and "iss" must be read exactly as the verifier reads it.
	var c map[string]json.RawMessage
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fail(reasonMalformed, err)
	}
	var iss string
	if raw, ok := c["iss"]; !ok || json.Unmarshal(raw, &iss) != nil {
		return "", failf(reasonMalformed, "no string iss")
	}
	return iss, nil
}
