package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/policystore"
)

type accessIDPath struct {
	ID string `path:"id" maxLength:"64"`
}

type accessRequestBody struct {
	Body *policystore.AccessRequest
}

type accessRequestsBody struct {
	Body []*policystore.AccessRequest
}

type createAccessInput struct {
	Body struct {
		Resource      string   `json:"resource" minLength:"1" maxLength:"2048" doc:"s3://bucket/prefix (granted recursively), dataset:NAME or table:NAME."`
		Accesses      []string `json:"accesses" minItems:"1" maxItems:"16" doc:"read, write, list, create, delete, select or discover."`
		Duration      string   `json:"duration" minLength:"1" maxLength:"32" doc:"How long, e.g. 2h, 30m, 7d."`
		Justification string   `json:"justification" minLength:"1" maxLength:"4000"`
	}
}

type listAccessInput struct {
	Scope  string `query:"scope" enum:"mine,approvable,all," doc:"mine, approvable, or all (administrators); default: yours and those you can decide."`
	Status string `query:"status" enum:"pending,approved,denied,revoked,expired," doc:"Only requests in this status."`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

type decideAccessInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body *struct {
		Comment  string `json:"comment,omitempty" maxLength:"4000"`
		Duration string `json:"duration,omitempty" maxLength:"32" doc:"Approve for less than requested (e.g. 1h)."`
	}
}

type revokeAccessInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body *struct {
		Comment string `json:"comment,omitempty" maxLength:"4000"`
	}
}

type ownersBody struct {
	Body []*policystore.Owners
}

type setOwnersInput struct {
	Body struct {
		Resource string   `json:"resource" minLength:"1" maxLength:"2048" doc:"A resource pattern: s3://bucket/prefix/**, dataset:PATTERN or table:PATTERN."`
		Users    []string `json:"users,omitempty" maxItems:"256"`
		Groups   []string `json:"groups,omitempty" maxItems:"256"`
	}
}

type deleteOwnersInput struct {
	Resource string `query:"resource" required:"true" minLength:"1" maxLength:"2048"`
}

// ParseDuration parses a grant duration: Go's syntax (90m, 2h30m) plus
// days (7d).
func ParseDuration(s string) (time.Duration, error) {
	bad := steward.Errorf(steward.EInvalid, "duration: invalid %q (want e.g. 30m, 2h or 7d)", s)
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 || d > 3650 {
			return 0, bad
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

func (a *API) actor(p *steward.Principal) policystore.Actor {
	return policystore.Actor{Username: p.Username, Groups: p.Groups, Admin: IsAdmin(p, a.d.AdminGroup)}
}

// accessHook audits an access-request step inside its transaction.
func (a *API) accessHook(p *steward.Principal, action string, extra map[string]any) policystore.AccessHook {
	return func(ctx context.Context, r *policystore.AccessRequest) error {
		ev := a.event(ctx, p, action, "access-request:"+r.ID)
		ev.Decision, ev.Outcome = "allow", "success"
		ev.Details = map[string]any{"resource": r.Resource, "accesses": r.Accesses, "requester": r.Requester, "status": r.Status, "duration_seconds": r.DurationSeconds}
		if r.PolicyID != "" {
			ev.Policy = r.PolicyID
			ev.Details["grant_start"], ev.Details["grant_end"] = r.GrantStart, r.GrantEnd
		}
		for k, v := range extra {
			ev.Details[k] = v
		}
		if err := a.d.Auditor.Record(ctx, ev); err != nil {
			return steward.WrapError(steward.EUnavailable, action, err, "audit trail unavailable")
		}
		return nil
	}
}

// accessFailed audits a refused or failed access-request step.
func (a *API) accessFailed(ctx context.Context, p *steward.Principal, action, resource string, cause error) {
	ev := a.event(ctx, p, action, resource)
	ev.Outcome, ev.Reason = "failure", steward.MessageOf(cause)
	if steward.KindOf(cause) == steward.EPermission {
		ev.Decision = "deny"
	}
	if err := a.d.Auditor.Record(ctx, ev); err != nil {
		a.d.Logger.ErrorContext(ctx, "audit record of failure lost", "action", action, "err", err)
	}
}

func (a *API) registerAccess() {
	st := a.d.Policies
	op := func(id, method, p, summary string, errs ...int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: p, Summary: summary,
			Tags: []string{"access"}, Security: bearer, Errors: append([]int{400, 401, 403}, errs...)}
	}
	huma.Register(a.h, op("create-access-request", http.MethodPost, "/access-requests", "Request time-bound access to a dataset or path"),
		func(ctx context.Context, in *createAccessInput) (*accessRequestBody, error) {
			const action = "access.request"
			p, err := requireUser(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			b := &in.Body
			ri := policystore.RequestInput{Resource: b.Resource, Justification: b.Justification}
			if ri.Duration, err = ParseDuration(b.Duration); err == nil {
				for i, s := range b.Accesses {
					ac, ok := policy.ParseAccess(s)
					if !ok {
						err = steward.Errorf(steward.EInvalid, "accesses[%d]: unknown access type %q", i, s)
						break
					}
					ri.Accesses = append(ri.Accesses, ac)
				}
			}
			var r *policystore.AccessRequest
			if err == nil {
				r, err = st.RequestAccess(ctx, a.actor(p), ri, a.accessHook(p, action, map[string]any{"justification": ri.Justification}))
			}
			if err != nil {
				a.accessFailed(ctx, p, action, b.Resource, err)
				return nil, a.problem(ctx, action, err)
			}
			return &accessRequestBody{Body: r}, nil
		})
	huma.Register(a.h, op("list-access-requests", http.MethodGet, "/access-requests", "List access requests: yours and those you can decide"),
		func(ctx context.Context, in *listAccessInput) (*accessRequestsBody, error) {
			const action = "access.list"
			p, err := requireUser(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			f := policystore.AccessFilter{Status: in.Status, Limit: in.Limit}
			switch in.Scope {
			case "mine":
				f.Mine = true
			case "approvable":
				f.Approvable = true
			case "all":
				if _, err := a.admit(ctx, action, "access-requests", map[string]any{"scope": "all"}); err != nil {
					return nil, a.problem(ctx, action, err)
				}
			default:
				f.Mine, f.Approvable = true, true
			}
			rs, err := st.ListAccessRequests(ctx, a.actor(p), f)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			return &accessRequestsBody{Body: rs}, nil
		})
	huma.Register(a.h, op("get-access-request", http.MethodGet, "/access-requests/{id}", "Get an access request", 404),
		func(ctx context.Context, in *accessIDPath) (*accessRequestBody, error) {
			p, err := requireUser(ctx)
			if err != nil {
				return nil, a.problem(ctx, "access.get", err)
			}
			r, err := st.AccessRequest(ctx, in.ID)
			if err == nil && !policystore.CanRevoke(a.actor(p), r) {
				err = steward.Errorf(steward.ENotFound, "access request %q not found", in.ID)
			}
			if err != nil {
				return nil, a.problem(ctx, "access.get", err)
			}
			return &accessRequestBody{Body: r}, nil
		})
	decide := func(action string, approve bool) func(ctx context.Context, in *decideAccessInput) (*accessRequestBody, error) {
		return func(ctx context.Context, in *decideAccessInput) (*accessRequestBody, error) {
			p, err := requireUser(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			var di policystore.DecideInput
			if in.Body != nil {
				di.Comment = in.Body.Comment
				if in.Body.Duration != "" {
					di.Duration, err = ParseDuration(in.Body.Duration)
				}
			}
			var r *policystore.AccessRequest
			if err == nil {
				hook := a.accessHook(p, action, map[string]any{"comment": di.Comment})
				if approve {
					r, err = st.Approve(ctx, in.ID, a.actor(p), di, hook)
				} else {
					r, err = st.Deny(ctx, in.ID, a.actor(p), di, hook)
				}
			}
			if err != nil {
				a.accessFailed(ctx, p, action, "access-request:"+in.ID, err)
				return nil, a.problem(ctx, action, err)
			}
			a.refreshEngine(ctx, &policystore.Result{Changed: approve})
			return &accessRequestBody{Body: r}, nil
		}
	}
	huma.Register(a.h, op("approve-access-request", http.MethodPost, "/access-requests/{id}/approve", "Approve a request: the grant starts now and ends by itself", 404, 409),
		decide("access.approve", true))
	huma.Register(a.h, op("deny-access-request", http.MethodPost, "/access-requests/{id}/deny", "Deny a request", 404, 409),
		decide("access.deny", false))
	huma.Register(a.h, op("revoke-access-request", http.MethodPost, "/access-requests/{id}/revoke", "End an approved grant early", 404, 409),
		func(ctx context.Context, in *revokeAccessInput) (*accessRequestBody, error) {
			const action = "access.revoke"
			p, err := requireUser(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			comment := ""
			if in.Body != nil {
				comment = in.Body.Comment
			}
			r, err := st.Revoke(ctx, in.ID, a.actor(p), comment, a.accessHook(p, action, map[string]any{"comment": comment}))
			if err != nil {
				a.accessFailed(ctx, p, action, "access-request:"+in.ID, err)
				return nil, a.problem(ctx, action, err)
			}
			a.refreshEngine(ctx, &policystore.Result{Changed: true})
			return &accessRequestBody{Body: r}, nil
		})

	// Resource owners.
	huma.Register(a.h, op("list-resource-owners", http.MethodGet, "/resource-owners", "Who owns which resources (and approves requests for them)"),
		func(ctx context.Context, _ *struct{}) (*ownersBody, error) {
			if _, err := requireUser(ctx); err != nil {
				return nil, a.problem(ctx, "owners.list", err)
			}
			os, err := st.ListOwners(ctx)
			if err != nil {
				return nil, a.problem(ctx, "owners.list", err)
			}
			return &ownersBody{Body: os}, nil
		})
	huma.Register(a.h, op("set-resource-owners", http.MethodPut, "/resource-owners", "Set the owners of a resource pattern"),
		func(ctx context.Context, in *setOwnersInput) (*struct{}, error) {
			const action = "owners.set"
			b := &in.Body
			p, err := a.admit(ctx, action, b.Resource, map[string]any{"users": b.Users, "groups": b.Groups})
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			if err := st.SetOwners(ctx, policystore.Owners{Resource: b.Resource, Users: b.Users, Groups: b.Groups}, p.Username); err != nil {
				a.failed(ctx, p, action, b.Resource, err)
				return nil, a.problem(ctx, action, err)
			}
			return nil, nil
		})
	huma.Register(a.h, op("delete-resource-owners", http.MethodDelete, "/resource-owners", "Remove the owners of a resource pattern", 404),
		func(ctx context.Context, in *deleteOwnersInput) (*struct{}, error) {
			const action = "owners.delete"
			p, err := a.admit(ctx, action, in.Resource, nil)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			if err := st.DeleteOwners(ctx, in.Resource); err != nil {
				a.failed(ctx, p, action, in.Resource, err)
				return nil, a.problem(ctx, action, err)
			}
			return nil, nil
		})
}
