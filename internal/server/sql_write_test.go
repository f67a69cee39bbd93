package server_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/server"
)

// Policies for the write test: analysts may read bob's home tables, but
// only the mortgage line may see anything tagged PII.
const sqlWritePolicies = `policies:
  - id: share-bob-home
    resources:
      tables: ["home.bob.*"]
    allow:
      - groups: [analysts]
        accesses: [select, discover]
  - id: pii-clearance
    tags:
      - name: PII
    deny:
      - groups: [public]
        accesses: [select, read]
    deny_exceptions:
      - groups: [mortgages]
        accesses: [select, read]
`

// TestSQLWritesGovernedTables: bob copies customers' e-mail addresses
// into a table in his home area with CREATE TABLE AS. The table exists in
// the catalog at once, owned by bob, C3 or higher, with lineage down to
// the e-mail column; alice, without PII clearance, cannot read the
// copied addresses through SQL or the policy engine; INSERT appends.
func TestSQLWritesGovernedTables(t *testing.T) {
	s := start(t, func(c *config.Config) { c.PGAddr = "127.0.0.1:0" })
	carol, alice, bob := newCLI(t, s), newCLI(t, s), newCLI(t, s)
	carol.login("carol")
	alice.login("alice")
	bob.login("bob")
	carol.must(sqlWritePolicies, "policy", "apply", "-f", "-")

	// The crawler infers the customers' schema and tags e-mail as PII a
	// moment after start.
	for i := 0; ; i++ {
		out := bob.must("", "dataset", "show", "s3://mortgages/retail/customers", "-o", "json")
		var d catalog.Dataset
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		if c := d.Column("email"); c != nil && catalog.HasTag(c.Tags, catalog.TagPII) {
			break
		}
		if i == 400 {
			t.Fatalf("customers not crawled and tagged: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	count := func(c *steward, q string) string {
		t.Helper()
		out := c.must("", "sql", "-c", q, "--format", "csv")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}
	nl := count(bob, "SELECT count(*) FROM mortgages.retail.customers WHERE country_code = 'NL'")
	be := count(bob, "SELECT count(*) FROM mortgages.retail.customers WHERE country_code = 'BE'")

	bob.must("", "sql", "-c", "CREATE TABLE home.bob.emails AS SELECT customer_id, email, country_code FROM mortgages.retail.customers WHERE country_code = 'NL'")
	if _, errs, code := bob.run("", "sql", "-c", "CREATE TABLE home.bob.emails AS SELECT 1 AS x"); code == 0 || !strings.Contains(errs, "42P07") {
		t.Errorf("second CREATE: %d %s", code, errs)
	}

	// In the catalog at once: bob owns it, Parquet, the result's schema;
	// C3 or higher effectively, through lineage (the catalog holds only
	// what its owners set: TestSQLTableTagsFollowSources).
	var d catalog.Dataset
	if err := json.Unmarshal([]byte(bob.must("", "dataset", "show", "s3://home/bob/emails", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Owners) != 1 || d.Owners[0] != "bob" || d.Format != catalog.FormatParquet || d.Column("email") == nil {
		t.Errorf("dataset: %+v", d)
	}
	key := lineage.DatasetKey{Namespace: "s3://home", Name: "bob/emails"}
	tags, cls := s.Lineage().PolicyTags(key)
	if cls < policy.C3 {
		t.Errorf("effective classification %v, tags %v", cls, tags)
	}
	// Lineage: the SQL job, with the e-mail column's PII arriving through
	// the column edge from customers.email.
	inh, _, err := s.Lineage().ColumnInheritedTags(context.Background(), key.Namespace, key.Name, "email")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range inh {
		if it.Name == catalog.TagPII && it.OriginField == "email" && it.Origin.Name == "retail/customers" && strings.HasPrefix(it.Job.Name, "sql/home.bob.emails/") {
			found = true
		}
	}
	if !found {
		t.Errorf("email column inherits %+v", inh)
	}
	out := carol.must("", "lineage", "s3://home:bob/emails", "--direction", "upstream")
	if !strings.Contains(out, "job:steward:sql/home.bob.emails/") || !strings.Contains(out, "s3://mortgages:retail/customers") {
		t.Errorf("lineage graph:\n%s", out)
	}
	if out := carol.must("", "lineage", "explain", "s3://home:bob/emails"); !strings.Contains(out, "column email of s3://mortgages:retail/customers") {
		t.Errorf("lineage explain:\n%s", out)
	}
	if inh, _, _ := s.Lineage().ColumnInheritedTags(context.Background(), key.Namespace, key.Name, "country_code"); hasTag(inh, catalog.TagPII) {
		t.Errorf("country_code inherits PII: %+v", inh)
	}

	// alice has no PII clearance: no e-mail through SQL ...
	if _, errs, code := alice.run("", "sql", "-c", "SELECT email FROM home.bob.emails"); code == 0 || !strings.Contains(errs, "email") {
		t.Errorf("alice reads the copied e-mails: %d %s", code, errs)
	}
	if out := alice.must("", "sql", "-c", "SELECT * FROM home.bob.emails", "--format", "csv"); strings.Contains(out, "@") || !strings.Contains(out, "NL") {
		t.Errorf("alice sees %s", out)
	}
	// ... nor from the policy engine, asked with the table's effective tags.
	ask := func(user string, groups []string) bool {
		req := policy.Request{User: user, Groups: groups, Access: policy.AccessSelect,
			Resource: policy.Resource{Kind: policy.ResourceTable, Name: "home.bob.emails"}, Tags: tags, Classification: cls, Time: time.Now()}
		var dec policy.Decision
		s.PolicyEngine().Decide(&req, &dec)
		return dec.Allowed
	}
	if ask("alice", []string{"analysts"}) || !ask("bob", []string{"mortgages"}) {
		t.Errorf("policy engine: alice %v, bob %v", ask("alice", []string{"analysts"}), ask("bob", []string{"mortgages"}))
	}

	// INSERT appends; only the owner (or a write grant) may insert.
	bob.must("", "sql", "-c", "INSERT INTO home.bob.emails SELECT customer_id, email, country_code FROM mortgages.retail.customers WHERE country_code = 'BE'")
	if got, want := count(bob, "SELECT count(*) FROM home.bob.emails"), atoiSum(t, nl, be); got != want {
		t.Errorf("after INSERT %s rows, want %s", got, want)
	}
	if _, errs, code := alice.run("", "sql", "-c", "INSERT INTO home.bob.emails SELECT 1, 'x', 'BE'"); code == 0 || !strings.Contains(errs, "42501") {
		t.Errorf("alice inserts into bob's table: %d %s", code, errs)
	}

	// alice writes in her own area only.
	alice.must("", "sql", "-c", "CREATE TABLE home.alice.scratch AS SELECT range AS n FROM range(3)")
	if got := count(alice, "SELECT sum(n) FROM home.alice.scratch"); got != "3" {
		t.Errorf("alice's table: %s", got)
	}
	// psql: the command tags are PostgreSQL's: SELECT n for CREATE TABLE
	// AS, INSERT 0 n for INSERT (psql prints them without -t).
	host, port, _ := net.SplitHostPort(s.PGAddr())
	psql := func(q string) (string, error) {
		cmd := exec.Command("/usr/bin/psql", "-X", "-A", "-h", host, "-p", port, "-U", "alice", "-d", "steward", "-c", q)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+strings.TrimSpace(alice.must("", "token")), "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := psql("CREATE TABLE home.alice.fromsql AS SELECT 7 AS x"); err != nil || out != "SELECT 1" {
		t.Errorf("psql CREATE TABLE AS: %v %q", err, out)
	}
	if out, err := psql("INSERT INTO home.alice.fromsql SELECT 0 AS x FROM range(2)"); err != nil || out != "INSERT 0 2" {
		t.Errorf("psql INSERT: %v %q", err, out)
	}
	if got := count(alice, "SELECT sum(x) FROM home.alice.fromsql"); got != "7" {
		t.Errorf("psql's table: %s", got)
	}
	if _, errs, code := alice.run("", "sql", "-c", "CREATE TABLE mortgages.retail.mine AS SELECT 1 AS x"); code == 0 || !strings.Contains(errs, "42501") {
		t.Errorf("alice writes into mortgages: %d %s", code, errs)
	}
}

func hasTag(l []lineage.InheritedTag, name string) bool {
	for _, t := range l {
		if t.Name == name {
			return true
		}
	}
	return false
}

func atoiSum(t *testing.T, a, b string) string {
	t.Helper()
	var x, y int
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(x + y)
	return string(out)
}

// TestSQLGroupLimits: sql_limits (YAML) bound the queries of a group's
// members; users in no listed group keep the defaults.
func TestSQLGroupLimits(t *testing.T) {
	s := start(t, func(c *config.Config) {
		if err := config.ParseYAML(c, "limits.yaml", []byte("sql_limits:\n  analysts:\n    max_rows: 3\n    timeout: 30s\n    memory: 512MB\n")); err != nil {
			t.Fatal(err)
		}
	})
	alice, bob := newCLI(t, s), newCLI(t, s)
	alice.login("alice")
	bob.login("bob")
	if _, errs, code := alice.run("", "sql", "-c", "SELECT * FROM range(5)"); code == 0 || !strings.Contains(errs, "54000") {
		t.Errorf("alice over her group's limit: %d %s", code, errs)
	}
	alice.must("", "sql", "-c", "SELECT * FROM range(3)")
	if out := bob.must("", "sql", "-c", "SELECT * FROM range(5)", "--format", "csv"); strings.Count(out, "\n") != 6 {
		t.Errorf("bob: %q", out)
	}
}

// TestSQLGroupLimitsRefused: a bad limit names its setting at start.
func TestSQLGroupLimitsRefused(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.S3Addr = "127.0.0.1:0", "127.0.0.1:0"
	if err := config.ParseYAML(&cfg, "limits.yaml", []byte("sql_limits:\n  analysts:\n    memory: lots\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := server.New(ctx, cfg, server.Options{Version: "test"})
	if err == nil {
		s.Close()
		t.Fatal("server started with memory: lots")
	}
	if !strings.Contains(err.Error(), "sql_limits.analysts.memory") {
		t.Errorf("error %v", err)
	}
}
