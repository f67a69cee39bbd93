// Command sqlbench measures Steward's governed SQL beside raw DuckDB on the
// same Parquet files, in one run.
//
// It generates the demo bank's transactions shape (transactions scaled to
// -rows rows in twelve monthly files, and their customers) deterministically
// with DuckDB, stores the files in an embedded Steward object store
// (objectstore/fs) under -dir, and describes them to a sqlengine.Service as
// the tables bench.pay.transactions and bench.retail.customers. It then
// runs scan, filter, aggregate, join and export (many result rows) queries:
//
//   - through the sqlengine Service in process, with the policy engine
//     deciding every table and column and the audit trail on (fsync'd, as
//     in production);
//   - through Steward's PostgreSQL wire server with pgx (simple protocol);
//   - through Steward's REST endpoint POST /api/v1/query (the huma API
//     behind the identity middleware, as `steward serve` mounts it) on a
//     loopback port, read by net/http and decoded to the end: JSON lines by
//     default (each row into Go values, the closing row count checked),
//     -rest csv or arrow for the other formats, -rest off to skip;
//   - through raw DuckDB (duckdb-go, database/sql) over the same files (the
//     store's own data files), with the same threads and memory limit.
//
// A second user, whose group sees customers' e-mail addresses masked
// (hash) and transactions without the ATM channel (a row filter), runs the
// aggregate and join queries again; raw DuckDB runs them with the same mask
// and filter written into the query.
//
// Each query runs -reps times per path, the paths interleaved in rotating
// order, after one warm-up round; the figures are the medians of the wall
// time (until the client has read the result) and of the process CPU time
// each run took (for Steward's paths including the background work the
// query leaves: closing its DuckDB instance and opening the pool's
// replacement), and raw DuckDB's figure
// divided by each Steward path's (its relative throughput: 1.00 is parity). The result is a Markdown table on
// standard output; progress goes to standard error.
//
// Usage:
//
//	sqlbench [-rows 10000000] [-dir DIR] [-reps 5] [-threads 2] [-memory 4GB] [-pg=true] [-rest jsonl] [-queries scan,export,...]
//
// -queries selects queries by short name: scan, filter, aggregate, join,
// join+email, export, aggregate-masked, join-masked, join+email-masked.
//
// With -dir, the generated store is kept and reused by the next run with
// the same -rows. At the scale, -rows 100000000 writes 1.2 GB of
// Parquet (about twice that on disk while the files are moved into the
// store) using about 11 minutes of CPU (49 minutes on a loaded 2-core
// machine, 150 MB resident); keep it for later runs, for example with
// -dir /tmp/sqlb100m. A full run at that scale takes long: -queries and
// -reps 1 keep it short.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver
	"github.com/jackc/pgx/v5"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/fs"
	"github.com/stewardhq/steward/internal/pgwire"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
	sqlduckdb "github.com/stewardhq/steward/internal/sqlengine/duckdb"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sqlbench:", err)
		os.Exit(1)
	}
}

type options struct {
	rows    int64
	dir     string
	reps    int
	threads int
	memory  string
	pg      bool
	inproc  bool
	rest    string
	only    string
	queries string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fl := flag.NewFlagSet("sqlbench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Int64Var(&o.rows, "rows", 10_000_000, "transactions rows to generate")
	fl.StringVar(&o.dir, "dir", "", "directory for the store (kept and reused); a temporary one if empty")
	fl.IntVar(&o.reps, "reps", 5, "timed runs of each query on each path")
	fl.IntVar(&o.threads, "threads", 2, "DuckDB threads, for Steward and raw DuckDB alike")
	fl.StringVar(&o.memory, "memory", "4GB", "DuckDB memory limit, for Steward and raw DuckDB alike")
	fl.BoolVar(&o.pg, "pg", true, "also run through the PostgreSQL wire server")
	fl.BoolVar(&o.inproc, "inprocess", true, "time Steward's SQL service called in process (when false it still runs once per query, in the warm-up round, to check its result against raw DuckDB's value for value)")
	fl.StringVar(&o.rest, "rest", "jsonl", "also run through the REST endpoint POST /api/v1/query with this result format (jsonl, csv or arrow); off to skip")
	fl.StringVar(&o.only, "only", "", "run only the queries whose name contains this")
	fl.StringVar(&o.queries, "queries", "", "comma-separated short names of the queries to run (all if empty): "+strings.Join(shortNames(), ","))
	if err := fl.Parse(args); err != nil {
		return err
	}
	if _, err := selectQueries(o); err != nil {
		return err
	}
	if o.rows < 1000 || o.reps < 1 || o.threads < 1 {
		return errors.New("-rows must be at least 1000, -reps and -threads at least 1")
	}
	if !slices.Contains([]string{"jsonl", "csv", "arrow", "off"}, o.rest) {
		return fmt.Errorf("-rest must be jsonl, csv, arrow or off, not %q", o.rest)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.dir == "" {
		d, err := os.MkdirTemp("", "sqlbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	b, err := setup(ctx, o, log, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	return b.measure(ctx, o, stdout, stderr)
}

// bench holds the three paths.
type bench struct {
	store   *fs.Store
	auditor *audit.Log
	backend *sqlduckdb.Backend
	svc     *sqlengine.Service
	raw     *sql.DB
	pg      map[string]*pgx.Conn // by user
	rest    *restClient
	closers []func()
}

func (b *bench) close() {
	for _, c := range slices.Backward(b.closers) {
		c()
	}
}

const bucket = "bench"

// tables are the bench's catalog: the demo bank's transactions and
// customers.
func tables() map[string]*sqlengine.Table {
	col := func(n, t string) sqlengine.Column { return sqlengine.Column{Name: n, Type: t} }
	return map[string]*sqlengine.Table{
		"bench.pay.transactions": {Name: "bench.pay.transactions", Bucket: bucket, Prefix: "pay/transactions", Format: "parquet",
			Columns: []sqlengine.Column{col("tx_id", "BIGINT"), col("account_id", "BIGINT"), col("customer_id", "BIGINT"),
				col("booked_at", "TIMESTAMP"), col("amount_eur", "DECIMAL(10,2)"), col("channel", "VARCHAR"),
				col("category", "VARCHAR"), col("counterparty_country", "VARCHAR")}},
		"bench.retail.customers": {Name: "bench.retail.customers", Bucket: bucket, Prefix: "retail/customers", Format: "parquet",
			Columns: []sqlengine.Column{col("customer_id", "BIGINT"), col("name", "VARCHAR"), col("email", "VARCHAR"),
				col("date_of_birth", "DATE"), col("country_code", "VARCHAR")}},
	}
}

type tableSource map[string]*sqlengine.Table

func (s tableSource) Table(_ context.Context, name string) (*sqlengine.Table, error) {
	if t, ok := s[name]; ok {
		return t, nil
	}
	return nil, steward.Errorf(steward.ENotFound, "no table %s", name)
}

func (s tableSource) Tables(context.Context, *steward.Principal) ([]*sqlengine.Table, error) {
	var ts []*sqlengine.Table
	for _, t := range s {
		ts = append(ts, t)
	}
	return ts, nil
}

// The policies: analysts select everything; the restricted group sees
// e-mail addresses hashed and no ATM transactions.
const policies = `
policies:
  - id: analysts
    resources:
      tables: ["bench.**"]
      columns: ["*"]
    allow:
      - groups: [analysts, restricted]
        accesses: [select]
  - id: mask-email
    kind: masking
    resources:
      tables: ["bench.retail.customers"]
      columns: [email]
    masks:
      - groups: [restricted]
        type: hash
  - id: no-atm
    kind: rowfilter
    resources:
      tables: ["bench.pay.transactions"]
    row_filters:
      - groups: [restricted]
        filter: "channel <> 'atm'"
`

var principals = map[string]*steward.Principal{
	"alice": {Username: "alice", Kind: steward.KindUser, Groups: []string{"analysts"}},
	"rita":  {Username: "rita", Kind: steward.KindUser, Groups: []string{"restricted"}},
}

func setup(ctx context.Context, o options, log *slog.Logger, stderr io.Writer) (*bench, error) {
	b := &bench{pg: map[string]*pgx.Conn{}}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	st, err := fs.Open(filepath.Join(o.dir, "objects"), log)
	if err != nil {
		return nil, err
	}
	b.store = st
	b.closers = append(b.closers, func() { st.Close() })
	if err := generate(ctx, st, o, stderr); err != nil {
		return nil, err
	}
	pols, err := policy.ParseFile("bench.yaml", []byte(policies))
	if err != nil {
		return nil, err
	}
	eng, err := policy.Compile(pols, policy.Options{})
	if err != nil {
		return nil, err
	}
	aud, err := audit.Open(filepath.Join(o.dir, "audit"), audit.Options{}, log)
	if err != nil {
		return nil, err
	}
	b.auditor = aud
	b.closers = append(b.closers, func() { aud.Close() })
	tmp := filepath.Join(o.dir, "tmp")
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	b.backend = sqlduckdb.New(log)
	b.closers = append(b.closers, func() { b.backend.Close() })
	b.svc = sqlengine.New(sqlengine.Config{
		Tables: tableSource(tables()), Decider: eng, Objects: st, Backend: b.backend, Auditor: aud, Logger: log,
		TempDir: tmp,
		Limits:  sqlengine.Limits{Timeout: 30 * time.Minute, MaxRows: 1 << 40, Memory: o.memory, Threads: o.threads},
	})
	verify := identity.TokenVerifierFunc(func(_ context.Context, tok string) (*steward.Principal, error) {
		if p, ok := principals[strings.TrimPrefix(tok, "token-")]; ok {
			return p, nil
		}
		return nil, steward.Errorf(steward.EUnauthenticated, "bad token")
	})
	if o.rest != "off" {
		rc, stop, err := serveREST(b.svc, aud, verify, o.rest, log)
		if err != nil {
			return nil, err
		}
		b.rest = rc
		b.closers = append(b.closers, stop)
	}
	if o.pg {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv := pgwire.NewServer(b.svc, verify, log)
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { srv.Serve(sctx, ln); close(done) }()
		b.closers = append(b.closers, func() { cancel(); <-done })
		for u := range principals {
			cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s:token-%s@%s/steward?sslmode=disable", u, u, ln.Addr()))
			if err != nil {
				return nil, err
			}
			cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				return nil, fmt.Errorf("pgwire connect: %w", err)
			}
			b.pg[u] = c
			b.closers = append(b.closers, func() { c.Close(context.Background()) })
		}
	}
	raw, err := openRaw(ctx, st, o)
	if err != nil {
		return nil, err
	}
	b.raw = raw
	b.closers = append(b.closers, func() { raw.Close() })
	ok = true
	return b, nil
}

// openRaw opens a plain DuckDB with views over the store's own data files
// (the same inodes Steward hard-links into each query's directory).
func openRaw(ctx context.Context, st *fs.Store, o options) (*sql.DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	stmts := []string{fmt.Sprintf("SET threads=%d", o.threads), "SET memory_limit=" + sqlengine.QuoteString(o.memory),
		"ATTACH ':memory:' AS bench", "CREATE SCHEMA bench.pay", "CREATE SCHEMA bench.retail"}
	for name, t := range tables() {
		res, err := st.List(ctx, bucket, objectstore.ListOptions{Prefix: t.Prefix + "/"})
		if err != nil {
			db.Close()
			return nil, err
		}
		var files []string
		for _, ob := range res.Objects {
			p, _, err := st.LocalFile(ctx, bucket, ob.Key)
			if err == nil && p == "" {
				// A small object the store keeps in its index: raw
				// DuckDB reads a copy.
				p, err = copyOut(ctx, st, ob.Key, filepath.Join(o.dir, "raw"))
			}
			if err != nil {
				db.Close()
				return nil, err
			}
			files = append(files, sqlengine.QuoteString(p))
		}
		// The reader options Steward's views use: union_by_name changes
		// DuckDB's plan for multi-file scans (faster joins here), so the
		// peer gets it too and the comparison measures Steward alone.
		stmts = append(stmts, "CREATE VIEW "+name+" AS SELECT * FROM read_parquet(["+strings.Join(files, ", ")+"], union_by_name=true, hive_partitioning=false)")
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	return db, nil
}

// copyOut writes bucket/key to a file under dir and returns its path.
func copyOut(ctx context.Context, st *fs.Store, key, dir string) (string, error) {
	rc, _, err := st.Get(ctx, bucket, key, objectstore.GetOptions{})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	p := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return "", err
	}
	return p, f.Close()
}

// generate writes the bench data into the store unless a previous run
// with the same row count did.
func generate(ctx context.Context, st *fs.Store, o options, stderr io.Writer) error {
	marker := fmt.Sprintf("generated/rows=%d", o.rows)
	if _, err := st.Head(ctx, bucket, marker, objectstore.GetOptions{}); err == nil {
		fmt.Fprintf(stderr, "reusing the generated data in %s\n", o.dir)
		return nil
	}
	if err := st.CreateBucket(ctx, bucket); err != nil && steward.KindOf(err) != steward.EConflict {
		return err
	}
	// Remove what another row count left.
	for {
		res, err := st.List(ctx, bucket, objectstore.ListOptions{})
		if err != nil {
			return err
		}
		for _, ob := range res.Objects {
			if _, err := st.Delete(ctx, bucket, ob.Key, ""); err != nil {
				return err
			}
		}
		if !res.IsTruncated {
			break
		}
	}
	gen, err := os.MkdirTemp(o.dir, "gen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gen)
	for _, d := range []string{"retail/customers", "pay/transactions"} {
		if err := os.MkdirAll(filepath.Join(gen, d), 0o700); err != nil {
			return err
		}
	}
	start := time.Now()
	fmt.Fprintf(stderr, "generating %d transactions...\n", o.rows)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range genSQL(gen, o.rows) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%.60s...: %w", q, err)
		}
		if strings.HasPrefix(q, "COPY") {
			fmt.Fprintf(stderr, "  %s: wrote %s\n", time.Since(start).Round(time.Second), q[strings.LastIndex(q, "/")+1:strings.LastIndex(q, "'")])
		}
	}
	err = filepath.WalkDir(gen, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(gen, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		_, err = st.Put(ctx, bucket, filepath.ToSlash(rel), f, fi.Size(), objectstore.PutOptions{ContentType: "application/vnd.apache.parquet"})
		return err
	})
	if err != nil {
		return err
	}
	if _, err := st.Put(ctx, bucket, marker, strings.NewReader(""), 0, objectstore.PutOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "generated in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// genSQL is the DuckDB script that writes the tables under dir, as the
// demo bank does: u(i, salt) is a uniform number in [0, 1) drawn from the
// row number and a salt, so every run writes the same data.
func genSQL(dir string, rows int64) []string {
	out := func(name string) string { return sqlengine.QuoteString(filepath.Join(dir, filepath.FromSlash(name))) }
	const pq = "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
	customers := min(max(rows/50, 200), 200_000)
	accounts := customers * 3 / 2
	qs := []string{
		"SET threads=2",
		"SET preserve_insertion_order=true",
		`CREATE MACRO u(i, salt) AS (hash(i, salt) % 1000000)::DOUBLE / 1000000`,
		`CREATE MACRO pick(xs, i, salt) AS xs[1 + (hash(i, salt) % len(xs))::INTEGER]`,
		fmt.Sprintf(`COPY (SELECT i AS customer_id,
			pick(['Alice','Peter','Marie','Jan','Sophie','Lucas','Emma','Thomas'], i, 'first') || ' ' || pick(['Martin','Peeters','Janssens','Dubois','Jacobs','Maes'], i, 'last') AS name,
			'customer' || i || '@mail.example' AS email,
			DATE '1940-01-01' + (hash(i, 'dob') %% 23000)::INTEGER AS date_of_birth,
			pick(['BE','BE','BE','BE','BE','NL','NL','FR','DE','LU'], i, 'country') AS country_code
			FROM range(1, %d + 1) r(i)) TO %s %s`, customers, out("retail/customers/customers.parquet"), pq),
	}
	per := rows / 12
	for m := int64(1); m <= 12; m++ {
		n := per
		if m == 12 {
			n = rows - 11*per
		}
		qs = append(qs, fmt.Sprintf(`COPY (SELECT %d::BIGINT * 1000000000 + i AS tx_id, a AS account_id, 1 + (a - 1) %% %d AS customer_id,
			make_timestamp(2025, %d, 1 + (hash(i, %d, 'day') %% 28)::BIGINT, (hash(i, %d, 'h') %% 24)::BIGINT, (hash(i, %d, 'min') %% 60)::BIGINT, 0.0) AS booked_at,
			round(1 + pow(u(i * 13 + %d, 'amt'), 3) * 2500, 2)::DECIMAL(10,2) AS amount_eur,
			pick(['card','card','card','transfer','transfer','atm','online'], i * 13 + %d, 'channel') AS channel,
			pick(['groceries','fuel','restaurants','travel','utilities','retail','health','salary'], i * 13 + %d, 'mcc') AS category,
			pick(['BE','BE','BE','BE','BE','BE','NL','FR','DE','LU'], i * 13 + %d, 'cp') AS counterparty_country
			FROM (SELECT i, 1 + (hash(i, %d, 'acct') %% %d)::BIGINT AS a FROM range(%d) r(i)))
			TO %s %s`, m, customers, m, m, m, m, m, m, m, m, m, accounts, n,
			out(fmt.Sprintf("pay/transactions/transactions-%02d.parquet", m)), pq))
	}
	return qs
}

// query is one measured statement. raw is what raw DuckDB runs (the same
// SQL unless the user's masks and filters must be written in).
type query struct {
	name, short, user, sql, raw string
}

const (
	tx = "bench.pay.transactions"
	cu = "bench.retail.customers"
)

func queries() []query {
	agg := "SELECT category, channel, count(*) AS n, sum(amount_eur) AS total, avg(amount_eur) AS mean FROM %s GROUP BY ALL ORDER BY ALL"
	join := "SELECT c.country_code, t.category, count(*) AS n, sum(t.amount_eur) AS total FROM %s t JOIN %s c USING (customer_id) GROUP BY ALL ORDER BY ALL"
	joinEmail := "SELECT c.email, count(*) AS n, sum(t.amount_eur) AS total FROM %s t JOIN %s c USING (customer_id) GROUP BY ALL ORDER BY total DESC, c.email LIMIT 20"
	filtTx := "(SELECT * FROM " + tx + " WHERE channel <> 'atm')"
	maskCu := "(SELECT * REPLACE (" + policy.Mask{Type: policy.MaskHash}.SQL(`"email"`) + " AS email) FROM " + cu + ")"
	qs := []query{
		{name: "scan", short: "scan", sql: "SELECT count(*), sum(amount_eur), min(booked_at), max(booked_at), count(DISTINCT counterparty_country) FROM " + tx},
		{name: "filter", short: "filter", sql: "SELECT tx_id, amount_eur, booked_at FROM " + tx + " WHERE amount_eur > 2490 AND channel = 'online' ORDER BY tx_id"},
		{name: "aggregate", short: "aggregate", sql: fmt.Sprintf(agg, tx)},
		{name: "join", short: "join", sql: fmt.Sprintf(join, tx, cu)},
		{name: "join+email", short: "join+email", sql: fmt.Sprintf(joinEmail, tx, cu)},
		{name: "export 5%", short: "export", sql: "SELECT tx_id, customer_id, amount_eur, channel FROM " + tx + " WHERE tx_id % 20 = 0"},
		{name: "aggregate, masked+filtered", short: "aggregate-masked", user: "rita", sql: fmt.Sprintf(agg, tx), raw: fmt.Sprintf(agg, filtTx)},
		{name: "join, masked+filtered", short: "join-masked", user: "rita", sql: fmt.Sprintf(join, tx, cu), raw: fmt.Sprintf(join, filtTx, maskCu)},
		{name: "join+email, masked+filtered", short: "join+email-masked", user: "rita", sql: fmt.Sprintf(joinEmail, tx, cu), raw: fmt.Sprintf(joinEmail, filtTx, maskCu)},
	}
	for i := range qs {
		if qs[i].user == "" {
			qs[i].user = "alice"
		}
		if qs[i].raw == "" {
			qs[i].raw = qs[i].sql
		}
	}
	return qs
}

// shortNames lists the names -queries accepts, in run order.
func shortNames() []string {
	var ns []string
	for _, q := range queries() {
		ns = append(ns, q.short)
	}
	return ns
}

// selectQueries returns the queries o asks for (-queries by short name,
// then -only by substring of the long name), in run order.
func selectQueries(o options) ([]query, error) {
	want := map[string]bool{}
	if o.queries != "" {
		known := shortNames()
		for _, n := range strings.Split(o.queries, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(known, n) {
				return nil, fmt.Errorf("-queries: unknown query %q (known: %s)", n, strings.Join(known, ","))
			}
			want[n] = true
		}
	}
	var qs []query
	for _, q := range queries() {
		if len(want) > 0 && !want[q.short] || o.only != "" && !strings.Contains(q.name, o.only) {
			continue
		}
		qs = append(qs, q)
	}
	if len(qs) == 0 {
		return nil, errors.New("no query selected")
	}
	return qs, nil
}

// result is what a path saw of a result: its rows and, when asked for,
// an order-independent digest of their values.
type result struct {
	n   int64
	sum uint64
}

func (r *result) add(check bool, vals []any) {
	r.n++
	if check {
		h := fnv.New64a()
		for _, v := range vals {
			fmt.Fprintf(h, "%v\x00", v)
		}
		r.sum += h.Sum64()
	}
}

// countSink counts a result's rows.
type countSink struct {
	r     result
	check bool
}

func (s *countSink) Columns([]sqlengine.Column) error { return nil }
func (s *countSink) Row(v []any) error                { s.r.add(s.check, v); return nil }

func (b *bench) steward(ctx context.Context, q query, check bool) (result, error) {
	s := countSink{check: check}
	_, err := b.svc.Query(ctx, sqlengine.Request{Principal: principals[q.user], SQL: q.sql, ClientAddr: "127.0.0.1"}, &s)
	return s.r, err
}

func (b *bench) pgwire(ctx context.Context, q query, _ bool) (result, error) {
	rows, err := b.pg[q.user].Query(ctx, q.sql)
	if err != nil {
		return result{}, err
	}
	defer rows.Close()
	var r result
	for rows.Next() {
		rows.RawValues()
		r.n++
	}
	return r, rows.Err()
}

// rawDuckDB reads the result the way Steward's backend does: database/sql
// scanning into []any.
func (b *bench) rawDuckDB(ctx context.Context, q query, check bool) (result, error) {
	var r result
	rows, err := b.raw.QueryContext(ctx, q.raw)
	if err != nil {
		return r, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return r, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return r, err
		}
		r.add(check, vals)
	}
	return r, rows.Err()
}

type path struct {
	name string
	run  func(context.Context, query, bool) (result, error)
}

func (b *bench) measure(ctx context.Context, o options, stdout, stderr io.Writer) error {
	paths := []path{{"raw DuckDB", b.rawDuckDB}}
	if o.inproc {
		paths = append(paths, path{"Steward", b.steward})
	}
	if o.pg {
		paths = append(paths, path{"Steward pgwire", b.pgwire})
	}
	if b.rest != nil {
		paths = append(paths, path{"Steward REST", b.rest.query})
	}
	fmt.Fprintf(stdout, "%d transactions, %d timed runs per query and path (median), threads=%d, memory_limit=%s, GOMAXPROCS=%d, REST results as %s\n\n",
		o.rows, o.reps, o.threads, o.memory, runtime.GOMAXPROCS(0), o.rest)
	hdr := "| query | user | rows |"
	sep := "|---|---|---:|"
	for _, unit := range []string{"wall", "CPU"} {
		for _, p := range paths {
			hdr += " " + p.name + " " + unit + " |"
			sep += "---:|"
			if p.name != "raw DuckDB" {
				hdr += " raw / " + p.name + " " + unit + " |"
				sep += "---:|"
				if unit == "wall" {
					// Two more estimators of the same ratio: over the
					// total time of all rounds (throughput), and the
					// median of the ratios within each round.
					hdr += " same, total | same, per round |"
					sep += "---:|---:|"
				}
			}
		}
	}
	fmt.Fprintln(stdout, hdr)
	fmt.Fprintln(stdout, sep)
	qs, err := selectQueries(o)
	if err != nil {
		return err
	}
	for _, q := range qs {
		times := make([][]time.Duration, len(paths))
		cpus := make([][]time.Duration, len(paths))
		var first *result
		if !o.inproc {
			// Untimed: the value-for-value check of the warm-up round.
			raw, err := b.rawDuckDB(ctx, q, true)
			if err != nil {
				return fmt.Errorf("%s via raw DuckDB: %w", q.name, err)
			}
			st, err := b.steward(ctx, q, true)
			b.backend.Settle()
			if err != nil {
				return fmt.Errorf("%s via Steward: %w", q.name, err)
			}
			if st.n != raw.n || raw.sum != 0 && st.sum != raw.sum {
				return fmt.Errorf("%s: Steward returned %d rows (digest %x), raw DuckDB %d (%x)", q.name, st.n, st.sum, raw.n, raw.sum)
			}
			first = &raw
		}
		for rep := 0; rep <= o.reps; rep++ {
			// Rotate the order so that no path always runs right after
			// another's (page cache, memory being freed, a neighbour's load).
			for k := range paths {
				i := (k + rep) % len(paths)
				p := paths[i]
				// The warm-up round also checks that Steward's result is
				// raw DuckDB's, value for value (pgwire's text and REST's
				// JSON, CSV or Arrow are not compared, only their row
				// counts).
				check := rep == 0 && (p.name == "raw DuckDB" || p.name == "Steward")
				c0 := cpuTime()
				t0 := time.Now()
				r, err := p.run(ctx, q, check)
				d := time.Since(t0)
				if p.name != "raw DuckDB" {
					// The wall time is the client's: the result is read.
					// The CPU time also counts the work the query left in
					// the background (closing its instance, opening the
					// replacement), so none of it lands on the next path.
					b.backend.Settle()
				}
				c := cpuTime() - c0
				if err != nil {
					return fmt.Errorf("%s via %s: %w", q.name, p.name, err)
				}
				if first != nil && (r.n != first.n || check && first.sum != 0 && r.sum != first.sum) {
					return fmt.Errorf("%s: %s returned %d rows (digest %x), another path %d (%x)", q.name, p.name, r.n, r.sum, first.n, first.sum)
				}
				if first == nil || check {
					first = &r
				}
				if rep > 0 { // the first round warms caches
					times[i] = append(times[i], d)
					cpus[i] = append(cpus[i], c)
				}
			}
		}
		line := fmt.Sprintf("| %s | %s | %d |", q.name, q.user, first.n)
		for u, ds := range [][][]time.Duration{times, cpus} {
			base := median(ds[0])
			for i, p := range paths {
				m := median(ds[i])
				line += fmt.Sprintf(" %.0f ms |", float64(m.Microseconds())/1000)
				if p.name != "raw DuckDB" {
					line += fmt.Sprintf(" %.2f |", float64(base)/float64(m))
					if u == 0 {
						rs := pairedRatios(ds[0], ds[i])
						line += fmt.Sprintf(" %.2f | %.2f |", float64(total(ds[0]))/float64(total(ds[i])), rs[len(rs)/2])
					}
				}
			}
		}
		fmt.Fprintln(stdout, line)
		fmt.Fprintf(stderr, "%s: wall %v cpu %v\n", q.name, times, cpus)
		// Runs of one round are neighbours in time: the ratio within a
		// round is less exposed to the machine's slow drifts than the
		// ratio of medians.
		for i, p := range paths[1:] {
			rs := pairedRatios(times[0], times[i+1])
			fmt.Fprintf(stderr, "%s: raw / %s wall, per round: median %.2f, range %.2f-%.2f\n", q.name, p.name, rs[len(rs)/2], rs[0], rs[len(rs)-1])
		}
	}
	return nil
}

// cpuTime is the CPU time (user and system) the process has used: on a
// machine shared with other work, the CPU a query costs is steadier than
// its wall time. Everything runs in this process (DuckDB, Steward's
// service, audit writer and pgwire server, the pgx client), so Steward's
// own overheads are counted in its paths.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pairedRatios returns base[k] / other[k] for each round k, sorted.
func pairedRatios(base, other []time.Duration) []float64 {
	rs := make([]float64, 0, len(base))
	for k := range min(len(base), len(other)) {
		rs = append(rs, float64(base[k])/float64(other[k]))
	}
	sort.Float64s(rs)
	return rs
}

// total is the sum of ds.
func total(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
