package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/objectstore"
	fsstore "github.com/stewardhq/steward/internal/objectstore/fs"
)

// BenchmarkCrawl1GiB crawls a 1 GiB Parquet dataset (8 files in the
// embedded object store) and, in the same run, reads the same stored files
// raw, so the crawl can be compared with the disk:
//
//	go test ./internal/catalog/duckdb -run '^$' -bench Crawl1GiB -benchtime 1x -timeout 60m -v
//
// Sub-benchmarks named -cold evict the benchmark's own files from the page
// cache before each iteration (posix_fadvise DONTNEED on those files only,
// nothing else is dropped); the -warm ones read from the cache.
// crawl-all lifts the crawler's per-crawl bounds so that every file is
// crawled; crawl-default keeps the defaults (64 files; 256 MiB when files
// are copied); crawl-all-copy hides the store's local files
// (LocalFiler) so that the crawler copies every file through Get first. The duckdb-* peers run DuckDB alone, with the
// crawler's settings, on local copies of the same files: SUMMARIZE (what
// the crawler asks for its statistics) and a single scan computing only
// count, min, max, non-nulls and a distinct estimate per column; and the
// Parquet footers' own statistics (row-group min, max and null counts,
// read with parquet_metadata, no data pages). MB/s is over the dataset's
// size in every case.
// STEWARD_BENCH_CRAWL_MIB changes the size (default 1024).
func BenchmarkCrawl1GiB(b *testing.B) {
	ctx := context.Background()
	mib := int64(1024)
	if s := os.Getenv("STEWARD_BENCH_CRAWL_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("STEWARD_BENCH_CRAWL_MIB=%q: want a positive number", s)
		}
		mib = n
	}
	const files = 8
	dir := b.TempDir()
	storeDir := filepath.Join(dir, "store")
	st, err := fsstore.Open(storeDir, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.CreateBucket(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	local, total := writeParquet(b, st, filepath.Join(dir, "gen"), files, mib<<20)
	b.Logf("dataset: %d files, %d bytes", files, total)

	readAll := func(b *testing.B) {
		for i := range files {
			body, _, err := st.Get(ctx, "bench", fmt.Sprintf("big/part-%02d.parquet", i), objectstore.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, body); err != nil {
				b.Fatal(err)
			}
			body.Close()
		}
	}
	crawl := func(c *Crawler) func(b *testing.B) {
		return func(b *testing.B) {
			inf, err := c.Crawl(ctx, "bench", "big/")
			if err != nil {
				b.Fatal(err)
			}
			if inf.FileCount != files || len(inf.Schema) == 0 || len(inf.Problems) > 0 {
				b.Fatalf("crawl: %d files, %d columns, problems %v", inf.FileCount, len(inf.Schema), inf.Problems)
			}
			for _, col := range inf.Schema {
				if col.Stats == nil {
					b.Fatalf("crawl: no statistics for %s", col.Name)
				}
				b.Logf("%s: %+v", col.Name, *col.Stats)
			}
		}
	}
	// DuckDB alone on local copies of the files, with the crawler's
	// settings: what the statistics cost without the crawler around them.
	duck := func(query string) func(b *testing.B) {
		return func(b *testing.B) {
			db, err := sql.Open("duckdb", "")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			conn, err := db.Conn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			for _, s := range []string{"SET threads = 2", "SET memory_limit = '512MB'", "SET preserve_insertion_order = false"} {
				if _, err := conn.ExecContext(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			rows, err := conn.QueryContext(ctx, strings.ReplaceAll(query, "FILES", reader(catalog.FormatParquet, local, false)))
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			rows.Close()
		}
	}
	var stats []string
	for _, c := range []string{"id", "amount", "account", "ref", "booked", "currency"} {
		stats = append(stats, fmt.Sprintf("min(%[1]s), max(%[1]s), count(%[1]s), approx_count_distinct(%[1]s)", c))
	}
	all := New(st, dir, nil)
	all.MaxFiles, all.MaxBytes = 1000, 1<<40
	allCopy := New(struct{ objectstore.Store }{st}, dir, nil)
	allCopy.MaxFiles, allCopy.MaxBytes = 1000, 1<<40
	for _, bc := range []struct {
		name string
		cold bool
		run  func(b *testing.B)
	}{
		{"read-cold", true, readAll},
		{"read-warm", false, readAll},
		{"crawl-all-cold", true, crawl(all)},
		{"crawl-all-warm", false, crawl(all)},
		{"crawl-default-cold", true, crawl(New(st, dir, nil))},
		{"crawl-all-copy-cold", true, crawl(allCopy)},
		{"duckdb-summarize-warm", false, duck("SUMMARIZE SELECT * FROM FILES")},
		{"duckdb-minmax-distinct-warm", false, duck("SELECT count(*), " + strings.Join(stats, ", ") + " FROM FILES")},
		{"duckdb-footer-stats-cold", true, duck("SELECT path_in_schema, min(stats_min), max(stats_max), sum(stats_null_count), sum(num_values) FROM parquet_metadata(" + fileList(local) + ") GROUP BY path_in_schema")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(total)
			if !bc.cold {
				bc.run(b) // warm the cache
			}
			b.ResetTimer()
			for range b.N {
				if bc.cold {
					b.StopTimer()
					evict(b, dir)
					b.StartTimer()
				}
				bc.run(b)
			}
		})
	}
}

// writeParquet generates n Parquet files of about size/n bytes each of
// poorly compressible rows with DuckDB and stores them as
// big/part-NN.parquet; it returns the local copies and the stored size.
func writeParquet(b *testing.B, st objectstore.Store, gen string, n int, size int64) ([]string, int64) {
	b.Helper()
	ctx := context.Background()
	if err := os.MkdirAll(gen, 0o700); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// About 33 bytes a row once stored: an id, a random double, a random
	// integer, a 32-character hex string, a date and a small category.
	rows := size / int64(n) / 33
	var total int64
	var local []string
	for i := range n {
		p := filepath.Join(gen, fmt.Sprintf("part-%02d.parquet", i))
		q := fmt.Sprintf(`COPY (SELECT %d * %d + r AS id, random() AS amount, CAST(random() * 1e9 AS BIGINT) AS account,
			md5(CAST(r + %d AS VARCHAR)) AS ref, DATE '2020-01-01' + CAST(r %% 1500 AS INTEGER) AS booked,
			['EUR', 'USD', 'GBP', 'CHF'][1 + CAST(r %% 4 AS INTEGER)] AS currency
			FROM range(%d) t(r)) TO %s (FORMAT parquet, COMPRESSION zstd)`, i, rows, i*int(rows), rows, quote(p))
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		fi, _ := f.Stat()
		if _, err := st.Put(ctx, "bench", fmt.Sprintf("big/part-%02d.parquet", i), f, fi.Size(), objectstore.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
		local = append(local, p)
		total += fi.Size()
	}
	return local, total
}

// evict drops the page cache of the files under dir (and only those).
func evict(b *testing.B, dir string) {
	b.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
	if err != nil {
		b.Fatal(err)
	}
}
