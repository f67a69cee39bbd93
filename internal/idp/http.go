package idp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stewardhq/steward"
)

const (
	maxBody    = 64 << 10
	csrfCookie = "steward_idp_csrf"
)

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(p.prefix+"/login", p.handleLogin)
	mux.HandleFunc(p.prefix+"/device", p.handleDevice)
	mux.HandleFunc(p.prefix+"/logged-out", p.handleLoggedOut)
	mux.HandleFunc(p.prefix+"/.well-known/openid-configuration", p.handleDiscovery)
	mux.HandleFunc(p.prefix+"/oauth/token", p.handleToken)
	opHandler := http.StripPrefix(p.prefix, p.op)
	mux.Handle(p.prefix+"/", opHandler)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		r = r.WithContext(context.WithValue(r.Context(), addrKey, remoteHost(r)))
		mux.ServeHTTP(w, r)
	})
}

// handleDiscovery serves op's discovery document, narrowed to what this
// provider really supports and with the password grant when it is on.
func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), p.cfg.Issuer)
	d := op.CreateDiscoveryConfig(ctx, p.op, (*storage)(p))
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken,
		oidc.GrantTypeClientCredentials, oidc.GrantTypeDeviceCode}
	if p.cfg.AllowPasswordGrant {
		d.GrantTypesSupported = append(d.GrantTypesSupported, grantTypePassword)
	}
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodNone, oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.ScopesSupported = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}
	d.RequestParameterSupported = false
	d.RequestObjectSigningAlgValuesSupported = nil
	writeJSON(w, http.StatusOK, d)
}

// handleToken serves the token endpoint: the password grant here, the
// grants op implements there, and nothing else.
func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, oidc.ErrInvalidRequest().WithDescription("use POST"))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("cannot parse form"))
		return
	}
	switch g := r.PostForm.Get("grant_type"); oidc.GrantType(g) {
	case grantTypePassword:
		p.passwordGrant(w, r)
	case oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials, oidc.GrantTypeDeviceCode:
		http.StripPrefix(p.prefix, p.op).ServeHTTP(w, r)
	case "":
		writeOAuthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("grant_type missing"))
	default:
		writeOAuthError(w, http.StatusBadRequest, oidc.ErrUnsupportedGrantType())
	}
}

// passwordGrant implements the resource-owner password grant (RFC 6749,
// section 4.3) for the public steward-cli client, minting tokens with op's
// own helpers so that they are the same as the other grants'.
func (p *Provider) passwordGrant(w http.ResponseWriter, r *http.Request) {
	if !p.cfg.AllowPasswordGrant {
		writeOAuthError(w, http.StatusBadRequest, oidc.ErrUnsupportedGrantType().WithDescription("the password grant is switched off"))
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.cfg.Issuer)
	clientID := r.PostForm.Get("client_id")
	if u, secret, ok := r.BasicAuth(); ok {
		u, err := url.QueryUnescape(u)
		if err != nil || (clientID != "" && clientID != u) || secret != "" {
			writeOAuthError(w, http.StatusUnauthorized, oidc.ErrInvalidClient())
			return
		}
		clientID = u
	}
	if r.PostForm.Get("client_secret") != "" {
		writeOAuthError(w, http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("public clients have no secret"))
		return
	}
	c, err := p.client(ctx, clientID)
	if err != nil {
		writeOAuthError(w, http.StatusUnauthorized, oidc.ErrInvalidClient())
		return
	}
	if c.authMethod != oidc.AuthMethodNone || !op.ValidateGrantType(c, grantTypePassword) {
		writeOAuthError(w, http.StatusBadRequest, oidc.ErrUnauthorizedClient().WithDescription("client may not use the password grant"))
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	user, err := p.authenticate(ctx, username, password, methodPassword, clientID)
	if err != nil {
		if steward.KindOf(err) == steward.EUnauthenticated {
			writeOAuthError(w, http.StatusBadRequest, oidc.ErrInvalidGrant().WithDescription("%s", steward.MessageOf(err)))
		} else {
			p.log.Error("password grant failed", "err", err)
			writeOAuthError(w, http.StatusInternalServerError, oidc.ErrServerError())
		}
		return
	}
	req := &tokenRequest{grant: grantPassword, subject: user.Username, clientID: clientID, kind: steward.KindUser,
		scopes: allowedScopes(strings.Fields(r.PostForm.Get("scope"))), amr: []string{"pwd"}, authTime: p.now()}
	resp, err := p.mint(ctx, req, c)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType != oidc.ServerError {
			writeOAuthError(w, http.StatusBadRequest, oe)
			return
		}
		p.log.Error("password grant: cannot mint tokens", "err", err)
		writeOAuthError(w, http.StatusInternalServerError, oidc.ErrServerError())
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// mint creates the token response for req with op's helpers: a refresh
// token if offline_access was asked for, an ID token if openid was.
func (p *Provider) mint(ctx context.Context, req *tokenRequest, c *client) (*oidc.AccessTokenResponse, error) {
	s := (*storage)(p)
	var jti, refresh string
	var err error
	exp := p.now()
	if slices.Contains(req.scopes, oidc.ScopeOfflineAccess) {
		jti, refresh, exp, err = s.CreateAccessAndRefreshTokens(ctx, req, "")
	} else {
		jti, exp, err = s.CreateAccessToken(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	at, err := op.CreateJWT(ctx, p.cfg.Issuer, req, exp, jti, c, s)
	if err != nil {
		return nil, err
	}
	resp := &oidc.AccessTokenResponse{AccessToken: at, RefreshToken: refresh, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(exp.Sub(p.now()).Seconds()), Scope: req.scopes}
	if slices.Contains(req.scopes, oidc.ScopeOpenID) {
		if resp.IDToken, err = op.CreateIDToken(ctx, p.cfg.Issuer, req, c.IDTokenLifetime(), at, "", s, c); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeOAuthError(w http.ResponseWriter, status int, e *oidc.Error) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="steward"`)
	}
	writeJSON(w, status, e)
}

// ---- login pages ----

var pages = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Steward – {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}
label,input,button{display:block;width:100%;box-sizing:border-box;margin:.4rem 0}input,button{padding:.5rem}
.error{color:#b00020}</style></head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Form}}<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
{{if .AuthRequestID}}<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">{{end}}
{{if .Device}}<label for="user_code">Code shown on your device</label>
<input id="user_code" name="user_code" value="{{.UserCode}}" required autocomplete="off">{{end}}
<label for="username">Username</label><input id="username" name="username" value="{{.Username}}" required autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" required autocomplete="current-password">
{{if .Device}}<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button>
{{else}}<button type="submit">Sign in</button>{{end}}
</form>{{end}}
</body></html>`))

type pageData struct {
	Title, Error, Message       string
	Form, Device                bool
	Action, CSRF, AuthRequestID string
	UserCode, Username          string
}

func (p *Provider) render(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pages.Execute(w, d); err != nil {
		p.log.Error("cannot render page", "err", err)
	}
}

// csrf returns the form token for purpose, bound to the browser's CSRF
// cookie (set here if missing): HMAC(key, cookie "|" purpose). A cross-site
// form post carries no SameSite=Lax cookie and so cannot match.
func (p *Provider) csrf(w http.ResponseWriter, r *http.Request, purpose string) string {
	c, err := r.Cookie(csrfCookie)
	val := ""
	if err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		val = c.Value
	} else {
		b := make([]byte, 32)
		rand.Read(b)
		val = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: val, Path: p.prefix + "/", HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(p.cfg.Issuer, "https://")})
	}
	return p.csrfToken(val, purpose)
}

func (p *Provider) csrfToken(cookie, purpose string) string {
	m := hmac.New(sha256.New, p.csrfKey)
	m.Write([]byte(cookie + "|" + purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Provider) checkCSRF(r *http.Request, purpose string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return false
	}
	want := p.csrfToken(c.Value, purpose)
	return subtle.ConstantTimeCompare([]byte(want), []byte(r.PostForm.Get("csrf_token"))) == 1
}

func (p *Provider) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		id := r.URL.Query().Get("authRequestID")
		ar, err := (*storage)(p).authRequest(ctx, p.store, id)
		if err != nil || ar.IsDone {
			p.render(w, http.StatusBadRequest, pageData{Title: "Sign in", Error: "This sign-in link is unknown or has expired. Start again from your application."})
			return
		}
		p.render(w, http.StatusOK, pageData{Title: "Sign in", Form: true, Action: p.prefix + "/login",
			CSRF: p.csrf(w, r, "login:"+id), AuthRequestID: id})
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			p.render(w, http.StatusBadRequest, pageData{Title: "Sign in", Error: "Bad request."})
			return
		}
		id := r.PostForm.Get("authRequestID")
		if !p.checkCSRF(r, "login:"+id) {
			p.render(w, http.StatusForbidden, pageData{Title: "Sign in", Error: "The form has expired. Go back and try again."})
			return
		}
		ar, err := (*storage)(p).authRequest(ctx, p.store, id)
		if err != nil || ar.IsDone {
			p.render(w, http.StatusBadRequest, pageData{Title: "Sign in", Error: "This sign-in link is unknown or has expired. Start again from your application."})
			return
		}
		username := r.PostForm.Get("username")
		user, err := p.authenticate(ctx, username, r.PostForm.Get("password"), methodForm, ar.ClientID)
		if err != nil {
			status := http.StatusUnauthorized
			if steward.KindOf(err) != steward.EUnauthenticated {
				p.log.Error("login failed", "err", err)
				status = http.StatusServiceUnavailable
			}
			p.render(w, status, pageData{Title: "Sign in", Form: true, Action: p.prefix + "/login", Error: steward.MessageOf(err),
				CSRF: p.csrf(w, r, "login:"+id), AuthRequestID: id, Username: username})
			return
		}
		if err := p.completeAuthRequest(ctx, id, user.Username); err != nil {
			p.render(w, http.StatusBadRequest, pageData{Title: "Sign in", Error: "This sign-in link is unknown or has expired. Start again from your application."})
			return
		}
		http.Redirect(w, r, p.prefix+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (p *Provider) handleDevice(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	const title = "Sign in a device"
	form := func(status int, msg, code, username string) {
		p.render(w, status, pageData{Title: title, Form: true, Device: true, Action: p.prefix + "/device",
			Error: msg, CSRF: p.csrf(w, r, "device"), UserCode: code, Username: username})
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		code, _ := normalizeUserCode(r.URL.Query().Get("user_code"))
		form(http.StatusOK, "", code, "")
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			p.render(w, http.StatusBadRequest, pageData{Title: title, Error: "Bad request."})
			return
		}
		if !p.checkCSRF(r, "device") {
			p.render(w, http.StatusForbidden, pageData{Title: title, Error: "The form has expired. Go back and try again."})
			return
		}
		username := r.PostForm.Get("username")
		action := r.PostForm.Get("action")
		code, ok := normalizeUserCode(r.PostForm.Get("user_code"))
		if !ok || (action != "approve" && action != "deny") {
			form(http.StatusBadRequest, "Enter the code shown on your device.", r.PostForm.Get("user_code"), username)
			return
		}
		clientID, err := p.deviceClient(ctx, code)
		if err != nil {
			form(http.StatusBadRequest, "This code is unknown or has expired.", code, username)
			return
		}
		user, err := p.authenticate(ctx, username, r.PostForm.Get("password"), methodDevice, clientID)
		if err != nil {
			status := http.StatusUnauthorized
			if steward.KindOf(err) != steward.EUnauthenticated {
				p.log.Error("device login failed", "err", err)
				status = http.StatusServiceUnavailable
			}
			form(status, steward.MessageOf(err), code, username)
			return
		}
		approve := action == "approve"
		if err := p.decideDevice(ctx, code, user.Username, approve); err != nil {
			form(http.StatusBadRequest, "This code is unknown or has expired.", code, username)
			return
		}
		if err := p.record(ctx, steward.AuditEvent{Actor: user.Username, ActorKind: string(steward.KindUser), Action: "auth.device",
			Resource: "idp/client/" + clientID, Decision: map[bool]string{true: "allow", false: "deny"}[approve], Outcome: "success",
			Details: map[string]any{"client_id": clientID}}); err != nil {
			p.render(w, http.StatusServiceUnavailable, pageData{Title: title, Error: "Service unavailable."})
			return
		}
		msg := "Your device is signed in. You can close this window."
		if !approve {
			msg = "The sign-in was denied. You can close this window."
		}
		p.render(w, http.StatusOK, pageData{Title: title, Message: msg})
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (p *Provider) handleLoggedOut(w http.ResponseWriter, r *http.Request) {
	p.render(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out."})
}

// normalizeUserCode turns what a user typed into the canonical user code
// (op.UserCodeBase20: eight characters of op.CharSetBase20 as XXXX-XXXX),
// ignoring case, spaces and dashes.
func normalizeUserCode(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if !strings.ContainsRune(op.CharSetBase20, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	c := b.String()
	if len(c) != op.UserCodeBase20.CharAmount {
		return "", false
	}
	return c[:4] + "-" + c[4:], true
}
