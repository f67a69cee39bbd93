package identity

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stewardhq/steward"
)

func TestMiddleware(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.es256)
	v := newTestVerifier(t, f.config())
	now := time.Now()
	valid := mint(t, k.es256, keycloakClaims(f.issuer, now))
	expiredClaims := keycloakClaims(f.issuer, now)
	expiredClaims["exp"] = now.Add(-time.Hour).Unix()
	expired := mint(t, k.es256, expiredClaims)

	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := steward.PrincipalFrom(r.Context())
		if p == nil {
			io.WriteString(w, "anonymous")
			return
		}
		io.WriteString(w, p.Username)
	})
	required := Middleware(v, echo, MiddlewareOptions{Realm: "steward", Logger: testLogger(t)})
	anonymous := Middleware(v, echo, MiddlewareOptions{AllowAnonymous: true})

	type want struct {
		status    int
		challenge string
		body      string // exact body for 200, problem detail otherwise
	}
	tests := []struct {
		name    string
		h       http.Handler
		headers []string
		want    want
	}{
		{"valid", required, []string{"Bearer " + valid}, want{200, "", "alice"}},
		{"scheme case-insensitive", required, []string{"bearer " + valid}, want{200, "", "alice"}},
		{"expired", required, []string{"Bearer " + expired},
			want{401, `Bearer realm="steward", error="invalid_token", error_description="token expired"`, "token expired"}},
		{"garbage", required, []string{"Bearer x.y.z"},
			want{401, `Bearer realm="steward", error="invalid_token", error_description="token malformed"`, "token malformed"}},
		{"missing, required", required, nil, want{401, `Bearer realm="steward"`, "authentication required"}},
		{"other scheme, required", required, []string{"Basic YWxpY2U6cHc="}, want{401, `Bearer realm="steward"`, "authentication required"}},
		{"empty bearer", required, []string{"Bearer "},
			want{401, `Bearer realm="steward", error="invalid_token", error_description="token malformed"`, "token malformed"}},
		{"two headers", required, []string{"Bearer " + valid, "Bearer " + valid},
			want{401, `Bearer realm="steward", error="invalid_token", error_description="token malformed"`, "token malformed"}},
		{"missing, anonymous allowed", anonymous, nil, want{200, "", "anonymous"}},
		{"valid, anonymous allowed", anonymous, []string{"Bearer " + valid}, want{200, "", "alice"}},
		{"invalid, anonymous allowed", anonymous, []string{"Bearer " + expired},
			want{401, `Bearer error="invalid_token", error_description="token expired"`, "token expired"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api/datasets", nil)
			for _, h := range tc.headers {
				req.Header.Add("Authorization", h)
			}
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			if rec.Code != tc.want.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.want.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.want.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.want.challenge)
			}
			if tc.want.status == 200 {
				if rec.Body.String() != tc.want.body {
					t.Fatalf("body %q", rec.Body)
				}
				return
			}
			checkProblem(t, rec, tc.want.status, "unauthenticated", tc.want.body)
			if strings.Contains(rec.Body.String(), f.srv.URL) || strings.Contains(rec.Body.String(), "alice") {
				t.Fatalf("body leaks: %s", rec.Body)
			}
		})
	}
}

func checkProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code, detail string) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	want := map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": float64(status), "code": code, "detail": detail}
	if len(got) != len(want) {
		t.Fatalf("problem %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("problem %v, want %v", got, want)
		}
	}
}

func TestMiddlewareExactBody(t *testing.T) {
	v := TokenVerifierFunc(func(context.Context, string) (*steward.Principal, error) {
		return nil, reasonExpired.err(nil)
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer a.b.c")
	Middleware(v, http.NotFoundHandler(), MiddlewareOptions{}).ServeHTTP(rec, req)
	const want = `{"type":"about:blank","title":"Unauthorized","status":401,"code":"unauthenticated","detail":"token expired"}` + "\n"
	if rec.Body.String() != want {
		t.Fatalf("body %q, want %q", rec.Body, want)
	}
}

func TestMiddlewareIssuerUnavailable(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.es256)
	f.down.Store(true)
	v := newTestVerifier(t, f.config())
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+mint(t, k.es256, keycloakClaims(f.issuer, time.Now())))
	Middleware(v, http.NotFoundHandler(), MiddlewareOptions{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("status %d, challenge %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	checkProblem(t, rec, 503, "unavailable", "identity provider unavailable")
}

func TestMulti(t *testing.T) {
	k := testKeys()
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	external := newFakeIssuer(t, k.rsaA)
	extCfg := external.config()
	extCfg.Metrics = metrics
	extV := newTestVerifier(t, extCfg)
	builtinCfg := Config{Issuer: "http://127.0.0.1:8080", Audiences: []string{"steward"}, Metrics: metrics}
	builtinV, err := NewVerifierWithKeys(builtinCfg, StaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.ed.jwk()}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMulti(metrics, extV, builtinV)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	builtinClaims := func() map[string]any {
		return map[string]any{"iss": builtinCfg.Issuer, "aud": "steward", "sub": "bob", "preferred_username": "bob",
			"exp": now.Add(time.Minute).Unix(), "groups": []string{"admins"}, "steward_kind": "user"}
	}

	p, err := m.Verify(context.Background(), mint(t, k.rsaA, keycloakClaims(external.issuer, now)))
	if err != nil || p.Username != "alice" || p.Issuer != external.issuer {
		t.Fatalf("external: %+v %v", p, err)
	}
	p, err = m.Verify(context.Background(), mint(t, k.ed, builtinClaims()))
	if err != nil || p.Username != "bob" || p.Issuer != builtinCfg.Issuer || p.Kind != steward.KindUser {
		t.Fatalf("built-in: %+v %v", p, err)
	}

	unknown := keycloakClaims("https://evil.example/realms/bank", now)
	_, err = m.Verify(context.Background(), mint(t, k.rsaA, unknown))
	wantRefusal(t, err, steward.EUnauthenticated, "token issuer not accepted", "evil")

	// Claiming the built-in issuer but signed by the external issuer's key.
	_, err = m.Verify(context.Background(), mint(t, k.rsaA, builtinClaims()))
	wantRefusal(t, err, steward.EUnauthenticated, "token signature invalid")

	// "ISS" is not "iss".
	upper := builtinClaims()
	upper["ISS"] = upper["iss"]
	delete(upper, "iss")
	_, err = m.Verify(context.Background(), mint(t, k.ed, upper))
	wantRefusal(t, err, steward.EUnauthenticated, "token malformed")

	for _, bad := range []string{"", "x", "a.b.c", strings.Repeat("a", MaxTokenSize+1)} {
		if _, err := m.Verify(context.Background(), bad); steward.KindOf(err) != steward.EUnauthenticated {
			t.Fatalf("%q: %v", bad, err)
		}
	}

	if _, err := NewMulti(nil, extV, extV); err == nil {
		t.Fatal("duplicate issuer accepted")
	}
	if got := counter(t, reg, "ok"); got != 2 {
		t.Fatalf("ok count %v", got)
	}
	if got := counter(t, reg, "issuer"); got != 1 {
		t.Fatalf("issuer count %v", got)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "steward_identity_token_verifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelIs(m, "result", result) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
