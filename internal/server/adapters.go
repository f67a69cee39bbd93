package server

import (
	"context"
	"errors"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/idp"
)

// hasher gives the API the provider's password hashing.
type hasher struct{}

func (hasher) HashPassword(pw string) (string, error) { return idp.HashPassword(pw) }
func (hasher) NewSecret() (steward.Secret, error)     { return idp.NewSecret(), nil }

// auditReader gives the API read access to the audit trail's files.
type auditReader struct{ dir string }

var errStop = errors.New("stop")

func (a auditReader) Query(ctx context.Context, f api.AuditFilter, fn func(api.AuditEntry) error) error {
	return audit.Query(a.dir, audit.Filter{
		Actor: f.Actor, Action: f.Action, Resource: f.Resource, Decision: f.Decision,
		Since: f.Since, Until: f.Until, Limit: f.Limit,
	}, func(r audit.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(api.AuditEntry{Seq: r.Seq, Hash: r.Hash, AuditEvent: r.AuditEvent})
	})
}

func (a auditReader) Verify(ctx context.Context) (api.AuditVerifyResult, error) {
	rep, err := audit.Verify(a.dir)
	if err != nil {
		return api.AuditVerifyResult{}, err
	}
	res := api.AuditVerifyResult{OK: rep.OK(), Records: int64(rep.Records), Segments: rep.Segments}
	if !rep.OK() {
		res.Problem = rep.Problem.Message
	}
	return res, nil
}

// revocationChecker refuses access tokens of the built-in provider that
// were revoked at its /revoke endpoint before they expire.
type revocationChecker struct {
	*identity.Multi
	idp    *idp.Provider
	issuer string
}

func (r revocationChecker) Verify(ctx context.Context, raw string) (*steward.Principal, error) {
	p, err := r.Multi.Verify(ctx, raw)
	if err != nil || r.idp == nil || p.Issuer != r.issuer || p.TokenID == "" {
		return p, err
	}
	revoked, err := r.idp.IsRevoked(ctx, p.TokenID)
	if err != nil {
		return nil, steward.WrapError(steward.EUnavailable, "identity.revocation", err, "identity provider unavailable")
	}
	if revoked {
		return nil, steward.Errorf(steward.EUnauthenticated, "token revoked")
	}
	return p, nil
}
