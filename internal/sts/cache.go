package sts

import (
	"bytes"
	"strings"
	"sync"

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
// displace a good one; when full, a random entry makes room.
type sessionCache struct {
	maxEntries, maxBytes int

	mu      sync.RWMutex
	entries map[string]*verifiedSession
	bytes   int
}

func newSessionCache(maxEntries, maxBytes int) *sessionCache {
	return &sessionCache{maxEntries: maxEntries, maxBytes: maxBytes, entries: map[string]*verifiedSession{}}
}

func (c *sessionCache) get(token string) *verifiedSession {
	c.mu.RLock()
	v := c.entries[token]
	c.mu.RUnlock()
	return v
}

func (c *sessionCache) put(token string, v *verifiedSession) {
	if len(token) > c.maxBytes || c.maxEntries <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[token]; ok {
		c.entries[token] = v
		return
	}
	// Map iteration starts at a random place: the first entry is a
	// random victim.
	for k := range c.entries {
		if len(c.entries) < c.maxEntries && c.bytes+len(token) <= c.maxBytes {
			break
		}
		delete(c.entries, k)
		c.bytes -= len(k)
	}
	c.entries[strings.Clone(token)] = v
	c.bytes += len(token)
}

// remove drops token if it still maps to v.
func (c *sessionCache) remove(token string, v *verifiedSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[token] == v {
		delete(c.entries, token)
		c.bytes -= len(token)
	}
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
