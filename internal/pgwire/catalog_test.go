package pgwire

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
	"github.com/stewardhq/steward/internal/sqlengine/duckdb"
)

// The PostgreSQL system catalogs through real clients (psql's meta-commands,
// pgjdbc's DatabaseMetaData, pgx), over a real sqlengine on DuckDB with the
// real policy engine: alice and bob may select bank's tables, but alice not
// the salary column, and the C4 table bank.risk.exposures only bob.

const catalogPolicies = `policies:
  - id: bank-tables
    resources:
      tables: ["bank.*.*"]
    allow:
      - users: [alice, bob]
        accesses: [select, discover]
  - id: no-salary-for-alice
    resources:
      tables: ["bank.crm.people"]
      columns: [salary]
    deny:
      - users: [alice]
        accesses: [select]
  - id: c4-only-bob
    tags:
      - classification: C4
    deny:
      - groups: [public]
        accesses: [select, discover]
    deny_exceptions:
      - users: [bob]
        accesses: [select, discover]
`

// allTables returns every table to every user: what each may see is the
// sqlengine's decision alone.
type allTables []*sqlengine.Table

func (a allTables) Table(_ context.Context, name string) (*sqlengine.Table, error) {
	for _, t := range a {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, steward.Errorf(steward.ENotFound, "no table %s", name)
}

func (a allTables) Tables(context.Context, *steward.Principal) ([]*sqlengine.Table, error) {
	return a, nil
}

func startCatalog(t *testing.T) string {
	t.Helper()
	pols, err := policy.ParseFile("catalog.yaml", []byte(catalogPolicies))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.Compile(pols, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tables := allTables{
		{Name: "bank.crm.people", Bucket: "bank", Prefix: "crm/people", Format: "csv",
			Columns: []sqlengine.Column{{Name: "id", Type: "INTEGER"}, {Name: "name", Type: "VARCHAR"}, {Name: "salary", Type: "DECIMAL(10,2)"}, {Name: "born", Type: "DATE"}}},
		{Name: "bank.risk.exposures", Bucket: "bank", Prefix: "risk/exposures", Format: "parquet", Classification: policy.C4,
			Columns: []sqlengine.Column{{Name: "id", Type: "BIGINT"}, {Name: "amount", Type: "DOUBLE"}}},
	}
	b := duckdb.New(nil)
	t.Cleanup(func() { b.Close() })
	svc := sqlengine.New(sqlengine.Config{Tables: tables, Decider: eng, Backend: b, Auditor: nopAuditor{}, TempDir: t.TempDir(),
		Objects: memObjects{}, Limits: sqlengine.Limits{Timeout: time.Minute, Threads: 1, Memory: "256MB"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := NewServer(svc, verifier(), nil)
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// TestCatalogPsql runs psql's meta-commands as alice and bob.
func TestCatalogPsql(t *testing.T) {
	if _, err := os.Stat("/usr/bin/psql"); err != nil {
		t.Fatal("psql is not installed (Debian postgresql-client; scripts/test-deps.sh installs it)")
	}
	addr := startCatalog(t)
	host, port, _ := net.SplitHostPort(addr)
	psql := func(t *testing.T, user, db, cmd string) string {
		t.Helper()
		c := exec.Command("/usr/bin/psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", user, "-d", db, "-c", cmd)
		c.Env = append(os.Environ(), "PGPASSWORD=tok-"+user, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("psql %s: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	for _, tc := range []struct {
		user, db, cmd string
		want          []string
		not           []string
	}{
		{"alice", "steward", `\dt`, []string{"bank.crm|people|table|steward\n"}, []string{"exposures", "risk"}},
		{"alice", "steward", `\dt+`, []string{"bank.crm|people|table|steward|permanent|heap|"}, []string{"exposures"}},
		{"alice", "steward", `\d`, []string{"bank.crm|people|table|steward\n"}, []string{"exposures"}},
		{"alice", "steward", `\d "bank.crm".people`, []string{"id|integer|", "name|text|", "born|date|"}, []string{"salary"}},
		{"alice", "steward", `\dn`, []string{"bank.crm|steward\n"}, []string{"risk", "pg_catalog", "information_schema"}},
		{"alice", "steward", `\l`, []string{"steward|steward|UTF8|", "bank|steward|UTF8|"}, nil},
		{"alice", "steward", `\dt "bank.risk".*`, nil, []string{"exposures"}},
		// Connected to a catalog's database, its schemas are PostgreSQL's.
		{"alice", "bank", `\dt`, []string{"crm|people|table|steward\n"}, []string{"exposures", "bank.crm"}},
		{"alice", "bank", `\d crm.people`, []string{"id|integer|", "born|date|"}, []string{"salary"}},
		{"alice", "bank", `\d bank.crm.people`, []string{"id|integer|", "born|date|"}, []string{"salary"}},
		{"bob", "steward", `\dt`, []string{"bank.crm|people|table|steward\n", "bank.risk|exposures|table|steward\n"}, nil},
		{"bob", "bank", `\d+ crm.people`, []string{"id|integer|", "salary|numeric(10,2)|", "born|date|"}, nil},
		{"bob", "bank", `\d risk.exposures`, []string{"id|bigint|", "amount|double precision|"}, nil},
		// The other listings run, empty where Steward has nothing of the kind.
		{"bob", "bank", `\dn+`, []string{"crm|steward||", "risk|steward||"}, nil},
		{"bob", "bank", `\dp`, []string{"crm|people|table|", "risk|exposures|table|"}, nil},
		{"alice", "bank", `\l+`, []string{"bank|steward|UTF8|"}, nil},
		{"alice", "bank", `\dv`, []string{"Did not find any relations."}, nil},
		{"alice", "bank", `\di`, []string{"Did not find any relations."}, nil},
		{"alice", "bank", `\df`, nil, nil},
		{"alice", "bank", `\dT`, nil, nil},
		{"alice", "bank", `\du`, []string{"alice|"}, nil},
		{"alice", "bank", `\dx`, nil, nil},
		{"alice", "bank", `\db`, nil, nil},
	} {
		t.Run(tc.user+" "+tc.db+" "+tc.cmd, func(t *testing.T) {
			out := psql(t, tc.user, tc.db, tc.cmd)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("output shows %q:\n%s", n, out)
				}
			}
		})
	}
	// \d of a table alice may not discover is as if it did not exist.
	c := exec.Command("/usr/bin/psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", "alice", "-d", "bank", "-c", `\d risk.exposures`)
	c.Env = append(os.Environ(), "PGPASSWORD=tok-alice", "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	out, _ := c.CombinedOutput()
	if !strings.Contains(string(out), `Did not find any relation named "risk.exposures"`) {
		t.Errorf(`\d risk.exposures as alice: %s`, out)
	}
}

// TestCatalogJDBC lists schemas, tables and columns with pgjdbc's
// DatabaseMetaData, as DBeaver's navigator does.
func TestCatalogJDBC(t *testing.T) {
	const jar = "/usr/share/java/postgresql.jar"
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal("java is not installed: run scripts/test-deps.sh (openjdk-17-jdk-headless)")
	}
	if _, err := os.Stat(jar); err != nil {
		t.Fatal("pgjdbc is not installed: run scripts/test-deps.sh (libpostgresql-jdbc-java)")
	}
	addr := startCatalog(t)
	host, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct{ user, db, want string }{
		{"alice", "steward", `catalog|steward
schema|bank.crm
schema|information_schema
schema|pg_catalog
table|bank.crm|people|TABLE
column|bank.crm|people|id|int4|4|1
column|bank.crm|people|name|text|12|2
column|bank.crm|people|born|date|91|3
`},
		{"bob", "bank", `catalog|bank
schema|crm
schema|information_schema
schema|pg_catalog
schema|risk
table|crm|people|TABLE
table|risk|exposures|TABLE
column|crm|people|id|int4|4|1
column|crm|people|name|text|12|2
column|crm|people|salary|numeric|2|3
column|crm|people|born|date|91|4
column|risk|exposures|id|int8|-5|1
column|risk|exposures|amount|float8|8|2
`},
	} {
		t.Run(tc.user+" "+tc.db, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, java, "-cp", jar, "testdata/JdbcCatalog.java", host, port, tc.db, tc.user, "tok-"+tc.user).CombinedOutput()
			if err != nil || string(out) != tc.want {
				t.Fatalf("%v\n%s\nwant:\n%s", err, out, tc.want)
			}
		})
	}
}

// TestCatalogPgx asks pg_type and information_schema with pgx's extended
// protocol, and checks that a catalog query cannot reach table data.
func TestCatalogPgx(t *testing.T) {
	addr := startCatalog(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(connString(addr, "alice", "tok-alice"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	var name string
	var arr uint32
	if err := c.QueryRow(ctx, "SELECT typname, typarray FROM pg_catalog.pg_type WHERE oid = $1", 23).Scan(&name, &arr); err != nil || name != "int4" || arr != 1007 {
		t.Errorf("pg_type: %q %d %v", name, arr, err)
	}
	rows, err := c.Query(ctx, "SELECT table_catalog || '.' || table_schema || '.' || table_name || '.' || column_name FROM information_schema.columns ORDER BY ordinal_position")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(got, ",") != "bank.crm.people.id,bank.crm.people.name,bank.crm.people.born" {
		t.Errorf("information_schema.columns: %v %v", got, err)
	}
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'exposures'").Scan(&n); err != nil || n != 0 {
		t.Errorf("alice sees exposures in information_schema: %d %v", n, err)
	}
	for _, q := range []string{
		"SELECT * FROM pg_catalog.pg_class c JOIN bank.crm.people p ON true",
		"SELECT * FROM pg_catalog.pg_stat_statements",
		"SELECT * FROM pg_catalog.pg_class, read_csv('/etc/passwd')",
	} {
		if _, err := c.Exec(ctx, q); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
}

// TestCatalogPsycopg: psycopg 3 loads type information from pg_type
// (TypeInfo.fetch, as adapters for custom types do), and lists columns
// from information_schema.
func TestCatalogPsycopg(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import psycopg").Run() != nil {
		t.Fatal("python3 module psycopg is not installed: run scripts/test-deps.sh (apt-get install python3-psycopg)")
	}
	addr := startCatalog(t)
	host, port, _ := net.SplitHostPort(addr)
	script := strings.NewReplacer("HOST", host, "PORT", port).Replace(`
import psycopg
from psycopg.types import TypeInfo
conn = psycopg.connect(host='HOST', port=PORT, user='alice', password='tok-alice', dbname='steward', sslmode='disable')
info = TypeInfo.fetch(conn, "int4")
print(info.name, info.oid, info.array_oid)
cur = conn.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", ("crm", "people"))
print(cur.fetchall())
`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", script).CombinedOutput()
	want := "int4 23 1007\n[('id', 'INTEGER'), ('name', 'VARCHAR'), ('born', 'DATE')]\n"
	if err != nil || string(out) != want {
		t.Fatalf("%v\n%s\nwant:\n%s", err, out, want)
	}
}
