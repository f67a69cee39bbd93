package server_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/testutil/certtest"
)

// TestSQLOverTLS: with pg_tls_cert and pg_tls_key set, psql connects with
// sslmode=require and the session is encrypted (pg_stat_ssl is not
// available, so psql's own \conninfo tells).
func TestSQLOverTLS(t *testing.T) {
	cert, key := certtest.SelfSigned(t)
	s := start(t, func(c *config.Config) {
		c.PGAddr = "127.0.0.1:0"
		c.PGTLSCert, c.PGTLSKey = cert, key
	})
	alice := newCLI(t, s)
	alice.login("alice")
	token := strings.TrimSpace(alice.must("", "token"))
	host, port, _ := net.SplitHostPort(s.PGAddr())
	psql := func(sslmode string, args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/psql", append([]string{"-X", "-A", "-t", "-h", host, "-p", port, "-U", "alice", "-d", "steward"}, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+token, "PGCONNECT_TIMEOUT=10", "PGSSLMODE="+sslmode)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	out, err := psql("require", "-c", "SELECT 6 * 7", "-c", `\conninfo`)
	if err != nil || !strings.Contains(out, "42") || !strings.Contains(out, "SSL connection") {
		t.Errorf("psql over TLS: %v %q", err, out)
	}
	// TLS is offered, not required, on loopback.
	if out, err := psql("disable", "-c", "SELECT 1"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("psql without TLS on loopback: %v %q", err, out)
	}
}
