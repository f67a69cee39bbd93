package duckdb_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
	"github.com/stewardhq/steward/internal/sqlengine/duckdb"
)

// store holds the fixture's objects and tables and implements the write
// side: ObjectWriter, Registrar and Lineage, recording the order of calls.
type store struct {
	mu      sync.Mutex
	objs    memObjects
	tables  tables
	owners  map[string]string
	events  []string // "lineage", "catalog", "put" in call order
	lineage []sqlengine.ColumnLineage
	inputs  []string
	failPut bool
}

func (s *store) Put(_ context.Context, bucket, key string, body io.Reader, size int64, _ objectstore.PutOptions) (objectstore.ObjectInfo, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return objectstore.ObjectInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut {
		return objectstore.ObjectInfo{}, steward.Errorf(steward.EUnavailable, "disk full")
	}
	s.objs[bucket+"/"+key] = b
	s.events = append(s.events, "put")
	return objectstore.ObjectInfo{Bucket: bucket, Key: key, Size: int64(len(b))}, nil
}

func (s *store) Create(_ context.Context, p *steward.Principal, t *sqlengine.Table) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tables[t.Name]; ok {
		return steward.Errorf(steward.EConflict, "exists")
	}
	c := *t
	// What the catalog and lineage would give: the inherited tags.
	for i, col := range c.Columns {
		for _, e := range s.lineage {
			if e.Output == col.Name && !e.Masking && strings.HasSuffix(e.Input, "customers") && e.InputColumn == "email" {
				c.Columns[i].Tags = append(c.Columns[i].Tags, policy.Tag{Name: "PII"})
			}
		}
	}
	s.tables[t.Name] = &c
	s.owners[t.Name] = p.Username
	s.events = append(s.events, "catalog")
	return nil
}

func (s *store) Appended(_ context.Context, _ *steward.Principal, t *sqlengine.Table, _ policy.Classification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "catalog")
	return nil
}

func (s *store) Remove(_ context.Context, t *sqlengine.Table) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tables, t.Name)
	return nil
}

func (s *store) Owns(_ context.Context, p *steward.Principal, name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owners[name] == p.Username, nil
}

func (s *store) RecordWrite(_ context.Context, p *steward.Principal, target *sqlengine.Table, inputs []*sqlengine.Table, cols []sqlengine.ColumnLineage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "lineage")
	s.lineage = cols
	s.inputs = nil
	for _, t := range inputs {
		s.inputs = append(s.inputs, t.Name)
	}
	return nil
}

func (s *store) parts(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.objs {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, ".parquet") {
			n++
		}
	}
	return n
}

func writeFixture(t *testing.T) (*sqlengine.Service, *store, *recorder) {
	t.Helper()
	st := &store{owners: map[string]string{}}
	svc, rec := fixture(t, func(c *sqlengine.Config) {
		st.objs = c.Objects.(memObjects)
		st.tables = c.Tables.(tables)
		c.Lineage, c.Registrar, c.Writer = st, st, st
	})
	return svc, st, rec
}

func exec(t *testing.T, svc *sqlengine.Service, p *steward.Principal, q string) (*sqlengine.Summary, error) {
	t.Helper()
	return svc.Query(context.Background(), sqlengine.Request{Principal: p, SQL: q}, &collect{})
}

func edges(l []sqlengine.ColumnLineage) []string {
	var out []string
	for _, e := range l {
		s := e.Output + "<-" + e.Input + "#" + e.InputColumn
		if e.Masking {
			s += "(masked)"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// TestCreateTableAs: bob copies customers' e-mails joined to orders into
// his area: lineage first, then the catalog, then the bytes; the new
// table answers queries, alice (no PII clearance) is refused, INSERT
// appends.
func TestCreateTableAs(t *testing.T) {
	svc, st, rec := writeFixture(t)
	sum, err := exec(t, svc, bob, `create table bank.bob.contacts as
		SELECT c.email, upper(name) AS n, o.amount FROM bank.crm.customers c JOIN bank.crm.orders o ON c.id = o.id;`)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Command != "SELECT 3" || sum.Written != "bank.bob.contacts" || sum.RowsWritten != 3 {
		t.Errorf("summary %+v", sum)
	}
	if !slices.Equal(st.events, []string{"lineage", "catalog", "put"}) {
		t.Errorf("order %v", st.events)
	}
	want := []string{"amount<-bank.crm.orders#amount", "email<-bank.crm.customers#email", "n<-bank.crm.customers#name"}
	if got := edges(st.lineage); !slices.Equal(got, want) {
		t.Errorf("lineage %v, want %v", got, want)
	}
	if st.parts("bank/bob/contacts/part-") != 1 {
		t.Errorf("objects %v", st.objs)
	}
	tb := st.tables["bank.bob.contacts"]
	if tb == nil || tb.Bucket != "bank" || tb.Prefix != "bob/contacts" || tb.Format != "parquet" || len(tb.Columns) != 3 {
		t.Fatalf("registered %+v", tb)
	}
	c, err := run(t, svc, bob, "SELECT email, n, amount FROM bank.bob.contacts ORDER BY amount")
	if err != nil || len(c.rows) != 3 || !strings.Contains(c.String(), secretEmail) {
		t.Fatalf("read back: %v %v", c, err)
	}
	// The copied e-mail column carries PII; alice has no clearance.
	if _, err := run(t, svc, alice, "SELECT email FROM bank.bob.contacts"); err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("alice reads PII: %v", err)
	}
	if c, err := run(t, svc, alice, "SELECT * FROM bank.bob.contacts"); err != nil || strings.Contains(c.String(), "@") || len(c.rows) != 3 {
		t.Errorf("alice: %v %v", c, err)
	}
	var ev steward.AuditEvent
	for _, e := range rec.evs {
		if e.Action == "sql.query" && e.Details["written"] == "bank.bob.contacts" {
			ev = e
			break
		}
	}
	if ev.Details["rows_written"] != int64(3) {
		t.Errorf("audit %+v", ev)
	}

	// INSERT appends a new file; with a column list the rest is NULL.
	sum, err = exec(t, svc, bob, "INSERT INTO bank.bob.contacts SELECT email, name, amount FROM bank.crm.customers JOIN bank.crm.orders USING (id) WHERE amount > 2")
	if err != nil || sum.Command != "INSERT 0 2" {
		t.Fatalf("insert: %+v %v", sum, err)
	}
	if _, err := exec(t, svc, bob, "INSERT INTO bank.bob.contacts (amount) VALUES (99.5)"); err != nil {
		t.Fatal(err)
	}
	if st.parts("bank/bob/contacts/part-") != 3 {
		t.Errorf("parts: %d", st.parts("bank/bob/contacts/part-"))
	}
	c, err = run(t, svc, bob, "SELECT count(*), count(email), max(amount) FROM bank.bob.contacts")
	if err != nil || c.String() != "[[6 5 99.5]]" {
		t.Errorf("after inserts: %v %v", c, err)
	}
}

// TestMaskedColumnsAreMaskingEdges: alice's copy holds hashed e-mails and
// only EU rows; the e-mail column is a masking edge; SELECT * expands.
func TestMaskedColumnsAreMaskingEdges(t *testing.T) {
	svc, st, _ := writeFixture(t)
	if _, err := exec(t, svc, alice, "CREATE TABLE bank.alice.c AS SELECT * FROM bank.crm.customers"); err != nil {
		t.Fatal(err)
	}
	want := []string{"addr<-bank.crm.customers#addr(masked)", "email<-bank.crm.customers#email(masked)",
		"id<-bank.crm.customers#id", "name<-bank.crm.customers#name", "region<-bank.crm.customers#region"}
	if got := edges(st.lineage); !slices.Equal(got, want) {
		t.Errorf("lineage %v, want %v", got, want)
	}
	c, err := run(t, svc, alice, "SELECT * FROM bank.alice.c")
	if err != nil || len(c.rows) != 2 || strings.Contains(c.String(), "@") || strings.Contains(c.String(), usName) {
		t.Errorf("alice's copy: %v %v", c, err)
	}
}

// TestLineageOverApproximates: where the derivation cannot be followed,
// every output column derives from every visible input column.
func TestLineageOverApproximates(t *testing.T) {
	svc, st, _ := writeFixture(t)
	if _, err := exec(t, svc, bob, "CREATE TABLE bank.bob.m AS SELECT (SELECT max(email) FROM bank.crm.customers) AS m, o.amount FROM bank.crm.orders o"); err != nil {
		t.Fatal(err)
	}
	got := edges(st.lineage)
	if !slices.Contains(got, "m<-bank.crm.customers#email") || !slices.Contains(got, "m<-bank.crm.orders#order_id") || !slices.Contains(got, "amount<-bank.crm.orders#amount") {
		t.Errorf("lineage %v", got)
	}
	if _, err := exec(t, svc, bob, "CREATE TABLE bank.bob.w AS WITH x AS (SELECT email FROM bank.crm.customers) SELECT email AS e FROM x"); err != nil {
		t.Fatal(err)
	}
	if got := edges(st.lineage); !slices.Contains(got, "e<-bank.crm.customers#email") || !slices.Contains(got, "e<-bank.crm.customers#ssn") {
		t.Errorf("CTE lineage %v", got)
	}
}

// TestWriteRefusals: every refused write leaves nothing behind.
func TestWriteRefusals(t *testing.T) {
	svc, st, _ := writeFixture(t)
	if _, err := exec(t, svc, bob, "CREATE TABLE bank.bob.t AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	st.tables["bank.bob.csv"] = &sqlengine.Table{Name: "bank.bob.csv", Bucket: "bank", Prefix: "bob/csv/", Format: "csv", Columns: []sqlengine.Column{{Name: "x", Type: "INTEGER"}}}
	st.owners["bank.bob.csv"] = "bob"
	for _, tc := range []struct {
		p     *steward.Principal
		q     string
		state string
	}{
		{bob, "CREATE TABLE bank.bob.t AS SELECT 2 AS x", sqlengine.StateDuplicateTable},
		{bob, "CREATE TABLE bank.crm.x AS SELECT 1 AS x", sqlengine.StatePrivilege},
		{alice, "INSERT INTO bank.bob.t SELECT 3", sqlengine.StatePrivilege},
		{bob, "INSERT INTO bank.bob.nope SELECT 3", sqlengine.StateUndefinedTable},
		{bob, "INSERT INTO bank.bob.t SELECT 1, 2", sqlengine.StateSyntax},
		{bob, "INSERT INTO bank.bob.t (y) SELECT 1", sqlengine.StateUndefinedCol},
		{bob, "CREATE TABLE bank.bob.u AS SELECT * FROM read_csv('/etc/passwd')", sqlengine.StatePrivilege},
		{bob, "CREATE TABLE bank.bob.u AS SELECT getenv('HOME')", sqlengine.StatePrivilege},
		{bob, "CREATE TABLE bank.bob.u AS SELECT 1; COPY (SELECT 1) TO '/tmp/x.csv'", sqlengine.StatePrivilege},
		{bob, "CREATE TABLE bank.bob.u AS SELECT 1 --\n) TO '/tmp/x.csv' (FORMAT csv); SELECT (1", sqlengine.StateSyntax},
		{bob, "CREATE TABLE bank.bob.u AS SELECT email FROM bank.crm.secrets", sqlengine.StatePrivilege},
		{bob, "CREATE OR REPLACE TABLE bank.bob.t AS SELECT 1", sqlengine.StateFeature},
		{bob, "CREATE TABLE bank.bob.u (a INTEGER)", sqlengine.StateFeature},
		{bob, "INSERT INTO bank.bob.t BY NAME SELECT 1 AS x", sqlengine.StateFeature},
		{bob, "CREATE TABLE bank.bob.../x AS SELECT 1", sqlengine.StateSyntax},
		{bob, `CREATE TABLE bank.bob."a/b" AS SELECT 1`, sqlengine.StateSyntax},
		{bob, "CREATE TABLE x AS SELECT 1", sqlengine.StateSyntax},
		{bob, "INSERT INTO bank.crm.orders SELECT 1, 2, 3.0", sqlengine.StatePrivilege},
		{bob, "INSERT INTO bank.bob.csv SELECT 1", sqlengine.StateFeature},
	} {
		t.Run(tc.q, func(t *testing.T) {
			before := st.parts("")
			_, err := exec(t, svc, tc.p, tc.q)
			if got := sqlengine.SQLState(err); got != tc.state {
				t.Errorf("state %s (%v), want %s", got, err, tc.state)
			}
			if st.parts("") != before {
				t.Errorf("a refused write stored a file")
			}
		})
	}
}

// TestFailedCreateLeavesNothing: when the bytes cannot be stored, the
// catalog entry goes again and the name can be used once more.
func TestFailedCreateLeavesNothing(t *testing.T) {
	svc, st, _ := writeFixture(t)
	st.failPut = true
	if _, err := exec(t, svc, bob, "CREATE TABLE bank.bob.t AS SELECT 1 AS x"); steward.KindOf(err) != steward.EUnavailable {
		t.Fatalf("err %v", err)
	}
	if st.tables["bank.bob.t"] != nil || st.parts("bank/bob/") != 0 {
		t.Fatalf("left behind: %v", st.tables["bank.bob.t"])
	}
	st.failPut = false
	if _, err := exec(t, svc, bob, "CREATE TABLE bank.bob.t AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
}

func TestDeriveJSON(t *testing.T) {
	b := duckdb.New(nil)
	t.Cleanup(func() { b.Close() })
	for _, tc := range []struct {
		q    string
		want string // From | outputs
	}{
		{"SELECT c.email AS e, upper(name) || o.x, count(*) FROM a.b.c c JOIN a.b.o o ON c.id = o.id",
			"a.b.c=c a.b.o=o | [[c email]] [[name] [o x]] []"},
		{"SELECT * FROM a.b.c", "a.b.c= | *"},
		{"SELECT t.* FROM a.b.c t", "a.b.c=t | *t"},
		{"SELECT * FROM a.b.c JOIN a.b.d USING (id)", "nil"},
		{"SELECT x FROM (SELECT 1 AS x)", "nil"},
		{"WITH w AS (SELECT 1 AS x) SELECT x FROM w", "nil"},
		{"SELECT 1 UNION SELECT 2", "nil"},
		{"SELECT (SELECT 1) AS s, a FROM a.b.c", "a.b.c= | ? [[a]]"},
		{"VALUES (1, 2)", " | *"},
	} {
		t.Run(tc.q, func(t *testing.T) {
			d, err := b.Derive(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := renderDerivation(d); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func renderDerivation(d *sqlengine.Derivation) string {
	if d == nil {
		return "nil"
	}
	var from, outs []string
	for _, f := range d.From {
		from = append(from, f.Table.Name()+"="+f.Alias)
	}
	for _, o := range d.Outputs {
		switch {
		case o.Star:
			outs = append(outs, "*"+o.StarOf)
		case o.Unknown:
			outs = append(outs, "?")
		default:
			var b bytes.Buffer
			b.WriteString("[")
			for i, r := range o.Refs {
				if i > 0 {
					b.WriteString(" ")
				}
				b.WriteString("[" + strings.Join(r, " ") + "]")
			}
			b.WriteString("]")
			outs = append(outs, b.String())
		}
	}
	return strings.Join(from, " ") + " | " + strings.Join(outs, " ")
}

// FuzzDeriveJSON: arbitrary parser output never panics.
func FuzzDeriveJSON(f *testing.F) {
	f.Add([]byte(`{"error":false,"statements":[{"node":{"type":"SELECT_NODE","cte_map":{"map":[]},"select_list":[{"class":"COLUMN_REF","column_names":["a"]}],"from_table":{"type":"JOIN","left":{"type":"BASE_TABLE","table_name":"t"},"right":{"type":"BASE_TABLE","table_name":"u"}}}}]}`))
	f.Add([]byte(`{"statements":[{"node":{"type":"SELECT_NODE","select_list":[{"class":"STAR"}],"from_table":null}}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		duckdb.DeriveJSON(b)
	})
}

// BenchmarkCreateTableAs writes a 1,000,000-row Parquet table through
// Steward (stage, sandbox, COPY, lineage, catalog, store) beside the peer:
// the same COPY in a plain DuckDB over the same file.
func BenchmarkCreateTableAs(b *testing.B) {
	dir := b.TempDir()
	src := dir + "/big.parquet"
	raw, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`COPY (SELECT range AS id, 'user' || range || '@example.com' AS email, range % 100 AS amount FROM range(1000000)) TO '` + src + `' (FORMAT parquet)`); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	const q = "SELECT id, upper(email) AS email, amount * 2 AS amount FROM bank.crm.big WHERE amount < 50"
	b.Run("steward", func(b *testing.B) {
		st := &store{owners: map[string]string{}}
		svc, _ := fixture(b, func(c *sqlengine.Config) {
			st.objs = c.Objects.(memObjects)
			st.tables = c.Tables.(tables)
			st.objs["bank/crm/big/part-0.parquet"] = data
			st.tables["bank.crm.big"] = &sqlengine.Table{Name: "bank.crm.big", Bucket: "bank", Prefix: "crm/big", Format: "parquet",
				Columns: []sqlengine.Column{{Name: "id", Type: "BIGINT"}, {Name: "email", Type: "VARCHAR"}, {Name: "amount", Type: "BIGINT"}}}
			c.Lineage, c.Registrar, c.Writer = st, st, st
			c.Decider = allowAll{}
		})
		for i := 0; b.Loop(); i++ {
			sum, err := svc.Query(context.Background(), sqlengine.Request{Principal: bob, SQL: fmt.Sprintf("CREATE TABLE bank.bob.t%d AS %s", i, q)}, &collect{})
			if err != nil || sum.RowsWritten != 500000 {
				b.Fatal(sum, err)
			}
		}
	})
	b.Run("duckdb", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			db, err := sql.Open("duckdb", "")
			if err != nil {
				b.Fatal(err)
			}
			out := fmt.Sprintf("%s/raw%d.parquet", dir, i)
			if _, err := db.Exec("SET threads=1"); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(`COPY (SELECT id, upper(email) AS email, amount * 2 AS amount FROM read_parquet('` + src + `') WHERE amount < 50) TO '` + out + `' (FORMAT parquet)`); err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
}

type allowAll struct{}

func (allowAll) Decide(_ *policy.Request, d *policy.Decision) { d.Reset(); d.Allowed = true }
