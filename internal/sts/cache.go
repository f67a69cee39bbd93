package sts

import (
	"bytes"
	"strings"

	"github.com/stewardhq/steward/internal/bounded"
	"github.com/stewardhq/steward/internal/s3api"
)

// The session cache's bounds: at most this many tokens, and this many
// bytes of token text (a token with a large session policy is several
// KiB).
const (
	sessionCacheEntries = 4096
	sessionCacheBytes   = 4 << 20
)

// verifiedSession is a session token that opened and checked: what
// ResolveCredential must check again on each request, and the credential
// it answers with.
type verifiedSession struct {
	kid  string
	key  []byte // the cluster key that opened the token
	sess *session
	cred *s3api.Credential
}

// sessionCache maps session tokens that verified to their sessions. Only
// successful verifications enter it, so a forged or tampered token cannot
// displace a good one; when full, a random entry makes room. A token is
// copied when cached, so the cache never keeps a request's buffer alive.
type sessionCache struct {
	m *bounded.Map[string, *verifiedSession]
}

func newSessionCache(maxEntries, maxBytes int) *sessionCache {
	return &sessionCache{m: bounded.New(bounded.Options[string, *verifiedSession]{
		MaxEntries: maxEntries,
		MaxCost:    int64(maxBytes),
		Cost:       func(token string, _ *verifiedSession) int64 { return int64(len(token)) },
		CloneKey:   strings.Clone,
	})}
}

func (c *sessionCache) get(token string) *verifiedSession {
	v, _ := c.m.Get(token)
	return v
}

// put caches v, a session that verified, under token.
func (c *sessionCache) put(token string, v *verifiedSession) {
	c.m.Put(token, v)
}

// remove drops token if it still maps to v.
func (c *sessionCache) remove(token string, v *verifiedSession) {
	bounded.CompareAndRemove(c.m, token, v)
}

// holds reports whether the keyring still has key id with these bytes; a
// retired key no longer verifies the sessions it sealed. (Both keys are
// the keyring's own, so the comparison needs no constant time.)
func (k *keyring) holds(id string, key []byte) bool {
	k.mu.RLock()
	cur, ok := k.keys[id]
	k.mu.RUnlock()
	return ok && bytes.Equal(cur, key)
}
