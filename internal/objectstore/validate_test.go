package objectstore_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/storetest"
)

// URIEncode keeps only unreserved characters (and '/', when asked), and
// unescapes to what it was given, for every hostile key.
func FuzzURIEncode(f *testing.F) {
	for _, k := range storetest.HostileKeys() {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		for _, keepSlash := range []bool{true, false} {
			e := objectstore.URIEncode(key, keepSlash)
			allowed := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~%"
			if keepSlash {
				allowed += "/"
			}
			for i := 0; i < len(e); i++ {
				if c := e[i]; c >= 0x80 || strings.IndexByte(allowed, c) < 0 {
					t.Fatalf("URIEncode(%q, %v) = %q: byte %q left unescaped", key, keepSlash, e, c)
				}
			}
			if back, err := url.PathUnescape(e); err != nil || back != key {
				t.Fatalf("URIEncode(%q, %v) = %q unescapes to %q, %v", key, keepSlash, e, back, err)
			}
		}
	})
}
