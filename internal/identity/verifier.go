package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stewardhq/steward"
)

// TokenVerifier turns a raw bearer token into the principal it proves.
//
// Verify returns a *steward.Error of kind EUnauthenticated with a short,
// caller-safe message when the token is not acceptable, or of kind
// EUnavailable when the issuer's keys cannot be had.
type TokenVerifier interface {
	Verify(ctx context.Context, rawToken string) (*steward.Principal, error)
}

// TokenVerifierFunc adapts a function to TokenVerifier.
type TokenVerifierFunc func(ctx context.Context, rawToken string) (*steward.Principal, error)

// Verify calls f.
func (f TokenVerifierFunc) Verify(ctx context.Context, rawToken string) (*steward.Principal, error) {
	return f(ctx, rawToken)
}

// Verifier verifies tokens of one issuer. It is safe for concurrent use.
type Verifier struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	source      KeySource // nil until discovery succeeds
	discovering chan struct{}
	discoverErr error
	retryAt     time.Time
	backoff     time.Duration
}

var _ TokenVerifier = (*Verifier)(nil)

// NewVerifier returns a verifier for cfg.Issuer whose keys come from the
// issuer's discovery document (or cfg.JWKSURL). It fails only on a bad
// configuration: if the issuer cannot be reached yet (it may be this very
// process starting up), discovery is retried with backoff on use, and Ready
// reports whether it has succeeded.
func NewVerifier(ctx context.Context, cfg Config, log *slog.Logger) (*Verifier, error) {
	v, err := newVerifier(cfg, log)
	if err != nil {
		return nil, err
	}
	if v.cfg.JWKSURL != "" {
		v.source = v.remote(v.cfg.JWKSURL)
	}
	// Warm up; failures are retried on use.
	if err := v.Ready(ctx); err != nil {
		v.log.Warn("identity provider not reachable yet; will retry on use", "issuer", v.cfg.Issuer, "err", err)
	}
	return v, nil
}

// NewVerifierWithKeys returns a verifier for cfg.Issuer whose keys come from
// keys, for an in-process provider (see StaticKeys and KeySourceFunc).
// cfg.JWKSURL is ignored.
func NewVerifierWithKeys(cfg Config, keys KeySource, log *slog.Logger) (*Verifier, error) {
	if keys == nil {
		return nil, steward.Errorf(steward.EInvalid, "identity: a key source is required")
	}
	v, err := newVerifier(cfg, log)
	if err != nil {
		return nil, err
	}
	v.source = keys
	return v, nil
}

func newVerifier(cfg Config, log *slog.Logger) (*Verifier, error) {
	orig := cfg.ClockSkew
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "identity")
	if orig > MaxClockSkew {
		log.Warn("clock skew capped", "configured", orig, "used", cfg.ClockSkew)
	}
	return &Verifier{cfg: cfg, log: log}, nil
}

func (v *Verifier) remote(jwksURL string) *RemoteKeySet {
	return NewRemoteKeySet(jwksURL, v.cfg.HTTPClient, v.cfg.MinRefreshInterval, v.cfg.Now, v.log)
}

// Issuer returns the issuer whose tokens v accepts.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

// Ready reports whether v has its issuer's keys, fetching them if needed.
// It is meant for readiness probes.
func (v *Verifier) Ready(ctx context.Context) error {
	src, err := v.keySource(ctx)
	if err != nil {
		return reasonUnavailable.err(err)
	}
	if _, err := src.Keys(ctx); err != nil {
		return reasonUnavailable.err(err)
	}
	return nil
}

// keySource returns the key source, running discovery if it has not
// succeeded yet (one attempt at a time, with backoff after failures).
func (v *Verifier) keySource(ctx context.Context) (KeySource, error) {
	v.mu.Lock()
	if v.source != nil {
		s := v.source
		v.mu.Unlock()
		return s, nil
	}
	done := v.discovering
	if done == nil {
		if v.cfg.Now().Before(v.retryAt) {
			err := v.discoverErr
			v.mu.Unlock()
			return nil, fmt.Errorf("discovery backing off: %w", err)
		}
		done = make(chan struct{})
		v.discovering = done
		go v.discover(context.WithoutCancel(ctx), done)
	}
	v.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.source == nil {
		return nil, v.discoverErr
	}
	return v.source, nil
}

func (v *Verifier) discover(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	jwksURL, err := discoverJWKS(ctx, v.cfg.HTTPClient, v.cfg.Issuer)
	v.mu.Lock()
	if err != nil {
		v.discoverErr = err
		v.backoff = nextBackoff(v.backoff)
		v.retryAt = v.cfg.Now().Add(v.backoff)
	} else {
		v.source = v.remote(jwksURL)
		v.discoverErr = nil
		v.backoff = 0
	}
	v.discovering = nil
	v.mu.Unlock()
	close(done)
}

// discoverJWKS reads the issuer's discovery document and returns its
// jwks_uri. The document's issuer must equal issuer exactly.
func discoverJWKS(ctx context.Context, client *http.Client, issuer string) (string, error) {
	body, _, err := getJSON(ctx, client, strings.TrimSuffix(issuer, "/")+wellKnownOpenIDConfiguration)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: decoding document: %w", err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("discovery: document names issuer %q, want %q", doc.Issuer, issuer)
	}
	if err := checkFetchURL(doc.JWKSURI, issuer); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri %q: %w", doc.JWKSURI, err)
	}
	return doc.JWKSURI, nil
}

// Verify checks rawToken and returns the principal it proves.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*steward.Principal, error) {
	p, err := v.verify(ctx, rawToken)
	if err != nil {
		r := reasonOf(err)
		v.cfg.Metrics.observe(r.label)
		v.log.Debug("token refused", "reason", r.label, "err", err)
		return nil, r.err(errors.Unwrap(err))
	}
	v.cfg.Metrics.observe("ok")
	return p, nil
}

func (v *Verifier) verify(ctx context.Context, raw string) (*steward.Principal, error) {
	tok, err := splitToken(raw)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(v.cfg.AllowedAlgs, jose.SignatureAlgorithm(tok.header.Alg)) {
		return nil, failf(reasonAlg, "algorithm not allowed")
	}
	jws, err := jose.ParseSignedCompact(raw, v.cfg.AllowedAlgs)
	if err != nil {
		return nil, fail(reasonMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, failf(reasonMalformed, "want exactly one signature")
	}
	hdr := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(hdr.Algorithm)
	if alg != jose.SignatureAlgorithm(tok.header.Alg) || hdr.KeyID != tok.header.Kid {
		return nil, failf(reasonMalformed, "header parsed inconsistently")
	}

	src, err := v.keySource(ctx)
	if err != nil {
		return nil, fail(reasonUnavailable, err)
	}
	keys, err := src.Keys(ctx)
	if err != nil {
		return nil, fail(reasonUnavailable, err)
	}
	key, err := selectKey(keys, hdr.KeyID, alg)
	if reasonOf(err) == reasonUnknownKey {
		if rf, ok := src.(Refresher); ok {
			if keys, rerr := rf.Refresh(ctx); rerr == nil {
				key, err = selectKey(keys, hdr.KeyID, alg)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, fail(reasonSignature, err)
	}
	return v.principal(payload)
}

// compactToken is a token split into its parts, with its header decoded.
type compactToken struct {
	header  tokenHeader
	payload string // base64url
}

type tokenHeader struct {
	Alg string
	Kid string
}

// splitToken checks the shape of a compact JWS (three base64url parts) and
// decodes its header, refusing extensions a JWT has no business using.
func splitToken(raw string) (*compactToken, error) {
	if len(raw) > MaxTokenSize {
		return nil, failf(reasonTooLarge, "token too large")
	}
	if raw == "" {
		return nil, failf(reasonMalformed, "empty token")
	}
	dots := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '.':
			dots++
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return nil, failf(reasonMalformed, "character outside base64url")
		}
	}
	if dots != 2 {
		return nil, failf(reasonMalformed, "not three parts")
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, _, _ := strings.Cut(rest, ".")
	// An empty payload or signature is left to fail later, once the
	// algorithm has been judged.
	if h == "" {
		return nil, failf(reasonMalformed, "empty header")
	}
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, fail(reasonMalformed, err)
	}
	// A map with exact lookups: struct decoding would match names
	// case-insensitively, unlike go-jose.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(hb, &fields); err != nil || fields == nil {
		return nil, failf(reasonMalformed, "header is not a JSON object")
	}
	for _, name := range []string{"crit", "b64", "enc", "zip"} {
		if _, ok := fields[name]; ok {
			return nil, failf(reasonMalformed, "unsupported header parameter")
		}
	}
	var hdr tokenHeader
	if json.Unmarshal(fields["alg"], &hdr.Alg) != nil || hdr.Alg == "" {
		return nil, failf(reasonMalformed, "no alg")
	}
	if raw, ok := fields["kid"]; ok && json.Unmarshal(raw, &hdr.Kid) != nil {
		return nil, failf(reasonMalformed, "kid is not a string")
	}
	return &compactToken{header: hdr, payload: p}, nil
}

// selectKey picks the key that may verify a token with kid and alg. An
// unknown kid (or, without kid, no candidate) is reasonUnknownKey so that
// the caller may refresh; a known kid whose key does not fit alg is a
// signature failure (key confusion).
func selectKey(set *jose.JSONWebKeySet, kid string, alg jose.SignatureAlgorithm) (*jose.JSONWebKey, error) {
	if set == nil {
		return nil, failf(reasonUnknownKey, "no keys")
	}
	if kid != "" {
		cands := set.Key(kid)
		if len(cands) == 0 {
			return nil, failf(reasonUnknownKey, "unknown key id")
		}
		for i := range cands {
			if keyFits(&cands[i], alg) {
				return &cands[i], nil
			}
		}
		return nil, failf(reasonSignature, "key does not fit the algorithm")
	}
	var found *jose.JSONWebKey
	for i := range set.Keys {
		if keyFits(&set.Keys[i], alg) {
			if found != nil {
				return nil, failf(reasonSignature, "no key id and several candidate keys")
			}
			found = &set.Keys[i]
		}
	}
	if found == nil {
		return nil, failf(reasonUnknownKey, "no key id and no candidate key")
	}
	return found, nil
}

// keyFits reports whether k may verify a signature made with alg: the key's
// type (and curve) must be the algorithm's, and its use and alg, if stated,
// must agree.
func keyFits(k *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		pk, ok := k.Key.(*rsa.PublicKey)
		return ok && pk.N != nil && pk.N.BitLen() >= minRSABits
	case jose.ES256, jose.ES384, jose.ES512:
		pk, ok := k.Key.(*ecdsa.PublicKey)
		if !ok || pk.Curve == nil {
			return false
		}
		want := map[jose.SignatureAlgorithm]string{jose.ES256: "P-256", jose.ES384: "P-384", jose.ES512: "P-521"}[alg]
		return pk.Curve.Params().Name == want
	case jose.EdDSA:
		pk, ok := k.Key.(ed25519.PublicKey)
		return ok && len(pk) == ed25519.PublicKeySize
	}
	return false
}

// NewStaticVerifier is NewVerifierWithKeys with a fixed key set.
func NewStaticVerifier(cfg Config, keys jose.JSONWebKeySet, log *slog.Logger) (*Verifier, error) {
	return NewVerifierWithKeys(cfg, StaticKeys(keys), log)
}
