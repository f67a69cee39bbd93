package idp

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stewardhq/steward"
)

// Grant type names used in audit records.
const (
	grantCode     = "authorization_code"
	grantDevice   = "device_code"
	grantPassword = "password"
	grantClient   = "client_credentials"
	grantRefresh  = "refresh_token"
)

// authRequest is an authorization request of the code flow, stored as
// JSON in idp_auth_requests. It implements op.AuthRequest.
type authRequest struct {
	ID                  string            `json:"id"`
	ClientID            string            `json:"client_id"`
	RedirectURI         string            `json:"redirect_uri"`
	State               string            `json:"state,omitempty"`
	Nonce               string            `json:"nonce,omitempty"`
	Scopes              []string          `json:"scopes"`
	ResponseType        oidc.ResponseType `json:"response_type"`
	ResponseMode        oidc.ResponseMode `json:"response_mode,omitempty"`
	CodeChallenge       string            `json:"code_challenge"`
	CodeChallengeMethod string            `json:"code_challenge_method"`
	CreatedAt           time.Time         `json:"created_at"`
	// Set when the user has logged in.
	Subject  string    `json:"subject,omitempty"`
	AuthTime time.Time `json:"auth_time,omitzero"`
	IsDone   bool      `json:"done"`
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string          { return a.ID }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAudience() []string  { return []string{Audience, a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.AuthTime }
func (a *authRequest) GetClientID() string    { return a.ClientID }
func (a *authRequest) GetNonce() string       { return a.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return a.ResponseType
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.Subject }
func (a *authRequest) Done() bool                         { return a.IsDone }
func (a *authRequest) GetAMR() []string {
	if a.IsDone {
		return []string{"pwd"}
	}
	return nil
}
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}

// tokenRequest is a token request of the password and client credentials
// grants. It implements op.TokenRequest and op.IDTokenRequest, but not
// op.RefreshTokenRequest, so op never attaches a refresh token to it.
type tokenRequest struct {
	grant    string
	subject  string
	clientID string
	kind     steward.PrincipalKind
	scopes   []string
	amr      []string
	authTime time.Time
}

func (t *tokenRequest) GetSubject() string     { return t.subject }
func (t *tokenRequest) GetAudience() []string  { return []string{Audience, t.clientID} }
func (t *tokenRequest) GetScopes() []string    { return t.scopes }
func (t *tokenRequest) GetAMR() []string       { return t.amr }
func (t *tokenRequest) GetAuthTime() time.Time { return t.authTime }
func (t *tokenRequest) GetClientID() string    { return t.clientID }

// refreshRequest is the grant a refresh token stands for.
type refreshRequest struct {
	tokenRequest
	id       string
	familyID string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.scopes = scopes }

// describe returns what audit records and claims need to know about any
// token request op hands to the storage.
func describe(req op.TokenRequest) (grant, clientID string, kind steward.PrincipalKind, amr []string, authTime time.Time) {
	switch r := req.(type) {
	case *authRequest:
		return grantCode, r.ClientID, steward.KindUser, r.GetAMR(), r.AuthTime
	case *op.DeviceAuthorizationState:
		return grantDevice, r.ClientID, steward.KindUser, r.AMR, r.AuthTime
	case *refreshRequest:
		return grantRefresh, r.clientID, r.kind, r.amr, r.authTime
	case *tokenRequest:
		return r.grant, r.clientID, r.kind, r.amr, r.authTime
	}
	return "unknown", "", "", nil, time.Time{}
}

// allowedScopes keeps the scopes this provider knows, in order, without
// duplicates.
func allowedScopes(in []string) []string {
	var out []string
	for _, s := range in {
		switch s {
		case oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess:
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
