package s3upstream

import (
	"net/http"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestStartServesOnLoopback(t *testing.T) {
	endpoint, access, secret := Start(t)
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") || access == "" || len(secret) < 20 {
		t.Fatalf("Start = %q %q %q", endpoint, access, secret)
	}
	if e2, a2, _ := Start(t); e2 != endpoint || a2 != access {
		t.Fatalf("second Start gave another server: %s", e2)
	}
	resp, err := http.Get(endpoint + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health = %d", resp.StatusCode)
	}
	// Unsigned requests are refused: the server checks credentials.
	resp, err = http.Get(endpoint + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous ListBuckets = %d, want 403", resp.StatusCode)
	}
}
