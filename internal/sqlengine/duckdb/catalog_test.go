package duckdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
	"github.com/stewardhq/steward/internal/sqlengine/duckdb"
)

func catalogQuery(t *testing.T, svc *sqlengine.Service, p *steward.Principal, db, q string) (*collect, error) {
	t.Helper()
	c := &collect{}
	_, err := svc.Query(context.Background(), sqlengine.Request{Principal: p, SQL: q, Database: db}, c)
	return c, err
}

// TestCatalogShowsWhatUserMayDiscover: the system catalogs list the tables
// the user may select, with the columns the user may select, and nothing
// else (alice: no secrets table, no ssn column; bob: ssn).
func TestCatalogShowsWhatUserMayDiscover(t *testing.T) {
	svc, rec := fixture(t)
	for _, tc := range []struct {
		name string
		p    *steward.Principal
		db   string
		q    string
		want string
	}{
		{"pg_class", alice, "steward", "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ORDER BY 2",
			"[[bank.crm customers] [bank.crm empty] [bank.crm orders]]"},
		{"pg_class in the catalog's database", alice, "bank", "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY 2",
			"[[crm customers] [crm empty] [crm orders]]"},
		{"pg_attribute", alice, "steward", "SELECT a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a WHERE a.attrelid = (SELECT oid FROM pg_class WHERE relname = 'customers') ORDER BY 1",
			"[[1 id integer] [2 name text] [3 email text] [4 region text] [5 addr text]]"},
		{"pg_attribute for bob", bob, "steward", "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'customers'::regclass",
			"[[id,name,email,ssn,region,addr]]"},
		{"information_schema.tables", alice, "steward", "SELECT table_catalog, table_schema, table_name FROM information_schema.tables ORDER BY 3",
			"[[bank crm customers] [bank crm empty] [bank crm orders]]"},
		{"information_schema.columns", alice, "steward", "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'customers'",
			"[[id,name,email,region,addr]]"},
		{"information_schema.schemata", alice, "steward", "SELECT catalog_name, schema_name FROM information_schema.schemata", "[[bank crm]]"},
		{"pg_tables", alice, "bank", "SELECT schemaname, tablename FROM pg_tables ORDER BY 2", "[[crm customers] [crm empty] [crm orders]]"},
		{"pg_database", alice, "steward", "SELECT datname FROM pg_database ORDER BY 1", "[[bank] [steward]]"},
		{"a regular expression matches anywhere, as in PostgreSQL", alice, "steward", "SELECT relname FROM pg_class WHERE relname ~ 'ord'", "[[orders]]"},
		{"current_database", alice, "bank", "SELECT current_database(), count(*) FROM pg_namespace", "[[bank 3]]"},
		{"settings reveal nothing", alice, "steward", "SELECT count(*) FROM pg_settings", "[[0]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := catalogQuery(t, svc, tc.p, tc.db, tc.q)
			if err != nil || c.String() != tc.want {
				t.Fatalf("got %s %v, want %s", c, err, tc.want)
			}
			if strings.Contains(c.String(), "secrets") {
				t.Errorf("shows secrets: %s", c)
			}
		})
	}
	// Catalog queries are audited like any other.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	found := false
	for _, ev := range rec.evs {
		if ev.Action == "sql.query" && ev.Actor == "alice" && strings.Contains(fmt.Sprint(ev.Details["query"]), "information_schema.schemata") {
			found = true
		}
	}
	if !found {
		t.Errorf("catalog query not audited: %v", rec.evs)
	}
}

// TestCatalogClientQueries runs the catalog queries psql 15 and pgjdbc
// send (testdata/pgclients.sql): each must run.
func TestCatalogClientQueries(t *testing.T) {
	svc, _ := fixture(t)
	b, err := os.ReadFile("testdata/pgclients.sql")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range strings.Split(string(b), "\n----\n") {
		if strings.TrimSpace(leadingComments(q)) == "" {
			continue
		}
		n++
		q = strings.ReplaceAll(q, "'16385'", "(SELECT min(oid) FROM pg_class)")
		t.Run(fmt.Sprintf("%02d", n), func(t *testing.T) {
			if _, err := catalogQuery(t, svc, alice, "steward", q); err != nil {
				t.Fatalf("%v\n%s", err, q)
			}
		})
	}
	if n < 20 {
		t.Fatalf("only %d queries in testdata/pgclients.sql", n)
	}
}

func leadingComments(q string) string {
	var keep []string
	for _, l := range strings.Split(q, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestCatalogEscapes: a catalog query is checked like any other and
// reaches nothing but the catalog.
func TestCatalogEscapes(t *testing.T) {
	svc, _ := fixture(t)
	for _, q := range []string{
		"SELECT * FROM pg_catalog.pg_class, bank.crm.customers",
		"SELECT relname, (SELECT count(*) FROM bank.crm.customers) FROM pg_class",
		"SELECT * FROM pg_catalog.pg_stat_statements",
		"SELECT * FROM information_schema.routines",
		"SELECT * FROM pg_class, read_csv('/etc/passwd')",
		"SELECT relname, current_setting('allowed_directories') FROM pg_class",
		"SELECT relname, getenv('HOME') FROM pg_class",
		"SELECT * FROM pg_class, duckdb_settings()",
		"SELECT * FROM pg_class, system.information_schema.tables",
		"SELECT * FROM pg_class, system.pg_catalog.pg_settings",
		"SELECT * FROM pg_class; ATTACH ':memory:' AS x",
		"SELECT * FROM pg_class, bank.crm.secrets",
	} {
		t.Run(q, func(t *testing.T) {
			c, err := catalogQuery(t, svc, alice, "steward", q)
			if err == nil {
				t.Fatalf("escape succeeded: %s", c)
			}
			switch sqlengine.SQLState(err) {
			case sqlengine.StatePrivilege, sqlengine.StateUndefinedTable, sqlengine.StateFeature, sqlengine.StateSyntax:
			default:
				t.Errorf("unexpected SQLSTATE %s: %v", sqlengine.SQLState(err), err)
			}
		})
	}
}

// BenchmarkCatalogQuery is one psql \dt through Steward (check, decide,
// a fresh catalog sandbox built and queried) beside its peer, the same
// query on DuckDB's own pg_catalog in a fresh plain DuckDB.
func BenchmarkCatalogQuery(b *testing.B) {
	const q = `SELECT n.nspname, c.relname, pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','') AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2`
	ctx := context.Background()
	b.Run("steward", func(b *testing.B) {
		svc, _ := fixture(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := svc.Query(ctx, sqlengine.Request{Principal: alice, SQL: q, Database: "steward"}, &collect{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("duckdb", func(b *testing.B) {
		// DuckDB has no pg_get_userbyid; the peer reads relowner instead.
		raw := strings.Replace(q, "pg_catalog.pg_get_userbyid(c.relowner)", "c.relowner", 1)
		for i := 0; i < b.N; i++ {
			db, err := sql.Open("duckdb", "")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec("CREATE SCHEMA crm; CREATE TABLE crm.customers(id INTEGER, name VARCHAR); CREATE TABLE crm.orders(id INTEGER); CREATE TABLE crm.empty(x VARCHAR)"); err != nil {
				b.Fatal(err)
			}
			rows, err := db.Query(raw)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
			db.Close()
		}
	})
}

// TestCatalogTypes: drivers tell array types by typinput (pgjdbc) or by
// typreceive's function name (Npgsql), and format types as PostgreSQL does.
func TestCatalogTypes(t *testing.T) {
	svc, _ := fixture(t)
	for _, tc := range []struct{ q, want string }{
		{"SELECT typinput='pg_catalog.array_in'::regproc AS is_array, typname FROM pg_catalog.pg_type WHERE oid IN (23, 1007) ORDER BY oid",
			"[[false int4] [true _int4]]"},
		{"SELECT t.typname, p.proname FROM pg_type t JOIN pg_proc p ON p.oid = t.typreceive WHERE t.oid IN (25, 1009) ORDER BY 1",
			"[[_text array_recv] [text textrecv]]"},
		{"SELECT pg_catalog.format_type(1700, (10 << 16 | 2) + 4), pg_catalog.format_type(1114, -1), format_type(1015, -1)",
			"[[numeric(10,2) timestamp without time zone character varying[]]]"},
		{"SELECT oid FROM pg_type WHERE oid = 'int4'::regtype OR oid = 'character varying'::regtype ORDER BY 1", "[[23] [1043]]"},
	} {
		t.Run(tc.q, func(t *testing.T) {
			c, err := catalogQuery(t, svc, alice, "steward", tc.q)
			if err != nil || c.String() != tc.want {
				t.Fatalf("got %s %v, want %s", c, err, tc.want)
			}
		})
	}
}

// BenchmarkCatalog1000Tables is psql's \dt and pgjdbc's getColumns over
// a user who may discover 1,000 tables of 10 columns each.
func BenchmarkCatalog1000Tables(b *testing.B) {
	be := duckdb.New(nil)
	b.Cleanup(func() { be.Close() })
	var tables []sqlengine.CatalogTable
	for i := 0; i < 1000; i++ {
		t := sqlengine.CatalogTable{Catalog: "bank", Schema: fmt.Sprintf("s%d", i%20), Table: fmt.Sprintf("t%d", i)}
		for j := 0; j < 10; j++ {
			t.Columns = append(t.Columns, sqlengine.Column{Name: fmt.Sprintf("c%d", j), Type: "BIGINT"})
		}
		tables = append(tables, t)
	}
	ctx := context.Background()
	for name, q := range map[string]string{
		"dt":      "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ORDER BY 1, 2",
		"columns": "SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid WHERE a.attnum > 0 ORDER BY 1, a.attnum",
	} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c := &collect{}
				n, err := be.RunCatalog(ctx, &sqlengine.CatalogRun{Query: q, Database: "steward", User: "alice", Tables: tables, Limits: sqlengine.DefaultLimits}, c)
				if err != nil || n < 1000 {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// TestCatalogReservedNames: a catalog named like one of DuckDB's own
// databases is still listed in pg_class (not in information_schema),
// and names with quotes stay names.
func TestCatalogReservedNames(t *testing.T) {
	be := duckdb.New(nil)
	t.Cleanup(func() { be.Close() })
	tables := []sqlengine.CatalogTable{
		{Catalog: "temp", Schema: "x", Table: "t1", Columns: []sqlengine.Column{{Name: "a", Type: "INTEGER"}}},
		{Catalog: "bank", Schema: "pg_catalog", Table: "t2", Columns: []sqlengine.Column{{Name: "a", Type: "INTEGER"}}},
		{Catalog: "bank", Schema: "o'hara", Table: `we"ird`, Columns: []sqlengine.Column{{Name: `c'"`, Type: "VARCHAR"}}},
	}
	for q, want := range map[string]string{
		"SELECT relname FROM pg_catalog.pg_class ORDER BY 1":                       `[[t1] [t2] [we"ird]]`,
		"SELECT table_name, column_name FROM information_schema.columns":           `[[we"ird c'"]]`,
		"SELECT nspname FROM pg_catalog.pg_namespace WHERE oid > 16000 ORDER BY 1": `[[bank.o'hara] [bank.pg_catalog] [temp.x]]`,
	} {
		c := &collect{}
		if _, err := be.RunCatalog(context.Background(), &sqlengine.CatalogRun{Query: q, Database: "steward", User: "alice", Tables: tables, Limits: sqlengine.DefaultLimits}, c); err != nil || c.String() != want {
			t.Errorf("%s: got %s %v, want %s", q, c, err, want)
		}
	}
}
