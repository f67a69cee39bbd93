package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
)

type infoOutput struct {
	Body struct {
		Version    string    `json:"version"`
		Auth       TokenInfo `json:"auth"`
		S3Endpoint string    `json:"s3_endpoint,omitempty" doc:"URL of the S3 gateway and its STS endpoint."`
	}
}

type whoamiOutput struct {
	Body struct {
		Username  string    `json:"username"`
		Kind      string    `json:"kind"`
		Subject   string    `json:"subject"`
		Groups    []string  `json:"groups"`
		Roles     []string  `json:"roles"`
		Issuer    string    `json:"issuer"`
		ClientID  string    `json:"client_id,omitempty"`
		ExpiresAt time.Time `json:"expires_at"`
		Admin     bool      `json:"admin" doc:"Whether the caller administers Steward."`
	}
}

func (a *API) registerIdentity() {
	huma.Register(a.h, huma.Operation{
		OperationID: "get-info", Method: http.MethodGet, Path: "/info", Tags: []string{"identity"},
		Summary: "How to log in", Description: "Public: the issuer and client IDs that the CLI and portal use.",
	}, func(ctx context.Context, _ *struct{}) (*infoOutput, error) {
		out := &infoOutput{}
		out.Body.Version = a.d.Version
		out.Body.Auth = a.d.Token
		out.Body.S3Endpoint = a.d.S3Endpoint
		return out, nil
	})
	huma.Register(a.h, huma.Operation{
		OperationID: "whoami", Method: http.MethodGet, Path: "/whoami", Tags: []string{"identity"},
		Summary: "The caller's identity", Security: bearer, Errors: []int{401},
	}, func(ctx context.Context, _ *struct{}) (*whoamiOutput, error) {
		p, err := requireUser(ctx)
		if err != nil {
			return nil, a.problem(ctx, "whoami", err)
		}
		out := &whoamiOutput{}
		b := &out.Body
		b.Username, b.Kind, b.Subject, b.Issuer, b.ClientID = p.Username, string(p.Kind), p.Subject, p.Issuer, p.ClientID
		b.Groups, b.Roles, b.ExpiresAt = nonNil(p.Groups), nonNil(p.Roles), p.ExpiresAt
		b.Admin = IsAdmin(p, a.d.AdminGroup)
		return out, nil
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var _ = steward.KindUser
