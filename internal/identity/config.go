package identity

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stewardhq/steward"
)

// Defaults and bounds of Config.
const (
	DefaultUsernameClaim         = "preferred_username"
	DefaultGroupsClaim           = "groups"
	DefaultRolesClaim            = "realm_access.roles"
	DefaultServiceAccountClaim   = "steward_kind"
	DefaultServiceAccountValue   = "service"
	DefaultServiceAccountPrefix  = "service-account-"
	DefaultClockSkew             = 30 * time.Second
	MaxClockSkew                 = 5 * time.Minute
	DefaultMinRefreshInterval    = 10 * time.Second
	DefaultHTTPTimeout           = 10 * time.Second
	MaxTokenSize                 = 16 << 10 // bytes of a compact token
	maxDocumentSize              = 1 << 20  // discovery document and JWKS
	maxKeysInSet                 = 100
	maxClaimValues               = 1000 // entries in a groups or roles claim
	maxNameLength                = 256  // of a username, group or role
	minCacheTTL                  = time.Minute
	maxCacheTTL                  = 24 * time.Hour
	defaultCacheTTL              = 15 * time.Minute
	initialBackoff               = 500 * time.Millisecond
	maxBackoff                   = 30 * time.Second
	minRSABits                   = 2048
	wellKnownOpenIDConfiguration = "/.well-known/openid-configuration"
)

// DefaultAllowedAlgs are the asymmetric JWS algorithms accepted unless
// Config.AllowedAlgs says otherwise. HMAC and "none" are never accepted.
var DefaultAllowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// Config says which tokens a Verifier accepts and how it maps their claims.
// The zero values of optional fields select the documented defaults, which
// work with Keycloak.
type Config struct {
	// Issuer is the exact "iss" of accepted tokens, and the base of the
	// discovery document <Issuer>/.well-known/openid-configuration.
	Issuer string
	// JWKSURL skips discovery and fetches keys from this URL. Useful when
	// the issuer's public URL is not reachable from where Steward runs.
	JWKSURL string
	// Audiences: a token is accepted if its "aud" contains any of these, or
	// if its "azp" is one of AuthorizedParties. At least one of the two
	// lists must be non-empty.
	Audiences         []string
	AuthorizedParties []string

	// Claim names; a dotted name such as "realm_access.roles" is a path into
	// nested objects (a top-level claim with that literal name wins).
	UsernameClaim string // default "preferred_username"
	GroupsClaim   string // default "groups"
	RolesClaim    string // default "realm_access.roles"

	// ServiceAccountClaim marks service principals: Kind is service when this
	// claim equals ServiceAccountValue (defaults "steward_kind" = "service",
	// as the built-in provider issues) or when the username starts with
	// ServiceAccountPrefix (default "service-account-", as Keycloak names
	// its service-account users).
	ServiceAccountClaim  string
	ServiceAccountValue  string
	ServiceAccountPrefix string

	// KeepGroupsSlash keeps a leading "/" on group names. By default it is
	// stripped, so Keycloak's group path "/analysts" becomes "analysts".
	KeepGroupsSlash bool

	// ClockSkew tolerated on exp, nbf and iat; default 30s, capped at 5m.
	ClockSkew time.Duration
	// AllowedAlgs defaults to DefaultAllowedAlgs; only asymmetric
	// algorithms may be listed.
	AllowedAlgs []jose.SignatureAlgorithm
	// MinRefreshInterval bounds JWKS fetches triggered by unknown key ids
	// to one per interval; default 10s.
	MinRefreshInterval time.Duration
	// HTTPClient fetches discovery and keys; default a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// Metrics, if set, counts verification results by reason.
	Metrics *Metrics
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
}

// withDefaults returns a copy of c with defaults filled in, or an error
// saying what is wrong with it.
func (c Config) withDefaults() (Config, error) {
	op := "identity.Config"
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, steward.WrapError(steward.EInvalid, op, nil, fmt.Sprintf(format, args...))
	}
	if err := checkIssuer(c.Issuer); err != nil {
		return bad("issuer %q: %v", c.Issuer, err)
	}
	if c.JWKSURL != "" {
		if err := checkFetchURL(c.JWKSURL, c.Issuer); err != nil {
			return bad("JWKS URL: %v", err)
		}
	}
	c.Audiences = nonEmpty(c.Audiences)
	c.AuthorizedParties = nonEmpty(c.AuthorizedParties)
	if len(c.Audiences) == 0 && len(c.AuthorizedParties) == 0 {
		return bad("issuer %q: at least one audience or authorized party is required", c.Issuer)
	}
	c.UsernameClaim = orDefault(c.UsernameClaim, DefaultUsernameClaim)
	c.GroupsClaim = orDefault(c.GroupsClaim, DefaultGroupsClaim)
	c.RolesClaim = orDefault(c.RolesClaim, DefaultRolesClaim)
	c.ServiceAccountClaim = orDefault(c.ServiceAccountClaim, DefaultServiceAccountClaim)
	c.ServiceAccountValue = orDefault(c.ServiceAccountValue, DefaultServiceAccountValue)
	c.ServiceAccountPrefix = orDefault(c.ServiceAccountPrefix, DefaultServiceAccountPrefix)
	switch {
	case c.ClockSkew < 0:
		return bad("clock skew must not be negative")
	case c.ClockSkew == 0:
		c.ClockSkew = DefaultClockSkew
	case c.ClockSkew > MaxClockSkew:
		c.ClockSkew = MaxClockSkew
	}
	if len(c.AllowedAlgs) == 0 {
		c.AllowedAlgs = DefaultAllowedAlgs
	}
	for _, a := range c.AllowedAlgs {
		if !slices.Contains(DefaultAllowedAlgs, a) {
			return bad("signing algorithm %q is not supported", a)
		}
	}
	c.AllowedAlgs = slices.Clone(c.AllowedAlgs)
	switch {
	case c.MinRefreshInterval < 0:
		return bad("minimum refresh interval must not be negative")
	case c.MinRefreshInterval == 0:
		c.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

func checkIssuer(iss string) error {
	u, err := url.Parse(iss)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("scheme must be https (or http on a trusted network)")
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("must be a plain absolute URL without query or fragment")
	}
	return nil
}

// checkFetchURL checks a URL keys are fetched from: absolute http(s), and
// https whenever the issuer is https.
func checkFetchURL(raw, issuer string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("not an absolute http(s) URL")
	}
	if u.Scheme == "http" && strings.HasPrefix(issuer, "https:") {
		return errors.New("must be https for an https issuer")
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
