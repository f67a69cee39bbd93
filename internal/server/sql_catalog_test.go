package server_test

import (
	"strings"
	"testing"
	"time"
)

const sqlDemoPolicies = `policies:
  - id: sql-customers
    resources:
      tables: ["mortgages.retail.customers", "mortgages.payments.transactions"]
    allow:
      - users: [alice, bob]
        accesses: [select, discover]
  - id: sql-mask-email
    kind: masking
    resources:
      tables: ["mortgages.retail.customers"]
      columns: [email]
    masks:
      - users: [bob]
        type: none
      - groups: [public]
        type: hash
  - id: sql-deny-iban
    resources:
      tables: ["mortgages.retail.customers"]
      columns: [iban]
    deny:
      - users: [alice]
        accesses: [select]
  - id: sql-rows-be
    kind: rowfilter
    resources:
      tables: ["mortgages.retail.customers"]
    row_filters:
      - users: [bob]
        filter: ""
      - groups: [public]
        filter: "country_code = 'BE'"
`

// TestSQLOverCatalog queries the demo bank's crawled datasets through the
// catalog adapter with policies applied: alice sees hashed e-mails, no IBAN
// and only Belgian customers; bob sees everything.
func TestSQLOverCatalog(t *testing.T) {
	s := start(t)
	carol, alice, bob := newCLI(t, s), newCLI(t, s), newCLI(t, s)
	carol.login("carol")
	alice.login("alice")
	bob.login("bob")
	carol.must(sqlDemoPolicies, "policy", "apply", "-f", "-")

	q := "SELECT c.country_code, c.email, count(t.tx_id) AS n FROM mortgages.retail.customers c LEFT JOIN mortgages.payments.transactions t USING (customer_id) GROUP BY ALL ORDER BY ALL"
	var out, errs string
	var code int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		// The crawler infers the schemas a moment after start.
		if out, errs, code = bob.run("", "sql", "-c", q, "--format", "csv"); code == 0 {
			break
		}
	}
	if code != 0 || !strings.Contains(out, "@") || !strings.Contains(out, "NL") {
		t.Fatalf("bob: %d %s %s", code, out, errs)
	}
	out = alice.must("", "sql", "-c", q, "--format", "csv")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("alice: %q", out)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "BE,") || strings.Contains(l, "@") {
			t.Errorf("alice sees %q", l)
		}
	}
	if _, errs, code := alice.run("", "sql", "-c", "SELECT iban FROM mortgages.retail.customers"); code == 0 || !strings.Contains(errs, "iban") {
		t.Errorf("alice reads iban: %d %s", code, errs)
	}
	if _, errs, code := alice.run("", "sql", "-c", "SELECT * FROM mortgages.risk.credit_exposures"); code == 0 || !strings.Contains(errs, "42501") {
		t.Errorf("alice reads exposures: %d %s", code, errs)
	}
	if out := alice.must("", "sql", "-c", "SHOW TABLES"); !strings.Contains(out, "mortgages.retail.customers") || strings.Contains(out, "credit_exposures") {
		t.Errorf("show tables: %s", out)
	}
}
