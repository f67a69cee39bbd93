package idp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// Provider is the built-in OpenID provider. It is safe for concurrent use,
// and several Providers (replicas) may share one metastore.
type Provider struct {
	cfg     Config
	prefix  string // the issuer's path, e.g. "/oidc"
	ids     steward.IdentityStore
	store   *metastore.Store
	auditor steward.Auditor
	log     *slog.Logger
	keys    *keyring
	csrfKey []byte
	op      *op.Provider
	handler http.Handler
	now     func() time.Time

	dummyHash string // hashed when a user is unknown, so every failure costs the same
}

// New returns a provider for cfg. It checks the configuration and makes
// sure a signing key exists (creating the first one if needed).
func New(ctx context.Context, cfg Config, ids steward.IdentityStore, store *metastore.Store, auditor steward.Auditor, logger *slog.Logger) (*Provider, error) {
	cfg.setDefaults()
	prefix, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if ids == nil || store == nil || auditor == nil {
		return nil, steward.Errorf(steward.EInvalid, "idp: identity store, metastore and auditor are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	kr, err := newKeyring(store, cfg.KeyEncryptionKey)
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "idp.New", err, "cannot set up key encryption")
	}
	p := &Provider{
		cfg:     cfg,
		prefix:  prefix,
		ids:     ids,
		store:   store,
		auditor: auditor,
		log:     logger.With("component", "idp"),
		keys:    kr,
		csrfKey: derive(cfg.KeyEncryptionKey, "csrf"),
		now:     time.Now,
	}
	if p.dummyHash, err = HashPassword("steward-idp dummy password"); err != nil {
		return nil, err
	}
	if err := p.maintainKeys(ctx); err != nil {
		return nil, err
	}
	if _, err := p.keys.load(ctx, p.now(), true); err != nil {
		return nil, steward.WrapError(steward.EInvalid, "idp.New", err, "idp: cannot open the signing keys (is KeyEncryptionKey the one they were sealed with?)")
	}
	var cryptoKey [32]byte
	copy(cryptoKey[:], derive(cfg.KeyEncryptionKey, "op-crypto"))
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: prefix + "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedClaims:          append(append([]string{}, op.DefaultSupportedClaims...), "groups", "realm_access", "steward_kind", "scope"),
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     cfg.DeviceCodeTTL,
			PollInterval: cfg.DevicePollInterval,
			UserFormPath: prefix + "/device",
			UserCode:     op.UserCodeBase20,
		},
	}
	opts := []op.Option{}
	if cfg.Insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(opCfg, (*storage)(p), op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, steward.WrapError(steward.EInvalid, "idp.New", err, "cannot create OpenID provider")
	}
	p.handler = p.routes()
	return p, nil
}

// Handler returns the provider's HTTP handler. It serves the paths under
// the issuer's path (mount it as mux.Handle("/oidc/", p.Handler()) for an
// issuer ending in /oidc):
//
//	/.well-known/openid-configuration  discovery
//	/keys                              JWKS
//	/authorize, /authorize/callback    authorization code flow (PKCE S256 required)
//	/oauth/token                       token endpoint (all grants)
//	/device_authorization              device authorization (RFC 8628)
//	/oauth/introspect, /userinfo, /revoke, /end_session
//	/login                             login form of the authorization code flow
//	/device                            where a user approves a device's user code
func (p *Provider) Handler() http.Handler { return p.handler }

// Keys returns the public keys a token of this provider may be signed
// with, for in-process verification without an HTTP round trip.
func (p *Provider) Keys(ctx context.Context) (*jose.JSONWebKeySet, error) {
	keys, err := p.publishedKeys(ctx)
	if err != nil {
		return nil, err
	}
	set := &jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	return set, nil
}

// RotateKeys replaces the signing key at once. The replaced key stays in
// the JWKS until the tokens it signed have expired.
func (p *Provider) RotateKeys(ctx context.Context) error {
	kid, err := p.keys.rotateNow(ctx, p.now())
	if err != nil {
		return err
	}
	p.log.Info("signing key rotated", "kid", kid)
	return p.record(ctx, steward.AuditEvent{Actor: actorFrom(ctx), ActorKind: actorKindFrom(ctx), Action: "key.rotate",
		Resource: "idp/key/" + kid, Outcome: "success", Details: map[string]any{"kid": kid, "trigger": "manual"}})
}

// IsRevoked reports whether the access token with ID jti was revoked at
// the revocation endpoint, for verifiers that check revocation.
func (p *Provider) IsRevoked(ctx context.Context, jti string) (bool, error) {
	var n int
	err := p.store.QueryRow(ctx, `SELECT COUNT(*) FROM idp_revoked_tokens WHERE jti = ?`, jti).Scan(&n)
	if err != nil {
		return false, steward.WrapError(steward.EInternal, "idp.IsRevoked", err, "cannot check revocation")
	}
	return n > 0, nil
}

// Run rotates signing keys when they reach Config.KeyRotation and deletes
// expired provider state, once a minute until ctx is done. Run it on every
// replica; they coordinate through the metastore.
func (p *Provider) Run(ctx context.Context) {
	t := time.NewTicker(maintenanceEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.maintainKeys(ctx); err != nil {
				p.log.Error("key maintenance failed", "err", err)
			}
			if err := p.cleanup(ctx); err != nil {
				p.log.Error("cleanup failed", "err", err)
			}
		}
	}
}

func (p *Provider) retention() time.Duration { return p.cfg.AccessTokenTTL + keyGrace }

func (p *Provider) maintainKeys(ctx context.Context) error {
	what, kid, err := p.keys.maintain(ctx, p.now(), p.cfg.KeyRotation, p.retention())
	if err != nil {
		return err
	}
	if what == rotateNone {
		return nil
	}
	trigger := "scheduled"
	if what == rotateFirst {
		trigger = "initial"
	}
	p.log.Info("signing key created", "kid", kid, "trigger", trigger)
	return p.record(ctx, steward.AuditEvent{Actor: "idp", ActorKind: "system", Action: "key.rotate",
		Resource: "idp/key/" + kid, Outcome: "success", Details: map[string]any{"kid": kid, "trigger": trigger}})
}

func (p *Provider) publishedKeys(ctx context.Context) ([]*signingKey, error) {
	keys, err := p.keys.load(ctx, p.now(), false)
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "idp.Keys", err, "cannot load signing keys")
	}
	return published(keys, p.now(), p.retention()), nil
}

func (p *Provider) signingKey(ctx context.Context) (*signingKey, error) {
	now := p.now()
	keys, err := p.keys.load(ctx, now, false)
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "idp.SigningKey", err, "cannot load signing keys")
	}
	if k := current(keys, now); k != nil {
		return k, nil
	}
	return nil, steward.Errorf(steward.EInternal, "no signing key")
}

// cleanup deletes expired state. Refresh tokens are kept a day past expiry
// so that reuse of an expired one is still recognised as such.
func (p *Provider) cleanup(ctx context.Context) error {
	now := p.now().Unix()
	window := now - int64(failureWindow/time.Second)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM idp_auth_requests WHERE expires_at < ?`, []any{now}},
		{`DELETE FROM idp_auth_codes WHERE expires_at < ?`, []any{now}},
		{`DELETE FROM idp_device_codes WHERE expires_at < ?`, []any{now - 3600}},
		{`DELETE FROM idp_refresh_tokens WHERE expires_at < ?`, []any{now - 86400}},
		{`DELETE FROM idp_revoked_tokens WHERE expires_at < ?`, []any{now}},
		{`DELETE FROM idp_login_failures WHERE locked_until < ? AND last_failure < ?`, []any{now, window}},
	} {
		if _, err := p.store.Exec(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return nil
}

// record writes an audit event; its error must fail the action.
func (p *Provider) record(ctx context.Context, ev steward.AuditEvent) error {
	if ev.Time.IsZero() {
		ev.Time = p.now().UTC()
	}
	if ev.ClientAddr == "" {
		ev.ClientAddr = clientAddrFrom(ctx)
	}
	if err := p.auditor.Record(ctx, ev); err != nil {
		p.log.Error("audit record failed", "action", ev.Action, "err", err)
		return steward.WrapError(steward.EUnavailable, "idp.audit", err, "audit unavailable")
	}
	return nil
}

type ctxKey int

const addrKey ctxKey = iota

func clientAddrFrom(ctx context.Context) string {
	s, _ := ctx.Value(addrKey).(string)
	return s
}

func actorFrom(ctx context.Context) string {
	if pr := steward.PrincipalFrom(ctx); pr != nil {
		return pr.Username
	}
	return "idp"
}

func actorKindFrom(ctx context.Context) string {
	if pr := steward.PrincipalFrom(ctx); pr != nil {
		return string(pr.Kind)
	}
	return "system"
}

func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// hashToken returns the hex SHA-256 of a bearer secret (refresh token,
// device code, auth code); only hashes are stored.
func hashToken(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
