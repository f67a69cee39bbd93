package duckdb

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/objectstore"
	fsstore "github.com/stewardhq/steward/internal/objectstore/fs"
)

// exactStats computes the statistics of every column of query the slow,
// exact way (a full scan in DuckDB), as the catalog shows them.
func exactStats(t *testing.T, query string, cols []string) map[string]catalog.ColumnStats {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]catalog.ColumnStats{}
	for _, c := range cols {
		var st catalog.ColumnStats
		var mn, mx sql.NullString
		q := fmt.Sprintf("SELECT CAST(min(%[1]s) AS VARCHAR), CAST(max(%[1]s) AS VARCHAR), count(*) - count(%[1]s), count(DISTINCT %[1]s) FROM (%[2]s)", ident(c), query)
		if err := db.QueryRow(q).Scan(&mn, &mx, &st.Nulls, &st.Distinct); err != nil {
			t.Fatal(err)
		}
		st.Min, st.Max = mn.String, mx.String
		out[c] = st
	}
	return out
}

// parquetRG is parquet with small row groups, so that the footers hold
// many statistics to combine.
func parquetRG(t *testing.T, query string, rowGroup int) []byte {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := filepath.Join(t.TempDir(), "x.parquet")
	if _, err := db.Exec(fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, ROW_GROUP_SIZE %d)", query, quote(p), rowGroup)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Footer-derived statistics equal the exact ones (nulls, min, max), also
// across files where a column is missing from one; distinct counts are
// estimates from a sample much smaller than the data: exact for columns
// with few values, close for unique ones.
func TestParquetFooterStats(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	q1 := `SELECT r AS id, CASE WHEN r % 7 = 0 THEN NULL ELSE r * 3 - 50000 END AS amount,
		md5(CAST(r AS VARCHAR)) AS ref, DATE '2020-01-01' + CAST(r % 1500 AS INTEGER) AS booked,
		['EUR', 'USD', 'GBP', 'CHF'][1 + CAST(r % 4 AS INTEGER)] AS currency, r / 7.0 AS ratio,
		CASE WHEN r % 2 = 0 THEN 'x' END AS half, {'a': r, 'b': [r % 3]} AS nest
		FROM range(30000) t(r)`
	q2 := `SELECT r AS id, r - 7 AS amount, md5(CAST(r AS VARCHAR)) AS ref, DATE '2019-06-01' + CAST(r % 1500 AS INTEGER) AS booked,
		'EUR' AS currency, r / 7.0 AS ratio, NULL AS half, {'a': r, 'b': [r % 3]} AS nest
		FROM range(30000, 50000) t(r)`
	q3 := `SELECT r AS id FROM range(50000, 51000) t(r)` // the other columns missing: nulls
	put(t, s, "ledger/tx/part-1.parquet", parquetRG(t, q1, 4096))
	put(t, s, "ledger/tx/part-2.parquet", parquetRG(t, q2, 4096))
	put(t, s, "ledger/tx/part-3.parquet", parquetRG(t, q3, 4096))
	all := q1 + " UNION ALL BY NAME " + q2 + " UNION ALL BY NAME " + q3
	cols := []string{"id", "amount", "ref", "booked", "currency", "ratio", "half"}
	want := exactStats(t, all, cols)

	c := New(s, t.TempDir(), nil)
	c.StatsSampleRows = 4000
	inf, err := c.Crawl(ctx, "bank", "ledger/tx/")
	if err != nil {
		t.Fatal(err)
	}
	if inf.RowCount != 51000 || len(inf.Problems) != 0 {
		t.Fatalf("rows %d problems %+v", inf.RowCount, inf.Problems)
	}
	got := map[string]*catalog.Column{}
	for i := range inf.Schema {
		got[inf.Schema[i].Name] = &inf.Schema[i]
	}
	for _, name := range cols {
		t.Run(name, func(t *testing.T) {
			col, w := got[name], want[name]
			if col == nil || col.Stats == nil {
				t.Fatalf("no stats for %s: %+v", name, col)
			}
			st := col.Stats
			if st.Nulls != w.Nulls || st.Min != w.Min || st.Max != w.Max {
				t.Errorf("stats %+v, exact %+v", *st, w)
			}
			switch {
			case w.Distinct <= 1500: // every value repeats in the sample
				if st.Distinct != w.Distinct {
					t.Errorf("distinct estimate %d, exact %d", st.Distinct, w.Distinct)
				}
			case w.Distinct == 51000-w.Nulls: // unique: within 10%
				if d := float64(st.Distinct) / float64(w.Distinct); d < 0.9 || d > 1.1 {
					t.Errorf("distinct estimate %d, exact %d", st.Distinct, w.Distinct)
				}
			default: // values repeating a few times: within 20%
				if d := float64(st.Distinct) / float64(w.Distinct); d < 0.8 || d > 1.2 {
					t.Errorf("distinct estimate %d, exact %d", st.Distinct, w.Distinct)
				}
			}
		})
	}
	t.Run("nested", func(t *testing.T) {
		n := got["nest"]
		if n == nil || len(n.Fields) != 2 || n.Stats == nil || n.Stats.Distinct == 0 {
			t.Fatalf("nest %+v", n)
		}
		// 1,000 of 51,000 rows have no nest: the sample's estimate is
		// near that.
		if n.Stats.Nulls > 5000 {
			t.Errorf("nest nulls estimate %d", n.Stats.Nulls)
		}
	})
	t.Run("samples", func(t *testing.T) {
		if len(inf.Samples["ref"]) != c.SampleRows || len(inf.Samples["half"]) == 0 {
			t.Errorf("samples: ref %d, half %d", len(inf.Samples["ref"]), len(inf.Samples["half"]))
		}
	})
}

func TestDuj1(t *testing.T) {
	for _, tc := range []struct {
		name              string
		n, d, f1, pop, at int64
	}{
		{"sample is everything", 100, 40, 10, 100, 40},
		{"unique in sample", 1000, 1000, 1000, 1e6, 1e6},
		{"every value repeats", 1000, 4, 0, 1e6, 4},
		{"empty", 0, 0, 0, 10, 0},
		{"half singletons", 1000, 600, 400, 1e6, 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := duj1(tc.n, tc.d, tc.f1, tc.pop); got != tc.at {
				t.Errorf("duj1 = %d, want %d", got, tc.at)
			}
		})
	}
}

// countingStore counts Gets; getOnly hides the fs store's LocalFile, so
// the crawler must copy.
type countingStore struct {
	objectstore.Store
	gets atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, bucket, key string, o objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, bucket, key, o)
}

type localStore struct {
	*countingStore
	lf     LocalFiler
	locals atomic.Int64
}

func (s *localStore) LocalFile(ctx context.Context, bucket, key string) (string, string, error) {
	s.locals.Add(1)
	return s.lf.LocalFile(ctx, bucket, key)
}

// With a store of local files the crawler reads them in place (hard
// links, no Get); with another store it copies them through Get; both
// infer the same dataset, and neither leaves files behind.
func TestCrawlInPlace(t *testing.T) {
	ctx := context.Background()
	fs := newStore(t)
	mort := parquet(t, "SELECT 'BE' AS country, 3.1 AS rate, 200000 AS amount UNION ALL SELECT 'NL', 3.5, NULL")
	put(t, fs, "risk/mortgages/year=2024/month=01/a.parquet", mort)
	put(t, fs, "risk/mortgages/year=2025/month=02/b.parquet", mort)
	put(t, fs, "risk/mortgages/year=2025/month=03/empty.csv", nil)

	copying := &countingStore{Store: fs}
	local := &localStore{countingStore: &countingStore{Store: fs}, lf: fs}
	var infs []*catalog.Inference
	for _, tc := range []struct {
		name         string
		store        objectstore.Store
		gets, locals func() int64
		wantGets     bool
	}{
		{"copy", copying, copying.gets.Load, func() int64 { return 0 }, true},
		// These files are small enough for the store to keep them in its
		// index: the crawler asks for the local file and then reads them
		// with Get (see TestCrawlInPlaceLargeFiles for files of their own).
		{"in place", local, local.gets.Load, local.locals.Load, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			inf, err := New(tc.store, tmp, nil).Crawl(ctx, "bank", "risk/mortgages/")
			if err != nil {
				t.Fatal(err)
			}
			if inf.RowCount != 4 || len(inf.Schema) != 5 || strings.Join(inf.Partitions, "/") != "year/month" {
				t.Fatalf("%+v", inf)
			}
			if (tc.gets() > 0) != tc.wantGets || (tc.locals() > 0) != (tc.store == objectstore.Store(local)) {
				t.Errorf("gets %d, local files %d", tc.gets(), tc.locals())
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			infs = append(infs, inf)
		})
	}
	if len(infs) == 2 {
		for i, col := range infs[0].Schema {
			a, b := col.Stats, infs[1].Schema[i].Stats
			if a == nil || b == nil || *a != *b {
				t.Errorf("%s: copy %+v, in place %+v", col.Name, a, b)
			}
		}
		for _, col := range infs[1].Schema {
			if col.Name == "year" && (col.Stats.Min != "2024" || col.Stats.Max != "2025" || col.Stats.Distinct != 2) {
				t.Errorf("partition column stats %+v", col.Stats)
			}
		}
	}
	// The stored files are untouched by the crawl's links and removal.
	body, _, err := fs.Get(ctx, "bank", "risk/mortgages/year=2024/month=01/a.parquet", objectstore.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(body)
	body.Close()
	if string(b) != string(mort) {
		t.Error("stored file changed")
	}
}

// Files over the store's inline limit are read in place: hard links, no
// Get.
func TestCrawlInPlaceLargeFiles(t *testing.T) {
	ctx := context.Background()
	fs := newStore(t)
	big := parquet(t, "SELECT r AS id, md5(CAST(r AS VARCHAR)) AS ref FROM range(20000) t(r)")
	if len(big) <= fsstore.InlineMax {
		t.Fatalf("test file of %d bytes is not over the inline limit", len(big))
	}
	put(t, fs, "risk/refs/a.parquet", big)
	put(t, fs, "risk/refs/b.parquet", big)
	local := &localStore{countingStore: &countingStore{Store: fs}, lf: fs}
	inf, err := New(local, t.TempDir(), nil).Crawl(ctx, "bank", "risk/refs/")
	if err != nil {
		t.Fatal(err)
	}
	if inf.RowCount != 40000 {
		t.Fatalf("%+v", inf)
	}
	if local.gets.Load() != 0 || local.locals.Load() == 0 {
		t.Errorf("gets %d, local files %d: want the files read in place", local.gets.Load(), local.locals.Load())
	}
}

// A file whose data pages are damaged behind an intact footer: the
// footers' schema, row count and statistics are kept and the unreadable
// sample is a problem.
func TestParquetDamagedPages(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := parquetRG(t, "SELECT r AS id, md5(CAST(r AS VARCHAR)) AS ref FROM range(20000) t(r)", 100000)
	footer := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	data := b[4 : len(b)-8-footer]
	for i := len(data) / 4; i < len(data)*3/4; i++ {
		data[i] = byte(i * 7)
	}
	put(t, s, "damaged/d/x.parquet", b)
	inf, err := New(s, t.TempDir(), nil).Crawl(ctx, "bank", "damaged/d/")
	if err != nil {
		t.Fatal(err)
	}
	if len(inf.Problems) == 0 || !strings.Contains(inf.Problems[0].Message, "not readable as parquet") {
		t.Fatalf("problems %+v", inf.Problems)
	}
	if inf.RowCount != 20000 || len(inf.Schema) != 2 || inf.Schema[0].Stats == nil || inf.Schema[0].Stats.Max != "19999" {
		t.Fatalf("footer knowledge lost: %+v", inf)
	}
}

// The crawler's DuckDB reads the crawl directory and nothing else, and its
// sandbox cannot be lifted.
func TestSandbox(t *testing.T) {
	ctx := context.Background()
	dir, outside := t.TempDir(), t.TempDir()
	mort := parquet(t, "SELECT 1 AS x")
	for _, d := range []string{dir, outside} {
		if err := os.WriteFile(filepath.Join(d, "a.parquet"), mort, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, conn, err := sandboxed(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); db.Close() })
	for _, tc := range []struct {
		name, query string
		ok          bool
	}{
		{"inside", "SELECT count(*) FROM read_parquet(" + quote(filepath.Join(dir, "a.parquet")) + ")", true},
		{"footers inside", "SELECT count(*) FROM parquet_metadata(" + quote(filepath.Join(dir, "a.parquet")) + ")", true},
		{"outside", "SELECT count(*) FROM read_parquet(" + quote(filepath.Join(outside, "a.parquet")) + ")", false},
		{"footers outside", "SELECT count(*) FROM parquet_metadata(" + quote(filepath.Join(outside, "a.parquet")) + ")", false},
		{"escape by ..", "SELECT count(*) FROM read_parquet(" + quote(dir+"/../"+filepath.Base(outside)+"/a.parquet") + ")", false},
		{"lift", "SET enable_external_access = true", false},
		{"widen", "SET allowed_directories = ['/']", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := conn.ExecContext(ctx, tc.query)
			if (err == nil) != tc.ok {
				t.Errorf("%s: err %v", tc.query, err)
			}
		})
	}
}
