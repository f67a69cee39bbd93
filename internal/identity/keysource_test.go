package identity

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stewardhq/steward"
)

func TestKeyRotation(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.rsaA)
	v := newTestVerifier(t, f.config())
	ctx := context.Background()
	now := time.Now()

	if _, err := v.Verify(ctx, mint(t, k.rsaA, keycloakClaims(f.issuer, now))); err != nil {
		t.Fatal(err)
	}
	before := f.jwksHits.Load()

	// The issuer rotates: B replaces A.
	f.setKeys(k.rsaB)
	if _, err := v.Verify(ctx, mint(t, k.rsaB, keycloakClaims(f.issuer, now))); err != nil {
		t.Fatalf("token with the new kid: %v", err)
	}
	if got := f.jwksHits.Load() - before; got != 1 {
		t.Fatalf("rotation cost %d JWKS fetches, want 1", got)
	}
	// A is gone from the cache too, and asking again for it within the
	// interval fetches nothing.
	_, err := v.Verify(ctx, mint(t, k.rsaA, keycloakClaims(f.issuer, now)))
	wantRefusal(t, err, steward.EUnauthenticated, "token signature invalid")
	if got := f.jwksHits.Load() - before; got != 1 {
		t.Fatalf("retired kid caused %d fetches in total, want 1", got)
	}
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.rsaA)
	cfg := f.config()
	cfg.MinRefreshInterval = time.Hour // the whole test happens within one interval
	v := newTestVerifier(t, cfg)
	ctx := context.Background()
	now := time.Now()
	before := f.jwksHits.Load()

	const n = 1000
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = mint(t, testKey{k.es256.priv, jose.ES256, fmt.Sprintf("forged-%d-%d", i, now.UnixNano())}, keycloakClaims(f.issuer, now))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				_, err := v.Verify(ctx, tokens[i])
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		wantRefusal(t, err, steward.EUnauthenticated, "token signature invalid")
	}
	if got := f.jwksHits.Load() - before; got > 2 {
		t.Fatalf("%d forged tokens caused %d JWKS fetches, want at most 2", n, got)
	}
	if got := f.discoveryHits.Load(); got != 1 {
		t.Fatalf("discovery fetched %d times, want 1", got)
	}
}

func TestUnknownKidRefetchAfterInterval(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.rsaA)
	clock := newClock()
	cfg := f.config()
	cfg.Now = clock.Now
	v := newTestVerifier(t, cfg)
	ctx := context.Background()
	forged := mint(t, testKey{k.rsaB.priv, jose.RS256, "later"}, keycloakClaims(f.issuer, clock.Now()))

	before := f.jwksHits.Load()
	v.Verify(ctx, forged)
	v.Verify(ctx, forged)
	if got := f.jwksHits.Load() - before; got != 1 {
		t.Fatalf("fetches %d, want 1", got)
	}
	clock.Advance(DefaultMinRefreshInterval + time.Second)
	v.Verify(ctx, forged)
	if got := f.jwksHits.Load() - before; got != 2 {
		t.Fatalf("fetches after the interval %d, want 2", got)
	}
}

func TestBackgroundRefreshHonoursMaxAge(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.rsaA)
	f.cacheControl = "public, max-age=120"
	clock := newClock()
	cfg := f.config()
	cfg.Now = clock.Now
	v := newTestVerifier(t, cfg)
	ctx := context.Background()
	src, err := v.keySource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rks := src.(*RemoteKeySet)
	if n := rks.FetchCount(); n != 1 {
		t.Fatalf("fetches %d, want 1", n)
	}
	clock.Advance(119 * time.Second)
	rks.Keys(ctx)
	if n := rks.FetchCount(); n != 1 {
		t.Fatalf("fresh cache refetched: %d", n)
	}

	// Past max-age: the stale keys still serve while one refresh runs in
	// the background and brings the new key.
	f.setKeys(k.rsaA, k.rsaB)
	clock.Advance(2 * time.Second)
	set, err := rks.Keys(ctx)
	if err != nil || len(set.Keys) != 1 {
		t.Fatalf("stale keys not served: %v %v", set, err)
	}
	waitFor(t, func() bool {
		set, _ := rks.Keys(ctx)
		return len(set.Keys) == 2
	})
	if n := rks.FetchCount(); n != 2 {
		t.Fatalf("fetches %d, want 2", n)
	}
}

// waitFor polls cond until it holds; it asserts an eventual state, not a
// duration (the test's own deadline bounds it).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

func TestCacheTTL(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 15 * time.Minute},
		{"max-age=3600", time.Hour},
		{"public, max-age=300, must-revalidate", 5 * time.Minute},
		{"max-age=5", time.Minute},
		{"max-age=99999999999", 24 * time.Hour},
		{"no-cache, no-store, must-revalidate, max-age=0", time.Minute},
		{"max-age=nonsense", 15 * time.Minute},
	} {
		t.Run(tc.header, func(t *testing.T) {
			h := http.Header{}
			h.Set("Cache-Control", tc.header)
			if got := cacheTTL(h); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLazyDiscovery: the issuer is down when the verifier starts (it may be
// this process starting up); verification says unavailable, without
// hammering it, and works once the issuer is up.
func TestLazyDiscovery(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.es256)
	f.down.Store(true)
	clock := newClock()
	cfg := f.config()
	cfg.Now = clock.Now
	v, err := NewVerifier(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("NewVerifier must not fail on an unreachable issuer: %v", err)
	}
	ctx := context.Background()
	if err := v.Ready(ctx); steward.KindOf(err) != steward.EUnavailable {
		t.Fatalf("Ready = %v, want unavailable", err)
	}
	tok := mint(t, k.es256, keycloakClaims(f.issuer, clock.Now()))
	for range 100 {
		_, err := v.Verify(ctx, tok)
		wantRefusal(t, err, steward.EUnavailable, "identity provider unavailable", f.srv.URL)
	}
	if n := f.discoveryHits.Load(); n > 2 {
		t.Fatalf("discovery tried %d times during backoff, want at most 2", n)
	}

	f.down.Store(false)
	clock.Advance(maxBackoff)
	if err := v.Ready(ctx); err != nil {
		t.Fatalf("Ready after the issuer came up: %v", err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSDownAtStartBacksOff(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.es256)
	clock := newClock()
	cfg := f.config()
	cfg.Now = clock.Now
	cfg.JWKSURL = f.issuer + "/protocol/openid-connect/certs"
	f.down.Store(true)
	v := newTestVerifier(t, cfg)
	tok := mint(t, k.es256, keycloakClaims(f.issuer, clock.Now()))
	for range 50 {
		_, err := v.Verify(context.Background(), tok)
		wantRefusal(t, err, steward.EUnavailable, "identity provider unavailable")
	}
	if n := f.jwksHits.Load(); n > 2 {
		t.Fatalf("JWKS tried %d times during backoff", n)
	}
	if f.discoveryHits.Load() != 0 {
		t.Fatal("discovery used despite JWKSURL")
	}
	f.down.Store(false)
	clock.Advance(maxBackoff)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.es256)
	f.docIssuer = "https://evil.example/realms/bank"
	v := newTestVerifier(t, f.config())
	if err := v.Ready(context.Background()); steward.KindOf(err) != steward.EUnavailable {
		t.Fatalf("Ready = %v, want unavailable", err)
	}
	_, err := v.Verify(context.Background(), mint(t, k.es256, keycloakClaims(f.issuer, time.Now())))
	wantRefusal(t, err, steward.EUnavailable, "identity provider unavailable", "evil")
	if f.jwksHits.Load() != 0 {
		t.Fatal("keys fetched from a mismatched discovery document")
	}
}

func TestRemoteKeySetSkipsBadKeys(t *testing.T) {
	k := testKeys()
	srv := newJSONServer(t, `{"keys":[
		{"kty":"RSA","kid":"bad","n":"AQAB"},
		{"kty":"oct","kid":"sym","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
		{"kty":"XYZ","kid":"future"},
		`+jwkJSON(t, k.es256)+`]}`)
	r := NewRemoteKeySet(srv.URL, srv.Client(), 0, nil, testLogger(t))
	set, err := r.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != "ec-256" {
		t.Fatalf("keys %+v", set.Keys)
	}
	for _, body := range []string{`{"keys":[]}`, `not json`, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`} {
		srv := newJSONServer(t, body)
		r := NewRemoteKeySet(srv.URL, srv.Client(), 0, nil, testLogger(t))
		if _, err := r.Keys(context.Background()); err == nil {
			t.Fatalf("accepted key set %s", body)
		}
	}
}

func jwkJSON(t *testing.T, k testKey) string {
	t.Helper()
	b, err := k.jwk().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
