package sts

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/s3api"
)

// Config bounds sessions.
type Config struct {
	// DefaultDuration is the session length when DurationSeconds is not
	// given (1h); MinDuration and MaxDuration bound DurationSeconds
	// (15 min, 12 h).
	DefaultDuration, MinDuration, MaxDuration time.Duration
	// KeyRotation is how long a cluster key seals new sessions (24 h).
	KeyRotation time.Duration
	// RevocationRefresh is how stale the revocation list may get (15 s).
	RevocationRefresh time.Duration
	// Account is the account id in role ARNs ("steward").
	Account string
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (c *Config) defaults() error {
	if c.DefaultDuration == 0 {
		c.DefaultDuration = time.Hour
	}
	if c.MinDuration == 0 {
		c.MinDuration = 15 * time.Minute
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = 12 * time.Hour
	}
	if c.KeyRotation == 0 {
		c.KeyRotation = 24 * time.Hour
	}
	if c.RevocationRefresh == 0 {
		c.RevocationRefresh = 15 * time.Second
	}
	if c.Account == "" {
		c.Account = "steward"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MinDuration > c.DefaultDuration || c.DefaultDuration > c.MaxDuration {
		return fmt.Errorf("sts: durations must satisfy min <= default <= max")
	}
	return nil
}

// Service issues and verifies credentials. It implements
// s3api.CredentialResolver and s3api.STSHandler.
type Service struct {
	cfg      Config
	ms       *metastore.Store
	verifier identity.TokenVerifier
	kek      []byte
	auditor  steward.Auditor
	log      *slog.Logger
	keys     *keyring

	// revs is the revocation list this replica knows; refreshMu makes
	// its reloads one at a time (so a stale list is reloaded once, and
	// a reload never replaces a newer one).
	revs      atomic.Pointer[revocations]
	refreshMu sync.Mutex
	keyCache  *accessKeyCache
	sessions  *sessionCache
}

type cachedKey struct {
	cred *s3api.Credential
	err  error
	at   time.Time
}

var (
	_ s3api.CredentialResolver = (*Service)(nil)
	_ s3api.STSHandler         = (*Service)(nil)
)

// New returns the service. kek is the 32-byte key-encryption key that
// protects cluster keys and access-key secrets at rest.
func New(cfg Config, ms *metastore.Store, verifier identity.TokenVerifier, kek []byte, auditor steward.Auditor, logger *slog.Logger) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if len(kek) != 32 {
		return nil, errors.New("sts: the key-encryption key must be 32 bytes")
	}
	if ms == nil || verifier == nil || auditor == nil {
		return nil, errors.New("sts: metastore, verifier and auditor are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, ms: ms, verifier: verifier, kek: append([]byte(nil), kek...), auditor: auditor, log: logger,
		keyCache: newAccessKeyCache(), sessions: newSessionCache(sessionCacheEntries, sessionCacheBytes)}
	s.keys = &keyring{ms: ms, kek: s.kek, rotate: cfg.KeyRotation, keep: cfg.MaxDuration, now: cfg.Now}
	return s, nil
}

// Run refreshes the revocation list and the cluster keys until ctx ends.
// Without Run they are refreshed on use.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.RevocationRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.refreshRevocations(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "revocation list refresh failed", "err", err)
			}
		}
	}
}

// session is what a session token carries.
type session struct {
	ID        string                `json:"sid"`
	Kind      steward.PrincipalKind `json:"k"`
	Subject   string                `json:"sub"`
	Username  string                `json:"u"`
	Groups    []string              `json:"g,omitempty"`
	Roles     []string              `json:"r,omitempty"`
	Issuer    string                `json:"iss"`
	ClientID  string                `json:"azp,omitempty"`
	Role      string                `json:"role,omitempty"`
	Policy    *SessionPolicy        `json:"pol,omitempty"`
	IssuedAt  int64                 `json:"iat"`
	ExpiresAt int64                 `json:"exp"`
}

const tokenPrefix = "stw1."

func tokenAAD(kid string) []byte { return []byte("steward-sts-session-v1:" + kid) }

// Issued is a freshly issued session.
type Issued struct {
	AccessKeyID     string
	SecretAccessKey steward.Secret
	SessionToken    steward.Secret
	Expiration      time.Time
	SessionID       string
	Principal       *steward.Principal
	Role            string
}

// Issue creates a session for p lasting d, narrowed to role (a group or
// role of p; "" or "*" for all of them) and by pol (may be nil).
func (s *Service) Issue(ctx context.Context, p *steward.Principal, d time.Duration, role string, pol *SessionPolicy) (*Issued, error) {
	now := s.cfg.Now()
	sess := session{
		ID: strings.ToLower(b32.EncodeToString(randomBytes(15))), Kind: p.Kind, Subject: p.Subject, Username: p.Username,
		Groups: p.Groups, Roles: p.Roles, Issuer: p.Issuer, ClientID: p.ClientID, Policy: pol,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(d).Unix(),
	}
	if sess.Kind == "" {
		sess.Kind = steward.KindUser
	}
	if role != "" && role != "*" {
		inG, inR := p.InGroup(role), p.HasRole(role)
		if !inG && !inR {
			return nil, stsError(steward.EPermission, "AccessDenied", "not authorized to assume role "+role)
		}
		sess.Groups, sess.Roles = nil, nil
		if inG {
			sess.Groups = []string{role}
		}
		if inR {
			sess.Roles = []string{role}
		}
		sess.Role = role
	}
	kid, key, err := s.keys.signing(ctx)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(sess)
	if err != nil {
		return nil, err
	}
	sealed, err := seal(key, plain, tokenAAD(kid))
	if err != nil {
		return nil, err
	}
	tok := tokenPrefix + kid + "." + base64.RawURLEncoding.EncodeToString(sealed)
	pr := sess.principal()
	return &Issued{
		AccessKeyID: sessionAccessKeyID(key, sess.ID), SecretAccessKey: steward.Secret(sessionSecret(key, sess.ID)),
		SessionToken: steward.Secret(tok), Expiration: time.Unix(sess.ExpiresAt, 0).UTC(), SessionID: sess.ID,
		Principal: pr, Role: sess.Role,
	}, nil
}

func (sess *session) principal() *steward.Principal {
	return &steward.Principal{Kind: sess.Kind, Subject: sess.Subject, Username: sess.Username, Groups: sess.Groups, Roles: sess.Roles,
		Issuer: sess.Issuer, ClientID: sess.ClientID, TokenID: sess.ID,
		IssuedAt: time.Unix(sess.IssuedAt, 0).UTC(), ExpiresAt: time.Unix(sess.ExpiresAt, 0).UTC()}
}

func authErr(code, msg string) error {
	e := steward.Errorf(steward.EUnauthenticated, "%s", msg)
	e.Op = code
	return e
}

// ResolveCredential implements s3api.CredentialResolver: a session token
// is opened and checked (the access key must be the one derived from it);
// without a token the access key must be a service account's key.
//
// A session token that verified before is not opened again: its
// credential comes from a bounded cache, and only what can change is
// checked again on every request (the access key, expiry, the cluster
// key still being known, revocation). The credential returned may be
// shared by concurrent requests and must not be modified.
func (s *Service) ResolveCredential(ctx context.Context, akid, token string) (*s3api.Credential, error) {
	if token == "" {
		return s.resolveAccessKey(ctx, akid)
	}
	if v := s.sessions.get(token); v != nil {
		if cred, err, ok := s.recheck(ctx, v, akid, token); ok {
			return cred, err
		}
	}
	v, err := s.openSession(ctx, akid, token)
	if err != nil {
		return nil, err
	}
	s.sessions.put(token, v)
	return v.cred, nil
}

// recheck checks a cached session for akid on this request. ok is false
// when the session must be verified from scratch (its cluster key is no
// longer the one in the keyring).
func (s *Service) recheck(ctx context.Context, v *verifiedSession, akid, token string) (cred *s3api.Credential, err error, ok bool) {
	if !s.keys.holds(v.kid, v.key) {
		s.sessions.remove(token, v)
		return nil, nil, false
	}
	if subtle.ConstantTimeCompare([]byte(v.cred.AccessKeyID), []byte(akid)) != 1 {
		return nil, authErr("InvalidAccessKeyId", "the access key does not belong to the session token"), true
	}
	now := s.cfg.Now()
	if !now.Before(v.cred.Expires) {
		s.sessions.remove(token, v)
		return nil, authErr("ExpiredToken", "the session has expired"), true
	}
	if revoked, err := s.isRevoked(ctx, v.sess, now); err != nil {
		return nil, err, true
	} else if revoked {
		return nil, authErr("ExpiredToken", "the session has been revoked"), true
	}
	return v.cred, nil, true
}

// openSession verifies a session token from scratch.
func (s *Service) openSession(ctx context.Context, akid, token string) (*verifiedSession, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return nil, authErr("InvalidToken", "malformed session token")
	}
	kid, body, ok := strings.Cut(rest, ".")
	if !ok || len(kid) != 16 {
		return nil, authErr("InvalidToken", "malformed session token")
	}
	sealed, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, authErr("InvalidToken", "malformed session token")
	}
	key, err := s.keys.lookup(ctx, kid)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, authErr("InvalidToken", "the session token's key is unknown or retired")
	}
	plain, err := open(key, sealed, tokenAAD(kid))
	if err != nil {
		return nil, authErr("InvalidToken", "the session token does not verify")
	}
	var sess session
	if err := json.Unmarshal(plain, &sess); err != nil || sess.ID == "" {
		return nil, authErr("InvalidToken", "the session token does not verify")
	}
	want := sessionAccessKeyID(key, sess.ID)
	if want != akid {
		return nil, authErr("InvalidAccessKeyId", "the access key does not belong to the session token")
	}
	exp := time.Unix(sess.ExpiresAt, 0)
	now := s.cfg.Now()
	if !now.Before(exp) {
		return nil, authErr("ExpiredToken", "the session has expired")
	}
	if revoked, err := s.isRevoked(ctx, &sess, now); err != nil {
		return nil, err
	} else if revoked {
		return nil, authErr("ExpiredToken", "the session has been revoked")
	}
	cred := &s3api.Credential{
		AccessKeyID: akid, SecretKey: steward.Secret(sessionSecret(key, sess.ID)), SessionToken: token,
		Principal: sess.principal(), Expires: exp, SessionID: sess.ID,
	}
	if sess.Policy != nil {
		cred.Scope = sess.Policy
	}
	return &verifiedSession{kid: kid, key: key, sess: &sess, cred: cred}, nil
}
