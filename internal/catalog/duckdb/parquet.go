package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/stewardhq/steward/internal/catalog"
)

// sampleWindows is about how many row windows the distinct-count sample
// takes over all files; each costs DuckDB one row group or so.
const sampleWindows = 8

// castable are types whose footer min/max text DuckDB can cast back
// (TRY_CAST(stats_min_value AS type)); others are scanned.
var castable = regexp.MustCompile(`^[A-Z][A-Z0-9_ ]*(\([0-9, ]+\))?$`)

// describeParquet fills the schema, statistics and samples of view t over
// the Parquet files (with rows[i] rows in files[i]) from their footers and
// a bounded sample: see the package comment. A sample that cannot be read
// (data pages damaged behind an intact footer) is reported to problem and
// the footers' statistics are kept.
func (c *Crawler) describeParquet(ctx context.Context, conn *sql.Conn, inf *catalog.Inference, files []string, rows []int64, hive bool, problem func(error)) error {
	if err := c.schema(ctx, conn, inf); err != nil {
		return err
	}
	var total int64
	for _, n := range rows {
		total += n
	}
	if err := c.footerStats(ctx, conn, inf, files, total); err != nil {
		return err
	}
	if err := c.sample(ctx, conn, files, rows, total, hive); err != nil {
		problem(err)
		return nil
	}
	for i := range inf.Schema {
		col := &inf.Schema[i]
		if col.Stats == nil {
			col.Stats = &catalog.ColumnStats{}
		}
		if nested(*col) {
			// Null counts of nested values are not in the footers
			// (their leaves are): estimate from the sample.
			if nulls, n, ok := sampleNulls(ctx, conn, col.Name); ok && n > 0 {
				col.Stats.Nulls = int64(float64(nulls)*float64(total)/float64(n) + 0.5)
			}
		}
		if d, ok := distinctEstimate(ctx, conn, col.Name, total-col.Stats.Nulls); ok {
			col.Stats.Distinct = d
		}
	}
	c.samples(ctx, conn, "s", inf)
	return nil
}

// footerStats sets Nulls, Min and Max of every flat column from the row
// groups' statistics; columns the footers cannot answer (partition
// columns, missing or uncastable statistics) are computed by one scan of
// those columns only.
func (c *Crawler) footerStats(ctx context.Context, conn *sql.Conn, inf *catalog.Inference, files []string, total int64) error {
	// The footers are read once: one row per column chunk.
	if _, err := conn.ExecContext(ctx, "CREATE TABLE m AS SELECT path_in_schema, num_values, stats_null_count, stats_min_value, stats_max_value FROM parquet_metadata("+fileList(files)+")"); err != nil {
		return err
	}
	var scan []*catalog.Column
	for i := range inf.Schema {
		col := &inf.Schema[i]
		if nested(*col) {
			continue
		}
		if !castable.MatchString(col.Type) {
			scan = append(scan, col)
			continue
		}
		// One row per column chunk; a file without the column (read by
		// name union) contributes nulls: total - sum(num_values).
		q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE stats_null_count IS NULL
				OR (stats_min_value IS NULL AND num_values > stats_null_count)
				OR (stats_min_value IS NOT NULL AND TRY_CAST(stats_min_value AS %[1]s) IS NULL)
				OR (stats_max_value IS NOT NULL AND TRY_CAST(stats_max_value AS %[1]s) IS NULL)),
			CAST(coalesce(sum(stats_null_count), 0) AS BIGINT), CAST(coalesce(sum(num_values), 0) AS BIGINT),
			CAST(min(TRY_CAST(stats_min_value AS %[1]s)) AS VARCHAR), CAST(max(TRY_CAST(stats_max_value AS %[1]s)) AS VARCHAR)
			FROM m WHERE path_in_schema = %[2]s`, col.Type, quote(col.Name))
		var chunks, unknown, nulls, values int64
		var mn, mx sql.NullString
		if err := conn.QueryRowContext(ctx, q).Scan(&chunks, &unknown, &nulls, &values, &mn, &mx); err != nil {
			return err
		}
		if chunks == 0 || unknown > 0 {
			scan = append(scan, col)
			continue
		}
		col.Stats = &catalog.ColumnStats{Nulls: nulls + total - values, Min: clipValue(mn.String), Max: clipValue(mx.String)}
	}
	if len(scan) == 0 {
		return nil
	}
	var sel []string
	for _, col := range scan {
		id := ident(col.Name)
		sel = append(sel, fmt.Sprintf("CAST(min(%[1]s) AS VARCHAR), CAST(max(%[1]s) AS VARCHAR), count(*) - count(%[1]s)", id))
	}
	vals := make([]sql.NullString, 2*len(scan))
	nulls := make([]int64, len(scan))
	dst := make([]any, 0, 3*len(scan))
	for i := range scan {
		dst = append(dst, &vals[2*i], &vals[2*i+1], &nulls[i])
	}
	if err := conn.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM t").Scan(dst...); err != nil {
		return err
	}
	for i, col := range scan {
		col.Stats = &catalog.ColumnStats{Nulls: nulls[i], Min: clipValue(vals[2*i].String), Max: clipValue(vals[2*i+1].String)}
	}
	return nil
}

// sample creates table s: all rows when there are at most StatsSampleRows,
// else row windows spread evenly over each file (file_row_number ranges,
// which DuckDB turns into row-group skips), about StatsSampleRows rows in
// all.
func (c *Crawler) sample(ctx context.Context, conn *sql.Conn, files []string, rows []int64, total int64, hive bool) error {
	budget := int64(max(1, c.StatsSampleRows))
	if total <= budget {
		_, err := conn.ExecContext(ctx, "CREATE TABLE s AS SELECT * FROM t")
		return err
	} else {
		var parts []string
		for i, f := range files {
			if rows[i] == 0 {
				continue
			}
			share := max(1, budget*rows[i]/total)
			k := min(max(1, int64(math.Ceil(sampleWindows*float64(rows[i])/float64(total)))), sampleWindows)
			size := max(1, share/k)
			seg := rows[i] / k
			for j := range k {
				start := j*seg + max(0, (seg-size)/2)
				parts = append(parts, fmt.Sprintf("SELECT * FROM %s WHERE file_row_number BETWEEN %d AND %d",
					readerWith(catalog.FormatParquet, []string{f}, hive, ", file_row_number = true"), start, start+size-1))
			}
		}
		q := "CREATE TABLE s AS SELECT * EXCLUDE (file_row_number) FROM (" + strings.Join(parts, " UNION ALL BY NAME ") + ")"
		if _, err := conn.ExecContext(ctx, q); err == nil {
			return nil
		}
	}
	// A column named file_row_number, or a reader error: the first rows.
	conn.ExecContext(ctx, "DROP TABLE IF EXISTS s")
	_, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE s AS SELECT * FROM t LIMIT %d", budget))
	return err
}

// sampleNulls counts the nulls of column name in the sample of n rows.
func sampleNulls(ctx context.Context, conn *sql.Conn, name string) (nulls, n int64, ok bool) {
	err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) - count(%[1]s), count(*) FROM s", ident(name))).Scan(&nulls, &n)
	return nulls, n, err == nil
}

// distinctEstimate estimates the distinct non-null values of column name
// among population non-null values from the sample s, with the Haas-Stokes
// Duj1 estimator n*d / (n - f1 + f1*n/N), where the sample has n non-null
// values, d distinct ones and f1 seen exactly once. It is exact when the
// sample is the population, N for a column unique in the sample, d for
// one whose every value repeats; it is clamped to [d, N].
func distinctEstimate(ctx context.Context, conn *sql.Conn, name string, population int64) (int64, bool) {
	var d, f1, n int64
	q := fmt.Sprintf("SELECT count(*), count(*) FILTER (WHERE c = 1), CAST(coalesce(sum(c), 0) AS BIGINT) FROM (SELECT count(*) AS c FROM s WHERE %[1]s IS NOT NULL GROUP BY %[1]s)", ident(name))
	if err := conn.QueryRowContext(ctx, q).Scan(&d, &f1, &n); err != nil {
		return 0, false
	}
	return duj1(n, d, f1, population), true
}

func duj1(n, d, f1, population int64) int64 {
	if n <= 0 || d <= 0 {
		return 0
	}
	if population <= n {
		return d
	}
	e := float64(n) * float64(d) / (float64(n-f1) + float64(f1)*float64(n)/float64(population))
	return min(max(d, int64(e+0.5)), population)
}

// fileList renders a DuckDB list of file paths.
func fileList(files []string) string {
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = quote(f)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
