package idp

import (
	"context"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/stewardhq/steward"
)

// identity is who a token names: a user or a service account.
type identity struct {
	kind        steward.PrincipalKind
	name        string
	email       string
	displayName string
	groups      []string
	roles       []string
}

var errNoAccount = steward.Errorf(steward.EPermission, "account unknown or disabled")

// identity looks up subject of kind (or, if kind is empty, a user and then
// a service account). Disabled and deleted accounts yield EPermission.
func (p *Provider) identity(ctx context.Context, kind steward.PrincipalKind, subject string) (*identity, error) {
	if kind == "" || kind == steward.KindUser {
		u, err := p.ids.GetUser(ctx, subject)
		switch {
		case err == nil:
			if u.Disabled {
				return nil, errNoAccount
			}
			return &identity{kind: steward.KindUser, name: u.Username, email: u.Email, displayName: u.DisplayName,
				groups: nonNil(u.Groups), roles: nonNil(u.Roles)}, nil
		case steward.KindOf(err) != steward.ENotFound && steward.KindOf(err) != steward.EInvalid:
			return nil, steward.WrapError(steward.EInternal, "idp.identity", err, "cannot look up account")
		case kind == steward.KindUser:
			return nil, errNoAccount
		}
	}
	sa, err := p.ids.GetServiceAccount(ctx, subject)
	switch {
	case err == nil:
		if sa.Disabled {
			return nil, errNoAccount
		}
		return &identity{kind: steward.KindService, name: sa.Name, displayName: sa.Description,
			groups: nonNil(sa.Groups), roles: nonNil(sa.Roles)}, nil
	case steward.KindOf(err) == steward.ENotFound || steward.KindOf(err) == steward.EInvalid:
		return nil, errNoAccount
	default:
		return nil, steward.WrapError(steward.EInternal, "idp.identity", err, "cannot look up account")
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// accessClaims are the claims an access token carries beyond the
// registered ones op sets (iss, sub, aud, exp, iat, nbf, jti, client_id).
func (id *identity) accessClaims(clientID string, scopes []string) map[string]any {
	c := id.identityClaims()
	c["azp"] = clientID
	if len(scopes) > 0 {
		c["scope"] = strings.Join(scopes, " ")
	}
	return c
}

func (id *identity) identityClaims() map[string]any {
	return map[string]any{
		"preferred_username": id.name,
		"groups":             id.groups,
		"realm_access":       map[string]any{"roles": id.roles},
		"steward_kind":       string(id.kind),
	}
}

// setUserinfo fills an ID token's or the userinfo endpoint's claims.
func (id *identity) setUserinfo(ui *oidc.UserInfo, scopes []string) {
	ui.Subject = id.name
	ui.PreferredUsername = id.name
	if slices.Contains(scopes, oidc.ScopeProfile) {
		ui.Name = id.displayName
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && id.email != "" {
		ui.Email = id.email
	}
	for k, v := range id.identityClaims() {
		if k != "preferred_username" {
			ui.AppendClaims(k, v)
		}
	}
}
