package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySource provides an issuer's public signing keys.
//
// Keys returns the current key set; it returns an error (which the verifier
// reports as "identity provider unavailable") only when it has no keys at all.
type KeySource interface {
	Keys(ctx context.Context) (*jose.JSONWebKeySet, error)
}

// Refresher is an optional capability of a KeySource: Refresh is called
// when a token names a key id that Keys did not contain. Implementations must
// rate-limit themselves; Refresh returns the (possibly unchanged) key set.
type Refresher interface {
	Refresh(ctx context.Context) (*jose.JSONWebKeySet, error)
}

// KeySourceFunc adapts a function to KeySource, for an in-process provider
// that holds its own keys and rotates them.
type KeySourceFunc func(ctx context.Context) (*jose.JSONWebKeySet, error)

// Keys calls f.
func (f KeySourceFunc) Keys(ctx context.Context) (*jose.JSONWebKeySet, error) { return f(ctx) }

type staticKeys struct{ set *jose.JSONWebKeySet }

func (s staticKeys) Keys(context.Context) (*jose.JSONWebKeySet, error) { return s.set, nil }

// StaticKeys returns a KeySource that always returns the public halves of
// the given keys. Private keys are reduced to public ones; symmetric keys are
// dropped.
func StaticKeys(set jose.JSONWebKeySet) KeySource {
	return staticKeys{set: publicKeys(set.Keys, nil)}
}

// publicKeys keeps usable public signing keys, converting private keys.
func publicKeys(keys []jose.JSONWebKey, log *slog.Logger) *jose.JSONWebKeySet {
	out := &jose.JSONWebKeySet{}
	for _, k := range keys {
		if !k.IsPublic() {
			k = k.Public()
		}
		if k.Key == nil || !k.Valid() {
			if log != nil {
				log.Warn("ignoring unusable key in key set", "kid", k.KeyID)
			}
			continue
		}
		out.Keys = append(out.Keys, k)
	}
	return out
}

// RemoteKeySet is a KeySource that fetches a JWKS over HTTP and caches it.
//
// A stale cache (past the response's Cache-Control max-age, bounded to
// [1m, 24h], 15m if absent) is refreshed in the background while the old
// keys keep serving. Refresh, called on an unknown key id, fetches at most
// once per minimum refresh interval; concurrent callers share one request.
// While no keys have ever been fetched, failed fetches back off
// exponentially up to 30s.
type RemoteKeySet struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	now        func() time.Time
	log        *slog.Logger

	mu         sync.Mutex
	keys       *jose.JSONWebKeySet
	staleAt    time.Time // refresh in background after this
	lastForced time.Time // last fetch triggered by Refresh
	retryAt    time.Time // no fetch before this after a failure
	backoff    time.Duration
	inflight   *call
	fetchCount int // for tests and metrics
}

var (
	_ KeySource = (*RemoteKeySet)(nil)
	_ Refresher = (*RemoteKeySet)(nil)
)

// NewRemoteKeySet returns a key set fetched from jwksURL with client.
// minRefresh bounds fetches triggered by unknown key ids (default 10s if 0).
func NewRemoteKeySet(jwksURL string, client *http.Client, minRefresh time.Duration, now func() time.Time, log *slog.Logger) *RemoteKeySet {
	if client == nil {
		client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if minRefresh <= 0 {
		minRefresh = DefaultMinRefreshInterval
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RemoteKeySet{url: jwksURL, client: client, minRefresh: minRefresh, now: now, log: log}
}

// Keys returns the cached keys, fetching them first if there are none and
// starting a background refresh if they are stale.
func (r *RemoteKeySet) Keys(ctx context.Context) (*jose.JSONWebKeySet, error) {
	r.mu.Lock()
	if r.keys != nil {
		keys := r.keys
		if !r.now().Before(r.staleAt) && r.inflight == nil {
			r.startLocked(ctx) // background; nobody waits
		}
		r.mu.Unlock()
		return keys, nil
	}
	c, err := r.joinLocked(ctx)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return r.wait(ctx, c)
}

// Refresh fetches the key set anew unless that was done by Refresh less than
// the minimum refresh interval ago, and returns the current keys.
func (r *RemoteKeySet) Refresh(ctx context.Context) (*jose.JSONWebKeySet, error) {
	r.mu.Lock()
	now := r.now()
	if r.inflight == nil && !r.lastForced.IsZero() && now.Sub(r.lastForced) < r.minRefresh {
		keys := r.keys
		r.mu.Unlock()
		if keys == nil {
			return nil, errors.New("no keys fetched yet")
		}
		return keys, nil
	}
	c := r.inflight
	if c == nil {
		r.lastForced = now
		c = r.startLocked(ctx)
	}
	r.mu.Unlock()
	return r.wait(ctx, c)
}

// FetchCount reports how many fetches were started, for tests and metrics.
func (r *RemoteKeySet) FetchCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetchCount
}

// joinLocked joins the fetch in flight or starts one, unless a recent
// failure says to wait.
func (r *RemoteKeySet) joinLocked(ctx context.Context) (*call, error) {
	if r.inflight != nil {
		return r.inflight, nil
	}
	if r.now().Before(r.retryAt) {
		return nil, errors.New("key set fetch backing off after a failure")
	}
	return r.startLocked(ctx), nil
}

type call struct {
	done chan struct{}
	keys *jose.JSONWebKeySet
	err  error
}

// startLocked starts one fetch in its own goroutine, detached from the
// caller's cancellation so that one impatient caller does not fail it for all.
func (r *RemoteKeySet) startLocked(ctx context.Context) *call {
	c := &call{done: make(chan struct{})}
	r.inflight = c
	r.fetchCount++
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultHTTPTimeout)
	go func() {
		defer cancel()
		keys, ttl, err := r.fetch(fctx)
		r.mu.Lock()
		now := r.now()
		if err != nil {
			r.log.Warn("fetching signing keys failed", "err", err)
			if r.keys == nil {
				r.backoff = nextBackoff(r.backoff)
				r.retryAt = now.Add(r.backoff)
			} else {
				// Keep serving the old keys; try again after a while.
				r.staleAt = now.Add(r.minRefresh)
			}
			c.keys = r.keys
			c.err = err
		} else {
			r.keys = keys
			r.staleAt = now.Add(ttl)
			r.backoff = 0
			r.retryAt = time.Time{}
			c.keys = keys
		}
		r.inflight = nil
		r.mu.Unlock()
		close(c.done)
	}()
	return c
}

func (r *RemoteKeySet) wait(ctx context.Context, c *call) (*jose.JSONWebKeySet, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.keys == nil {
		return nil, c.err
	}
	return c.keys, nil
}

func nextBackoff(b time.Duration) time.Duration {
	if b == 0 {
		return initialBackoff
	}
	return min(2*b, maxBackoff)
}

// fetch GETs the key set and returns its usable keys and cache lifetime.
func (r *RemoteKeySet) fetch(ctx context.Context) (*jose.JSONWebKeySet, time.Duration, error) {
	body, header, err := getJSON(ctx, r.client, r.url)
	if err != nil {
		return nil, 0, err
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, 0, fmt.Errorf("decoding key set: %w", err)
	}
	if len(raw.Keys) > maxKeysInSet {
		return nil, 0, fmt.Errorf("key set has %d keys, more than %d", len(raw.Keys), maxKeysInSet)
	}
	parsed := make([]jose.JSONWebKey, 0, len(raw.Keys))
	for i, k := range raw.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(k); err != nil {
			// One key of an unknown type must not hide the others.
			r.log.Warn("ignoring unparseable key in key set", "index", i, "err", err)
			continue
		}
		parsed = append(parsed, key)
	}
	keys := publicKeys(parsed, r.log)
	if len(keys.Keys) == 0 {
		return nil, 0, errors.New("key set has no usable keys")
	}
	return keys, cacheTTL(header), nil
}

// cacheTTL reads max-age from Cache-Control, bounded to [1m, 24h].
func cacheTTL(h http.Header) time.Duration {
	ttl := defaultCacheTTL
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n >= 0 {
				ttl = time.Duration(min(n, int(maxCacheTTL/time.Second))) * time.Second
			}
		case "no-cache", "no-store":
			ttl = 0
		}
	}
	return max(minCacheTTL, min(ttl, maxCacheTTL))
}

// getJSON GETs url and returns its body, at most maxDocumentSize bytes.
func getJSON(ctx context.Context, client *http.Client, url string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > maxDocumentSize {
		return nil, nil, fmt.Errorf("GET %s: response larger than %d bytes", url, maxDocumentSize)
	}
	return bytes.TrimSpace(body), resp.Header, nil
}
