package idp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/stewardhq/steward"
)

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		JWKS                  string   `json:"jwks_uri"`
		DeviceEndpoint        string   `json:"device_authorization_endpoint"`
		RevocationEndpoint    string   `json:"revocation_endpoint"`
		GrantTypes            []string `json:"grant_types_supported"`
		CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
		ResponseTypes         []string `json:"response_types_supported"`
		IDTokenSigningAlgs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal([]byte(body(t, resp)), &d); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"issuer", d.Issuer, e.issuer},
		{"authorization_endpoint", d.AuthorizationEndpoint, e.issuer + "/authorize"},
		{"token_endpoint", d.TokenEndpoint, e.issuer + "/oauth/token"},
		{"jwks_uri", d.JWKS, e.issuer + "/keys"},
		{"device_authorization_endpoint", d.DeviceEndpoint, e.issuer + "/device_authorization"},
		{"revocation_endpoint", d.RevocationEndpoint, e.issuer + "/revoke"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	for _, g := range []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code", "password"} {
		if !slices.Contains(d.GrantTypes, g) {
			t.Errorf("grant_types_supported %v lacks %s", d.GrantTypes, g)
		}
	}
	if slices.Contains(d.GrantTypes, "implicit") {
		t.Errorf("grant_types_supported advertises implicit: %v", d.GrantTypes)
	}
	if !slices.Equal(d.CodeChallengeMethods, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", d.CodeChallengeMethods)
	}
	if !slices.Equal(d.ResponseTypes, []string{"code"}) {
		t.Errorf("response_types_supported = %v", d.ResponseTypes)
	}
	if !slices.Contains(d.IDTokenSigningAlgs, "RS256") {
		t.Errorf("id_token_signing_alg_values_supported = %v", d.IDTokenSigningAlgs)
	}

	t.Run("password grant off", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.AllowPasswordGrant = false })
		resp, _ := http.Get(e.issuer + "/.well-known/openid-configuration")
		if strings.Contains(body(t, resp), `"password"`) {
			t.Error("discovery advertises the password grant though it is off")
		}
	})
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	set := e.jwks()
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k.KeyID == "" || k.Algorithm != "RS256" || k.Use != "sig" || !k.IsPublic() {
		t.Errorf("bad JWK: kid %q alg %q use %q public %v", k.KeyID, k.Algorithm, k.Use, k.IsPublic())
	}
	own, err := e.p.Keys(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(own.Keys) != 1 || own.Keys[0].KeyID != k.KeyID || !own.Keys[0].IsPublic() {
		t.Errorf("Keys() = %+v, want the served JWKS", own.Keys)
	}
	// The private key is sealed at rest.
	var sealed string
	if err := e.store.QueryRow(e.ctx, `SELECT private_key FROM idp_signing_keys`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "PRIVATE") || len(sealed) < 1000 {
		t.Errorf("stored key does not look sealed (%d bytes)", len(sealed))
	}
}

func TestAuthCodePKCE(t *testing.T) {
	e := newEnv(t)
	cfg := e.oauth(CLIClientID, "openid", "profile", "offline_access")
	code, verifier := e.codeFlow(cfg, "alice", alicePassword)
	tok, err := cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	_, claims := e.verify(tok.AccessToken)
	checkClaims(t, e, claims, "alice", CLIClientID, "user", []string{"analysts"}, []string{"admin"})
	if tok.RefreshToken == "" {
		t.Error("no refresh token for offline_access")
	}
	idt, _ := tok.Extra("id_token").(string)
	if idt == "" {
		t.Fatal("no id_token for openid scope")
	}
	_, ic := e.verify(idt)
	if ic["sub"] != "alice" || ic["preferred_username"] != "alice" || ic["steward_kind"] != "user" || ic["azp"] != CLIClientID {
		t.Errorf("id token claims: %v", ic)
	}
	if len(e.aud.find("auth.login", "success")) != 1 || len(e.aud.find("token.issue", "success")) != 1 {
		t.Errorf("audit: %+v", e.aud.all())
	}
	for _, ev := range e.aud.find("auth.login", "success") {
		if ev.Details["method"] != methodForm || ev.Actor != "alice" {
			t.Errorf("login audit event: %+v", ev)
		}
	}
	// The code works once.
	if _, err := cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier)); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("second exchange: %v, want invalid_grant", err)
	}

	t.Run("portal", func(t *testing.T) {
		pc := e.oauth(PortalClientID, "openid")
		pc.RedirectURL = "http://127.0.0.1:3000/portal/callback"
		code, verifier := e.codeFlow(pc, "alice", alicePassword)
		tok, err := pc.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		_, claims := e.verify(tok.AccessToken)
		if claims["azp"] != PortalClientID {
			t.Errorf("azp = %v", claims["azp"])
		}
	})
	t.Run("wrong verifier", func(t *testing.T) {
		code, _ := e.codeFlow(cfg, "alice", alicePassword)
		_, err := cfg.Exchange(e.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		if oauthErrorCode(err) != "invalid_grant" {
			t.Errorf("exchange with wrong verifier: %v, want invalid_grant", err)
		}
	})
	t.Run("no verifier", func(t *testing.T) {
		code, _ := e.codeFlow(cfg, "alice", alicePassword)
		if _, err := cfg.Exchange(e.ctx, code); err == nil {
			t.Error("exchange without verifier succeeded")
		}
	})
	rejected := []struct {
		name string
		cfg  *oauth2.Config
		opts []oauth2.AuthCodeOption
	}{
		{"plain PKCE", cfg, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")}},
		{"no PKCE", cfg, nil},
		{"foreign redirect", func() *oauth2.Config { c := *cfg; c.RedirectURL = "https://evil.example/callback"; return &c }(), []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier())}},
		{"userinfo trick", func() *oauth2.Config {
			c := *cfg
			c.RedirectURL = "http://127.0.0.1:80@evil.example/callback"
			return &c
		}(), []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier())}},
		{"unknown client", e.oauth("nobody", "openid"), []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier())}},
	}
	for _, c := range rejected {
		t.Run(c.name, func(t *testing.T) {
			resp, err := e.browser().Get(c.cfg.AuthCodeURL("s", c.opts...))
			if err != nil {
				t.Fatal(err)
			}
			body(t, resp)
			loc := resp.Header.Get("Location")
			if strings.HasPrefix(loc, "/oidc/login") {
				t.Fatalf("authorize accepted the request (redirect to %s)", loc)
			}
			if resp.StatusCode == http.StatusFound && !strings.Contains(loc, "error=") {
				t.Fatalf("authorize redirected to %s without an error", loc)
			}
			if strings.Contains(loc, "evil.example") {
				t.Fatalf("authorize redirected to an unregistered URI: %s", loc)
			}
		})
	}
}

func TestLoginForm(t *testing.T) {
	e := newEnv(t)
	cfg := e.oauth(CLIClientID, "openid")
	start := func() (*http.Client, string, string) {
		b := e.browser()
		id, csrf := e.startLogin(b, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		return b, id, csrf
	}
	cases := []struct {
		name, user, pw string
		csrf           func(string) string
		want           int
	}{
		{"wrong password", "alice", "nope", nil, http.StatusUnauthorized},
		{"unknown user", "mallory", "nope", nil, http.StatusUnauthorized},
		{"disabled user", "bob", bobPassword, nil, http.StatusUnauthorized},
		{"bad csrf", "alice", alicePassword, func(string) string { return "forged" }, http.StatusForbidden},
		{"missing csrf", "alice", alicePassword, func(string) string { return "" }, http.StatusForbidden},
	}
	var pages []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, id, csrf := start()
			if c.csrf != nil {
				csrf = c.csrf(csrf)
			}
			resp := e.postLogin(b, id, csrf, c.user, c.pw)
			page := body(t, resp)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, page)
			}
			if c.want == http.StatusUnauthorized {
				pages = append(pages, strings.ReplaceAll(page, c.user, "USER"))
			}
		})
	}
	// Unknown user, wrong password and disabled account are indistinguishable.
	for i := range pages {
		p := csrfRE.ReplaceAllString(areqRE.ReplaceAllString(pages[i], ""), "")
		if i > 0 && p != csrfRE.ReplaceAllString(areqRE.ReplaceAllString(pages[0], ""), "") {
			t.Errorf("failure page %d differs from the first", i)
		}
	}
	if n := len(e.aud.find("auth.login", "failure")); n != 3 {
		t.Errorf("%d auth.login failures audited, want 3", n)
	}
	t.Run("cross-site post without cookie", func(t *testing.T) {
		_, id, csrf := start()
		resp := e.postLogin(e.browser(), id, csrf, "alice", alicePassword)
		if body(t, resp); resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("audit failure fails login", func(t *testing.T) {
		b, id, csrf := start()
		e.aud.setFail(true)
		defer e.aud.setFail(false)
		resp := e.postLogin(b, id, csrf, "alice", alicePassword)
		if body(t, resp); resp.StatusCode == http.StatusFound {
			t.Fatal("login succeeded although the audit failed")
		}
	})
}

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxLoginFailures = 3 })
	cfg := e.oauth(CLIClientID, "openid")
	for i := range 3 {
		if _, err := cfg.PasswordCredentialsToken(e.ctx, "alice", "wrong"); oauthErrorCode(err) != "invalid_grant" {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Locked now: even the right password is refused, with a clear message.
	_, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword)
	if oauthErrorCode(err) != "invalid_grant" || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("locked login: %v", err)
	}
	if evs := e.aud.find("auth.login", "failure"); len(evs) != 4 || !strings.Contains(evs[3].Reason, "locked") {
		t.Errorf("audit: %+v", evs)
	}
	// Other users are not affected.
	e2 := e.oauth(CLIClientID)
	if _, err := e2.PasswordCredentialsToken(e.ctx, "bob", bobPassword); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("bob: %v", err)
	}
	// When the lock has passed, the right password works and resets the count.
	e.p.now = func() time.Time { return time.Now().Add(time.Minute) }
	if _, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword); err != nil {
		t.Fatalf("after lockout: %v", err)
	}
	var n int
	e.store.QueryRow(e.ctx, `SELECT COUNT(*) FROM idp_login_failures WHERE username = 'alice'`).Scan(&n)
	if n != 0 {
		t.Error("successful login did not reset failures")
	}
}

func TestLockoutSchedule(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{0, 0}, {4, 0}, {5, 30 * time.Second}, {6, time.Minute}, {8, 4 * time.Minute}, {10, 15 * time.Minute}, {100, 15 * time.Minute}} {
		if got := lockout(c.n, 5, 30*time.Second); got != c.want {
			t.Errorf("lockout(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

func TestDeviceFlow(t *testing.T) {
	e := newEnv(t)
	cfg := e.oauth(CLIClientID, "openid", "offline_access")
	approve := func(t *testing.T, da *oauth2.DeviceAuthResponse, user, pw, action string) (int, string) {
		t.Helper()
		b := e.browser()
		resp, err := b.Get(da.VerificationURIComplete)
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, resp)
		if !strings.Contains(page, da.UserCode) {
			t.Fatalf("device page does not prefill the user code: %s", page)
		}
		csrf := csrfRE.FindStringSubmatch(page)[1]
		// Users type codes sloppily.
		typed := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", " "))
		resp, err = b.PostForm(e.issuer+"/device", url.Values{"csrf_token": {csrf}, "user_code": {typed}, "username": {user}, "password": {pw}, "action": {action}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body(t, resp)
	}
	poll := func(t *testing.T, da *oauth2.DeviceAuthResponse) (int, map[string]any) {
		return e.tokenForm(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode}, "client_id": {CLIClientID}}, "", "")
	}

	t.Run("approve", func(t *testing.T) {
		da, err := cfg.DeviceAuth(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if da.VerificationURI != e.issuer+"/device" {
			t.Errorf("verification_uri = %q", da.VerificationURI)
		}
		if st, m := poll(t, da); st != http.StatusBadRequest || m["error"] != "authorization_pending" {
			t.Fatalf("before approval: %d %v", st, m)
		}
		if st, page := approve(t, da, "alice", alicePassword, "approve"); st != http.StatusOK || !strings.Contains(page, "signed in") {
			t.Fatalf("approve: %d %s", st, page)
		}
		tok, err := cfg.DeviceAccessToken(e.ctx, da)
		if err != nil {
			t.Fatalf("device token: %v", err)
		}
		_, claims := e.verify(tok.AccessToken)
		checkClaims(t, e, claims, "alice", CLIClientID, "user", []string{"analysts"}, []string{"admin"})
		if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
			t.Error("missing refresh or ID token")
		}
		// The approval is handed out once.
		if st, m := poll(t, da); st != http.StatusBadRequest || m["error"] == nil {
			t.Errorf("second poll: %d %v", st, m)
		}
		found := false
		for _, ev := range e.aud.find("auth.login", "success") {
			found = found || ev.Details["method"] == methodDevice
		}
		if !found {
			t.Error("device login not audited")
		}
		if evs := e.aud.find("token.issue", "success"); len(evs) == 0 || evs[len(evs)-1].Details["grant_type"] != grantDevice {
			t.Errorf("token.issue audit: %+v", evs)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		da, _ := cfg.DeviceAuth(e.ctx)
		if st, _ := approve(t, da, "alice", "wrong", "approve"); st != http.StatusUnauthorized {
			t.Fatalf("status %d", st)
		}
		if st, m := poll(t, da); m["error"] != "authorization_pending" {
			t.Errorf("after failed approval: %d %v", st, m)
		}
	})
	t.Run("deny", func(t *testing.T) {
		da, _ := cfg.DeviceAuth(e.ctx)
		if st, _ := approve(t, da, "alice", alicePassword, "deny"); st != http.StatusOK {
			t.Fatalf("deny: %d", st)
		}
		if _, m := poll(t, da); m["error"] != "access_denied" {
			t.Errorf("after deny: %v", m)
		}
	})
	t.Run("expired", func(t *testing.T) {
		da, _ := cfg.DeviceAuth(e.ctx)
		if _, err := e.store.Exec(e.ctx, `UPDATE idp_device_codes SET expires_at = ? WHERE user_code = ?`, time.Now().Add(-time.Minute).Unix(), da.UserCode); err != nil {
			t.Fatal(err)
		}
		if _, m := poll(t, da); m["error"] != "expired_token" {
			t.Errorf("expired: %v", m)
		}
		if st, _ := approve(t, da, "alice", alicePassword, "approve"); st != http.StatusBadRequest {
			t.Errorf("approving an expired code: %d", st)
		}
	})
	t.Run("disabled user", func(t *testing.T) {
		da, _ := cfg.DeviceAuth(e.ctx)
		if st, _ := approve(t, da, "bob", bobPassword, "approve"); st != http.StatusUnauthorized {
			t.Errorf("status %d", st)
		}
	})
	t.Run("service account cannot start device flow", func(t *testing.T) {
		st, m := e.tokenForm(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}, "client_id": {"etl"}}, "", "")
		if st == http.StatusOK {
			t.Errorf("got %v", m)
		}
	})
}

func TestPasswordGrant(t *testing.T) {
	e := newEnv(t)
	cfg := e.oauth(CLIClientID, "openid", "offline_access")
	tok, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	_, claims := e.verify(tok.AccessToken)
	checkClaims(t, e, claims, "alice", CLIClientID, "user", []string{"analysts"}, []string{"admin"})
	if claims["scope"] != "openid offline_access" {
		t.Errorf("scope = %v", claims["scope"])
	}
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Error("missing refresh or ID token")
	}
	if tok.Expiry.Before(time.Now().Add(10*time.Minute)) || tok.Expiry.After(time.Now().Add(16*time.Minute)) {
		t.Errorf("expiry %v, want about 15m", tok.Expiry)
	}
	evs := e.aud.find("token.issue", "success")
	if len(evs) != 1 || evs[0].Details["grant_type"] != "password" || evs[0].Details["client_id"] != CLIClientID {
		t.Errorf("token.issue audit: %+v", evs)
	}
	for _, ev := range e.aud.all() {
		raw, _ := json.Marshal(ev)
		if strings.Contains(string(raw), alicePassword) || strings.Contains(string(raw), tok.RefreshToken) || strings.Contains(string(raw), tok.AccessToken) {
			t.Errorf("audit event carries a secret: %s", raw)
		}
	}
	// The refresh token works through op's refresh grant.
	if _, err := cfg.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Errorf("refresh: %v", err)
	}

	fails := []struct {
		name, client, user, pw, want string
	}{
		{"wrong password", CLIClientID, "alice", "wrong", "invalid_grant"},
		{"unknown user", CLIClientID, "mallory", "x", "invalid_grant"},
		{"disabled user", CLIClientID, "bob", bobPassword, "invalid_grant"},
		{"portal client", PortalClientID, "alice", alicePassword, "unauthorized_client"},
		{"unknown client", "nobody", "alice", alicePassword, "invalid_client"},
	}
	for _, c := range fails {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.oauth(c.client).PasswordCredentialsToken(e.ctx, c.user, c.pw)
			if got := oauthErrorCode(err); got != c.want {
				t.Errorf("error %q (%v), want %q", got, err, c.want)
			}
		})
	}
	t.Run("service account", func(t *testing.T) {
		st, m := e.tokenForm(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}}, "etl", e.secret.Reveal())
		if st == http.StatusOK {
			t.Errorf("service account got a password grant: %v", m)
		}
	})
	t.Run("switched off", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.AllowPasswordGrant = false })
		_, err := e.oauth(CLIClientID).PasswordCredentialsToken(e.ctx, "alice", alicePassword)
		if got := oauthErrorCode(err); got != "unsupported_grant_type" {
			t.Errorf("error %q, want unsupported_grant_type", got)
		}
	})
	t.Run("failing auditor", func(t *testing.T) {
		e.aud.setFail(true)
		defer e.aud.setFail(false)
		if _, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword); err == nil {
			t.Error("token issued although the audit failed")
		}
	})
	t.Run("unknown grant", func(t *testing.T) {
		if st, m := e.tokenForm(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x"}}, "", ""); st != http.StatusBadRequest || m["error"] != "unsupported_grant_type" {
			t.Errorf("%d %v", st, m)
		}
	})
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	cc := func(id, secret string) *clientcredentials.Config {
		return &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.issuer + "/oauth/token", Scopes: []string{"openid"}}
	}
	tok, err := cc("etl", e.secret.Reveal()).Token(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, claims := e.verify(tok.AccessToken)
	checkClaims(t, e, claims, "etl", "etl", "service", []string{"analysts"}, []string{"pipeline"})
	if tok.RefreshToken != "" {
		t.Error("client credentials returned a refresh token")
	}
	for _, c := range []struct{ name, id, secret string }{
		{"wrong secret", "etl", string(NewSecret())},
		{"disabled", "old-etl", e.secret.Reveal()},
		{"unknown", "ghost", e.secret.Reveal()},
		{"public client", CLIClientID, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := cc(c.id, c.secret).Token(e.ctx)
			if code := oauthErrorCode(err); code != "invalid_client" && code != "unauthorized_client" {
				t.Errorf("got %v, want invalid_client", err)
			}
		})
	}
	if len(e.aud.find("auth.login", "failure")) < 3 {
		t.Errorf("failed client authentications not audited: %+v", e.aud.all())
	}
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t)
	cfg := e.oauth(CLIClientID, "openid", "offline_access")
	tok, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string) (int, map[string]any) {
		return e.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {CLIClientID}}, "", "")
	}
	st, r1 := refresh(tok.RefreshToken)
	if st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, r1)
	}
	rt1, _ := r1["refresh_token"].(string)
	if rt1 == "" || rt1 == tok.RefreshToken {
		t.Fatalf("refresh did not rotate: %v", r1)
	}
	_, claims := e.verify(r1["access_token"].(string))
	checkClaims(t, e, claims, "alice", CLIClientID, "user", []string{"analysts"}, []string{"admin"})
	if len(e.aud.find("token.refresh", "success")) != 1 {
		t.Errorf("refresh not audited: %+v", e.aud.all())
	}
	// Only hashes are stored.
	var n int
	e.store.QueryRow(e.ctx, `SELECT COUNT(*) FROM idp_refresh_tokens WHERE token_hash = ? OR id = ?`, rt1, rt1).Scan(&n)
	if n != 0 {
		t.Error("refresh token stored in clear")
	}
	// Reusing the old token is refused and revokes the whole family.
	if st, m := refresh(tok.RefreshToken); st != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", st, m)
	}
	if st, m := refresh(rt1); st != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Fatalf("descendant after reuse: %d %v", st, m)
	}
	if evs := e.aud.find("token.revoke", "success"); len(evs) == 0 || !strings.Contains(evs[0].Reason, "reuse") {
		t.Errorf("reuse not audited: %+v", evs)
	}

	t.Run("disabled user cannot refresh", func(t *testing.T) {
		tok, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := e.store.GetUser(e.ctx, "alice")
		u.Disabled = true
		if err := e.store.UpdateUser(e.ctx, u); err != nil {
			t.Fatal(err)
		}
		defer func() { u.Disabled = false; e.store.UpdateUser(e.ctx, u) }()
		if st, m := refresh(tok.RefreshToken); st != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("refresh by disabled user: %d %v", st, m)
		}
	})
	t.Run("other client cannot use it", func(t *testing.T) {
		tok, _ := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword)
		st, m := e.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {PortalClientID}}, "", "")
		if st == http.StatusOK {
			t.Errorf("portal used the CLI's refresh token: %v", m)
		}
	})
	t.Run("revocation", func(t *testing.T) {
		tok, _ := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword)
		resp, err := http.PostForm(e.issuer+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {CLIClientID}})
		if err != nil {
			t.Fatal(err)
		}
		if body(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		if st, _ := refresh(tok.RefreshToken); st == http.StatusOK {
			t.Error("revoked refresh token still works")
		}
		// Access tokens are revoked by jti.
		resp, _ = http.PostForm(e.issuer+"/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}, "client_id": {CLIClientID}})
		body(t, resp)
		_, claims := e.verify(tok.AccessToken)
		if ok, err := e.p.IsRevoked(e.ctx, claims["jti"].(string)); err != nil || !ok {
			t.Errorf("IsRevoked = %v, %v", ok, err)
		}
		if len(e.aud.find("token.revoke", "success")) < 3 {
			t.Errorf("revocations not audited: %+v", e.aud.find("token.revoke", ""))
		}
	})
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	cfg := e.oauth(CLIClientID)
	old, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	oldKID, _ := e.verify(old.AccessToken)
	if err := e.p.RotateKeys(e.ctx); err != nil {
		t.Fatal(err)
	}
	fresh, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	newKID, _ := e.verify(fresh.AccessToken)
	if newKID == oldKID {
		t.Fatal("rotation did not change the signing key")
	}
	// The old token still verifies against the JWKS.
	if kid, claims := e.verify(old.AccessToken); kid != oldKID || claims["sub"] != "alice" {
		t.Errorf("old token: kid %s claims %v", kid, claims)
	}
	if len(e.jwks().Keys) != 2 {
		t.Errorf("JWKS has %d keys, want 2", len(e.jwks().Keys))
	}
	if evs := e.aud.find("key.rotate", "success"); len(evs) != 2 {
		t.Errorf("key.rotate audit: %+v", evs)
	}
	// Past retention the old key leaves the JWKS and the store.
	later := time.Now().Add(e.p.retention() + time.Minute)
	e.p.now = func() time.Time { return later }
	if err := e.p.maintainKeys(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.p.keys.invalidate()
	set, err := e.p.Keys(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != newKID {
		t.Errorf("after retention: %d keys", len(set.Keys))
	}

	t.Run("scheduled rotation", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.KeyRotation = time.Hour })
		first, _ := e.p.Keys(e.ctx)
		kid0 := first.Keys[0].KeyID
		start := time.Now()
		e.p.now = func() time.Time { return start.Add(time.Hour) }
		if err := e.p.maintainKeys(e.ctx); err != nil {
			t.Fatal(err)
		}
		set, _ := e.p.Keys(e.ctx)
		if len(set.Keys) != 2 {
			t.Fatalf("next key not pre-published: %d keys", len(set.Keys))
		}
		k, _ := e.p.signingKey(e.ctx)
		if k.kid != kid0 {
			t.Error("pre-published key signs before its time")
		}
		e.p.now = func() time.Time { return start.Add(time.Hour + keyPrepublish + time.Second) }
		e.p.keys.invalidate()
		k, _ = e.p.signingKey(e.ctx)
		if k.kid == kid0 {
			t.Error("scheduled key did not take over")
		}
	})
	t.Run("wrong key encryption key", func(t *testing.T) {
		_, err := New(e.ctx, Config{Issuer: e.issuer, Insecure: true, KeyEncryptionKey: []byte("ffffffffffffffffffffffffffffffff")}, e.store, e.store, e.aud, nil)
		if steward.KindOf(err) != steward.EInvalid {
			t.Errorf("New with another key encryption key: %v, want EInvalid", err)
		}
	})
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"http issuer", Config{Issuer: "http://example.com/oidc", KeyEncryptionKey: testKEK}},
		{"no key", Config{Issuer: "https://example.com/oidc", KeyEncryptionKey: nil}},
		{"relative issuer", Config{Issuer: "/oidc", KeyEncryptionKey: testKEK}},
		{"bad portal uri", Config{Issuer: "https://example.com/oidc", KeyEncryptionKey: testKEK, PortalRedirectURIs: []string{"http://portal.example/cb"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(context.Background(), c.cfg, e.store, e.store, e.aud, nil); err == nil {
				t.Error("New accepted a bad config")
			}
		})
	}
}

func TestUserinfo(t *testing.T) {
	e := newEnv(t)
	tok, err := e.oauth(CLIClientID, "openid", "profile", "email").PasswordCredentialsToken(e.ctx, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	json.Unmarshal([]byte(body(t, resp)), &ui)
	if resp.StatusCode != http.StatusOK || ui["sub"] != "alice" || ui["email"] != "alice@example.com" {
		t.Errorf("userinfo: %d %v", resp.StatusCode, ui)
	}
}

// checkClaims checks an access token's claims.
func checkClaims(t *testing.T, e *env, c map[string]any, sub, client, kind string, groups, roles []string) {
	t.Helper()
	str := func(v any) []string {
		var out []string
		l, _ := v.([]any)
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	if c["iss"] != e.issuer || c["sub"] != sub || c["azp"] != client || c["preferred_username"] != sub || c["steward_kind"] != kind {
		t.Errorf("claims: %v", c)
	}
	if aud := str(c["aud"]); !slices.Equal(aud, []string{Audience, client}) {
		t.Errorf("aud = %v", aud)
	}
	if g := str(c["groups"]); !slices.Equal(g, groups) {
		t.Errorf("groups = %v, want %v", g, groups)
	}
	ra, _ := c["realm_access"].(map[string]any)
	if r := str(ra["roles"]); !slices.Equal(r, roles) {
		t.Errorf("realm_access.roles = %v, want %v", r, roles)
	}
	for _, k := range []string{"exp", "iat", "nbf", "jti"} {
		if c[k] == nil {
			t.Errorf("claim %s missing", k)
		}
	}
	exp, _ := c["exp"].(float64)
	if d := time.Until(time.Unix(int64(exp), 0)); d < 10*time.Minute || d > 16*time.Minute {
		t.Errorf("exp in %v, want about 15m", d)
	}
}
