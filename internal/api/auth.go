package api

import (
	"context"
	"time"

	"github.com/stewardhq/steward"
)

// RequestID returns the request ID of ctx.
func RequestID(ctx context.Context) string { return steward.RequestIDFrom(ctx) }

// requireUser returns the caller or an unauthenticated error.
func requireUser(ctx context.Context) (*steward.Principal, error) {
	p := steward.PrincipalFrom(ctx)
	if p == nil {
		return nil, steward.Errorf(steward.EUnauthenticated, "a bearer token is required")
	}
	return p, nil
}

// IsAdmin reports whether p administers Steward: a member of the admin
// group or holder of the steward-admin role.
func IsAdmin(p *steward.Principal, adminGroup string) bool {
	return p != nil && (p.InGroup(adminGroup) || p.HasRole("steward-admin"))
}

// admit decides an administrative action and audits the decision before
// the action runs: no change happens without a durable record of who
// asked for it. A failing audit trail fails the request.
func (a *API) admit(ctx context.Context, action, resource string, details map[string]any) (*steward.Principal, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	ev := a.event(ctx, p, action, resource)
	ev.Details = details
	if IsAdmin(p, a.d.AdminGroup) {
		ev.Decision, ev.Outcome = "allow", "success"
	} else {
		ev.Decision, ev.Outcome, ev.Reason = "deny", "failure", "not an administrator"
	}
	if err := a.d.Auditor.Record(ctx, ev); err != nil {
		return nil, steward.WrapError(steward.EUnavailable, action, err, "audit trail unavailable")
	}
	if ev.Decision == "deny" {
		return nil, steward.Errorf(steward.EPermission, "administrator rights are required")
	}
	return p, nil
}

// failed records that an admitted action did not complete.
func (a *API) failed(ctx context.Context, p *steward.Principal, action, resource string, cause error) {
	ev := a.event(ctx, p, action, resource)
	ev.Outcome, ev.Reason = "failure", steward.MessageOf(cause)
	if err := a.d.Auditor.Record(ctx, ev); err != nil {
		a.d.Logger.ErrorContext(ctx, "audit record of failure lost", "action", action, "err", err)
	}
}

func (a *API) event(ctx context.Context, p *steward.Principal, action, resource string) steward.AuditEvent {
	return steward.AuditEvent{
		Time:       time.Now().UTC(),
		RequestID:  steward.RequestIDFrom(ctx),
		Actor:      p.Username,
		ActorKind:  string(p.Kind),
		Action:     action,
		Resource:   resource,
		ClientAddr: steward.ClientAddrFrom(ctx),
	}
}
