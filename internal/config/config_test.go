package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "steward.yaml")
	os.WriteFile(file, []byte("http_addr: 127.0.0.1:7000\nlog_level: debug\noidc:\n  access_token_ttl: 30m\ns3_addr: 127.0.0.1:7001\n"), 0o600)
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--config", file, "--http-addr", "127.0.0.1:7100"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fs, env(map[string]string{"STEWARD_HTTP_ADDR": "127.0.0.1:7200", "STEWARD_LOG_LEVEL": "warn"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:7100" {
		t.Errorf("flag should win over env and file: %s", c.HTTPAddr)
	}
	if c.LogLevel != "warn" {
		t.Errorf("env should win over file: %s", c.LogLevel)
	}
	if c.OIDC.AccessTokenTTL != 30*time.Minute || c.S3Addr != "127.0.0.1:7001" {
		t.Errorf("file should win over defaults: %v %s", c.OIDC.AccessTokenTTL, c.S3Addr)
	}
	if c.LogFormat != "text" {
		t.Errorf("default lost: %s", c.LogFormat)
	}
}

func TestBadSettingsNameTheSetting(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		flags      []string
		wantKey    string
		wantMsg    string
	}{
		{name: "unknown key", yaml: "http_adr: 1.2.3.4:80\n", wantKey: "http_adr", wantMsg: "unknown key"},
		{name: "unknown nested key", yaml: "oidc:\n  isuer: x\n", wantKey: "isuer", wantMsg: "unknown key"},
		{name: "invalid yaml", yaml: "http_addr: [\n", wantKey: "config"},
		{name: "wrong type", yaml: "demo: maybe-not\n", wantKey: "config"},
		{name: "bad addr", yaml: "http_addr: nope\n", wantKey: "http_addr", wantMsg: "not a host:port"},
		{name: "bad level env", env: map[string]string{"STEWARD_LOG_LEVEL": "loud"}, wantKey: "log_level"},
		{name: "bad duration env", env: map[string]string{"STEWARD_SHUTDOWN_GRACE": "soon"}, wantKey: "shutdown_grace", wantMsg: "environment STEWARD_SHUTDOWN_GRACE"},
		{name: "bad duration flag", flags: []string{"--oidc-access-token-ttl", "x"}, wantKey: "oidc.access_token_ttl", wantMsg: "flag --oidc-access-token-ttl"},
		{name: "demo off loopback", flags: []string{"--demo", "--http-addr", "0.0.0.0:8080"}, wantKey: "http_addr", wantMsg: "loopback"},
		{name: "bad metastore", flags: []string{"--metastore", "mysql://x"}, wantKey: "metastore"},
		{name: "external issuer without audience", flags: []string{"--oidc-issuer", "https://kc/realms/bank"}, wantKey: "oidc.audiences"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			RegisterFlags(fs)
			args := tc.flags
			if tc.yaml != "" {
				file := filepath.Join(t.TempDir(), "s.yaml")
				os.WriteFile(file, []byte(tc.yaml), 0o600)
				args = append(args, "--config", file)
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			_, err := Load(fs, env(tc.env))
			var se *SettingError
			if !errors.As(err, &se) {
				t.Fatalf("want SettingError, got %v", err)
			}
			if se.Key != tc.wantKey {
				t.Errorf("key = %q, want %q (%v)", se.Key, tc.wantKey, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q lacks %q", err, tc.wantMsg)
			}
		})
	}
}

func TestCheckDataDirUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; use a path under a regular file instead.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		c := Default()
		c.DataDir = filepath.Join(f, "sub")
		if err := c.CheckDataDir(); err == nil || !strings.Contains(err.Error(), "data_dir") {
			t.Fatalf("want data_dir error, got %v", err)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	c := Default()
	c.DataDir = dir
	if err := c.CheckDataDir(); err == nil || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("want data_dir error, got %v", err)
	}
}

func TestExternalURL(t *testing.T) {
	c := Default()
	c.HTTPAddr = "0.0.0.0:9999"
	if got := c.ExternalURL(); got != "http://127.0.0.1:9999" {
		t.Error(got)
	}
	c.PublicURL = "https://steward.bank.example/"
	if got := c.ExternalURL(); got != "https://steward.bank.example" {
		t.Error(got)
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("http_addr: 127.0.0.1:1\noidc:\n  audiences: [a, b]\n"))
	f.Add([]byte("demo: true\ndemo_password: x\n"))
	f.Add([]byte("{{{"))
	f.Add([]byte("audit: {segment_max_bytes: 99999999999999999999}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		err := ParseYAML(&c, "fuzz.yaml", data)
		if err != nil {
			var se *SettingError
			if !errors.As(err, &se) || se.Key == "" {
				t.Fatalf("error without a setting: %v", err)
			}
			return
		}
		_ = c.Validate()
	})
}
