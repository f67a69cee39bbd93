package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestDebugAddr checks that the unauthenticated debug listener can only be
// configured on loopback, from each source, and that it is off by default.
func TestDebugAddr(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string   // the settings file, when set
		flags   []string // command-line flags
		env     string   // STEWARD_DEBUG_ADDR, when set
		want    string   // the loaded DebugAddr when no error is expected
		wantErr string   // a fragment of the error, which must name debug_addr
	}{
		{name: "default is off", want: ""},
		{name: "empty flag is off", flags: []string{"--debug-addr", ""}, want: ""},
		{name: "ipv4 loopback", flags: []string{"--debug-addr", "127.0.0.1:6060"}, want: "127.0.0.1:6060"},
		{name: "other 127/8 address", flags: []string{"--debug-addr", "127.1.2.3:6060"}, want: "127.1.2.3:6060"},
		{name: "ephemeral port", flags: []string{"--debug-addr", "127.0.0.1:0"}, want: "127.0.0.1:0"},
		{name: "ipv6 loopback", flags: []string{"--debug-addr", "[::1]:6060"}, want: "[::1]:6060"},
		{name: "localhost", flags: []string{"--debug-addr", "localhost:6060"}, want: "localhost:6060"},
		{name: "yaml loopback", yaml: "debug_addr: 127.0.0.1:6061\n", want: "127.0.0.1:6061"},
		{name: "env loopback", env: "[::1]:6062", want: "[::1]:6062"},
		{name: "all ipv4 interfaces", flags: []string{"--debug-addr", "0.0.0.0:6060"}, wantErr: "loopback only"},
		{name: "all interfaces, empty host", flags: []string{"--debug-addr", ":6060"}, wantErr: "loopback only"},
		{name: "all ipv6 interfaces", flags: []string{"--debug-addr", "[::]:6060"}, wantErr: "loopback only"},
		{name: "public ip", flags: []string{"--debug-addr", "203.0.113.7:6060"}, wantErr: "loopback only"},
		{name: "private ip", yaml: "debug_addr: 10.0.0.5:6060\n", wantErr: "loopback only"},
		{name: "host name", flags: []string{"--debug-addr", "steward.example.com:6060"}, wantErr: "loopback only"},
		{name: "localhost look-alike", env: "localhost.example.com:6060", wantErr: "loopback only"},
		{name: "no port", flags: []string{"--debug-addr", "127.0.0.1"}, wantErr: "not a host:port"},
		{name: "bad port", flags: []string{"--debug-addr", "127.0.0.1:99999"}, wantErr: "bad port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			RegisterFlags(fs)
			args := tc.flags
			if tc.yaml != "" {
				file := filepath.Join(t.TempDir(), "steward.yaml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", file)
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			c, err := Load(fs, env(map[string]string{"STEWARD_DEBUG_ADDR": tc.env}))
			if tc.wantErr != "" {
				var se *SettingError
				if !errors.As(err, &se) {
					t.Fatalf("want a SettingError, got %v", err)
				}
				if se.Key != "debug_addr" {
					t.Errorf("key = %q, want debug_addr (%v)", se.Key, err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q lacks %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DebugAddr != tc.want {
				t.Errorf("DebugAddr = %q, want %q", c.DebugAddr, tc.want)
			}
		})
	}
}

func TestDebugAddrFlag(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	fl := fs.Lookup("debug-addr")
	if fl == nil {
		t.Fatal("no --debug-addr flag")
	}
	if fl.DefValue != "" {
		t.Errorf("--debug-addr defaults to %q, want empty (off)", fl.DefValue)
	}
	if !strings.Contains(fl.Usage, "loopback") || !strings.Contains(fl.Usage, "STEWARD_DEBUG_ADDR") {
		t.Errorf("usage %q should say loopback and name STEWARD_DEBUG_ADDR", fl.Usage)
	}
}
