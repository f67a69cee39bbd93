package idp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

// TestReplicasPostgres runs two providers (replicas) on one PostgreSQL
// database: whatever one starts, the other can finish.
func TestReplicasPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	a := newEnvDSN(t, dsn, true)
	b := newEnvDSN(t, dsn, false, func(c *Config) { c.Issuer = a.issuer })
	b.secret = a.secret

	ca, cb := a.oauth(CLIClientID, "openid", "offline_access"), b.oauth(CLIClientID, "openid", "offline_access")

	t.Run("password grant at A, refresh at B, reuse at A", func(t *testing.T) {
		tok, err := ca.PasswordCredentialsToken(a.ctx, "alice", alicePassword)
		if err != nil {
			t.Fatal(err)
		}
		st, m := b.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {CLIClientID}}, "", "")
		if st != http.StatusOK {
			t.Fatalf("refresh at B: %d %v", st, m)
		}
		_, claims := a.verify(m["access_token"].(string)) // B's token verifies with A's JWKS
		if claims["iss"] != a.issuer || claims["sub"] != "alice" {
			t.Errorf("claims %v", claims)
		}
		if st, m := a.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {CLIClientID}}, "", ""); st == http.StatusOK {
			t.Errorf("reuse at A accepted: %v", m)
		}
		if st, _ := b.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)}, "client_id": {CLIClientID}}, "", ""); st == http.StatusOK {
			t.Error("family not revoked across replicas")
		}
	})
	t.Run("device flow across replicas", func(t *testing.T) {
		da, err := ca.DeviceAuth(a.ctx)
		if err != nil {
			t.Fatal(err)
		}
		br := b.browser()
		resp, _ := br.Get(b.issuer + "/device")
		csrf := csrfRE.FindStringSubmatch(body(t, resp))[1]
		resp, err = br.PostForm(b.issuer+"/device", url.Values{"csrf_token": {csrf}, "user_code": {da.UserCode}, "username": {"alice"}, "password": {alicePassword}, "action": {"approve"}})
		if err != nil {
			t.Fatal(err)
		}
		if page := body(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("approve at B: %d %s", resp.StatusCode, page)
		}
		tok, err := ca.DeviceAccessToken(a.ctx, da)
		if err != nil {
			t.Fatal(err)
		}
		a.verify(tok.AccessToken)
	})
	t.Run("auth code across replicas", func(t *testing.T) {
		code, verifier := a.codeFlow(ca, "alice", alicePassword)
		tok, err := cb.Exchange(b.ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange at B: %v", err)
		}
		a.verify(tok.AccessToken)
	})
	t.Run("throttle is shared", func(t *testing.T) {
		for _, e := range []*env{a, b, a, b, a} {
			e.oauth(CLIClientID).PasswordCredentialsToken(e.ctx, "alice", "wrong")
		}
		_, err := cb.PasswordCredentialsToken(b.ctx, "alice", alicePassword)
		if err == nil || !strings.Contains(err.Error(), "too many") {
			t.Errorf("lock not shared: %v", err)
		}
	})
	t.Run("rotation at A reaches B", func(t *testing.T) {
		before, _ := b.p.Keys(b.ctx)
		if err := a.p.RotateKeys(a.ctx); err != nil {
			t.Fatal(err)
		}
		b.p.keys.invalidate() // B's cache would expire within keyCacheTTL
		after, err := b.p.Keys(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(after.Keys) != len(before.Keys)+1 {
			t.Errorf("B sees %d keys, want %d", len(after.Keys), len(before.Keys)+1)
		}
	})
	t.Run("cleanup", func(t *testing.T) {
		if err := a.p.cleanup(a.ctx); err != nil {
			t.Fatal(err)
		}
	})
}
