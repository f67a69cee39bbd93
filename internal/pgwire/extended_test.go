package pgwire

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
	"github.com/stewardhq/steward/internal/sqlengine/duckdb"
)

// A real sqlengine on DuckDB with one CSV table, every access allowed; the
// recorder keeps each statement the Service was asked to run.

type memObjects map[string][]byte

func (m memObjects) Get(_ context.Context, bucket, key string, _ objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error) {
	b, ok := m[bucket+"/"+key]
	if !ok {
		return nil, objectstore.ObjectInfo{}, steward.Errorf(steward.ENotFound, "no such key")
	}
	return io.NopCloser(strings.NewReader(string(b))), objectstore.ObjectInfo{Key: key, Size: int64(len(b))}, nil
}

func (m memObjects) List(_ context.Context, bucket string, o objectstore.ListOptions) (objectstore.ListResult, error) {
	var r objectstore.ListResult
	for k, v := range m {
		if key, ok := strings.CutPrefix(k, bucket+"/"); ok && strings.HasPrefix(key, o.Prefix) {
			r.Objects = append(r.Objects, objectstore.ObjectInfo{Key: key, Size: int64(len(v))})
		}
	}
	return r, nil
}

type oneTable struct{}

var peopleTable = &sqlengine.Table{Name: "bank.crm.people", Bucket: "bank", Prefix: "crm/people", Format: "csv",
	Columns: []sqlengine.Column{{Name: "id", Type: "INTEGER"}, {Name: "name", Type: "VARCHAR"}, {Name: "born", Type: "DATE"}}}

func (oneTable) Table(_ context.Context, name string) (*sqlengine.Table, error) {
	if name == peopleTable.Name {
		return peopleTable, nil
	}
	return nil, steward.Errorf(steward.ENotFound, "no table %s", name)
}

func (oneTable) Tables(context.Context, *steward.Principal) ([]*sqlengine.Table, error) {
	return []*sqlengine.Table{peopleTable}, nil
}

type allowAll struct{}

func (allowAll) Decide(_ *policy.Request, d *policy.Decision) { d.Reset(); d.Allowed = true }

type nopAuditor struct{}

func (nopAuditor) Record(context.Context, steward.AuditEvent) error { return nil }

type recording struct {
	Querier
	mu  sync.Mutex
	sql []string
}

func (r *recording) Query(ctx context.Context, req sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error) {
	r.mu.Lock()
	r.sql = append(r.sql, req.SQL)
	r.mu.Unlock()
	return r.Querier.Query(ctx, req, sink)
}

func (r *recording) saw(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.sql {
		if strings.Contains(q, s) {
			return true
		}
	}
	return false
}

func startEngine(t *testing.T) (string, *recording) {
	t.Helper()
	b := duckdb.New(nil)
	t.Cleanup(func() { b.Close() })
	var csv strings.Builder
	csv.WriteString("id,name,born\n")
	for i := 1; i <= 300; i++ {
		fmt.Fprintf(&csv, "%d,person %d,2000-01-%02d\n", i, i, i%28+1)
	}
	svc := sqlengine.New(sqlengine.Config{Tables: oneTable{}, Decider: allowAll{}, Backend: b, Auditor: nopAuditor{}, TempDir: t.TempDir(),
		Objects: memObjects{"bank/crm/people/p.csv": []byte(csv.String())},
		Limits:  sqlengine.Limits{Timeout: time.Minute, Threads: 1, Memory: "256MB"}})
	rec := &recording{Querier: svc}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := NewServer(rec, verifier(), nil)
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), rec
}

func connString(addr, user, pw string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=steward sslmode=disable", host, port, user, pw)
}

func connectMode(t *testing.T, addr string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(connString(addr, "alice", "tok-alice"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestExtendedPgx runs parameterized queries of many types through pgx's
// extended-protocol modes against real DuckDB.
func TestExtendedPgx(t *testing.T) {
	addr, rec := startEngine(t)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			c := connectMode(t, addr, mode)
			t.Run("typed parameters", func(t *testing.T) {
				var (
					i    int32
					i8   int64
					f    float64
					s    string
					b    bool
					d    time.Time
					ts   time.Time
					by   []byte
					num  pgtype.Numeric
					null *string
				)
				when := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
				err := c.QueryRow(ctx, "SELECT $1::int + 1, $2::bigint * 2, $3::double, $4::varchar, $5::boolean, $6::date, $7::timestamp, $8::bytea, $9::numeric, $10::varchar",
					int32(41), int64(1<<40), 2.5, "it's", true, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), when, []byte{0, 1, '\'', 255}, "12.345", nil).
					Scan(&i, &i8, &f, &s, &b, &d, &ts, &by, &num, &null)
				if err != nil {
					t.Fatal(err)
				}
				nf, _ := num.Float64Value()
				if i != 42 || i8 != 1<<41 || f != 2.5 || s != "it's" || !b || d.Format(time.DateOnly) != "2024-02-29" ||
					!ts.Equal(when) || string(by) != "\x00\x01'\xff" || nf.Float64 != 12.345 || null != nil {
					t.Errorf("got %v %v %v %q %v %v %v %q %v %v", i, i8, f, s, b, d, ts, by, nf, null)
				}
			})
			t.Run("untyped parameters compare with columns", func(t *testing.T) {
				rows, err := c.Query(ctx, "SELECT id, name, born FROM bank.crm.people WHERE id > $1 AND name <> $2 ORDER BY id", 297, "x")
				if err != nil {
					t.Fatal(err)
				}
				var ids []int32
				for rows.Next() {
					var id int32
					var name string
					var born time.Time
					if err := rows.Scan(&id, &name, &born); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, id)
				}
				if rows.Err() != nil || fmt.Sprint(ids) != "[298 299 300]" {
					t.Fatalf("got %v %v", ids, rows.Err())
				}
			})
			t.Run("injection stays a value", func(t *testing.T) {
				var n int64
				if err := c.QueryRow(ctx, "SELECT count(*) FROM bank.crm.people WHERE name = $1", "x' OR '1'='1").Scan(&n); err != nil || n != 0 {
					t.Fatalf("got %d %v", n, err)
				}
			})
			t.Run("error then recovery", func(t *testing.T) {
				_, err := c.Exec(ctx, "SELECT * FROM bank.crm.nothere WHERE id = $1", 1)
				if pgCode(err) != "42P01" {
					t.Fatalf("got %v", err)
				}
				var one int32
				if err := c.QueryRow(ctx, "SELECT $1::int", 1).Scan(&one); err != nil || one != 1 {
					t.Fatalf("after error: %d %v", one, err)
				}
			})
			t.Run("many rows", func(t *testing.T) {
				rows, err := c.Query(ctx, "SELECT id FROM bank.crm.people")
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for rows.Next() {
					n++
				}
				if rows.Err() != nil || n != 300 {
					t.Fatalf("got %d rows, %v", n, rows.Err())
				}
			})
		})
	}
	if !rec.saw("CAST(41 AS INTEGER)") || !rec.saw(`'x'' OR ''1''=''1'`) {
		t.Errorf("the Service did not see the statement with its parameters rendered: %q", rec.sql)
	}
}

// TestSessionCommands: what drivers send around queries is answered
// without DuckDB.
func TestSessionCommands(t *testing.T) {
	addr, rec := startEngine(t)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			c := connectMode(t, addr, mode)
			for _, tc := range []struct{ q, want string }{
				{"SELECT version()", "PostgreSQL 16.0"},
				{"select current_setting('DateStyle')", "ISO, MDY"},
				{"SHOW search_path", `"$user", public`},
				{"SELECT current_user", "alice"},
			} {
				var got string
				if err := c.QueryRow(ctx, tc.q).Scan(&got); err != nil || !strings.Contains(got, tc.want) {
					t.Errorf("%s: %q %v", tc.q, got, err)
				}
			}
			if _, err := c.Exec(ctx, "SET application_name = 'report'"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "SET TIME ZONE 'Europe/Amsterdam'"); err != nil {
				t.Fatal(err)
			}
			var app, tz string
			if err := c.QueryRow(ctx, "SELECT current_setting('application_name'), current_setting('TimeZone')").Scan(&app, &tz); err != nil || app != "report" || tz != "Europe/Amsterdam" {
				t.Errorf("got %q %q %v", app, tz, err)
			}
			if _, err := c.Exec(ctx, "SET client_encoding = 'LATIN1'"); pgCode(err) != "22023" {
				t.Errorf("non-UTF8 client_encoding: %v", err)
			}
			if _, err := c.Exec(ctx, "SET TIME ZONE 'UTC'"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			if c.PgConn().TxStatus() != 'T' {
				t.Errorf("status %c after BEGIN", c.PgConn().TxStatus())
			}
			if _, err := c.Exec(ctx, "ROLLBACK"); err != nil || c.PgConn().TxStatus() != 'I' {
				t.Errorf("rollback: %v %c", err, c.PgConn().TxStatus())
			}
			for _, q := range []string{"SET enable_external_access = true", "SET memory_limit = '100GB'", "SET lock_configuration TO false", "RESET memory_limit"} {
				if _, err := c.Exec(ctx, q); err == nil {
					t.Errorf("%s: accepted", q)
				}
			}
			// The system catalogs hold what alice may discover (catalog_test.go).
			var rel string
			if err := c.QueryRow(ctx, "SELECT relname FROM pg_catalog.pg_class").Scan(&rel); err != nil || rel != "people" {
				t.Errorf("pg_catalog: %q %v", rel, err)
			}
		})
	}
	for _, q := range []string{"version()", "SET application_name", "SET TIME ZONE", "SHOW search_path", "current_setting", "BEGIN"} {
		if rec.saw(q) {
			t.Errorf("%q reached the Service: %q", q, rec.sql)
		}
	}
}

// TestDatabaseSQL goes through database/sql and pgx's stdlib driver.
func TestDatabaseSQL(t *testing.T) {
	addr, _ := startEngine(t)
	db, err := sql.Open("pgx", connString(addr, "alice", "tok-alice"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var name string
	var born time.Time
	if err := db.QueryRow("SELECT name, born FROM bank.crm.people WHERE id = $1", 28).Scan(&name, &born); err != nil || name != "person 28" || born.Day() != 1 {
		t.Fatalf("got %q %v %v", name, born, err)
	}
	st, err := db.Prepare("SELECT count(*) FROM bank.crm.people WHERE id <= $1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, n := range []int64{1, 10, 100} {
		var got int64
		if err := st.QueryRow(n).Scan(&got); err != nil || got != n {
			t.Errorf("count <= %d: %d %v", n, got, err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := tx.QueryRow("SELECT $1::text || 'b'", "a").Scan(&s); err != nil || s != "ab" {
		t.Errorf("in tx: %q %v", s, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestPortalSuspended: Execute with a row limit returns the rows in
// batches with PortalSuspended between them.
func TestPortalSuspended(t *testing.T) {
	addr, _ := startEngine(t)
	c := connectMode(t, addr, pgx.QueryExecModeCacheStatement)
	pc := c.PgConn()
	ctx := context.Background()
	sd, err := pc.Prepare(ctx, "", "SELECT id FROM bank.crm.people WHERE id <= $1 ORDER BY id", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.ParamOIDs) != 1 || len(sd.Fields) != 1 || sd.Fields[0].DataTypeOID != oidInt8 {
		t.Fatalf("description %+v", sd)
	}
	// pgconn has no row-limited Execute; drive the protocol by hand.
	fe := pc.Frontend()
	fe.SendBind(&pgproto3.Bind{DestinationPortal: "p", Parameters: [][]byte{[]byte("5")}})
	fe.SendExecute(&pgproto3.Execute{Portal: "p", MaxRows: 2})
	fe.SendExecute(&pgproto3.Execute{Portal: "p", MaxRows: 2})
	fe.SendExecute(&pgproto3.Execute{Portal: "p", MaxRows: 2})
	fe.SendSync(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			got = append(got, string(m.Values[0]))
		case *pgproto3.PortalSuspended:
			got = append(got, "|")
		case *pgproto3.CommandComplete:
			got = append(got, string(m.CommandTag))
		case *pgproto3.ErrorResponse:
			t.Fatal(m.Message)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if s := strings.Join(got, " "); s != "1 2 | 3 4 | 5 SELECT 1" {
		t.Fatalf("got %s", s)
	}
}

// TestPsqlExtended drives psql's \bind (the extended protocol; psql 16
// and later) and \d (catalog queries, refused with 0A000) against real
// DuckDB.
func TestPsqlExtended(t *testing.T) {
	if _, err := os.Stat("/usr/bin/psql"); err != nil {
		t.Fatal("psql is not installed (Debian postgresql-client; scripts/test-deps.sh installs it)")
	}
	ver, err := exec.Command("/usr/bin/psql", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	var major int
	if f := strings.Fields(string(ver)); len(f) >= 3 {
		fmt.Sscanf(f[2], "%d", &major)
	}
	addr, _ := startEngine(t)
	host, port, _ := net.SplitHostPort(addr)
	script := "\\d\nSHOW TimeZone;\nSELECT count(*) FROM bank.crm.people WHERE name LIKE 'person 1%';\n"
	wants := []string{"bank.crm|people|table|steward\n", "UTC\n", "111\n"}
	if major >= 16 {
		script += "SELECT $1::int + 1 AS answer \\bind 41 \\g\nSELECT name FROM bank.crm.people WHERE id = $1 \\bind 7 \\g\n"
		wants = append(wants, "42\n", "person 7\n")
	} else {
		t.Logf("psql %d has no \\bind: the extended protocol is covered by the pgx tests only", major)
	}
	cmd := exec.Command("/usr/bin/psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", "alice", "-d", "steward", "-f", "-")
	cmd.Env = append(os.Environ(), "PGPASSWORD=tok-alice", "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	for _, want := range wants {
		if !strings.Contains(string(out), want) {
			t.Errorf("psql output lacks %q (err %v):\n%s", want, err, out)
		}
	}
}

// TestPsycopg runs Python's psycopg 3 (extended protocol, server-side
// parameters, text and binary results) and psycopg2 (simple protocol,
// transactions) when Debian's python3-psycopg / python3-psycopg2 are
// installed (scripts/test-deps.sh installs them).
func TestPsycopg(t *testing.T) {
	t.Parallel()
	addr, _ := startEngine(t)
	host, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct{ module, script, want string }{
		{"psycopg", `
import datetime, psycopg
conn = psycopg.connect(host=HOST, port=PORT, user='alice', password='tok-alice', dbname='steward', sslmode='disable')
cur = conn.cursor()
cur.execute("SELECT name FROM bank.crm.people WHERE id = %s", (7,))
print(cur.fetchone()[0])
cur.execute("SELECT %s::int + 1, %s::text, %s::date", (41, "it's", datetime.date(2024, 2, 29)))
print(cur.fetchone())
cur = conn.cursor(binary=True)
cur.execute("SELECT id, born FROM bank.crm.people WHERE id <= %s AND name <> %s ORDER BY id", (2, "x"))
print(cur.fetchall())
conn.commit()
try:
    cur.execute("SELECT * FROM bank.crm.nothere")
except psycopg.errors.UndefinedTable as e:
    print("undefined table")
conn.rollback()
cur.execute("SELECT count(*) FROM bank.crm.people")
print(cur.fetchone()[0])
`, "person 7\n(42, \"it's\", datetime.date(2024, 2, 29))\n[(1, datetime.date(2000, 1, 2)), (2, datetime.date(2000, 1, 3))]\nundefined table\n300\n"},
		{"psycopg2", `
import psycopg2
conn = psycopg2.connect(host=HOST, port=PORT, user='alice', password='tok-alice', dbname='steward', sslmode='disable')
cur = conn.cursor()
cur.execute("SELECT name FROM bank.crm.people WHERE id = %s", (8,))
print(cur.fetchone()[0])
conn.commit()
`, "person 8\n"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			python := "/usr/bin/python3" // Debian's, which the python3-* packages serve
			if _, err := os.Stat(python); err != nil {
				python = "python3"
			}
			if exec.Command(python, "-c", "import "+tc.module).Run() != nil {
				t.Fatalf("python3 module %s is not installed: run scripts/test-deps.sh (apt-get install python3-%s)", tc.module, tc.module)
			}
			script := strings.NewReplacer("HOST", "'"+host+"'", "PORT", port).Replace(tc.script)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, python, "-c", script).CombinedOutput()
			if err != nil || string(out) != tc.want {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestJDBC runs pgjdbc (DBeaver's and most BI tools' driver) when Java and
// Debian's libpostgresql-jdbc-java (installed by scripts/test-deps.sh).
func TestJDBC(t *testing.T) {
	t.Parallel()
	const jar = "/usr/share/java/postgresql.jar"
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal("java is not installed: run scripts/test-deps.sh (openjdk-17-jdk-headless)")
	}
	if _, err := os.Stat(jar); err != nil {
		t.Fatal("pgjdbc is not installed: run scripts/test-deps.sh (libpostgresql-jdbc-java)")
	}
	addr, _ := startEngine(t)
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, java, "-cp", jar, "testdata/JdbcCheck.java", host, port).CombinedOutput()
	want := "16.0 (Steward)\n7|person 7|2000-01-08\n300\n56\n42P01\nbank.crm.people\n"
	if err != nil || string(out) != want {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestAsyncpg runs asyncpg (which types parameters from the server's
// ParameterDescription) (Debian's python3-asyncpg, installed by scripts/test-deps.sh).
func TestAsyncpg(t *testing.T) {
	t.Parallel()
	if exec.Command("/usr/bin/python3", "-c", "import asyncpg").Run() != nil {
		t.Fatal("python3-asyncpg is not installed: run scripts/test-deps.sh")
	}
	addr, _ := startEngine(t)
	host, port, _ := net.SplitHostPort(addr)
	script := strings.NewReplacer("HOST", host, "PORT", port).Replace(`
import asyncio, asyncpg, datetime
async def main():
    c = await asyncpg.connect(host='HOST', port=PORT, user='alice', password='tok-alice', database='steward', ssl=False)
    print(await c.fetchval("SELECT name FROM bank.crm.people WHERE id = $1::int", 9))
    print(await c.fetchval("SELECT count(*) FROM bank.crm.people WHERE born = $1::date", datetime.date(2000, 1, 2)))
    rows = await c.fetch("SELECT id, born FROM bank.crm.people WHERE id <= $1::bigint ORDER BY id", 2)
    print([(r['id'], r['born']) for r in rows])
    print(await c.fetchval("SELECT $1::text || 'x'", 'a'))
    try:
        await c.fetchval("SELECT $1 || 'x'", 'a')  # an untyped parameter: asyncpg asks pg_type
    except asyncpg.exceptions.FeatureNotSupportedError:
        print("untyped parameter refused")
    await c.close()
asyncio.run(main())
`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", script).CombinedOutput()
	want := "person 9\n11\n[(1, datetime.date(2000, 1, 2)), (2, datetime.date(2000, 1, 3))]\nax\nuntyped parameter refused\n"
	if err != nil || string(out) != want {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestErrorBeforeFlush: an error answered to messages that end with Flush
// (not Sync) reaches the client at once.
func TestErrorBeforeFlush(t *testing.T) {
	addr := start(t)
	c := connectMode(t, addr, pgx.QueryExecModeCacheStatement)
	fe := c.PgConn().Frontend()
	fe.SendParse(&pgproto3.Parse{Name: "s", Query: "select 1"})
	fe.SendBind(&pgproto3.Bind{PreparedStatement: "nope"})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.ParseComplete:
			got = append(got, "parse")
		case *pgproto3.ErrorResponse:
			got = append(got, m.Code)
		}
	}
	if strings.Join(got, " ") != "parse 26000" {
		t.Fatalf("got %v", got)
	}
}

// TestDescribeCached: a session describes the same statement text once.
func TestDescribeCached(t *testing.T) {
	addr, rec := startEngine(t)
	c := connectMode(t, addr, pgx.QueryExecModeDescribeExec)
	for i := range 3 {
		var n int64
		if err := c.QueryRow(context.Background(), "SELECT count(*) FROM bank.crm.people WHERE id <= $1::int", i+1).Scan(&n); err != nil || n != int64(i+1) {
			t.Fatalf("got %d %v", n, err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	described := 0
	for _, q := range rec.sql {
		if strings.Contains(q, "steward_describe") {
			described++
		}
	}
	if described != 1 || len(rec.sql) != 4 {
		t.Fatalf("%d describes among %q", described, rec.sql)
	}
}

// TestMultiStatementQuery: a simple query with several statements runs
// each until one fails.
func TestMultiStatementQuery(t *testing.T) {
	addr, _ := startEngine(t)
	c := connectMode(t, addr, pgx.QueryExecModeSimpleProtocol)
	ctx := context.Background()
	res, err := c.PgConn().Exec(ctx, "SET application_name = 'x;y'; SELECT count(*) FROM bank.crm.people WHERE name <> ';'; SHOW application_name; -- done").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, r.CommandTag.String())
		for _, row := range r.Rows {
			got = append(got, string(row[0]))
		}
	}
	if s := strings.Join(got, " "); s != "SET SELECT 1 300 SHOW x;y" {
		t.Fatalf("got %q", s)
	}
	_, err = c.PgConn().Exec(ctx, "SELECT 1; SELECT * FROM bank.crm.nothere; SET application_name = 'z'").ReadAll()
	if pgCode(err) != "42P01" {
		t.Fatalf("got %v", err)
	}
	var app string
	if err := c.QueryRow(ctx, "SHOW application_name").Scan(&app); err != nil || app != "x;y" {
		t.Fatalf("the statement after the failed one ran: %q %v", app, err)
	}
}

// TestParameterNotInColumnName: an expression column over a parameter is
// named ?column?, not after the parameter's value.
func TestParameterNotInColumnName(t *testing.T) {
	addr, _ := startEngine(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		c := connectMode(t, addr, mode)
		rows, err := c.Query(context.Background(), "SELECT $1::int + 1, name FROM bank.crm.people WHERE id = $2", 41, 1)
		if err != nil {
			t.Fatal(err)
		}
		fs := rows.FieldDescriptions()
		rows.Close()
		if len(fs) != 2 || fs[0].Name != "?column?" || fs[1].Name != "name" {
			t.Fatalf("%v: fields %+v", mode, fs)
		}
	}
}
