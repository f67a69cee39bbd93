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
				if len(c.entries) > tc.maxEntries || c.bytes > tc.maxBytes {
					t.Fatalf("after %d puts: %d entries, %d bytes", i+1, len(c.entries), c.bytes)
				}
				sum := 0
				for k, e := range c.entries {
					sum += len(k)
					if e.kid != k {
						t.Fatalf("entry %q holds %q", k, e.kid)
					}
				}
				if sum != c.bytes {
					t.Fatalf("byte count %d, entries hold %d", c.bytes, sum)
				}
				if got := c.get(tok); tc.tokenLen <= tc.maxBytes && tc.maxEntries > 0 && got != v {
					t.Fatalf("the token just put is not there")
				}
			}
			for k, v := range c.entries {
				c.remove(k, &verifiedSession{}) // another value: kept
				if c.get(k) != v {
					t.Fatal("remove dropped an entry holding another value")
				}
				c.remove(k, v)
				if c.get(k) != nil {
					t.Fatal("remove kept the entry")
				}
			}
			if c.bytes != 0 {
				t.Errorf("%d bytes counted in an empty cache", c.bytes)
			}
		})
	}
}
