package idp

import (
	"context"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stewardhq/steward"
)

// client is an OAuth client of the provider. It implements op.Client.
type client struct {
	id            string
	appType       op.ApplicationType
	authMethod    oidc.AuthMethod
	redirectURIs  []string
	grantTypes    []oidc.GrantType
	responseTypes []oidc.ResponseType
	loginURL      func(string) string
	tokenTTL      time.Duration
	devMode       bool
	kind          steward.PrincipalKind // of the subjects this client's tokens name
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                        { return c.id }
func (c *client) RedirectURIs() []string               { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string     { return nil }
func (c *client) ApplicationType() op.ApplicationType  { return c.appType }
func (c *client) AuthMethod() oidc.AuthMethod          { return c.authMethod }
func (c *client) ResponseTypes() []oidc.ResponseType   { return c.responseTypes }
func (c *client) GrantTypes() []oidc.GrantType         { return c.grantTypes }
func (c *client) LoginURL(id string) string            { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration       { return c.tokenTTL }
func (c *client) DevMode() bool                        { return c.devMode }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (p *Provider) loginURL(id string) string {
	return p.prefix + "/login?authRequestID=" + id
}

func (p *Provider) cliClient() *client {
	grants := []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeDeviceCode, oidc.GrantTypeRefreshToken}
	if p.cfg.AllowPasswordGrant {
		grants = append(grants, grantTypePassword)
	}
	return &client{
		id:         CLIClientID,
		appType:    op.ApplicationTypeNative,
		authMethod: oidc.AuthMethodNone,
		// A native client's loopback redirect matches on path with any
		// port (RFC 8252, section 7.3).
		redirectURIs:  []string{"http://127.0.0.1/callback", "http://127.0.0.1/"},
		grantTypes:    grants,
		responseTypes: []oidc.ResponseType{oidc.ResponseTypeCode},
		loginURL:      p.loginURL,
		tokenTTL:      p.cfg.AccessTokenTTL,
		kind:          steward.KindUser,
	}
}

func (p *Provider) portalClient() *client {
	return &client{
		id:            PortalClientID,
		appType:       op.ApplicationTypeUserAgent,
		authMethod:    oidc.AuthMethodNone,
		redirectURIs:  p.cfg.PortalRedirectURIs,
		grantTypes:    []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken},
		responseTypes: []oidc.ResponseType{oidc.ResponseTypeCode},
		loginURL:      p.loginURL,
		tokenTTL:      p.cfg.AccessTokenTTL,
		devMode:       p.cfg.Insecure, // lets http redirect URIs through, for loopback
		kind:          steward.KindUser,
	}
}

func (p *Provider) serviceClient(sa *steward.ServiceAccount) *client {
	return &client{
		id:            sa.Name,
		appType:       op.ApplicationTypeWeb,
		authMethod:    oidc.AuthMethodBasic,
		grantTypes:    []oidc.GrantType{oidc.GrantTypeClientCredentials},
		responseTypes: nil,
		loginURL:      p.loginURL,
		tokenTTL:      p.cfg.AccessTokenTTL,
		kind:          steward.KindService,
	}
}

const grantTypePassword oidc.GrantType = "password"

// errUnknownClient is an OAuth error so that op answers invalid_client
// (401) rather than server_error.
var errUnknownClient = oidc.ErrInvalidClient().WithDescription("unknown client")

// client returns the client with id: a built-in client or an enabled
// service account.
func (p *Provider) client(ctx context.Context, id string) (*client, error) {
	switch id {
	case CLIClientID:
		return p.cliClient(), nil
	case PortalClientID:
		return p.portalClient(), nil
	case "":
		return nil, errUnknownClient
	}
	if !validClientID(id) {
		return nil, errUnknownClient
	}
	sa, err := p.ids.GetServiceAccount(ctx, id)
	if err != nil {
		if steward.KindOf(err) == steward.ENotFound || steward.KindOf(err) == steward.EInvalid {
			return nil, errUnknownClient
		}
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if sa.Disabled {
		return nil, errUnknownClient
	}
	return p.serviceClient(sa), nil
}

// checkServiceSecret authenticates a service account by its secret. An
// unknown account hashes a dummy, so that every failure costs the same.
func (p *Provider) checkServiceSecret(ctx context.Context, id, secret string) (*steward.ServiceAccount, error) {
	fail := func(reason string) (*steward.ServiceAccount, error) {
		err := p.record(ctx, steward.AuditEvent{Actor: id, ActorKind: string(steward.KindService), Action: "auth.login",
			Resource: "idp/client/" + id, Outcome: "failure", Reason: reason, Details: map[string]any{"method": "client-secret"}})
		if err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		return nil, steward.Errorf(steward.EUnauthenticated, "invalid client credentials")
	}
	if id == CLIClientID || id == PortalClientID || id == "" {
		return fail("public client")
	}
	hash, err := p.ids.ServiceAccountSecretHash(ctx, id)
	known := err == nil && hash != ""
	if err != nil && steward.KindOf(err) != steward.ENotFound && steward.KindOf(err) != steward.EInvalid {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if !known {
		hash = p.dummyHash
	}
	ok, err := CheckPassword(hash, secret)
	if err != nil {
		p.log.Error("malformed service account secret hash", "service_account", id, "err", err)
		ok = false
	}
	if !known || !ok {
		return fail("invalid credentials")
	}
	sa, err := p.ids.GetServiceAccount(ctx, id)
	if err != nil {
		if steward.KindOf(err) == steward.ENotFound {
			return fail("invalid credentials")
		}
		return nil, oidc.ErrServerError().WithParent(err)
	}
	if sa.Disabled {
		return fail("disabled")
	}
	return sa, nil
}

// validClientID bounds what is looked up as a service account name.
func validClientID(id string) bool {
	if len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}
