package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
)

// debugGet fetches a URL and returns its status and body.
func debugGet(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// checkCPUProfile asserts that body is a gzipped pprof CPU profile: the
// protobuf's string table names the sample types.
func checkCPUProfile(t *testing.T, body string) {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatalf("profile is not gzipped (%d bytes): %v", len(body), err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	for _, s := range []string{"samples", "count", "cpu", "nanoseconds"} {
		if !bytes.Contains(raw, []byte(s)) {
			t.Errorf("CPU profile lacks the string %q", s)
		}
	}
}

func TestDebugListenerServesPprof(t *testing.T) {
	s := start(t, func(c *config.Config) { c.DebugAddr = "127.0.0.1:0" })
	addr := s.DebugAddr()
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("DebugAddr() = %q, want 127.0.0.1:PORT", addr)
	}
	base := "http://" + addr

	t.Run("goroutine dump", func(t *testing.T) {
		code, body, _ := debugGet(t, base+"/debug/pprof/goroutine?debug=1")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		if !strings.HasPrefix(body, "goroutine profile: total ") {
			t.Errorf("not a goroutine dump: %.200q", body)
		}
		// The dump shows this very process: Steward's listeners are serving.
		if !strings.Contains(body, "net/http.(*Server).Serve") {
			t.Errorf("goroutine dump lacks the serving HTTP servers")
		}
	})
	t.Run("cpu profile", func(t *testing.T) {
		code, body, h := debugGet(t, base+"/debug/pprof/profile?seconds=1")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		if ct := h.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("Content-Type = %q", ct)
		}
		checkCPUProfile(t, body)
	})
	t.Run("index lists heap", func(t *testing.T) {
		code, body, _ := debugGet(t, base+"/debug/pprof/")
		if code != http.StatusOK || !strings.Contains(body, "heap") {
			t.Errorf("status %d, body %.200q", code, body)
		}
	})
	t.Run("command line is not served", func(t *testing.T) {
		// Flags such as --demo-password can carry secrets.
		code, body, _ := debugGet(t, base+"/debug/pprof/cmdline")
		if code != http.StatusNotFound {
			t.Errorf("status %d, want 404: %.200q", code, body)
		}
	})
	t.Run("only under /debug/pprof/", func(t *testing.T) {
		code, _, _ := debugGet(t, base+"/debug/vars")
		if code != http.StatusNotFound {
			t.Errorf("/debug/vars: status %d, want 404", code)
		}
	})
	t.Run("not on the public listeners", func(t *testing.T) {
		for _, u := range []string{s.URL(), s.S3URL()} {
			_, body, _ := debugGet(t, u+"/debug/pprof/goroutine?debug=1")
			if strings.Contains(body, "goroutine profile") {
				t.Errorf("%s serves pprof", u)
			}
		}
	})
}

func TestDebugListenerOffByDefault(t *testing.T) {
	if d := config.Default().DebugAddr; d != "" {
		t.Fatalf("default debug_addr = %q, want empty (off)", d)
	}
	s := start(t)
	if a := s.DebugAddr(); a != "" {
		t.Errorf("DebugAddr() = %q with debug_addr empty, want no listener", a)
	}
	for _, u := range []string{s.URL(), s.S3URL()} {
		_, body, _ := debugGet(t, u+"/debug/pprof/goroutine?debug=1")
		if strings.Contains(body, "goroutine profile") {
			t.Errorf("%s serves pprof with debug_addr empty", u)
		}
	}
}

// New refuses a non-loopback debug_addr even from a Config that skipped
// Validate, before listening on it.
func TestDebugListenerRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0"} {
		t.Run(addr, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.HTTPAddr = "127.0.0.1:0"
			cfg.S3Addr = "127.0.0.1:0"
			cfg.DebugAddr = addr
			s, err := server.New(context.Background(), cfg, server.Options{Version: "test"})
			if err == nil {
				s.Close()
				t.Fatalf("New accepted debug_addr %q", addr)
			}
			var se *config.SettingError
			if !errors.As(err, &se) || se.Key != "debug_addr" {
				t.Errorf("error %v does not name debug_addr", err)
			}
		})
	}
}

// A long CPU profile in flight does not hold up shutdown: it ends when the
// server's context is cancelled and the client still gets a whole profile.
func TestDebugListenerShutdownEndsProfile(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.S3Addr = "127.0.0.1:0"
	cfg.DebugAddr = "127.0.0.1:0"
	cfg.ShutdownGrace = 10 * time.Minute // a hung profile would hang the test, not pass it
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, server.Options{Version: "test"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			<-done
		}
	})

	// Wait (without a deadline) until the index answers, then profile for
	// far longer than the test runs.
	base := "http://" + s.DebugAddr()
	if code, body, _ := debugGet(t, base+"/debug/pprof/"); code != http.StatusOK {
		t.Fatalf("index: status %d: %s", code, body)
	}
	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/debug/pprof/profile?seconds=3600")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{code: resp.StatusCode, body: string(b), err: err}
	}()
	// Cancel once the profile is running: its handler is sleeping.
	for {
		_, dump, _ := debugGet(t, base+"/debug/pprof/goroutine?debug=1")
		if strings.Contains(dump, "net/http/pprof.sleep") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	r := <-got
	if r.err != nil {
		t.Fatalf("profile in flight at shutdown: %v", r.err)
	}
	if r.code != http.StatusOK {
		t.Fatalf("profile in flight at shutdown: status %d: %s", r.code, r.body)
	}
	checkCPUProfile(t, r.body)
	stopped = true
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
