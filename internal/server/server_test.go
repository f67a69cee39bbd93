package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/cli"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
)

const demoPassword = "correct-horse-battery"

// start runs a demo Steward on a free loopback port with a temp data dir.
func start(t *testing.T, mutate ...func(*config.Config)) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.S3Addr = "127.0.0.1:0"
	cfg.Demo = true
	cfg.DemoPassword = demoPassword
	cfg.DemoRows = 10_000
	cfg.ShutdownGrace = 5 * time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, server.Options{Version: "test"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// steward runs the CLI in-process with its own credentials dir.
type steward struct {
	t    *testing.T
	home string
	url  string
}

func newCLI(t *testing.T, s *server.Server) *steward {
	return &steward{t: t, home: t.TempDir(), url: s.URL()}
}

func (c *steward) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"STEWARD_HOME": c.home, "STEWARD_SERVER": c.url}
	code := cli.Main(context.Background(), args, cli.IO{
		In: strings.NewReader(stdin), Out: &out, Err: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return out.String(), errb.String(), code
}

func (c *steward) must(stdin string, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("steward %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c *steward) login(user string) {
	c.t.Helper()
	c.must(demoPassword+"\n", "login", "--username", user, "--password-stdin")
}

func TestLoginWhoamiToken(t *testing.T) {
	s := start(t)
	alice := newCLI(t, s)
	out := alice.must(demoPassword+"\n", "login", "--username", "alice", "--password-stdin")
	if !strings.Contains(out, "as alice") {
		t.Errorf("login output: %q", out)
	}
	info, err := os.Stat(filepath.Join(alice.home, "credentials.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credentials must be mode 0600: %v %v", info.Mode(), err)
	}
	out = alice.must("", "whoami")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "analysts") {
		t.Errorf("whoami: %q", out)
	}
	var me struct {
		Username string
		Groups   []string
		Kind     string
	}
	if err := json.Unmarshal([]byte(alice.must("", "whoami", "-o", "json")), &me); err != nil {
		t.Fatal(err)
	}
	if me.Username != "alice" || len(me.Groups) != 1 || me.Groups[0] != "analysts" || me.Kind != "user" {
		t.Errorf("whoami json: %+v", me)
	}
	tok := strings.TrimSpace(alice.must("", "token"))
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token is not a JWT: %q", tok)
	}
	// The token works against the API directly.
	req, _ := http.NewRequest("GET", s.URL()+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("whoami with token: %d", resp.StatusCode)
	}
}

func TestWrongPasswordIsRefusedAndAudited(t *testing.T) {
	s := start(t)
	c := newCLI(t, s)
	_, errs, code := c.run("not-the-password\n", "login", "--username", "alice", "--password-stdin")
	if code == 0 || !strings.Contains(errs, "login failed") {
		t.Fatalf("want login failure, got %d %q", code, errs)
	}
	carol := newCLI(t, s)
	carol.login("carol")
	out := carol.must("", "audit", "query", "--user", "alice", "--action", "auth.*", "-o", "json")
	var recs []struct{ Action, Outcome string }
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatal(err, out)
	}
	found := false
	for _, r := range recs {
		if r.Outcome == "failure" {
			found = true
		}
	}
	if !found {
		t.Errorf("failed login not audited: %s", out)
	}
}

func TestAdminCommands(t *testing.T) {
	s := start(t)
	carol := newCLI(t, s)
	carol.login("carol")
	carol.must("", "group", "create", "risk", "--description", "Risk modelling")
	carol.must("dave-password-long\n", "user", "create", "dave", "--group", "risk", "--email", "dave@bank.example")
	out := carol.must("", "user", "get", "dave")
	if !strings.Contains(out, "risk") {
		t.Errorf("dave not in risk: %s", out)
	}
	dave := newCLI(t, s)
	dave.must("dave-password-long\n", "login", "--username", "dave", "--password-stdin")
	if out := dave.must("", "whoami"); !strings.Contains(out, "risk") {
		t.Errorf("dave whoami: %s", out)
	}
	// A non-admin is refused, with the protocol's error and an audit record.
	_, errs, code := dave.run("", "user", "list")
	if code == 0 || !strings.Contains(errs, "administrator") {
		t.Errorf("non-admin user list: %d %q", code, errs)
	}
	// Disable dave: he can no longer log in.
	carol.must("", "user", "update", "dave", "--disabled")
	if _, _, code := dave.run("dave-password-long\n", "login", "--username", "dave", "--password-stdin"); code == 0 {
		t.Error("disabled user logged in")
	}
	// Service account: create, get a token by client credentials, rotate.
	var sa struct {
		Name         string `json:"name"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(carol.must("", "service-account", "create", "etl", "--group", "risk", "-o", "json")), &sa); err != nil {
		t.Fatal(err)
	}
	if sa.Name != "etl" || len(sa.ClientSecret) < 20 {
		t.Fatalf("service account: %+v", sa)
	}
	tok := clientCredentials(t, s, "etl", sa.ClientSecret)
	me := getWhoami(t, s, tok)
	if me["username"] != "etl" || me["kind"] != "service" {
		t.Errorf("service whoami: %v", me)
	}
	carol.must("", "service-account", "rotate", "etl")
	if code := clientCredentialsStatus(t, s, "etl", sa.ClientSecret); code == 200 {
		t.Error("old secret still works after rotation")
	}
	// Every admin change is in the audit trail with its actor.
	out = carol.must("", "audit", "query", "--user", "carol", "--action", "user.*", "-o", "json")
	if !strings.Contains(out, "user.create") || !strings.Contains(out, "user.update") {
		t.Errorf("admin changes not audited: %s", out)
	}
	denied := carol.must("", "audit", "query", "--user", "dave", "--decision", "deny", "-o", "json")
	if !strings.Contains(denied, "user.list") {
		t.Errorf("denied admin attempt not audited: %s", denied)
	}
	if out := carol.must("", "audit", "verify"); !strings.Contains(out, "OK") {
		t.Errorf("audit verify: %s", out)
	}
}

func clientCredentialsStatus(t *testing.T, s *server.Server, id, secret string) int {
	t.Helper()
	resp, err := http.PostForm(tokenEndpoint(t, s), map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {"openid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func clientCredentials(t *testing.T, s *server.Server, id, secret string) string {
	t.Helper()
	resp, err := http.PostForm(tokenEndpoint(t, s), map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {"openid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &tr) != nil || tr.AccessToken == "" {
		t.Fatalf("client credentials: %d %s", resp.StatusCode, b)
	}
	return tr.AccessToken
}

func tokenEndpoint(t *testing.T, s *server.Server) string {
	t.Helper()
	resp, err := http.Get(s.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	json.NewDecoder(resp.Body).Decode(&d)
	return d.TokenEndpoint
}

func getWhoami(t *testing.T, s *server.Server, tok string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL()+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func TestBadTokensGet401ProblemJSON(t *testing.T) {
	s := start(t)
	for name, tok := range map[string]string{
		"garbage":  "not-a-token",
		"alg none": "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL()+"/api/v1/whoami", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct {
				Status int
				Code   string
				Detail string
			}
			json.NewDecoder(resp.Body).Decode(&p)
			if resp.StatusCode != 401 || p.Code != "unauthenticated" || p.Detail == "" {
				t.Errorf("got %d %+v", resp.StatusCode, p)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("content type %q", resp.Header.Get("Content-Type"))
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate")
			}
		})
	}
	// No token on a protected operation.
	resp, err := http.Get(s.URL() + "/api/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("anonymous whoami: %d", resp.StatusCode)
	}
}

func TestOpsEndpointsAndOpenAPI(t *testing.T) {
	s := start(t)
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/api/v1/info", "/oidc/.well-known/openid-configuration"} {
		resp, err := http.Get(s.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, b)
		}
		switch p {
		case "/metrics":
			if !bytes.Contains(b, []byte("steward_http_requests_total")) {
				t.Errorf("metrics lack steward_http_requests_total")
			}
		case "/readyz":
			if !bytes.Contains(b, []byte(`"ready":true`)) {
				t.Errorf("readyz: %s", b)
			}
		case "/api/v1/openapi.json":
			var doc struct {
				OpenAPI string                    `json:"openapi"`
				Paths   map[string]map[string]any `json:"paths"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"/whoami", "/users", "/groups", "/service-accounts", "/audit"} {
				if _, ok := doc.Paths[want]; !ok {
					t.Errorf("openapi lacks %s", want)
				}
			}
		}
	}
	// A validation error is a problem with a stable code.
	resp, err := http.Post(s.URL()+"/api/v1/users", "application/json", strings.NewReader(`{"username":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 401 && resp.StatusCode != 400 && resp.StatusCode != 422 {
		t.Errorf("bad body: %d", resp.StatusCode)
	}
}

func TestPortInUseNamesTheSetting(t *testing.T) {
	s := start(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = strings.TrimPrefix(s.URL(), "http://")
	_, err := server.New(context.Background(), cfg, server.Options{})
	if err == nil || !strings.Contains(err.Error(), "http_addr") {
		t.Fatalf("want http_addr error, got %v", err)
	}
}

func TestRevokedTokenIsRefused(t *testing.T) {
	s := start(t)
	c := newCLI(t, s)
	c.login("alice")
	tok := strings.TrimSpace(c.must("", "token"))
	if me := getWhoami(t, s, tok); me["username"] != "alice" {
		t.Fatalf("token does not work before revocation: %v", me)
	}
	resp, err := http.PostForm(s.Issuer()+"/revoke", map[string][]string{
		"token": {tok}, "token_type_hint": {"access_token"}, "client_id": {"steward-cli"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, b)
	}
	if me := getWhoami(t, s, tok); me["code"] != "unauthenticated" || me["detail"] != "token revoked" {
		t.Errorf("revoked token still accepted: %v", me)
	}
}

func TestTrinoEndpoints(t *testing.T) {
	s := start(t)
	body := `{"input":{"context":{"identity":{"user":"alice","groups":["analysts"]},"softwareStack":{"trinoVersion":"455"}},"action":{"operation":"ExecuteQuery"}}}`
	resp, err := http.Post(s.URL()+"/trino/v1/allow", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"result"`)) {
		t.Fatalf("trino allow: %d %s", resp.StatusCode, b)
	}
}

func TestTrinoEndpointsRefuseOtherNetworks(t *testing.T) {
	s := start(t, func(c *config.Config) { c.TrinoNetworks = []string{"10.99.0.0/16"} })
	resp, err := http.Post(s.URL()+"/trino/v1/allow", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("want 403 from a network not allowed, got %d", resp.StatusCode)
	}
}
