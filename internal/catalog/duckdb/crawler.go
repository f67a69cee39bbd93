// Package duckdb is the catalog's crawler: it reads a dataset's Parquet,
// CSV and JSON files from the object store with DuckDB and infers the
// schema (with nesting), the row count and column statistics, and samples
// values for sensitive-data detection. It is the only package of the
// catalog that links DuckDB.
//
// Each file read is made visible in a temporary directory, laid out like
// its key relative to the dataset prefix so that Hive partition
// directories (year=2024/month=01/) become columns, and removed after the
// crawl. When the store has local files (LocalFiler, the embedded fs
// store) the entry is a hard link to the stored file and DuckDB reads the
// bytes in place; otherwise the object is streamed into a copy. The
// crawler's DuckDB may read that directory only (allowed_directories, then
// enable_external_access=false and a locked configuration) and loads no
// extensions.
//
// Parquet is described from its footers: the row count, null counts, min
// and max come from the row-group statistics (parquet_metadata), not from
// the data pages; the distinct count is estimated from a bounded sample of
// row windows spread over the files (StatsSampleRows rows) with the
// Haas-Stokes Duj1 estimator, so it is an estimate, as its JSON name says.
// Columns the footers do not describe (Hive partition columns, row groups
// without statistics) are scanned for that column only; nested columns get
// sample-based null counts and distinct estimates. CSV and JSON are
// summarized in full (DuckDB SUMMARIZE).
//
// At most MaxFiles files are read per crawl, and at most MaxBytes bytes
// when they are copied or read in full (CSV, JSON, or a store without local
// files); the row count of the files not read is estimated from their size.
package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/objectstore"
)

// Crawler reads datasets from an object store.
type Crawler struct {
	store objectstore.Store
	tmp   string
	log   *slog.Logger

	// MaxFiles and MaxBytes bound what one crawl reads (defaults 64 files,
	// 256 MiB).
	MaxFiles int
	MaxBytes int64
	// SampleRows is how many values per column are sampled for detection.
	SampleRows int
	// StatsSampleRows bounds the rows of a Parquet dataset read to
	// estimate distinct counts (default 65536).
	StatsSampleRows int
}

var _ catalog.Crawler = (*Crawler)(nil)

// New returns a crawler over store, with temporary files under tmpDir
// ("" for the system default).
func New(store objectstore.Store, tmpDir string, log *slog.Logger) *Crawler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Crawler{store: store, tmp: tmpDir, log: log, MaxFiles: 64, MaxBytes: 256 << 20, SampleRows: 200, StatsSampleRows: 1 << 16}
}

type file struct {
	key    string
	rel    string // relative to the dataset prefix
	size   int64
	format catalog.Format
}

// list returns the dataset's data files: objects under prefix that belong
// to this dataset by catalog.DatasetOf, in a known format.
func (c *Crawler) list(ctx context.Context, bucket, prefix string) (files []file, total int64, last time.Time, err error) {
	ns, name := "s3://"+bucket, strings.TrimSuffix(prefix, "/")
	after := ""
	for {
		page, err := c.store.List(ctx, bucket, objectstore.ListOptions{Prefix: prefix, After: after, MaxKeys: 1000})
		if err != nil {
			return nil, 0, time.Time{}, err
		}
		for _, o := range page.Objects {
			if n2, name2, ok := catalog.DatasetOf(bucket, o.Key); !ok || n2 != ns || name2 != name {
				continue
			}
			f := catalog.FormatOf(o.Key)
			if f == catalog.FormatUnknown {
				continue
			}
			files = append(files, file{key: o.Key, rel: strings.TrimPrefix(o.Key, prefix), size: o.Size, format: f})
			total += o.Size
			if o.LastModified.After(last) {
				last = o.LastModified
			}
		}
		if !page.IsTruncated {
			return files, total, last, nil
		}
		after = page.NextAfter
	}
}

// Datasets lists every dataset present in the object store with its
// files of a known format counted as Crawl counts them (number, total
// size, newest modification), from one listing of each bucket.
func (c *Crawler) Datasets(ctx context.Context) ([]catalog.Listing, error) {
	bs, err := c.store.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	at := map[catalog.Key]int{}
	var out []catalog.Listing
	for _, b := range bs {
		after := ""
		for {
			page, err := c.store.List(ctx, b.Name, objectstore.ListOptions{After: after, MaxKeys: 1000})
			if err != nil {
				return nil, err
			}
			for _, o := range page.Objects {
				ns, name, ok := catalog.DatasetOf(b.Name, o.Key)
				if !ok || catalog.FormatOf(o.Key) == catalog.FormatUnknown {
					continue
				}
				k := catalog.Key{Namespace: ns, Name: name}
				i, seen := at[k]
				if !seen {
					i = len(out)
					at[k] = i
					out = append(out, catalog.Listing{Key: k})
				}
				l := &out[i]
				l.FileCount++
				l.Size += o.Size
				if o.LastModified.After(l.LastModified) {
					l.LastModified = o.LastModified
				}
			}
			if !page.IsTruncated {
				break
			}
			after = page.NextAfter
		}
	}
	return out, nil
}

// Crawl reads the dataset at bucket/prefix ("a/b/").
func (c *Crawler) Crawl(ctx context.Context, bucket, prefix string) (*catalog.Inference, error) {
	files, total, last, err := c.list(ctx, bucket, prefix)
	if err != nil {
		return nil, steward.WrapError(steward.KindOf(err), "crawl", err, "cannot list the dataset's files")
	}
	inf := &catalog.Inference{Size: total, FileCount: int64(len(files)), LastModified: last, Samples: map[string][]string{}}
	if len(files) == 0 {
		return inf, nil
	}
	// The dominant format; files in other formats are reported.
	count := map[catalog.Format]int{}
	for _, f := range files {
		count[f.format]++
	}
	for f, n := range count {
		if n > count[inf.Format] || (n == count[inf.Format] && f < inf.Format) {
			inf.Format = f
		}
	}
	parts := map[string]bool{}
	for _, f := range files {
		for _, k := range catalog.PartitionKeys(f.rel) {
			if !parts[k] {
				parts[k] = true
				inf.Partitions = append(inf.Partitions, k)
			}
		}
	}
	dir, err := os.MkdirTemp(c.tmp, "steward-crawl-")
	if err == nil {
		dir, err = filepath.Abs(dir) // DuckDB's allowed_directories
	}
	if err != nil {
		return nil, steward.WrapError(steward.EUnavailable, "crawl", err, "cannot create a temporary directory for the crawl")
	}
	defer os.RemoveAll(dir)

	// Pick files: spread over the listing, within the bounds. Parquet read
	// in place costs its footers and a bounded sample, not its size.
	_, hasLocal := c.store.(LocalFiler)
	footers := inf.Format == catalog.FormatParquet && hasLocal
	var chosen []file
	var readBytes int64
	step := max(1, len(files)/max(1, c.MaxFiles))
	for i := 0; i < len(files) && len(chosen) < c.MaxFiles; i += step {
		f := files[i]
		if f.format != inf.Format {
			continue
		}
		if !footers && readBytes+f.size > c.MaxBytes && len(chosen) > 0 {
			break
		}
		chosen = append(chosen, f)
		readBytes += f.size
	}
	for _, f := range files {
		if f.format != inf.Format {
			inf.Problems = append(inf.Problems, catalog.CrawlProblem{File: f.key, Message: fmt.Sprintf("%s file in a %s dataset: skipped", f.format, inf.Format)})
		}
	}

	db, conn, err := sandboxed(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	defer conn.Close()

	var good []string
	var goodRows []int64
	var goodBytes int64
	var rows int64
	for _, f := range chosen {
		local := filepath.Join(dir, filepath.FromSlash(f.rel))
		if _, err := c.stage(ctx, bucket, f.key, local); err != nil {
			inf.Problems = append(inf.Problems, catalog.CrawlProblem{File: f.key, Message: "cannot read: " + steward.MessageOf(err)})
			continue
		}
		var n int64
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+reader(inf.Format, []string{local}, len(inf.Partitions) > 0)).Scan(&n); err != nil {
			inf.Problems = append(inf.Problems, catalog.CrawlProblem{File: f.key, Message: problemText(inf.Format, err, dir)})
			os.Remove(local)
			continue
		}
		good = append(good, local)
		goodRows = append(goodRows, n)
		goodBytes += f.size
		rows += n
	}
	if len(good) == 0 {
		return inf, nil
	}
	inf.RowCount = rows
	if goodBytes > 0 && len(good) < len(files) {
		// Estimate the rest by size.
		var formatBytes int64
		for _, f := range files {
			if f.format == inf.Format {
				formatBytes += f.size
			}
		}
		inf.RowCount = int64(float64(rows) * float64(formatBytes) / float64(goodBytes))
	}
	if _, err := conn.ExecContext(ctx, "CREATE VIEW t AS SELECT * FROM "+reader(inf.Format, good, len(inf.Partitions) > 0)); err != nil {
		inf.Problems = append(inf.Problems, catalog.CrawlProblem{Message: problemText(inf.Format, err, dir)})
		return inf, nil
	}
	describe := c.describe
	if inf.Format == catalog.FormatParquet {
		describe = func(ctx context.Context, conn *sql.Conn, inf *catalog.Inference) error {
			return c.describeParquet(ctx, conn, inf, good, goodRows, len(inf.Partitions) > 0, func(err error) {
				inf.Problems = append(inf.Problems, catalog.CrawlProblem{Message: problemText(inf.Format, err, dir)})
			})
		}
	}
	if err := describe(ctx, conn, inf); err != nil {
		inf.Problems = append(inf.Problems, catalog.CrawlProblem{Message: problemText(inf.Format, err, dir)})
		inf.Schema = nil
	}
	return inf, nil
}

// sandboxed opens an in-memory DuckDB that may read files under dir only
// (and spill there), loads no extensions and has its configuration locked.
// The caller closes the connection, then the database.
func sandboxed(ctx context.Context, dir string) (*sql.DB, *sql.Conn, error) {
	unavailable := func(err error) error {
		return steward.WrapError(steward.EUnavailable, "crawl", err, "the crawler's DuckDB is unavailable")
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, nil, unavailable(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, unavailable(err)
	}
	// Order matters: allowed_directories can only be set while external
	// access is on.
	for _, s := range []string{
		"SET allowed_directories = [" + quote(dir+string(filepath.Separator)) + "]",
		"SET temp_directory = " + quote(filepath.Join(dir, ".spill")),
		"SET enable_external_access = false",
		"SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false",
		"SET allow_community_extensions = false", "SET allow_persistent_secrets = false",
		"SET threads = 2", "SET memory_limit = '512MB'", "SET preserve_insertion_order = false",
		"SET lock_configuration = true",
	} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			conn.Close()
			db.Close()
			return nil, nil, unavailable(err)
		}
	}
	return db, conn, nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// reader renders the DuckDB table function reading files.
func reader(f catalog.Format, files []string, hive bool) string {
	return readerWith(f, files, hive, "")
}

// readerWith is reader with extra named parameters (", a = b").
func readerWith(f catalog.Format, files []string, hive bool, extra string) string {
	list := fileList(files)
	h := "false"
	if hive {
		h = "true"
	}
	switch f {
	case catalog.FormatParquet:
		return "read_parquet(" + list + ", union_by_name = true, hive_partitioning = " + h + extra + ")"
	case catalog.FormatCSV:
		return "read_csv(" + list + ", union_by_name = true, hive_partitioning = " + h + ", sample_size = 20480" + extra + ")"
	default:
		return "read_json(" + list + ", union_by_name = true, hive_partitioning = " + h + ", maximum_depth = 8, sample_size = 20480" + extra + ")"
	}
}

// problemText turns a DuckDB error into a readable message without local
// paths.
func problemText(f catalog.Format, err error, dir string) string {
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i > 0 {
		msg = msg[:i]
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	msg = strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
	if tmp := os.TempDir(); tmp != "" {
		msg = strings.ReplaceAll(msg, tmp, "")
	}
	return fmt.Sprintf("not readable as %s: %s", f, msg)
}

// describe fills the schema, statistics and samples from view t.
func (c *Crawler) describe(ctx context.Context, conn *sql.Conn, inf *catalog.Inference) error {
	if err := c.schema(ctx, conn, inf); err != nil {
		return err
	}
	byName := map[string]*catalog.Column{}
	for i := range inf.Schema {
		byName[inf.Schema[i].Name] = &inf.Schema[i]
	}
	srows, err := conn.QueryContext(ctx, "SELECT column_name, CAST(min AS VARCHAR), CAST(max AS VARCHAR), CAST(approx_unique AS BIGINT), CAST(null_percentage AS DOUBLE), CAST(count AS BIGINT) FROM (SUMMARIZE t)")
	if err != nil {
		return err
	}
	for srows.Next() {
		var name string
		var mn, mx sql.NullString
		var distinct sql.NullInt64
		var nullPct sql.NullFloat64
		var count sql.NullInt64
		if err := srows.Scan(&name, &mn, &mx, &distinct, &nullPct, &count); err != nil {
			srows.Close()
			return err
		}
		col := byName[name]
		if col == nil {
			continue
		}
		st := &catalog.ColumnStats{Distinct: distinct.Int64, Min: clipValue(mn.String), Max: clipValue(mx.String)}
		st.Nulls = int64(nullPct.Float64*float64(count.Int64)/100 + 0.5)
		col.Stats = st
	}
	srows.Close()
	if err := srows.Err(); err != nil {
		return err
	}
	c.samples(ctx, conn, "t", inf)
	return nil
}

// schema fills inf.Schema from view t.
func (c *Crawler) schema(ctx context.Context, conn *sql.Conn, inf *catalog.Inference) error {
	rows, err := conn.QueryContext(ctx, "SELECT column_name, column_type, null FROM (DESCRIBE SELECT * FROM t)")
	if err != nil {
		return err
	}
	var cols []catalog.Column
	for rows.Next() {
		var name, typ string
		var x any
		if err := rows.Scan(&name, &typ, &x); err != nil {
			rows.Close()
			return err
		}
		col := ParseType(typ)
		col.Name = name
		col.Nullable = true
		cols = append(cols, col)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	inf.Schema = cols
	return nil
}

// nested reports whether col is a struct, list, map or union.
func nested(col catalog.Column) bool {
	return len(col.Fields) > 0 || strings.HasSuffix(col.Type, "]") || strings.HasPrefix(col.Type, "MAP") || strings.HasPrefix(col.Type, "STRUCT") || strings.HasPrefix(col.Type, "UNION")
}

// samples fills inf.Samples with up to SampleRows values of each flat
// column of the relation from, for sensitive-data detection.
func (c *Crawler) samples(ctx context.Context, conn *sql.Conn, from string, inf *catalog.Inference) {
	for _, col := range inf.Schema {
		if nested(col) {
			continue
		}
		q := fmt.Sprintf(`SELECT CAST(%s AS VARCHAR) FROM %s WHERE %s IS NOT NULL LIMIT %d`, ident(col.Name), from, ident(col.Name), c.SampleRows)
		r, err := conn.QueryContext(ctx, q)
		if err != nil {
			continue
		}
		for r.Next() {
			var v string
			if r.Scan(&v) == nil {
				inf.Samples[col.Name] = append(inf.Samples[col.Name], v)
			}
		}
		r.Close()
	}
}

// Statistics shown in the catalog are cut to this length (min and max of
// long text columns).
const maxStatLen = 128

func clipValue(s string) string {
	if len(s) > maxStatLen {
		return s[:maxStatLen] + "..."
	}
	return s
}

func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// ParseType turns a DuckDB type ("INTEGER", "STRUCT(a INTEGER, b
// VARCHAR[])", "MAP(VARCHAR, INTEGER)") into a column with nested fields
// for structs (and lists of structs).
func ParseType(t string) catalog.Column {
	t = strings.TrimSpace(t)
	col := catalog.Column{Type: t}
	inner := t
	for strings.HasSuffix(inner, "[]") {
		inner = strings.TrimSuffix(inner, "[]")
	}
	if strings.HasPrefix(inner, "STRUCT(") && strings.HasSuffix(inner, ")") {
		for _, f := range splitTop(inner[len("STRUCT(") : len(inner)-1]) {
			name, typ := splitField(f)
			fc := ParseType(typ)
			fc.Name = name
			col.Fields = append(col.Fields, fc)
		}
	}
	return col
}

// splitTop splits s at commas outside parentheses and quotes.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	inQ := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			inQ = !inQ
		case inQ:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if rest := strings.TrimSpace(s[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// splitField splits `name TYPE` or `"quoted name" TYPE`.
func splitField(f string) (string, string) {
	if strings.HasPrefix(f, `"`) {
		for i := 1; i < len(f); i++ {
			if f[i] == '"' {
				if i+1 < len(f) && f[i+1] == '"' {
					i++
					continue
				}
				return strings.ReplaceAll(f[1:i], `""`, `"`), strings.TrimSpace(f[i+1:])
			}
		}
		return f, ""
	}
	name, typ, _ := strings.Cut(f, " ")
	return name, strings.TrimSpace(typ)
}
