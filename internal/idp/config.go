package idp

import (
	"net/url"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// Client IDs of the built-in clients. Every enabled service account is a
// further, confidential client whose ID is the account's name.
const (
	// CLIClientID is the public client of the steward CLI: device
	// authorization, password (if enabled), refresh token, and the
	// authorization code flow with PKCE on a loopback redirect
	// (http://127.0.0.1:<any port>/callback or http://127.0.0.1:<any port>/).
	CLIClientID = "steward-cli"
	// PortalClientID is the public client of the web portal: the
	// authorization code flow with PKCE on Config.PortalRedirectURIs.
	PortalClientID = "steward-portal"
	// Audience is the audience every access token carries besides the
	// client ID.
	Audience = "steward"
)

// Config configures the provider. Zero durations take the defaults named
// on each field.
type Config struct {
	// Issuer is the provider's issuer URL, e.g.
	// "http://127.0.0.1:8080/oidc"; the handler serves the paths under the
	// issuer's path. It must be https unless Insecure is set.
	Issuer string
	// AllowPasswordGrant enables the resource-owner password grant for the
	// steward-cli client. DefaultConfig sets it; the zero value is off.
	AllowPasswordGrant bool
	// AccessTokenTTL is the lifetime of access and ID tokens (default 15m).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of a refresh token (default 12h). A
	// refresh token can be used once; presenting a used one revokes every
	// token descended from the same login.
	RefreshTokenTTL time.Duration
	// KeyRotation is the age at which a signing key is replaced (default
	// 30 days). A replaced key stays in the JWKS for AccessTokenTTL plus
	// five minutes, so that the tokens it signed keep verifying.
	KeyRotation time.Duration
	// KeyEncryptionKey (32 bytes, required) seals signing keys at rest
	// with AES-256-GCM and keys the login forms' CSRF tokens. Every replica
	// must have the same key.
	KeyEncryptionKey []byte
	// PortalRedirectURIs are the exact redirect URIs of the steward-portal
	// client.
	PortalRedirectURIs []string
	// Insecure allows an http issuer and http portal redirect URIs, for
	// loopback and demos.
	Insecure bool

	// DeviceCodeTTL is how long a device authorization waits for approval
	// (default 10m); DevicePollInterval the polling interval it asks of
	// the device (default 5s).
	DeviceCodeTTL      time.Duration
	DevicePollInterval time.Duration
	// AuthRequestTTL is how long a user has to log in after an
	// authorization request (default 10m).
	AuthRequestTTL time.Duration
	// MaxLoginFailures is the number of consecutive failed logins for one
	// username after which it is locked (default 5). The lock lasts
	// LockoutDuration (default 30s) and doubles with each further failure,
	// up to 15 minutes.
	MaxLoginFailures int
	LockoutDuration  time.Duration
}

// DefaultConfig returns the defaults for issuer, with the password grant
// enabled. KeyEncryptionKey must still be set.
func DefaultConfig(issuer string) Config {
	c := Config{Issuer: issuer, AllowPasswordGrant: true}
	c.setDefaults()
	return c
}

const (
	maxLockout       = 15 * time.Minute
	failureWindow    = 15 * time.Minute // failures older than this start counting afresh
	authCodeTTL      = 2 * time.Minute
	keyGrace         = 5 * time.Minute // kept in JWKS beyond the token TTL
	keyPrepublish    = time.Minute     // a scheduled key is in the JWKS this long before it signs
	keyCacheTTL      = 10 * time.Second
	maintenanceEvery = time.Minute
)

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, 15*time.Minute)
	def(&c.RefreshTokenTTL, 12*time.Hour)
	def(&c.KeyRotation, 30*24*time.Hour)
	def(&c.DeviceCodeTTL, 10*time.Minute)
	def(&c.DevicePollInterval, 5*time.Second)
	def(&c.AuthRequestTTL, 10*time.Minute)
	def(&c.LockoutDuration, 30*time.Second)
	if c.MaxLoginFailures <= 0 {
		c.MaxLoginFailures = 5
	}
}

func (c *Config) validate() (path string, err error) {
	u, perr := url.Parse(c.Issuer)
	if perr != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", steward.Errorf(steward.EInvalid, "idp: issuer must be an absolute URL without query or fragment")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && c.Insecure:
	default:
		return "", steward.Errorf(steward.EInvalid, "idp: issuer must use https (set Insecure for http on loopback)")
	}
	if len(c.KeyEncryptionKey) != 32 {
		return "", steward.Errorf(steward.EInvalid, "idp: KeyEncryptionKey must be 32 bytes")
	}
	for _, r := range c.PortalRedirectURIs {
		ru, err := url.Parse(r)
		if err != nil || ru.Host == "" || (ru.Scheme != "https" && !(ru.Scheme == "http" && c.Insecure)) {
			return "", steward.Errorf(steward.EInvalid, "idp: bad portal redirect URI %q", r)
		}
	}
	return strings.TrimSuffix(u.Path, "/"), nil
}
