package identity

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
)

// MiddlewareOptions configure Middleware.
type MiddlewareOptions struct {
	// AllowAnonymous lets requests without a bearer token through with no
	// principal in their context. A token that is present but invalid is
	// refused either way.
	AllowAnonymous bool
	// Realm, if set, is named in WWW-Authenticate.
	Realm string
	// Logger receives refusals at debug level; nil discards.
	Logger *slog.Logger
}

// Problem is the RFC 9457 problem document written on refusal.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
}

// Middleware authenticates requests by their "Authorization: Bearer" token
// with v and passes them to next with the principal in their context
// (steward.PrincipalFrom). A refused token gets 401 with a WWW-Authenticate
// challenge (RFC 6750) and a problem JSON body; an unreachable issuer gets 503.
func Middleware(v TokenVerifier, next http.Handler, opts MiddlewareOptions) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, present, ok := bearerToken(r)
		if !ok {
			writeRefusal(w, opts.Realm, reasonMalformed.err(nil))
			return
		}
		if !present {
			if opts.AllowAnonymous {
				next.ServeHTTP(w, r)
				return
			}
			writeChallenge(w, opts.Realm)
			return
		}
		p, err := v.Verify(r.Context(), token)
		if err != nil {
			log.Debug("bearer token refused", "err", err, "path", r.URL.Path)
			writeRefusal(w, opts.Realm, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(steward.WithPrincipal(r.Context(), p)))
	})
}

// bearerToken reads the bearer token. present says whether one was sent;
// ok is false when the Authorization header is unusable (several of them,
// or a Bearer scheme with no token).
func bearerToken(r *http.Request) (token string, present, ok bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", false, true
	}
	if len(vals) > 1 {
		return "", true, false
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// Another scheme (Basic, AWS SigV4) is not ours to judge.
		return "", false, true
	}
	token = strings.TrimSpace(rest)
	if token == "" {
		return "", true, false
	}
	return token, true, true
}

func challenge(realm string, params ...string) string {
	var parts []string
	if realm != "" {
		parts = append(parts, "realm="+strconv.Quote(realm))
	}
	parts = append(parts, params...)
	if len(parts) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(parts, ", ")
}

// writeChallenge answers a request that sent no token where one is required.
func writeChallenge(w http.ResponseWriter, realm string) {
	w.Header().Set("WWW-Authenticate", challenge(realm))
	writeProblem(w, Problem{
		Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized,
		Code: string(steward.EUnauthenticated), Detail: "authentication required",
	})
}

// writeRefusal answers a request whose token was refused.
func writeRefusal(w http.ResponseWriter, realm string, err error) {
	msg := steward.MessageOf(err)
	if steward.KindOf(err) != steward.EUnauthenticated {
		status, title := http.StatusServiceUnavailable, "Service Unavailable"
		kind := steward.KindOf(err)
		if kind != steward.EUnavailable {
			status, title, kind, msg = http.StatusInternalServerError, "Internal Server Error", steward.EInternal, "internal error"
		} else {
			w.Header().Set("Retry-After", "5")
		}
		writeProblem(w, Problem{Type: "about:blank", Title: title, Status: status, Code: string(kind), Detail: msg})
		return
	}
	w.Header().Set("WWW-Authenticate", challenge(realm,
		`error="invalid_token"`, "error_description="+strconv.Quote(msg)))
	writeProblem(w, Problem{
		Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized,
		Code: string(steward.EUnauthenticated), Detail: msg,
	})
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
