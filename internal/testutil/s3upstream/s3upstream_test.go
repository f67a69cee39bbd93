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

// TestBuildFailureIsClear: when versitygw cannot be built the error says
// what was being built and why (here: the module proxy is turned off).
func TestBuildFailureIsClear(t *testing.T) {
	dir := t.TempDir()
	_, err := build(dir, "v0.0.0-no-such-version", "GOPROXY=off")
	if err == nil || !strings.Contains(err.Error(), "building versitygw v0.0.0-no-such-version") || !strings.Contains(err.Error(), "GOPROXY=off") {
		t.Fatalf("build error = %v", err)
	}
}
