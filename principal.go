package steward

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// PrincipalKind says whether a principal is a person or a service account.
type PrincipalKind string

const (
	KindUser    PrincipalKind = "user"
	KindService PrincipalKind = "service"
)

// Principal is who is asking, as established by a verified OpenID Connect
// token, a short-term credential or a service key. Every component decides and
// audits on a Principal and on nothing else.
type Principal struct {
	Kind      PrincipalKind `json:"kind"`
	Subject   string        `json:"sub"`      // stable subject at the issuer
	Username  string        `json:"username"` // the name policies use
	Groups    []string      `json:"groups,omitempty"`
	Roles     []string      `json:"roles,omitempty"`
	Issuer    string        `json:"iss"`
	ClientID  string        `json:"client_id,omitempty"` // azp: the client the token was issued to
	TokenID   string        `json:"jti,omitempty"`
	IssuedAt  time.Time     `json:"iat,omitzero"`
	ExpiresAt time.Time     `json:"exp,omitzero"`
}

// InGroup reports whether p is a member of group g.
func (p *Principal) InGroup(g string) bool { return slices.Contains(p.Groups, g) }

// HasRole reports whether p holds role r.
func (p *Principal) HasRole(r string) bool { return slices.Contains(p.Roles, r) }

// LogValue keeps tokens and other detail out of logs: only who, never how.
func (p *Principal) LogValue() slog.Value {
	if p == nil {
		return slog.StringValue("anonymous")
	}
	return slog.GroupValue(slog.String("user", p.Username), slog.String("kind", string(p.Kind)))
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal carried by ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Secret is a string that never appears in logs or fmt output.
type Secret string

func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }
func (Secret) String() string       { return "[redacted]" }
func (Secret) GoString() string     { return "[redacted]" }

// Reveal returns the secret's value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }
