package sts

import (
	"fmt"
	"testing"
)

// The session cache stays within its bounds whatever is put in it, and
// what it returns is what was put under that token.
func TestSessionCacheBounds(t *testing.T) {
	cases := []struct {
		name                 string
		maxEntries, maxBytes int
		tokens               int
		tokenLen             int
	}{
		{"by entries", 8, 1 << 20, 100, 50},
		{"by bytes", 1000, 1000, 100, 100},
		{"token larger than the budget", 8, 64, 3, 100},
		{"no room", 0, 1000, 3, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newSessionCache(tc.maxEntries, tc.maxBytes)
			for i := range tc.tokens {
				tok := fmt.Sprintf("%0*d", tc.tokenLen, i)
				v := &verifiedSession{kid: tok}
				c.put(tok, v)
				c.put(tok, v) // again: no double count
				if c.m.Len() > tc.maxEntries || c.m.Cost() > int64(tc.maxBytes) {
					t.Fatalf("after %d puts: %d entries, %d bytes", i+1, c.m.Len(), c.m.Cost())
				}
				sum := 0
				for k, e := range c.m.All() {
					sum += len(k)
					if e.kid != k {
						t.Fatalf("entry %q holds %q", k, e.kid)
					}
				}
				if int64(sum) != c.m.Cost() {
					t.Fatalf("byte count %d, entries hold %d", c.m.Cost(), sum)
				}
				if got := c.get(tok); tc.tokenLen <= tc.maxBytes && tc.maxEntries > 0 && got != v {
					t.Fatalf("the token just put is not there")
				}
			}
			held := map[string]*verifiedSession{}
			for k, v := range c.m.All() {
				held[k] = v
			}
			for k, v := range held {
				c.remove(k, &verifiedSession{}) // another value: kept
				if c.get(k) != v {
					t.Fatal("remove dropped an entry holding another value")
				}
				c.remove(k, v)
				if c.get(k) != nil {
					t.Fatal("remove kept the entry")
				}
			}
			if c.m.Len() != 0 || c.m.Cost() != 0 {
				t.Errorf("%d entries, %d bytes counted in an emptied cache", c.m.Len(), c.m.Cost())
			}
		})
	}
}

// The access-key cache holds at most maxCachedKeys ids, whatever is
// resolved (unknown ids are cached too), and the latest answer for each.
func TestAccessKeyCacheBounds(t *testing.T) {
	c := newAccessKeyCache()
	for i := range maxCachedKeys + 500 {
		id := fmt.Sprintf("AKIA%016d", i)
		c.Put(id, &cachedKey{err: fmt.Errorf("unknown %s", id)})
		if c.Len() > maxCachedKeys {
			t.Fatalf("after %d ids: %d cached", i+1, c.Len())
		}
		if got, ok := c.Get(id); !ok || got.err.Error() != "unknown "+id {
			t.Fatalf("%s: not the answer just cached", id)
		}
	}
	if c.Len() != maxCachedKeys {
		t.Fatalf("%d cached, want %d", c.Len(), maxCachedKeys)
	}
}
