package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
)

type auditQueryInput struct {
	Actor    string    `query:"actor" maxLength:"128" doc:"Only records of this actor."`
	Action   string    `query:"action" maxLength:"128" doc:"Only this action; a trailing * matches a prefix (s3:*)."`
	Resource string    `query:"resource" maxLength:"1024" doc:"Only resources starting with this prefix."`
	Decision string    `query:"decision" enum:"allow,deny," doc:"Only allow or deny decisions."`
	Since    time.Time `query:"since" doc:"Only records at or after this time (RFC 3339)."`
	Until    time.Time `query:"until" doc:"Only records before this time (RFC 3339)."`
	Limit    int       `query:"limit" minimum:"1" maximum:"10000" default:"100"`
}

type auditQueryOutput struct {
	Body []AuditEntry
}

type auditVerifyOutput struct {
	Body AuditVerifyResult
}

func (a *API) registerAudit() {
	if a.d.Audit == nil {
		return
	}
	huma.Register(a.h, huma.Operation{
		OperationID: "query-audit", Method: http.MethodGet, Path: "/audit", Tags: []string{"audit"},
		Summary: "Read the audit trail", Security: bearer, Errors: []int{400, 401, 403},
	}, func(ctx context.Context, in *auditQueryInput) (*auditQueryOutput, error) {
		if _, err := a.admit(ctx, "audit.query", "audit", map[string]any{"actor": in.Actor, "action": in.Action, "resource": in.Resource}); err != nil {
			return nil, a.problem(ctx, "audit.query", err)
		}
		out := &auditQueryOutput{Body: []AuditEntry{}}
		f := AuditFilter{Actor: in.Actor, Action: in.Action, Resource: in.Resource, Decision: in.Decision, Since: in.Since, Until: in.Until, Limit: in.Limit}
		err := a.d.Audit.Query(ctx, f, func(e AuditEntry) error {
			out.Body = append(out.Body, e)
			return nil
		})
		if err != nil {
			return nil, a.problem(ctx, "audit.query", err)
		}
		return out, nil
	})
	huma.Register(a.h, huma.Operation{
		OperationID: "verify-audit", Method: http.MethodPost, Path: "/audit/verify", Tags: []string{"audit"},
		Summary: "Verify the audit trail's hash chain", Security: bearer, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*auditVerifyOutput, error) {
		if _, err := a.admit(ctx, "audit.verify", "audit", nil); err != nil {
			return nil, a.problem(ctx, "audit.verify", err)
		}
		r, err := a.d.Audit.Verify(ctx)
		if err != nil {
			return nil, a.problem(ctx, "audit.verify", err)
		}
		return &auditVerifyOutput{Body: r}, nil
	})
}

var _ = steward.EInternal
