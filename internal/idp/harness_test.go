package idp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

func TestMain(m *testing.M) {
	// Cheap hashes keep the suite fast; TestHashPasswordDefaults checks
	// the production parameters.
	hashParams = argonParams{memory: 64, time: 1, threads: 1}
	slog.SetDefault(slog.New(slog.DiscardHandler)) // zitadel's op logs to the default logger
	pgtest.Main(m)
}

// fakeAuditor keeps audit events in memory and fails on demand.
type fakeAuditor struct {
	mu     sync.Mutex
	events []steward.AuditEvent
	fail   bool
}

func (a *fakeAuditor) Record(_ context.Context, ev steward.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("audit disk full")
	}
	a.events = append(a.events, ev)
	return nil
}

func (a *fakeAuditor) setFail(v bool) {
	a.mu.Lock()
	a.fail = v
	a.mu.Unlock()
}

// find returns the events with action and outcome.
func (a *fakeAuditor) find(action, outcome string) []steward.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []steward.AuditEvent
	for _, ev := range a.events {
		if ev.Action == action && (outcome == "" || ev.Outcome == outcome) {
			out = append(out, ev)
		}
	}
	return out
}

func (a *fakeAuditor) all() []steward.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]steward.AuditEvent(nil), a.events...)
}

const (
	alicePassword = "alice-correct-horse"
	bobPassword   = "bob-battery-staple"
	loopback      = "http://127.0.0.1:45678/callback"
)

type env struct {
	t      testing.TB
	ctx    context.Context
	store  *metastore.Store
	p      *Provider
	srv    *httptest.Server
	aud    *fakeAuditor
	issuer string
	secret steward.Secret // of service account "etl"
}

var testKEK = []byte("0123456789abcdef0123456789abcdef")

// newEnv starts a provider over a fresh SQLite metastore with users alice
// (enabled, group analysts, role admin) and bob (disabled), and service
// accounts etl (enabled) and old-etl (disabled).
func newEnv(t testing.TB, mods ...func(*Config)) *env {
	t.Helper()
	return newEnvDSN(t, "sqlite:"+filepath.Join(t.TempDir(), "steward.db"), true, mods...)
}

func newEnvDSN(t testing.TB, dsn string, seed bool, mods ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := metastore.Open(ctx, dsn, "")
	if err != nil {
		t.Fatalf("open metastore: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, ctx: ctx, store: store, aud: &fakeAuditor{}}
	var handler http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL + "/oidc"
	cfg := DefaultConfig(e.issuer)
	cfg.KeyEncryptionKey = testKEK
	cfg.Insecure = true
	cfg.DevicePollInterval = time.Second
	cfg.PortalRedirectURIs = []string{"http://127.0.0.1:3000/portal/callback"}
	for _, m := range mods {
		m(&cfg)
	}
	if seed {
		e.seed(store)
	}
	e.p, err = New(ctx, cfg, store, store, e.aud, nil)
	if err != nil {
		t.Fatalf("idp.New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/oidc/", e.p.Handler())
	handler = mux
	return e
}

func (e *env) seed(store *metastore.Store) {
	t := e.t
	t.Helper()
	if err := store.CreateGroup(e.ctx, &steward.Group{Name: "analysts"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name, pw string
		disabled bool
	}{{"alice", alicePassword, false}, {"bob", bobPassword, true}} {
		h, err := HashPassword(u.pw)
		if err != nil {
			t.Fatal(err)
		}
		user := &steward.User{Username: u.name, Email: u.name + "@example.com", DisplayName: strings.ToUpper(u.name), Roles: []string{"admin"}, Disabled: u.disabled}
		if u.name == "alice" {
			user.Groups = []string{"analysts"}
		}
		if err := store.CreateUser(e.ctx, user, h); err != nil {
			t.Fatal(err)
		}
	}
	e.secret = NewSecret()
	for _, sa := range []struct {
		name     string
		disabled bool
	}{{"etl", false}, {"old-etl", true}} {
		h, err := HashPassword(e.secret.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateServiceAccount(e.ctx, &steward.ServiceAccount{Name: sa.name, Groups: []string{"analysts"}, Roles: []string{"pipeline"}, Disabled: sa.disabled}, h); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) oauth(clientID string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:       e.issuer + "/authorize",
			TokenURL:      e.issuer + "/oauth/token",
			DeviceAuthURL: e.issuer + "/device_authorization",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		RedirectURL: loopback,
		Scopes:      scopes,
	}
}

// browser is an HTTP client with cookies that does not follow redirects.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) abs(loc string) string {
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := u.Parse(loc)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.String()
}

var (
	csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	areqRE = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)
)

func body(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startLogin follows an authorization URL to the login form and returns
// the form's hidden fields.
func (e *env) startLogin(b *http.Client, authURL string) (authReqID, csrf string) {
	t := e.t
	t.Helper()
	resp, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, body %s", resp.StatusCode, page)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/oidc/login?") {
		t.Fatalf("authorize redirected to %q, want the login page", loc)
	}
	resp, err = b.Get(e.abs(loc))
	if err != nil {
		t.Fatal(err)
	}
	page = body(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login page: status %d", resp.StatusCode)
	}
	m1, m2 := areqRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
	if m1 == nil || m2 == nil {
		t.Fatalf("login page lacks hidden fields: %s", page)
	}
	return m1[1], m2[1]
}

// postLogin posts the login form and returns the response.
func (e *env) postLogin(b *http.Client, authReqID, csrf, user, pw string) *http.Response {
	e.t.Helper()
	resp, err := b.PostForm(e.issuer+"/login", url.Values{"authRequestID": {authReqID}, "csrf_token": {csrf}, "username": {user}, "password": {pw}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// codeFlow runs the authorization code flow for clientID up to the code
// and returns the code and the PKCE verifier.
func (e *env) codeFlow(cfg *oauth2.Config, user, pw string) (code, verifier string) {
	t := e.t
	t.Helper()
	b := e.browser()
	verifier = oauth2.GenerateVerifier()
	id, csrf := e.startLogin(b, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	resp := e.postLogin(b, id, csrf, user, pw)
	page := body(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: status %d: %s", resp.StatusCode, page)
	}
	resp, err := b.Get(e.abs(resp.Header.Get("Location")))
	if err != nil {
		t.Fatal(err)
	}
	body(t, resp)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != cfg.RedirectURL {
		t.Fatalf("redirected to %q, want %q", got, cfg.RedirectURL)
	}
	if loc.Query().Get("state") != "st4te" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect lacks code or state: %s", loc)
	}
	return loc.Query().Get("code"), verifier
}

// tokenForm posts a form to the token endpoint and decodes the JSON reply.
func (e *env) tokenForm(v url.Values, basicUser, basicPass string) (int, map[string]any) {
	t := e.t
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	raw := body(t, resp)
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("token endpoint: status %d, not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

func (e *env) jwks() *jose.JSONWebKeySet {
	e.t.Helper()
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		e.t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body(e.t, resp)), &set); err != nil {
		e.t.Fatal(err)
	}
	return &set
}

// verify checks token's RS256 signature against the JWKS served over HTTP
// and returns its kid and claims.
func (e *env) verify(token string) (string, map[string]any) {
	t := e.t
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := e.jwks().Key(kid)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", kid)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return kid, claims
}

func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}
