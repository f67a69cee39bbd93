// Package api is Steward's REST API under /api/v1, used by the portal and
// the CLI and described by the OpenAPI document it serves at
// /api/v1/openapi.json. Errors are RFC 9457 problem details carrying a
// stable code (the steward.ErrorKind) and a caller-safe message.
//
// The API trusts the principal that the identity middleware put in the
// request context; it never parses tokens itself.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/policystore"
	"github.com/stewardhq/steward/internal/sts"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Problem is an RFC 9457 problem details body with a stable code.
type Problem struct {
	Type     string              `json:"type,omitempty" doc:"A URI reference identifying the problem type."`
	Title    string              `json:"title,omitempty" doc:"Short summary of the problem type."`
	Status   int                 `json:"status,omitempty" doc:"HTTP status code."`
	Code     string              `json:"code" doc:"Stable machine-readable code: invalid, unauthenticated, permission, not_found, conflict, too_large, unavailable, internal."`
	Detail   string              `json:"detail,omitempty" doc:"What went wrong, safe to show to the user."`
	Instance string              `json:"instance,omitempty" doc:"The request ID of this occurrence."`
	Errors   []*huma.ErrorDetail `json:"errors,omitempty" doc:"Individual validation errors."`
}

func (p *Problem) Error() string  { return p.Detail }
func (p *Problem) GetStatus() int { return p.Status }
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

// statusOf maps error kinds to HTTP statuses, in one place.
func statusOf(k steward.ErrorKind) int {
	switch k {
	case steward.EInvalid:
		return http.StatusBadRequest
	case steward.EUnauthenticated:
		return http.StatusUnauthorized
	case steward.EPermission:
		return http.StatusForbidden
	case steward.ENotFound:
		return http.StatusNotFound
	case steward.EConflict:
		return http.StatusConflict
	case steward.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case steward.EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func codeOfStatus(status int) string {
	switch status {
	case 400, 422:
		return string(steward.EInvalid)
	case 401:
		return string(steward.EUnauthenticated)
	case 403:
		return string(steward.EPermission)
	case 404:
		return string(steward.ENotFound)
	case 409, 412:
		return string(steward.EConflict)
	case 413:
		return string(steward.ETooLarge)
	case 503:
		return string(steward.EUnavailable)
	}
	if status >= 500 {
		return string(steward.EInternal)
	}
	return string(steward.EInvalid)
}

func init() {
	// Huma's own errors (validation, unsupported media type, ...) become
	// Problems with a code, like Steward's.
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		p := &Problem{Status: status, Title: http.StatusText(status), Code: codeOfStatus(status), Detail: msg}
		if status >= 500 {
			p.Detail = "internal error"
			return p
		}
		for _, e := range errs {
			if e == nil {
				continue
			}
			var d huma.ErrorDetailer
			if errors.As(e, &d) {
				p.Errors = append(p.Errors, d.ErrorDetail())
			} else {
				p.Errors = append(p.Errors, &huma.ErrorDetail{Message: e.Error()})
			}
		}
		return p
	}
}

// TokenInfo is what the API needs to know about the configured identity
// provider, so that clients can discover how to log in.
type TokenInfo struct {
	Issuer         string `json:"issuer" doc:"The OpenID issuer the CLI and portal log in with."`
	CLIClientID    string `json:"cli_client_id"`
	PortalClientID string `json:"portal_client_id,omitempty"`
	Builtin        bool   `json:"builtin" doc:"Whether the issuer is Steward's built-in provider."`
}

// PasswordHasher hashes passwords and service account secrets.
type PasswordHasher interface {
	HashPassword(pw string) (string, error)
	NewSecret() (steward.Secret, error)
}

// AuditReader reads the audit trail for admins.
type AuditReader interface {
	Query(ctx context.Context, f AuditFilter, fn func(AuditEntry) error) error
	Verify(ctx context.Context) (AuditVerifyResult, error)
}

// AuditFilter selects audit records.
type AuditFilter struct {
	Actor, Action, Resource, Decision string
	Since, Until                      time.Time
	Limit                             int
}

// AuditEntry is one audit record as the API returns it.
type AuditEntry struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	steward.AuditEvent
}

// AuditVerifyResult is the outcome of verifying the audit chain.
type AuditVerifyResult struct {
	OK       bool   `json:"ok"`
	Records  int64  `json:"records"`
	Segments int    `json:"segments"`
	Problem  string `json:"problem,omitempty"`
}

// Deps are what the API is built from.
type Deps struct {
	Identities steward.IdentityStore
	Auditor    steward.Auditor
	Audit      AuditReader // may be nil
	Hasher     PasswordHasher
	Token      TokenInfo
	S3Endpoint string // the S3 gateway's URL, for `steward creds` and aws profiles
	// S3Credentials, if set, enables admin endpoints for service accounts'
	// S3 access keys and for revoking S3 sessions.
	S3Credentials *sts.Service
	AdminGroup    string
	Version       string
	Logger        *slog.Logger

	// Policies, if set, enables policy administration and access
	// requests; PolicyEngine, if set, the decision and explain endpoints.
	Policies     *policystore.Store
	PolicyEngine *policystore.Holder

	// Catalog, if set, enables the catalog: datasets and search.
	Catalog *catalog.Service
	// Usage, if set, enables dataset usage, bookmarks and recommendations.
	Usage *catalog.Usage

	// SQL, if set, enables POST /query (governed SQL).
	SQL SQLQuerier
}

// API is the REST API.
type API struct {
	d   Deps
	mux *http.ServeMux
	h   huma.API
}

// New builds the API and registers every operation.
func New(d Deps) *API {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	cfg := huma.DefaultConfig("Steward API", d.Version)
	cfg.Info.Description = "Steward's REST API: identity, administration and audit. Errors are RFC 9457 problem details with a stable `code`."
	cfg.OpenAPIPath = "/openapi"
	cfg.DocsPath = ""
	cfg.SchemasPath = ""
	cfg.CreateHooks = nil
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", BearerFormat: "JWT", Description: "An OpenID Connect access token."},
	}
	cfg.Servers = []*huma.Server{{URL: Prefix}}
	h := humago.NewWithPrefix(mux, Prefix, cfg)
	a := &API{d: d, mux: mux, h: h}
	a.registerIdentity()
	a.registerAdmin()
	a.registerAudit()
	if d.S3Credentials != nil {
		a.registerS3Keys()
	}
	if d.Policies != nil {
		a.registerPolicy()
		a.registerAccess()
	}
	if d.Catalog != nil {
		a.registerCatalog()
	}
	a.registerUsage()
	if d.SQL != nil {
		a.registerSQL()
	}
	return a
}

// Handler serves the API; mount it at Prefix+"/".
func (a *API) Handler() http.Handler { return a.mux }

// OpenAPI returns the API description.
func (a *API) OpenAPI() *huma.OpenAPI { return a.h.OpenAPI() }

// Huma exposes the huma API so that other components (policy, catalog, ...)
// register their operations on the same document.
func (a *API) Huma() huma.API { return a.h }

var bearer = []map[string][]string{{"bearer": {}}}

// problem converts a Steward error into a Problem, logging internal detail.
func (a *API) problem(ctx context.Context, op string, err error) error {
	k := steward.KindOf(err)
	st := statusOf(k)
	if st >= 500 {
		a.d.Logger.ErrorContext(ctx, "request failed", "op", op, "err", err)
	}
	return &Problem{Status: st, Title: http.StatusText(st), Code: string(k), Detail: steward.MessageOf(err), Instance: RequestID(ctx)}
}

// ProblemOf is problem for other packages that register operations.
func (a *API) ProblemOf(ctx context.Context, op string, err error) error {
	return a.problem(ctx, op, err)
}
