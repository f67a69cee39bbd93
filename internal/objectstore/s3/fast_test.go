package s3store

import (
	"net/url"
	"testing"
)

func TestDirectRequestURL(t *testing.T) {
	for _, tc := range []struct {
		name, endpoint, key, want string
	}{
		{"plain", "http://127.0.0.1:9000", "a/b.txt", "http://127.0.0.1:9000/bkt/a/b.txt"},
		{"base path and trailing slash", "http://h:1/s3/", "x", "http://h:1/s3/bkt/x"},
		{"dot segments kept", "http://h", "a/../b/./c", "http://h/bkt/a/../b/./c"},
		{"reserved characters", "http://h", "q?x#y z+%", "http://h/bkt/q%3Fx%23y%20z%2B%25"},
		{"unicode", "http://h", "ü", "http://h/bkt/%C3%BC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDirect(tc.endpoint, "us-east-1", "a", "s", nil)
			req, err := d.request(t.Context(), "GET", "bkt", tc.key, url.Values{"versionId": {"v 1"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.URL.Scheme + "://" + req.URL.Host + req.URL.EscapedPath(); got != tc.want {
				t.Errorf("URL = %s, want %s", got, tc.want)
			}
			if req.URL.RawQuery != "versionId=v%201" {
				t.Errorf("query = %s", req.URL.RawQuery)
			}
		})
	}
}
