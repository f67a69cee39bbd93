package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/policystore"
)

// RoleAuthorizer is the role that lets a service account ask the decision
// API about other principals.
const RoleAuthorizer = "steward-authorizer"

// Limits of the policy and decision endpoints.
const (
	maxApplyBody     = 2*policy.MaxFileSize + 64<<10 // JSON-escaped file
	maxAuthorizeBody = 4 << 20
	maxBatch         = 1000
)

type policyIDPath struct {
	ID string `path:"id" maxLength:"128" doc:"The policy ID (URL-escaped)."`
}

type policiesBody struct {
	Body []*policystore.Record
}

type policyBody struct {
	Body *policystore.Record
}

type historyBody struct {
	Body []*policystore.HistoryEntry
}

// ApplyResult is the body of apply and delete: the difference and, as
// text, what a person reads.
type ApplyResult struct {
	policystore.Result
	Diff string `json:"diff" doc:"The difference, rendered for people."`
}

type applyBody struct {
	Body *ApplyResult
}

type applyInput struct {
	Body struct {
		File    string `json:"file,omitempty" maxLength:"256" doc:"The file's name, used in error messages."`
		Content string `json:"content" doc:"The policy file, YAML or JSON (see the policy file format)."`
		DryRun  bool   `json:"dry_run,omitempty" doc:"Validate and report the difference; change nothing."`
		Prune   bool   `json:"prune,omitempty" doc:"Also delete admin-written policies the file does not name."`
	}
}

type deleteInput struct {
	ID     string `path:"id" maxLength:"128" doc:"The policy ID (URL-escaped)."`
	DryRun bool   `query:"dry_run" doc:"Report the difference; change nothing."`
}

type exportInput struct {
	IncludeGrants bool `query:"include_grants" doc:"Include the grants of access requests."`
}

type exportOutput struct {
	ContentType string `header:"Content-Type"`
	SetVersion  int64  `header:"Steward-Policy-Version"`
	Body        []byte
}

// TagInput is one effective tag of the resource in a decision question.
type TagInput struct {
	Name  string            `json:"name" minLength:"1" maxLength:"256"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// DecisionQuery is one question to the policy engine.
type DecisionQuery struct {
	User           string     `json:"user,omitempty" maxLength:"256" doc:"Whom the question is about; the caller if empty."`
	Groups         []string   `json:"groups,omitempty" maxItems:"1024"`
	Roles          []string   `json:"roles,omitempty" maxItems:"1024"`
	Access         string     `json:"access,omitempty" maxLength:"32" doc:"read, write, list, create, delete, select, admin or discover."`
	Resource       string     `json:"resource,omitempty" maxLength:"2048" doc:"s3://bucket/key, dataset:NAME, table:NAME or table:NAME#column."`
	Tags           []TagInput `json:"tags,omitempty" maxItems:"256" doc:"The resource's effective tags."`
	Classification string     `json:"classification,omitempty" enum:"C1,C2,C3,C4," doc:"The resource's effective classification."`
	Time           *time.Time `json:"time,omitempty" doc:"Decide as of this time (administrators and authorizers only); now if empty."`
	ClientIP       string     `json:"client_ip,omitempty" maxLength:"64" doc:"The client address to decide for (administrators and authorizers only)."`
}

// MaskOutput is the masking of one column.
type MaskOutput struct {
	Column        string `json:"column"`
	Type          string `json:"type"`
	Expr          string `json:"expr,omitempty"`
	PolicyID      string `json:"policy_id"`
	PolicyVersion int64  `json:"policy_version"`
}

// DecisionOutput is the engine's answer to one question.
type DecisionOutput struct {
	Allowed       bool         `json:"allowed"`
	PolicyID      string       `json:"policy_id,omitempty"`
	PolicyVersion int64        `json:"policy_version,omitempty"`
	Reason        string       `json:"reason"`
	Masks         []MaskOutput `json:"masks,omitempty"`
	RowFilters    []string     `json:"row_filters,omitempty"`
	SetVersion    int64        `json:"set_version" doc:"The policy-set version that decided."`
}

type authorizeInput struct {
	Body struct {
		DecisionQuery
		Requests []DecisionQuery `json:"requests,omitempty" maxItems:"1000" doc:"A batch of questions; then leave the single-question fields empty."`
	}
}

// AuthorizeResult is one decision, or with a batch the decisions in order.
type AuthorizeResult struct {
	*DecisionOutput
	Results []DecisionOutput `json:"results,omitempty"`
}

type authorizeOutput struct {
	Body AuthorizeResult
}

type explainInput struct {
	Body DecisionQuery
}

type explainOutput struct {
	Body policy.Explanation
}

func (a *API) registerPolicy() {
	st := a.d.Policies
	op := func(id, method, p, summary string, errs ...int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: p, Summary: summary,
			Tags: []string{"policy"}, Security: bearer, Errors: append([]int{400, 401, 403}, errs...)}
	}
	huma.Register(a.h, op("list-policies", http.MethodGet, "/policies", "List policies"),
		func(ctx context.Context, _ *struct{}) (*policiesBody, error) {
			if _, err := a.admit(ctx, "policy.list", "policies", nil); err != nil {
				return nil, a.problem(ctx, "policy.list", err)
			}
			rs, err := st.List(ctx)
			if err != nil {
				return nil, a.problem(ctx, "policy.list", err)
			}
			return &policiesBody{Body: rs}, nil
		})
	huma.Register(a.h, op("export-policies", http.MethodGet, "/policies/export", "Export the policy set as a policy file (YAML)"),
		func(ctx context.Context, in *exportInput) (*exportOutput, error) {
			if _, err := a.admit(ctx, "policy.export", "policies", nil); err != nil {
				return nil, a.problem(ctx, "policy.export", err)
			}
			v, ps, err := st.Load(ctx)
			if err != nil {
				return nil, a.problem(ctx, "policy.export", err)
			}
			var keep []*policy.Policy
			for _, p := range ps {
				if in.IncludeGrants || !strings.HasPrefix(p.ID, policystore.GrantPrefix) {
					keep = append(keep, p)
				}
			}
			b, err := policystore.FormatFile(keep)
			if err != nil {
				return nil, a.problem(ctx, "policy.export", err)
			}
			head := fmt.Sprintf("# Steward policy set version %d, exported %s\n", v, time.Now().UTC().Format(time.RFC3339))
			return &exportOutput{ContentType: "application/yaml", SetVersion: v, Body: append([]byte(head), b...)}, nil
		})
	huma.Register(a.h, op("get-policy", http.MethodGet, "/policies/{id}", "Get a policy", 404),
		func(ctx context.Context, in *policyIDPath) (*policyBody, error) {
			if _, err := a.admit(ctx, "policy.get", "policy:"+in.ID, nil); err != nil {
				return nil, a.problem(ctx, "policy.get", err)
			}
			r, err := st.Get(ctx, in.ID)
			if err != nil {
				return nil, a.problem(ctx, "policy.get", err)
			}
			return &policyBody{Body: r}, nil
		})
	huma.Register(a.h, op("get-policy-history", http.MethodGet, "/policies/{id}/history", "Every change of a policy: who, when, the difference"),
		func(ctx context.Context, in *policyIDPath) (*historyBody, error) {
			if _, err := a.admit(ctx, "policy.history", "policy:"+in.ID, nil); err != nil {
				return nil, a.problem(ctx, "policy.history", err)
			}
			h, err := st.History(ctx, in.ID)
			if err != nil {
				return nil, a.problem(ctx, "policy.history", err)
			}
			return &historyBody{Body: h}, nil
		})
	huma.Register(a.h, op("delete-policy", http.MethodDelete, "/policies/{id}", "Delete a policy", 404, 409),
		func(ctx context.Context, in *deleteInput) (*applyBody, error) {
			res := "policy:" + in.ID
			p, err := a.admit(ctx, "policy.delete", res, map[string]any{"dry_run": in.DryRun})
			if err != nil {
				return nil, a.problem(ctx, "policy.delete", err)
			}
			r, err := st.Delete(ctx, in.ID, p.Username, in.DryRun, a.auditChange(p, res))
			if err != nil {
				a.failed(ctx, p, "policy.delete", res, err)
				return nil, a.problem(ctx, "policy.delete", err)
			}
			a.refreshEngine(ctx, r)
			return &applyBody{Body: &ApplyResult{Result: *r, Diff: r.Text()}}, nil
		})
	applyOp := op("apply-policies", http.MethodPost, "/policies/apply", "Apply a policy file: declarative, idempotent, all or nothing", 409, 413)
	applyOp.Description = "Creates and updates the policies the file names so that they match it (and with prune deletes the others). Invalid input changes nothing; the error names the file, the policy and the field. With dry_run nothing changes and the difference is returned."
	applyOp.MaxBodyBytes = maxApplyBody
	applyHandler := func(ctx context.Context, in *applyInput) (*applyBody, error) {
		b := &in.Body
		name := path.Base(strings.TrimSpace(b.File))
		if name == "." || name == "/" || name == "" {
			name = "policies"
		}
		const res = "policies"
		p, err := a.admit(ctx, "policy.apply", res, map[string]any{"file": name, "dry_run": b.DryRun, "prune": b.Prune, "bytes": len(b.Content)})
		if err != nil {
			return nil, a.problem(ctx, "policy.apply", err)
		}
		r, err := st.ApplyFile(ctx, name, []byte(b.Content), policystore.ApplyOptions{Actor: p.Username, DryRun: b.DryRun, Prune: b.Prune, BeforeCommit: a.auditChange(p, res)})
		if err != nil {
			a.failed(ctx, p, "policy.apply", res, err)
			return nil, a.problem(ctx, "policy.apply", err)
		}
		a.refreshEngine(ctx, r)
		return &applyBody{Body: &ApplyResult{Result: *r, Diff: r.Text()}}, nil
	}
	huma.Register(a.h, applyOp, applyHandler)
	colonOp := applyOp
	colonOp.OperationID, colonOp.Path, colonOp.Hidden = "apply-policies-colon", "/policies:apply", true
	huma.Register(a.h, colonOp, applyHandler)

	if a.d.PolicyEngine == nil {
		return
	}
	huma.Register(a.h, op("explain-policy-decision", http.MethodPost, "/policies/explain", "Explain a decision: every candidate policy and why it did or did not apply"),
		func(ctx context.Context, in *explainInput) (*explainOutput, error) {
			q := &in.Body
			p, err := a.admit(ctx, "policy.explain", q.Resource, map[string]any{"user": q.User, "access": q.Access})
			if err != nil {
				return nil, a.problem(ctx, "policy.explain", err)
			}
			req, err := a.decisionRequest(ctx, p, q, 0)
			if err != nil {
				return nil, a.problem(ctx, "policy.explain", err)
			}
			ex := a.d.PolicyEngine.Engine().Explain(req)
			if ex.Steps == nil {
				ex.Steps = []policy.Step{}
			}
			return &explainOutput{Body: ex}, nil
		})
	authOp := huma.Operation{OperationID: "authorize", Method: http.MethodPost, Path: "/authorize", Tags: []string{"policy"},
		Summary:     "Decide one question, or a batch ({\"requests\": [...]}), with the policy engine",
		Description: "Callers may ask about themselves; administrators and service accounts with the steward-authorizer role may ask about any principal. Every decision is audited.",
		Security:    bearer, Errors: []int{400, 401, 403, 413, 503}, MaxBodyBytes: maxAuthorizeBody}
	huma.Register(a.h, authOp, func(ctx context.Context, in *authorizeInput) (*authorizeOutput, error) {
		p, err := requireUser(ctx)
		if err != nil {
			return nil, a.problem(ctx, "authorize", err)
		}
		b := &in.Body
		single := b.DecisionQuery.Access != "" || b.DecisionQuery.Resource != "" || b.DecisionQuery.User != ""
		if len(b.Requests) > 0 && single {
			return nil, a.problem(ctx, "authorize", steward.Errorf(steward.EInvalid, "ask one question or a batch in requests, not both"))
		}
		qs := b.Requests
		if len(qs) == 0 {
			qs = []DecisionQuery{b.DecisionQuery}
		}
		if len(qs) > maxBatch {
			return nil, a.problem(ctx, "authorize", steward.Errorf(steward.ETooLarge, "more than %d requests in one batch", maxBatch))
		}
		reqs := make([]*policy.Request, len(qs))
		for i := range qs {
			if reqs[i], err = a.decisionRequest(ctx, p, &qs[i], i+1); err != nil {
				if steward.KindOf(err) == steward.EPermission {
					a.deniedAsk(ctx, p, &qs[i], err)
				}
				return nil, a.problem(ctx, "authorize", err)
			}
		}
		eng := a.d.PolicyEngine.Engine()
		out := make([]DecisionOutput, len(reqs))
		var d policy.Decision
		for i, req := range reqs {
			eng.Decide(req, &d)
			out[i] = decisionOutput(&d, eng)
			if err := a.auditDecision(ctx, p, req, &d); err != nil {
				return nil, a.problem(ctx, "authorize", err)
			}
		}
		res := &authorizeOutput{}
		if len(b.Requests) > 0 {
			res.Body.Results = out
		} else {
			res.Body.DecisionOutput = &out[0]
		}
		return res, nil
	})
}

func decisionOutput(d *policy.Decision, e *policy.Engine) DecisionOutput {
	o := DecisionOutput{Allowed: d.Allowed, PolicyID: d.PolicyID, PolicyVersion: d.PolicyVersion, Reason: d.Reason}
	if e != nil {
		o.SetVersion = e.Version()
	}
	for _, m := range d.Masks {
		o.Masks = append(o.Masks, MaskOutput{Column: m.Column, Type: string(m.Type), Expr: m.Expr, PolicyID: m.PolicyID, PolicyVersion: m.PolicyVersion})
	}
	if len(d.RowFilters) > 0 {
		o.RowFilters = append([]string(nil), d.RowFilters...)
	}
	return o
}

// mayAskForOthers: administrators and authorizer service accounts.
func (a *API) mayAskForOthers(p *steward.Principal) bool {
	return IsAdmin(p, a.d.AdminGroup) || p.HasRole(RoleAuthorizer)
}

// decisionRequest turns a question into an engine request. A caller who
// may not ask for others gets their own identity, time and address. n is
// the question's number in a batch (0 for a single one), for errors.
func (a *API) decisionRequest(ctx context.Context, p *steward.Principal, q *DecisionQuery, n int) (*policy.Request, error) {
	where := ""
	if n > 0 {
		where = fmt.Sprintf("requests[%d]: ", n-1)
	}
	bad := func(format string, args ...any) error {
		return steward.Errorf(steward.EInvalid, "%s%s", where, fmt.Sprintf(format, args...))
	}
	acc, ok := policy.ParseAccess(q.Access)
	if !ok {
		return nil, bad("access: unknown access type %q (read, write, list, create, delete, select, admin or discover)", q.Access)
	}
	res, err := policystore.ParseResource(q.Resource)
	if err != nil {
		return nil, bad("%s", steward.MessageOf(err))
	}
	req := &policy.Request{Access: acc, Resource: res, Time: time.Now()}
	privileged := a.mayAskForOthers(p)
	self := (q.User == "" || q.User == p.Username) && len(q.Groups) == 0 && len(q.Roles) == 0
	switch {
	case self:
		req.User, req.Groups, req.Roles = p.Username, p.Groups, p.Roles
	case !privileged:
		return nil, steward.Errorf(steward.EPermission, "%syou may ask only about yourself (administrators and the %s role may ask about others)", where, RoleAuthorizer)
	default:
		if q.User == "" {
			return nil, bad("user: required when groups or roles are given")
		}
		req.User, req.Groups, req.Roles = q.User, q.Groups, q.Roles
	}
	if q.Time != nil || q.ClientIP != "" {
		if !privileged {
			return nil, steward.Errorf(steward.EPermission, "%stime and client_ip may be set only by administrators and the %s role", where, RoleAuthorizer)
		}
	}
	if q.Time != nil {
		req.Time = *q.Time
	}
	ip := q.ClientIP
	if ip == "" && self && !privileged {
		ip = steward.ClientAddrFrom(ctx)
	}
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			if ap, err2 := netip.ParseAddrPort(ip); err2 == nil {
				addr = ap.Addr()
			} else if q.ClientIP != "" {
				return nil, bad("client_ip: invalid address %q", q.ClientIP)
			}
		}
		req.ClientIP = addr.Unmap()
	}
	for _, t := range q.Tags {
		req.Tags = append(req.Tags, policy.Tag{Name: t.Name, Attrs: t.Attrs})
	}
	if q.Classification != "" {
		c, ok := policy.ParseClassification(q.Classification)
		if !ok {
			return nil, bad("classification: unknown %q (C1..C4)", q.Classification)
		}
		req.Classification = c
	}
	return req, nil
}

// auditDecision records one decision of the decision API.
func (a *API) auditDecision(ctx context.Context, p *steward.Principal, req *policy.Request, d *policy.Decision) error {
	ev := a.event(ctx, p, "authorize:"+req.Access.String(), req.Resource.String())
	ev.Decision, ev.Outcome, ev.Reason = "deny", "success", d.Reason
	if d.Allowed {
		ev.Decision = "allow"
	}
	if d.PolicyID != "" {
		ev.Policy = fmt.Sprintf("%s@%d", d.PolicyID, d.PolicyVersion)
	}
	ev.Details = map[string]any{"subject": req.User}
	if err := a.d.Auditor.Record(ctx, ev); err != nil {
		return steward.WrapError(steward.EUnavailable, "authorize", err, "audit trail unavailable")
	}
	return nil
}

// deniedAsk records a refused question about another principal.
func (a *API) deniedAsk(ctx context.Context, p *steward.Principal, q *DecisionQuery, cause error) {
	ev := a.event(ctx, p, "authorize:"+q.Access, q.Resource)
	ev.Decision, ev.Outcome, ev.Reason = "deny", "failure", steward.MessageOf(cause)
	ev.Details = map[string]any{"subject": q.User}
	if err := a.d.Auditor.Record(ctx, ev); err != nil {
		a.d.Logger.ErrorContext(ctx, "audit record of refusal lost", "err", err)
	}
}

// auditChange records a policy change, with its difference, inside the
// change's transaction: if the record cannot be written, nothing changes.
func (a *API) auditChange(p *steward.Principal, resource string) policystore.BeforeCommit {
	return func(ctx context.Context, r *policystore.Result) error {
		ev := a.event(ctx, p, "policy.change", resource)
		ev.Decision, ev.Outcome = "allow", "success"
		ev.Details = map[string]any{"set_version": r.SetVersion, "changes": r.Changes}
		if err := a.d.Auditor.Record(ctx, ev); err != nil {
			return steward.WrapError(steward.EUnavailable, "policy.change", err, "audit trail unavailable")
		}
		return nil
	}
}

// refreshEngine makes this replica see its own change at once (the others
// see it within their refresh interval).
func (a *API) refreshEngine(ctx context.Context, r *policystore.Result) {
	if a.d.PolicyEngine == nil || r == nil || !r.Changed {
		return
	}
	if _, err := a.d.PolicyEngine.Refresh(ctx); err != nil {
		a.d.Logger.WarnContext(ctx, "policy engine refresh after change failed; the refresher will retry", "err", err)
	}
}
