package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/stewardhq/steward"
)

// startMockOIDC starts an independent OpenID provider implementation on
// loopback; our verifier must interoperate with it through discovery.
func startMockOIDC(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
}

// codeFlow runs the authorization-code flow against m for user and returns
// the tokens it issues.
func codeFlow(t *testing.T, m *mockoidc.MockOIDC, user *mockoidc.MockUser) tokenResponse {
	t.Helper()
	m.QueueUser(user)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	redirect := "http://127.0.0.1/callback"
	q := url.Values{
		"scope":         {"openid profile email groups"},
		"state":         {"st"},
		"nonce":         {"n"},
		"client_id":     {m.ClientID},
		"response_type": {"code"},
		"redirect_uri":  {redirect},
	}
	resp, err := client.Get(m.AuthorizationEndpoint() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s %v", resp.Status, err)
	}
	code := loc.Query().Get("code")
	resp, err = http.PostForm(m.TokenEndpoint(), url.Values{
		"client_id":     {m.ClientID},
		"client_secret": {m.ClientSecret},
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirect},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %s %v", resp.Status, err)
	}
	return tr
}

func TestMockOIDCInterop(t *testing.T) {
	m := startMockOIDC(t)
	ctx := context.Background()
	user := &mockoidc.MockUser{
		Subject:           "u-4711",
		Email:             "ada@bank.example",
		EmailVerified:     true,
		PreferredUsername: "ada",
		Groups:            []string{"/analysts", "quants"},
	}
	tr := codeFlow(t, m, user)

	t.Run("id token with default claim mapping", func(t *testing.T) {
		v := newTestVerifier(t, Config{Issuer: m.Issuer(), Audiences: []string{m.ClientID}})
		p, err := v.Verify(ctx, tr.IDToken)
		if err != nil {
			t.Fatal(err)
		}
		if p.Username != "ada" || p.Subject != "u-4711" || p.Kind != steward.KindUser ||
			!slices.Equal(p.Groups, []string{"analysts", "quants"}) || p.Roles != nil || p.Issuer != m.Issuer() {
			t.Fatalf("principal %+v", p)
		}
	})
	t.Run("access token mapped by configured claims", func(t *testing.T) {
		// mockoidc access tokens carry only registered claims.
		v := newTestVerifier(t, Config{Issuer: m.Issuer(), Audiences: []string{m.ClientID}, UsernameClaim: "sub"})
		p, err := v.Verify(ctx, tr.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if p.Username != "u-4711" || p.TokenID == "" {
			t.Fatalf("principal %+v", p)
		}
	})
	t.Run("access token lacks the default username claim", func(t *testing.T) {
		v := newTestVerifier(t, Config{Issuer: m.Issuer(), Audiences: []string{m.ClientID}})
		_, err := v.Verify(ctx, tr.AccessToken)
		wantRefusal(t, err, steward.EUnauthenticated, "token has no username")
	})
	t.Run("wrong audience", func(t *testing.T) {
		v := newTestVerifier(t, Config{Issuer: m.Issuer(), Audiences: []string{"someone-else"}})
		_, err := v.Verify(ctx, tr.IDToken)
		wantRefusal(t, err, steward.EUnauthenticated, "token audience not accepted", m.Issuer())
	})
	t.Run("expired through the provider's clock", func(t *testing.T) {
		m.FastForward(-time.Hour) // tokens issued an hour ago with a 10 minute life
		t.Cleanup(func() { m.FastForward(time.Hour) })
		old := codeFlow(t, m, user)
		v := newTestVerifier(t, Config{Issuer: m.Issuer(), Audiences: []string{m.ClientID}})
		_, err := v.Verify(ctx, old.IDToken)
		wantRefusal(t, err, steward.EUnauthenticated, "token expired")
	})
	t.Run("minted with the provider's keypair by golang-jwt", func(t *testing.T) {
		v := newTestVerifier(t, Config{Issuer: m.Issuer(), Audiences: []string{m.ClientID}})
		now := time.Now()
		tok, err := m.Keypair.SignJWT(jwt.MapClaims{
			"iss": m.Issuer(), "aud": m.ClientID, "sub": "svc-1", "exp": now.Add(time.Minute).Unix(),
			"iat": now.Unix(), "preferred_username": "service-account-etl",
			"realm_access": map[string]any{"roles": []string{"writer"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != steward.KindService || !p.HasRole("writer") {
			t.Fatalf("principal %+v", p)
		}
		// And a token whose payload was swapped after signing is refused.
		parts := strings.Split(tok, ".")
		forged := parts[0] + "." + b64json(t, map[string]any{
			"iss": m.Issuer(), "aud": m.ClientID, "sub": "svc-1", "exp": now.Add(time.Minute).Unix(),
			"preferred_username": "admin",
		}) + "." + parts[2]
		_, err = v.Verify(ctx, forged)
		wantRefusal(t, err, steward.EUnauthenticated, "token signature invalid")
	})
}
