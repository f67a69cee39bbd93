package s3api

import (
	"context"
	"net/netip"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// Decision is an Authorizer's answer.
type Decision struct {
	Allowed bool
	// Policy is the deciding policy as "id@version", empty when denied by
	// default.
	Policy string
	Reason string
}

// AuthzRequest is one question to the Authorizer.
type AuthzRequest struct {
	Principal      *steward.Principal
	Access         policy.Access
	Resource       policy.Resource
	Tags           []policy.Tag
	Classification policy.Classification
	Time           time.Time
	ClientIP       netip.Addr
}

// Authorizer decides requests. Implementations must deny when they cannot
// decide (no policies loaded).
type Authorizer interface {
	Decide(ctx context.Context, req *AuthzRequest) Decision
}

// TagSource gives the effective tags and classification of the data a
// request touches (from the catalog, with what lineage propagated). An
// error fails the request closed (503).
type TagSource interface {
	EffectiveTags(ctx context.Context, r policy.Resource) ([]policy.Tag, policy.Classification, error)
}

// NoTags is the TagSource for a gateway without a catalog: no tags.
type NoTags struct{}

// EffectiveTags returns no tags.
func (NoTags) EffectiveTags(context.Context, policy.Resource) ([]policy.Tag, policy.Classification, error) {
	return nil, policy.Unclassified, nil
}

// PolicyDecider is what the live policy engine offers
// (*policystore.Holder, *policy.Engine).
type PolicyDecider interface {
	Decide(req *policy.Request, d *policy.Decision)
}

// EngineAuthorizer adapts a PolicyDecider (the live engine holder) to
// Authorizer.
type EngineAuthorizer struct{ Engine PolicyDecider }

// Decide asks the engine.
func (a EngineAuthorizer) Decide(_ context.Context, r *AuthzRequest) Decision {
	if a.Engine == nil || r.Principal == nil {
		return Decision{Reason: "no policy engine"}
	}
	req := policy.Request{
		User:           r.Principal.Username,
		Groups:         r.Principal.Groups,
		Roles:          r.Principal.Roles,
		Access:         r.Access,
		Resource:       r.Resource,
		Tags:           r.Tags,
		Classification: r.Classification,
		Time:           r.Time,
		ClientIP:       r.ClientIP,
	}
	var d policy.Decision
	a.Engine.Decide(&req, &d)
	out := Decision{Allowed: d.Allowed, Reason: d.Reason}
	if d.PolicyID != "" {
		out.Policy = d.PolicyID + "@" + itoa(d.PolicyVersion)
	}
	return out
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, r *AuthzRequest) Decision

// Decide calls f.
func (f AuthorizerFunc) Decide(ctx context.Context, r *AuthzRequest) Decision { return f(ctx, r) }
