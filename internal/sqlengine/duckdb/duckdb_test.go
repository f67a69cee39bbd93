package duckdb_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
	"github.com/stewardhq/steward/internal/sqlengine/duckdb"
)

// memObjects is an in-memory ObjectReader.
type memObjects map[string][]byte // "bucket/key" -> bytes

func (m memObjects) Get(_ context.Context, bucket, key string, _ objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error) {
	b, ok := m[bucket+"/"+key]
	if !ok {
		return nil, objectstore.ObjectInfo{}, steward.Errorf(steward.ENotFound, "no such key")
	}
	return io.NopCloser(bytes.NewReader(b)), objectstore.ObjectInfo{Bucket: bucket, Key: key, Size: int64(len(b))}, nil
}

func (m memObjects) List(_ context.Context, bucket string, o objectstore.ListOptions) (objectstore.ListResult, error) {
	var r objectstore.ListResult
	for k := range m {
		b, key, _ := strings.Cut(k, "/")
		if b == bucket && strings.HasPrefix(key, o.Prefix) && key > o.After {
			r.Objects = append(r.Objects, objectstore.ObjectInfo{Bucket: b, Key: key})
		}
	}
	sort.Slice(r.Objects, func(i, j int) bool { return r.Objects[i].Key < r.Objects[j].Key })
	return r, nil
}

type tables map[string]*sqlengine.Table

func (t tables) Table(_ context.Context, name string) (*sqlengine.Table, error) {
	if x, ok := t[name]; ok {
		return x, nil
	}
	return nil, steward.Errorf(steward.ENotFound, "no table %s", name)
}

func (t tables) Tables(context.Context, *steward.Principal) ([]*sqlengine.Table, error) {
	var out []*sqlengine.Table
	for _, x := range t {
		out = append(out, x)
	}
	return out, nil
}

// rules is a Decider for tests: alice sees customers with e-mail masked,
// ssn denied and only EU rows; orders in full; secrets not at all.
type rules struct{}

func (rules) Decide(r *policy.Request, d *policy.Decision) {
	d.Reset()
	if r.User != "alice" && r.User != "bob" {
		return
	}
	// Writing: each user may create and write tables in the schema named
	// after them (bank.<user>.*) and objects under bank/<user>/.
	if r.Access == policy.AccessCreate || r.Access == policy.AccessWrite {
		name := r.Resource.Name
		if r.Resource.Kind == policy.ResourceObject {
			name = strings.ReplaceAll(r.Resource.Path, "/", ".")
		}
		d.Allowed = strings.HasPrefix(name, "bank."+r.User+".")
		return
	}
	switch r.Resource.Name {
	case "bank.crm.customers":
		if r.User == "bob" {
			d.Allowed = true
			return
		}
		switch r.Resource.Column {
		case "ssn":
			return
		case "email":
			d.Masks = append(d.Masks, policy.Mask{Column: "email", Type: policy.MaskHash})
		case "addr":
			d.Masks = append(d.Masks, policy.Mask{Column: "addr", Type: policy.MaskNull})
		}
		d.Allowed = true
		if r.Resource.Column == "" {
			d.RowFilters = append(d.RowFilters, "region = 'EU'")
		}
	case "bank.crm.orders", "bank.crm.empty":
		d.Allowed = true
	}
	if strings.HasPrefix(r.Resource.Name, "bank."+r.User+".") || strings.HasPrefix(r.Resource.Name, "bank.bob.") && r.User == "alice" {
		// Own tables; alice may also read bob's (to test inherited tags).
		d.Allowed = true
		for _, tg := range r.Tags {
			if tg.Name == "PII" && r.User == "alice" {
				d.Allowed = false // alice has no PII clearance
			}
		}
	}
}

type recorder struct {
	mu  sync.Mutex
	evs []steward.AuditEvent
}

func (r *recorder) Record(_ context.Context, ev steward.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return nil
}

// Secrets the tests check never appear.
const (
	secretEmail  = "carol@us.example"
	secretEmail2 = "anna@eu.example"
	secretSSN    = "123-45-6789"
	usName       = "Carol"
)

func fixture(t testing.TB, opts ...func(*sqlengine.Config)) (*sqlengine.Service, *recorder) {
	t.Helper()
	// Write the test data as Parquet with a plain DuckDB.
	dir := t.TempDir()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cust := filepath.Join(dir, "customers.parquet")
	ord := filepath.Join(dir, "orders.csv")
	for _, s := range []string{
		`COPY (SELECT * FROM (VALUES
			(1, 'Anna', '` + secretEmail2 + `', '111-11-1111', 'EU', {'city': 'Berlin', 'email': '` + secretEmail2 + `'}),
			(2, '` + usName + `', '` + secretEmail + `', '` + secretSSN + `', 'US', {'city': 'Boston', 'email': '` + secretEmail + `'}),
			(3, 'Emil', 'emil@eu.example', '222-22-2222', 'EU', {'city': 'Paris', 'email': 'emil@eu.example'}))
			t(id, name, email, ssn, region, addr)) TO '` + cust + `' (FORMAT parquet)`,
		`COPY (SELECT * FROM (VALUES (10, 1, 5.0), (11, 2, 7.5), (12, 3, 1.0)) t(order_id, id, amount)) TO '` + ord + `' (FORMAT csv, HEADER)`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	objs := memObjects{
		"bank/crm/customers/part-0.parquet": read(cust),
		"bank/crm/customers/_SUCCESS":       nil,
		"bank/crm/orders/o.csv":             read(ord),
	}
	tbls := tables{
		"bank.crm.customers": {Name: "bank.crm.customers", Bucket: "bank", Prefix: "crm/customers", Format: "parquet",
			Columns: []sqlengine.Column{{Name: "id", Type: "INTEGER"}, {Name: "name", Type: "VARCHAR"}, {Name: "email", Type: "VARCHAR"},
				{Name: "ssn", Type: "VARCHAR"}, {Name: "region", Type: "VARCHAR"}, {Name: "addr", Type: "STRUCT(city VARCHAR, email VARCHAR)"}}},
		"bank.crm.orders": {Name: "bank.crm.orders", Bucket: "bank", Prefix: "crm/orders", Format: "csv",
			Columns: []sqlengine.Column{{Name: "order_id", Type: "INTEGER"}, {Name: "id", Type: "INTEGER"}, {Name: "amount", Type: "DOUBLE"}}},
		"bank.crm.secrets": {Name: "bank.crm.secrets", Bucket: "bank", Prefix: "crm/secrets", Format: "csv",
			Columns: []sqlengine.Column{{Name: "x", Type: "VARCHAR"}}},
		"bank.crm.empty": {Name: "bank.crm.empty", Bucket: "bank", Prefix: "crm/empty", Format: "parquet",
			Columns: []sqlengine.Column{{Name: "x", Type: "VARCHAR"}}},
	}
	rec := &recorder{}
	b := duckdb.New(nil)
	t.Cleanup(func() { b.Close() })
	tmp := t.TempDir()
	cfg := sqlengine.Config{Tables: tbls, Decider: rules{}, Objects: objs, Backend: b, Auditor: rec, TempDir: tmp,
		Limits: sqlengine.Limits{MaxRows: 1000, Timeout: time.Minute, Threads: 1, Memory: "256MB"}}
	for _, o := range opts {
		o(&cfg)
	}
	svc := sqlengine.New(cfg)
	t.Cleanup(func() {
		ents, _ := os.ReadDir(tmp)
		if len(ents) != 0 {
			t.Errorf("staging directories left behind: %v", ents)
		}
	})
	return svc, rec
}

type collect struct {
	cols []sqlengine.Column
	rows [][]any
}

func (c *collect) Columns(cols []sqlengine.Column) error { c.cols = cols; return nil }
func (c *collect) Row(v []any) error                     { c.rows = append(c.rows, append([]any(nil), v...)); return nil }
func (c *collect) String() string                        { return fmt.Sprint(c.rows) }

var alice = &steward.Principal{Kind: steward.KindUser, Username: "alice", Groups: []string{"analysts"}}
var bob = &steward.Principal{Kind: steward.KindUser, Username: "bob"}

func run(t *testing.T, svc *sqlengine.Service, p *steward.Principal, q string) (*collect, error) {
	t.Helper()
	c := &collect{}
	_, err := svc.Query(context.Background(), sqlengine.Request{Principal: p, SQL: q}, c)
	return c, err
}

func TestMasksAndFiltersHoldOnEveryPath(t *testing.T) {
	svc, _ := fixture(t)
	for _, q := range []string{
		"SELECT * FROM bank.crm.customers",
		"SELECT email, name FROM bank.crm.customers",
		"SELECT * FROM (SELECT * FROM bank.crm.customers) s",
		"SELECT (SELECT max(email) FROM bank.crm.customers) AS m",
		"WITH c AS (SELECT * FROM bank.crm.customers) SELECT * FROM c",
		"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 3) SELECT c.* FROM r, bank.crm.customers c",
		"SELECT c.name, c.email, o.amount FROM bank.crm.customers c JOIN bank.crm.orders o ON c.id = o.id",
		"SELECT * FROM bank.crm.customers JOIN bank.crm.orders USING (id)",
		"SELECT * FROM bank.crm.orders LEFT JOIN bank.crm.customers USING (id)",
		"SELECT name, first_value(email) OVER (ORDER BY id), count(*) OVER () FROM bank.crm.customers",
		"SELECT * EXCLUDE (name) FROM bank.crm.customers",
		"SELECT name FROM bank.crm.customers EXCEPT SELECT 'nobody'",
		"SELECT addr.email, addr.city, addr FROM bank.crm.customers",
		"SELECT string_agg(email, ',') , string_agg(name, ',') FROM bank.crm.customers",
		"SELECT name FROM bank.crm.customers WHERE email = '" + secretEmail2 + "' OR region = 'US'",
		"SELECT * FROM bank.crm.customers UNION ALL SELECT * FROM bank.crm.customers",
		"SELECT COLUMNS('.*') FROM bank.crm.customers",
		"FROM bank.crm.customers",
		"SELECT count(*) FROM bank.crm.customers WHERE region <> 'EU'",
	} {
		t.Run(q, func(t *testing.T) {
			c, err := run(t, svc, alice, q)
			if err != nil {
				t.Fatalf("query failed: %v", err)
			}
			out := c.String()
			for _, s := range []string{secretEmail, secretEmail2, secretSSN, usName, "Boston", "Berlin"} {
				if s == "Berlin" && !strings.Contains(q, "addr") {
					continue
				}
				if strings.Contains(out, s) {
					t.Errorf("result reveals %q: %s", s, out)
				}
			}
			if strings.Contains(q, "region <> 'EU'") && out != "[[0]]" {
				t.Errorf("filtered rows counted: %s", out)
			}
		})
	}
	// bob sees everything: the fixture really holds the secrets.
	c, err := run(t, svc, bob, "SELECT * FROM bank.crm.customers")
	if err != nil || !strings.Contains(c.String(), secretEmail) || !strings.Contains(c.String(), secretSSN) {
		t.Fatalf("bob: %v %s", err, c)
	}
}

func TestDenialsAndErrors(t *testing.T) {
	svc, rec := fixture(t)
	for _, tc := range []struct {
		q, state, mention string
	}{
		{"SELECT ssn FROM bank.crm.customers", sqlengine.StateUndefinedCol, "ssn"},
		{"SELECT * FROM bank.crm.secrets", sqlengine.StatePrivilege, "bank.crm.secrets"},
		{"SELECT * FROM bank.crm.nothere", sqlengine.StateUndefinedTable, "bank.crm.nothere"},
		{"SELEC 1", sqlengine.StateSyntax, "syntax error"},
		{"SELECT * FROM bank.crm.orders LIMIT 1; SELECT 2", sqlengine.StateSyntax, "one statement"},
	} {
		t.Run(tc.q, func(t *testing.T) {
			_, err := run(t, svc, alice, tc.q)
			if err == nil {
				t.Fatal("query succeeded")
			}
			if got := sqlengine.SQLState(err); got != tc.state {
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

func TestEscapeAttempts(t *testing.T) {
	svc, _ := fixture(t)
	for _, q := range []string{
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM read_csv_auto('/etc/passwd')",
		"SELECT * FROM read_text('/etc/passwd')",
		"SELECT * FROM read_blob('/etc/passwd')",
		"SELECT * FROM glob('/*')",
		"SELECT * FROM '/etc/passwd'",
		"SELECT * FROM '/tmp/*/t0/part-0.parquet'",
		"SELECT * FROM read_parquet('/tmp/**/*.parquet')",
		"SELECT * FROM bank.crm.orders, read_csv('/etc/passwd')",
		"SELECT (SELECT count(*) FROM read_text('/etc/passwd'))",
		"ATTACH '/tmp/x.db' AS x",
		"ATTACH ':memory:' AS x",
		"INSTALL httpfs",
		"LOAD httpfs",
		"COPY (SELECT * FROM bank.crm.customers) TO '/tmp/out.csv'",
		"COPY bank.crm.customers TO '/tmp/out.csv'",
		"EXPORT DATABASE '/tmp/exp'",
		"SET enable_external_access = true",
		"SET allowed_directories = ['/']",
		"RESET lock_configuration",
		"PRAGMA enable_external_access",
		"CALL pragma_version()",
		"SELECT getenv('HOME')",
		"SELECT * FROM bank.crm.customers WHERE CASE WHEN name = 'Carol' THEN error('found') ELSE true END",
		"SELECT current_setting('allowed_directories')",
		"SELECT * FROM duckdb_settings()",
		"SELECT * FROM duckdb_views",
		"WITH duckdb_settings AS (SELECT * FROM duckdb_settings) SELECT * FROM duckdb_settings",
		"SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
		"SELECT * FROM query_table('bank.crm.customers')",
		"CREATE TEMP TABLE t AS SELECT 1",
		"CREATE VIEW bank.crm.customers2 AS SELECT * FROM bank.crm.customers",
		"SELECT * FROM temp.main.t",
		"SELECT * FROM sqlite_master",
		"DETACH bank",
		"USE bank",
		"DESCRIBE bank.crm.customers",
		"SELECT * FROM bank.crm.customers AT (VERSION => 1)",
		"SELECT 1; ATTACH ':memory:' AS x",
	} {
		t.Run(q, func(t *testing.T) {
			c, err := run(t, svc, alice, q)
			if err == nil {
				t.Fatalf("escape succeeded: %s", c)
			}
			switch sqlengine.SQLState(err) {
			case sqlengine.StatePrivilege, sqlengine.StateUndefinedTable, sqlengine.StateFeature, sqlengine.StateSyntax:
			default:
				t.Errorf("unexpected SQLSTATE %s: %v", sqlengine.SQLState(err), err)
			}
			if strings.Contains(steward.MessageOf(err), "steward-sql-") {
				t.Errorf("message reveals the staging path: %v", err)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	svc, _ := fixture(t)
	t.Run("rows", func(t *testing.T) {
		_, err := svc.Query(context.Background(), sqlengine.Request{Principal: alice, SQL: "SELECT * FROM range(10)", Limits: sqlengine.Limits{MaxRows: 3}}, &collect{})
		if sqlengine.SQLState(err) != sqlengine.StateLimit {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		_, err := svc.Query(context.Background(), sqlengine.Request{Principal: alice, SQL: "SELECT count(*) FROM range(1000000000000) a, range(1000) b", Limits: sqlengine.Limits{Timeout: 50 * time.Millisecond}}, &collect{})
		if sqlengine.SQLState(err) != sqlengine.StateCanceled {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		_, err := svc.Query(ctx, sqlengine.Request{Principal: alice, SQL: "SELECT count(*) FROM range(1000000000000) a, range(1000) b"}, &collect{})
		if sqlengine.SQLState(err) != sqlengine.StateCanceled {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAuditAndShowTables(t *testing.T) {
	svc, rec := fixture(t)
	c, err := run(t, svc, alice, "SELECT name, email FROM bank.crm.customers ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.rows) != 2 || len(c.cols) != 2 || c.cols[0].Name != "name" {
		t.Fatalf("rows %v cols %v", c.rows, c.cols)
	}
	if len(rec.evs) != 2 || rec.evs[0].Action != "sql.authorize" || rec.evs[1].Action != "sql.query" {
		t.Fatalf("events: %+v", rec.evs)
	}
	ev := rec.evs[1]
	if ev.Actor != "alice" || ev.Details["rows"] != int64(2) || ev.Outcome != "success" {
		t.Errorf("event %+v", ev)
	}
	if m, _ := ev.Details["masks"].(map[string]string); m["bank.crm.customers#email"] != "hash" {
		t.Errorf("masks not audited: %+v", ev.Details)
	}
	if f, _ := ev.Details["row_filters"].(map[string]string); f["bank.crm.customers"] != "region = 'EU'" {
		t.Errorf("filters not audited: %+v", ev.Details)
	}
	c, err = run(t, svc, alice, "SELECT * FROM bank.crm.empty")
	if err != nil || len(c.rows) != 0 {
		t.Errorf("empty table: %v %v", err, c)
	}
	c, err = run(t, svc, alice, "show tables;")
	if err != nil || len(c.rows) != 4 {
		t.Errorf("show tables: %v %v", err, c)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT * FROM a.b.c", "WITH x AS (SELECT 1) SELECT * FROM x", "SELECT * FROM read_csv('x')", "ATTACH 'x'"} {
		f.Add(s)
	}
	b := duckdb.New(nil)
	defer b.Close()
	f.Fuzz(func(t *testing.T, q string) {
		an, err := b.Analyze(context.Background(), q)
		if err == nil {
			for _, r := range an.Tables {
				if len(r) == 0 || len(r) > 3 {
					t.Errorf("bad ref %v", r)
				}
			}
		}
	})
}

// BenchmarkQuery measures one governed query end to end: analyze, decide,
// stage two small files, build a sandboxed DuckDB with masked and filtered
// views, run a join and stream the rows.
func BenchmarkQuery(b *testing.B) {
	svc, _ := fixture(b)
	q := "SELECT c.name, c.email, o.amount FROM bank.crm.customers c JOIN bank.crm.orders o USING (id)"
	for b.Loop() {
		if _, err := svc.Query(context.Background(), sqlengine.Request{Principal: alice, SQL: q}, &collect{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnalyze measures parsing and checking a statement.
func BenchmarkAnalyze(b *testing.B) {
	be := duckdb.New(nil)
	defer be.Close()
	q := "WITH c AS (SELECT * FROM bank.crm.customers) SELECT c.name, o.amount FROM c JOIN bank.crm.orders o USING (id) WHERE o.amount > 1"
	for b.Loop() {
		if _, err := be.Analyze(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}
