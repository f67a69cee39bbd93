package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unsafe"

	duckdbdrv "github.com/duckdb/duckdb-go/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

var q = sqlengine.QuoteIdent
var lit = sqlengine.QuoteString

// safeType is a type name that can be put into a CAST.
var safeType = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_ ,()]*$`)

// sandbox readies a fresh database for r: only r.Dir readable (and
// writable), external access off, no extensions (staticSetup),
// configuration locked, r.Views created. The caller releases it.
func (b *Backend) sandbox(ctx context.Context, r *sqlengine.Run) (*instance, string, error) {
	in, err := b.fresh(ctx)
	if err != nil {
		return nil, "", steward.WrapError(steward.EInternal, "duckdb.Run", err, "SQL engine unavailable")
	}
	dir := strings.TrimSuffix(r.Dir, "/") + "/"
	threads := r.Limits.Threads
	if threads <= 0 {
		threads = 1
	}
	// The limit goes to DuckDB in bytes: a size Steward cannot parse
	// falls back to the default rather than reach the SQL text.
	mem, err := sqlengine.ParseSize(r.Limits.Memory)
	if err != nil || mem <= 0 {
		mem, _ = sqlengine.ParseSize(sqlengine.DefaultLimits.Memory)
	}
	// Order matters: allowed_directories can only be set while external
	// access is on; external access goes off before any view exists.
	setup := []string{
		"SET allowed_directories=[" + lit(dir) + "]",
		"SET enable_external_access=false",
		fmt.Sprintf("SET threads=%d", threads),
		fmt.Sprintf("SET memory_limit='%dB'", mem),
		// Locked before any view (whose text carries policy filter and
		// mask expressions) is created: nothing after this line can
		// change a setting.
		"SET lock_configuration=true",
	}
	cats := map[string]bool{}
	schemas := map[string]bool{}
	for _, v := range r.Views {
		if !cats[v.Catalog] {
			cats[v.Catalog] = true
			setup = append(setup, "ATTACH ':memory:' AS "+q(v.Catalog))
		}
		if s := v.Catalog + "." + v.Schema; !schemas[s] {
			schemas[s] = true
			setup = append(setup, "CREATE SCHEMA IF NOT EXISTS "+q(v.Catalog)+"."+q(v.Schema))
		}
		vs, err := viewSQL(v, dir)
		if err != nil {
			b.release(in)
			return nil, "", err
		}
		setup = append(setup, vs)
	}
	if d := r.Database; d != "" {
		// Short names were qualified in d by the service: d.public is
		// searched first (after temp, which holds nothing), and a
		// schema-qualified name finds its schema in d.
		if !cats[d] {
			setup = append(setup, "ATTACH ':memory:' AS "+q(d))
		}
		if !schemas[d+"."+sqlengine.DefaultSchema] {
			setup = append(setup, "CREATE SCHEMA IF NOT EXISTS "+q(d)+"."+q(sqlengine.DefaultSchema))
		}
		setup = append(setup, "USE "+q(d)+"."+q(sqlengine.DefaultSchema))
	}
	// One round trip: DuckDB runs the statements in order and stops at
	// the first error.
	if _, err := in.conn.ExecContext(ctx, strings.Join(setup, ";\n")); err != nil {
		b.release(in)
		return nil, "", b.engineErr(ctx, err, dir)
	}
	return in, dir, nil
}

// Run implements sqlengine.Backend.
func (b *Backend) Run(ctx context.Context, r *sqlengine.Run, sink sqlengine.RowSink) (int64, error) {
	in, dir, err := b.sandbox(ctx, r)
	if err != nil {
		return 0, err
	}
	defer b.release(in)
	var n int64
	err = in.conn.Raw(func(dc any) error {
		var err error
		n, err = b.stream(ctx, dc, r.Query, sink)
		return err
	})
	if err != nil {
		return n, b.engineErr(ctx, err, dir)
	}
	return n, nil
}

// cancelCheck is how many rows are streamed between looks at the
// context: the driver's result is materialized, so a canceled query stops
// within that many rows.
const cancelCheck = 256

// stream runs query on the driver connection dc and hands each row to
// sink. It reads the driver's rows directly rather than through
// database/sql, whose per-row locking and per-value conversion cost as
// much as a PostgreSQL client's protocol; the values are the ones
// database/sql would scan into []any (the driver's []byte are fresh
// copies already, so none is cloned again). Errors from sink are
// returned as they are (a *steward.Error passes engineErr untouched).
func (b *Backend) stream(ctx context.Context, dc any, query string, sink sqlengine.RowSink) (int64, error) {
	qc, ok := dc.(driver.QueryerContext)
	if !ok {
		return 0, steward.Errorf(steward.EInternal, "the DuckDB driver cannot run queries")
	}
	rows, err := qc.QueryContext(ctx, query, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	names := rows.Columns()
	cols := make([]sqlengine.Column, len(names))
	typed, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
	for i, name := range names {
		cols[i] = sqlengine.Column{Name: name}
		if typed != nil {
			cols[i].Type = typed.ColumnTypeDatabaseTypeName(i)
		}
	}
	if err := sink.Columns(cols); err != nil {
		return 0, err
	}
	vals := make([]driver.Value, len(cols))
	// The same slice as []any (driver.Value is defined as any, so the
	// memory is the same): no copy of each value per row.
	row := unsafe.Slice((*any)(unsafe.SliceData(vals)), len(vals))
	var n int64
	for {
		if n%cancelCheck == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		if err := rows.Next(vals); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		if err := sink.Row(row); err != nil {
			return n, err
		}
		n++
	}
}

// viewSQL renders CREATE VIEW for v over its staged files.
func viewSQL(v sqlengine.View, dir string) (string, error) {
	var sel []string
	for _, c := range v.Columns {
		sel = append(sel, c.Expr+" AS "+q(c.Name))
	}
	name := q(v.Catalog) + "." + q(v.Schema) + "." + q(v.Table)
	var from string
	if len(v.Files) == 0 {
		// No data yet: an empty relation with the catalog's columns.
		var cols []string
		for _, c := range v.Columns {
			t := c.Type
			if !safeType.MatchString(t) {
				t = "VARCHAR"
			}
			cols = append(cols, "CAST(NULL AS "+t+") AS "+q(c.Name))
		}
		from = "(SELECT " + strings.Join(cols, ", ") + " WHERE false)"
	} else {
		var fl []string
		for _, f := range v.Files {
			if !strings.HasPrefix(f, dir) {
				return "", steward.Errorf(steward.EInternal, "staged file outside the query directory")
			}
			fl = append(fl, lit(f))
		}
		files := "[" + strings.Join(fl, ", ") + "]"
		hive := "false"
		if v.Hive {
			hive = "true"
		}
		switch v.Format {
		case "parquet":
			from = "read_parquet(" + files + ", union_by_name=true, hive_partitioning=" + hive + ")"
		case "csv":
			from = "read_csv(" + files + ", union_by_name=true, hive_partitioning=" + hive + ")"
		case "json":
			from = "read_json_auto(" + files + ", union_by_name=true, hive_partitioning=" + hive + ")"
		default:
			return "", sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature, "table %s.%s.%s has format %q, which SQL cannot read", v.Catalog, v.Schema, v.Table, v.Format)
		}
	}
	s := "CREATE VIEW " + name + " AS SELECT " + strings.Join(sel, ", ") + " FROM " + from
	if len(v.Filters) > 0 {
		s += " WHERE (" + strings.Join(v.Filters, ") AND (") + ")"
	}
	return s, nil
}

var (
	reColumn = regexp.MustCompile(`(?i)Referenced column "([^"]*)" not found`)
	reTable  = regexp.MustCompile(`(?i)Table with name ([^ ]+) does not exist`)
)

// engineErr turns a DuckDB error into a caller-safe *steward.Error with a
// SQLSTATE; the staging directory never reaches the caller.
func (b *Backend) engineErr(ctx context.Context, err error, dir string) error {
	var se *steward.Error
	if errors.As(err, &se) {
		return err
	}
	if ctx.Err() != nil {
		return sqlengine.Errorf(steward.EInvalid, sqlengine.StateCanceled, "canceling statement due to user request")
	}
	msg := strings.ReplaceAll(err.Error(), dir, "")
	msg = strings.ReplaceAll(msg, strings.TrimSuffix(dir, "/"), "")
	state := sqlengine.StateData
	var de *duckdbdrv.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdbdrv.ErrorTypeParser:
			state = sqlengine.StateSyntax
		case duckdbdrv.ErrorTypeBinder, duckdbdrv.ErrorTypeCatalog:
			state = sqlengine.StateSyntax
			if reColumn.MatchString(msg) {
				state = sqlengine.StateUndefinedCol
			} else if reTable.MatchString(msg) {
				state = sqlengine.StateUndefinedTable
			}
		case duckdbdrv.ErrorTypeInterrupt:
			state = sqlengine.StateCanceled
		case duckdbdrv.ErrorTypeOutOfMemory:
			state = "53200"
		case duckdbdrv.ErrorTypePermission:
			state = sqlengine.StatePrivilege
		}
	}
	b.log.DebugContext(ctx, "query failed", "err", err)
	return &steward.Error{Kind: steward.EInvalid, Op: state, Message: msg, Err: err}
}
