package server_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/config"
)

// TestSQLFrontDoors drives governed SQL through the real server: the CLI
// over REST and psql over the PostgreSQL wire protocol with a token as the
// password.
func TestSQLFrontDoors(t *testing.T) {
	s := start(t, func(c *config.Config) { c.PGAddr = "127.0.0.1:0" })
	alice := newCLI(t, s)
	alice.login("alice")

	out := alice.must("", "sql", "-c", "SELECT 42 AS answer, 'hello' AS greeting")
	if !strings.Contains(out, "answer") || !strings.Contains(out, "42") || !strings.Contains(out, "hello") || !strings.Contains(out, "(1 rows)") {
		t.Errorf("steward sql: %q", out)
	}
	if out := alice.must("", "sql", "-c", "SELECT 1 AS a UNION ALL SELECT 2", "--format", "csv"); out != "a\n1\n2\n" {
		t.Errorf("csv: %q", out)
	}
	for _, q := range []string{"SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM bank.nope.t", "ATTACH ':memory:' AS x"} {
		if _, errs, code := alice.run("", "sql", "-c", q); code == 0 || !strings.Contains(errs, "SQLSTATE") {
			t.Errorf("%s: exit %d, %q", q, code, errs)
		}
	}

	token := strings.TrimSpace(alice.must("", "token"))
	host, port, _ := net.SplitHostPort(s.PGAddr())
	psql := func(q string) (string, error) {
		cmd := exec.Command("/usr/bin/psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", "alice", "-d", "steward", "-c", q)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+token, "PGCONNECT_TIMEOUT=10")
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := psql("SELECT 6 * 7 AS answer"); err != nil || strings.TrimSpace(out) != "42" {
		t.Errorf("psql: %v %q", err, out)
	}
	if out, err := psql("SELECT getenv('HOME')"); err == nil || !strings.Contains(out, "not allowed") {
		t.Errorf("psql getenv: %v %q", err, out)
	}
}
