package duckdb_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// alsoAllow is rules plus select in full on a few more tables.
type alsoAllow struct {
	rules
	names map[string]bool
}

func (a alsoAllow) Decide(r *policy.Request, d *policy.Decision) {
	a.rules.Decide(r, d)
	if r.Access == policy.AccessSelect && a.names[r.Resource.Name] {
		d.Reset()
		d.Allowed = true
	}
}

// databaseFixture adds, beside bank.crm.*, tables whose names a short
// name could be confused with: bank.public.notes and bank.main.notes
// (different rows), and crm.customers, the two-part dataset that DuckDB
// calls crm.main.customers, which alice may read in full, unmasked and
// unfiltered.
func databaseFixture(t *testing.T, write bool) (*sqlengine.Service, *store, *recorder) {
	t.Helper()
	st := &store{owners: map[string]string{}}
	svc, rec := fixture(t, func(c *sqlengine.Config) {
		objs, tbls := c.Objects.(memObjects), c.Tables.(tables)
		objs["bank/public/notes/n.csv"] = []byte("v\npublic-notes\n")
		objs["bank/main/notes/n.csv"] = []byte("v\nmain-notes\n")
		objs["crm/customers/c.csv"] = []byte("id,email\n7,unmasked@crm.example\n")
		for _, n := range []string{"bank.public.notes", "bank.main.notes"} {
			_, sch, _, _ := sqlengine.SplitName(n)
			tbls[n] = &sqlengine.Table{Name: n, Bucket: "bank", Prefix: sch + "/notes", Format: "csv",
				Columns: []sqlengine.Column{{Name: "v", Type: "VARCHAR"}}}
		}
		tbls["crm.customers"] = &sqlengine.Table{Name: "crm.customers", Bucket: "crm", Prefix: "customers", Format: "csv",
			Columns: []sqlengine.Column{{Name: "id", Type: "INTEGER"}, {Name: "email", Type: "VARCHAR"}}}
		c.Decider = alsoAllow{names: map[string]bool{"bank.public.notes": true, "bank.main.notes": true, "crm.customers": true}}
		if write {
			st.objs, st.tables = objs, tbls
			c.Lineage, c.Registrar, c.Writer = st, st, st
		}
	})
	return svc, st, rec
}

func runIn(t *testing.T, svc *sqlengine.Service, p *steward.Principal, db, q string) (*collect, *sqlengine.Summary, error) {
	t.Helper()
	c := &collect{}
	sum, err := svc.Query(context.Background(), sqlengine.Request{Principal: p, SQL: q, Database: db}, c)
	return c, sum, err
}

// TestShortNamesResolveInTheDatabase: connected to database bank, the
// short names are PostgreSQL's (search_path = public), and what runs is
// what was authorized: masks and filters of the full name, never another
// table DuckDB could bind the short name to.
func TestShortNamesResolveInTheDatabase(t *testing.T) {
	svc, _, _ := databaseFixture(t, false)
	for _, tc := range []struct {
		name, db, q string
		want        string // the result's beginning
	}{
		{"schema.table", "bank", "SELECT name, email FROM crm.customers ORDER BY id", "[[Anna "},
		{"table alone is public", "bank", "SELECT v FROM notes", "[[public-notes]]"},
		{"public beside main in one sandbox", "bank", "SELECT (SELECT v FROM notes), (SELECT v FROM bank.main.notes), (SELECT v FROM public.notes)", "[[public-notes main-notes public-notes]]"},
		{"three parts unchanged", "bank", "SELECT v FROM bank.main.notes", "[[main-notes]]"},
		{"join of short and full", "bank", "SELECT count(*) FROM crm.customers c JOIN bank.crm.orders o USING (id)", "[[2]]"},
		{"cte shadows a table", "bank", "WITH notes AS (SELECT 'cte' AS v) SELECT v FROM notes", "[[cte]]"},
		{"cte over a short name", "bank", "WITH c AS (SELECT * FROM crm.customers) SELECT count(*), count(ssn IS NULL) FROM (SELECT 1 AS ssn) s, c", "[[2 2]]"},
		{"not a catalog: two parts are catalog.table", "alice", "SELECT email FROM crm.customers", "[[unmasked@crm.example]]"},
		{"no database", "", "SELECT email FROM crm.customers", "[[unmasked@crm.example]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := runIn(t, svc, alice, tc.db, tc.q)
			if err != nil {
				t.Fatalf("query failed: %v", err)
			}
			if got := c.String(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if tc.db == "bank" && strings.Contains(tc.q, "crm.customers") {
				out := c.String()
				for _, s := range []string{secretEmail, secretEmail2, "unmasked@crm.example", usName} {
					if strings.Contains(out, s) {
						t.Errorf("result reveals %q: %s", s, out)
					}
				}
			}
		})
	}
}

// TestShortNameRefusals: names DuckDB could bind elsewhere are refused,
// as are names that do not exist or may not be read; every error names
// the table in full.
func TestShortNameRefusals(t *testing.T) {
	svc, _, rec := databaseFixture(t, false)
	for _, tc := range []struct {
		q, state, mention string
	}{
		{"SELECT * FROM nope", sqlengine.StateUndefinedTable, "bank.public.nope"},
		{"SELECT * FROM crm.nope", sqlengine.StateUndefinedTable, "bank.crm.nope"},
		{"SELECT * FROM customers", sqlengine.StateUndefinedTable, "bank.public.customers"},
		{"SELECT * FROM crm.secrets", sqlengine.StatePrivilege, "bank.crm.secrets"},
		{"SELECT ssn FROM crm.customers", sqlengine.StateUndefinedCol, "ssn"},
		// crm is also a catalog the sandbox attaches: crm.customers
		// could be crm.main.customers.
		{"SELECT * FROM crm.customers, crm.main.customers", sqlengine.StateAmbiguous, "crm.customers"},
		// The database's own name, DuckDB's catalogs and system schemas.
		{"SELECT * FROM bank.notes", sqlengine.StateAmbiguous, "bank.notes"},
		{"SELECT * FROM main.notes", sqlengine.StateAmbiguous, "main.notes"},
		{"SELECT * FROM temp.notes", sqlengine.StateAmbiguous, "temp.notes"},
		{"SELECT * FROM system.notes", sqlengine.StateAmbiguous, "system.notes"},
		{"SELECT * FROM memory.notes", sqlengine.StateAmbiguous, "memory.notes"},
		// System schemas go to the system catalog emulation, which
		// has no such relation.
		{"SELECT * FROM information_schema.notes", sqlengine.StateFeature, "information_schema.notes"},
		{"SELECT * FROM pg_catalog.notes", sqlengine.StateFeature, "pg_catalog.notes"},
		{"SELECT * FROM information_schema.tables, crm.customers", sqlengine.StateFeature, ""},
		{"SELECT * FROM MAIN.notes", sqlengine.StateAmbiguous, "MAIN.notes"},
		{"SELECT * FROM duckdb_tables", sqlengine.StatePrivilege, "duckdb_tables"},
		{"SELECT * FROM sqlite_master", sqlengine.StatePrivilege, "sqlite_master"},
		{"SELECT * FROM read_csv('/etc/passwd')", sqlengine.StatePrivilege, "read_csv"},
		// A CTE's own body does not see it: the inner notes is not
		// authorized, so no view of it exists to bind to.
		{"WITH notes AS (SELECT * FROM notes) SELECT * FROM notes", "", ""},
	} {
		t.Run(tc.q, func(t *testing.T) {
			c, _, err := runIn(t, svc, alice, "bank", tc.q)
			if err == nil {
				t.Fatalf("query succeeded: %s", c)
			}
			if got := sqlengine.SQLState(err); tc.state != "" && got != tc.state {
				t.Errorf("SQLSTATE %s, want %s (%v)", got, tc.state, err)
			}
			if !strings.Contains(steward.MessageOf(err), tc.mention) {
				t.Errorf("message %q does not mention %q", steward.MessageOf(err), tc.mention)
			}
		})
	}
	if len(rec.evs) == 0 || rec.evs[len(rec.evs)-1].Outcome != "failure" {
		t.Errorf("failures not audited: %+v", rec.evs)
	}
}

// TestShortNamesAuditedInFull: the audit trail names tables, columns,
// masks and filters with their three-part names.
func TestShortNamesAuditedInFull(t *testing.T) {
	svc, _, rec := databaseFixture(t, false)
	if _, _, err := runIn(t, svc, alice, "bank", "SELECT name, email FROM crm.customers"); err != nil {
		t.Fatal(err)
	}
	ev := rec.evs[len(rec.evs)-1]
	if ev.Resource != "bank.crm.customers" || ev.Details["database"] != "bank" {
		t.Errorf("resource %q, database %v", ev.Resource, ev.Details["database"])
	}
	if cols, _ := ev.Details["columns"].([]string); !slices.Contains(cols, "bank.crm.customers#email") {
		t.Errorf("columns %v", ev.Details["columns"])
	}
	if m, _ := ev.Details["masks"].(map[string]string); m["bank.crm.customers#email"] != "hash" {
		t.Errorf("masks %v", ev.Details["masks"])
	}
	if f, _ := ev.Details["row_filters"].(map[string]string); f["bank.crm.customers"] != "region = 'EU'" {
		t.Errorf("filters %v", ev.Details["row_filters"])
	}
}

// TestShortNamesInWrites: CREATE TABLE AS and INSERT resolve their target
// and their inputs in the database; lineage names the inputs in full and
// follows the columns as precisely as with full names.
func TestShortNamesInWrites(t *testing.T) {
	svc, st, _ := databaseFixture(t, true)
	sum, err := svc.Query(context.Background(), sqlengine.Request{Principal: bob, Database: "bank",
		SQL: "CREATE TABLE bob.contacts AS SELECT c.email, upper(name) AS n, o.amount FROM crm.customers c JOIN crm.orders o ON c.id = o.id"}, &collect{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Written != "bank.bob.contacts" || st.tables["bank.bob.contacts"] == nil {
		t.Fatalf("written %q", sum.Written)
	}
	want := []string{"amount<-bank.crm.orders#amount", "email<-bank.crm.customers#email", "n<-bank.crm.customers#name"}
	if got := edges(st.lineage); !slices.Equal(got, want) {
		t.Errorf("lineage %v, want %v", got, want)
	}
	if slices.Sort(st.inputs); !slices.Equal(st.inputs, []string{"bank.crm.customers", "bank.crm.orders"}) {
		t.Errorf("inputs %v", st.inputs)
	}
	sum, err = svc.Query(context.Background(), sqlengine.Request{Principal: bob, Database: "bank",
		SQL: "INSERT INTO bob.contacts SELECT email, name, amount FROM crm.customers JOIN crm.orders USING (id) WHERE amount > 2"}, &collect{})
	if err != nil || sum.Command != "INSERT 0 2" || sum.Written != "bank.bob.contacts" {
		t.Fatalf("insert: %+v %v", sum, err)
	}
	c, _, err := runIn(t, svc, bob, "bank", "SELECT count(*) FROM bob.contacts")
	if err != nil || c.String() != "[[5]]" {
		t.Errorf("read back: %v %v", c, err)
	}
	// One part is public: bob may not create there.
	_, err = svc.Query(context.Background(), sqlengine.Request{Principal: bob, Database: "bank",
		SQL: "CREATE TABLE t AS SELECT 1 AS x"}, &collect{})
	if sqlengine.SQLState(err) != sqlengine.StatePrivilege || !strings.Contains(steward.MessageOf(err), "bank.public.t") {
		t.Errorf("create in public: %v", err)
	}
	// A target named as no query could read it back is refused alike.
	_, err = svc.Query(context.Background(), sqlengine.Request{Principal: bob, Database: "bank",
		SQL: "CREATE TABLE main.t AS SELECT 1 AS x"}, &collect{})
	if sqlengine.SQLState(err) != sqlengine.StateAmbiguous {
		t.Errorf("create main.t: %v", err)
	}
}

// BenchmarkQueryInDatabase is BenchmarkQuery with short names in database
// bank: what resolving them costs (listing the tables the user may see to
// know bank is a catalog, the sandbox's USE) shows beside BenchmarkQuery.
func BenchmarkQueryInDatabase(b *testing.B) {
	svc, _ := fixture(b)
	q := "SELECT c.name, c.email, o.amount FROM crm.customers c JOIN crm.orders o USING (id)"
	for b.Loop() {
		if _, err := svc.Query(context.Background(), sqlengine.Request{Principal: alice, SQL: q, Database: "bank"}, &collect{}); err != nil {
			b.Fatal(err)
		}
	}
}
