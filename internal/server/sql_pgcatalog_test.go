package server_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/config"
)

// TestPGCatalogOverDemo runs psql's meta-commands against the real server
// over the demo bank: the PostgreSQL catalogs show each user exactly what
// SHOW TABLES does, with only the columns the user may select. alice sees
// neither bob's C4 credit exposures nor the IBAN column denied to her.
func TestPGCatalogOverDemo(t *testing.T) {
	if _, err := os.Stat("/usr/bin/psql"); err != nil {
		t.Fatal("psql is not installed (Debian postgresql-client; scripts/test-deps.sh installs it)")
	}
	s := start(t, func(c *config.Config) { c.PGAddr = "127.0.0.1:0" })
	carol, alice, bob := newCLI(t, s), newCLI(t, s), newCLI(t, s)
	carol.login("carol")
	alice.login("alice")
	bob.login("bob")
	carol.must(sqlDemoPolicies+`  - id: sql-exposures-bob
    resources:
      tables: ["mortgages.risk.credit_exposures"]
    allow:
      - users: [bob]
        accesses: [select, discover]
`, "policy", "apply", "-f", "-")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		// The crawler infers the schemas a moment after start.
		_, _, code := bob.run("", "sql", "-c", "SELECT count(*) FROM mortgages.risk.credit_exposures")
		_, _, code2 := alice.run("", "sql", "-c", "SELECT count(*) FROM mortgages.retail.customers")
		if code == 0 && code2 == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo tables were not crawled in time")
		}
	}
	host, port, _ := net.SplitHostPort(s.PGAddr())
	psql := func(t *testing.T, c *steward, user, cmd string) string {
		t.Helper()
		token := strings.TrimSpace(c.must("", "token"))
		x := exec.Command("/usr/bin/psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", user, "-d", "mortgages", "-c", cmd)
		x.Env = append(os.Environ(), "PGPASSWORD="+token, "PGCONNECT_TIMEOUT=10")
		out, err := x.CombinedOutput()
		if err != nil {
			t.Fatalf("psql %s: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	out := psql(t, alice, "alice", `\dt`)
	if !strings.Contains(out, "retail|customers|table|") || !strings.Contains(out, "payments|transactions|table|") || strings.Contains(out, "credit_exposures") {
		t.Errorf(`alice \dt:\n%s`, out)
	}
	out = psql(t, alice, "alice", `\d retail.customers`)
	if !strings.Contains(out, "email|") || strings.Contains(out, "iban") {
		t.Errorf(`alice \d retail.customers:\n%s`, out)
	}
	out = psql(t, bob, "bob", `\dt`)
	if !strings.Contains(out, "risk|credit_exposures|table|") {
		t.Errorf(`bob \dt:\n%s`, out)
	}
	out = psql(t, bob, "bob", `\d retail.customers`)
	if !strings.Contains(out, "iban|") {
		t.Errorf(`bob \d retail.customers:\n%s`, out)
	}
}
