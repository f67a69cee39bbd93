package idp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzTokenEndpoint throws arbitrary form bodies at the token endpoint and
// the login and device forms: every answer must be a well-formed error
// (never a 5xx, never a token).
func FuzzTokenEndpoint(f *testing.F) {
	e := newEnv(f)
	for _, s := range []string{
		"grant_type=password&username=alice&password=x&client_id=steward-cli",
		"grant_type=refresh_token&refresh_token=abc&client_id=steward-cli",
		"grant_type=authorization_code&code=abc&code_verifier=x&client_id=steward-cli&redirect_uri=http://127.0.0.1/callback",
		"grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x&client_id=steward-cli",
		"grant_type=client_credentials&client_id=etl&client_secret=x",
		"grant_type=%ZZ", "", "grant_type=password&grant_type=client_credentials", "csrf_token=x&authRequestID=y&username=alice&password=z",
		"user_code=BCDF-GHJK&username=alice&password=x&action=approve",
	} {
		f.Add("/oidc/oauth/token", s)
		f.Add("/oidc/login", s)
		f.Add("/oidc/device", s)
	}
	f.Fuzz(func(t *testing.T, path, form string) {
		switch path {
		case "/oidc/oauth/token", "/oidc/login", "/oidc/device":
		default:
			path = "/oidc/oauth/token"
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		e.p.Handler().ServeHTTP(w, req)
		if w.Code >= 500 || w.Code == http.StatusOK && path == "/oidc/oauth/token" || w.Code == http.StatusFound {
			v, _ := url.ParseQuery(form)
			t.Fatalf("POST %s %v: status %d: %s", path, v, w.Code, w.Body.String())
		}
	})
}
