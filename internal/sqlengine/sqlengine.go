// Package sqlengine is Steward's governed SQL service: it checks a
// statement, resolves every table it names through the catalog, asks the
// policy engine for select on each table and column, and runs the statement
// in a sandbox (a Backend, such as sqlengine/duckdb) that can see nothing but
// views Steward built for this one query: denied columns absent, masked
// columns masked, row filters applied. Every query is audited.
//
// Table names: a catalog dataset is the table whose SQL name is its policy
// name ("bank.sales.mortgages"): the first segment is the SQL catalog, the
// second the schema and the rest (joined with ".") the table; a two-segment
// name ("bank.customers") lives in the catalog's "main" schema. In a
// session whose Request.Database is a catalog, shorter names resolve in
// it as PostgreSQL's would (database.go).
//
// Errors are *steward.Error; where a precise SQLSTATE is known it is carried
// in Op (see Errorf and SQLState), as objectstore does for S3 codes.
package sqlengine

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
)

// Column is one column of a table or of a result. Type is a SQL type name
// ("BIGINT", "VARCHAR", "DATE", ...), as DuckDB names it.
type Column struct {
	Name string       `json:"name"`
	Type string       `json:"type"`
	Tags []policy.Tag `json:"tags,omitempty"` // the column's effective tags (tables only)
}

// Table is a catalog dataset seen as a SQL table.
type Table struct {
	Name           string // the SQL and policy name: "bank.sales.mortgages"
	Bucket, Prefix string // where its files are: objects under Bucket/Prefix/
	Format         string // "parquet", "csv" or "json"
	Partitions     []string
	Columns        []Column
	Tags           []policy.Tag // the table's effective tags
	Classification policy.Classification
}

// TableSource resolves SQL table names to catalog datasets. The catalog
// implements it.
type TableSource interface {
	// Table returns the table named name ("ns.schema.table"); ENotFound if
	// there is none.
	Table(ctx context.Context, name string) (*Table, error)
	// Tables lists the tables p may discover.
	Tables(ctx context.Context, p *steward.Principal) ([]*Table, error)
}

// Decider answers policy questions; *policystore.Holder and *policy.Engine
// implement it.
type Decider interface {
	Decide(req *policy.Request, d *policy.Decision)
}

// ObjectReader reads a table's files; objectstore.Store implements it.
type ObjectReader interface {
	Get(ctx context.Context, bucket, key string, opts objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error)
	List(ctx context.Context, bucket string, opts objectstore.ListOptions) (objectstore.ListResult, error)
}

// Limits bound one query. Zero fields take the service's defaults.
type Limits struct {
	Timeout time.Duration // wall-clock time
	MaxRows int64         // rows returned; more is an error
	Memory  string        // DuckDB memory_limit, e.g. "1GB"
	Threads int
}

// DefaultLimits are the limits when none are configured.
var DefaultLimits = Limits{Timeout: 5 * time.Minute, MaxRows: 1_000_000, Memory: "1GB", Threads: 2}

func (l Limits) or(d Limits) Limits {
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxRows <= 0 {
		l.MaxRows = d.MaxRows
	}
	if l.Memory == "" {
		l.Memory = d.Memory
	}
	if l.Threads <= 0 {
		l.Threads = d.Threads
	}
	return l
}

// RowSink receives a result: Columns once, then each Row. Values are Go
// values as database/sql scans them (nil for NULL). Returning an error
// stops the query.
type RowSink interface {
	Columns(cols []Column) error
	Row(vals []any) error
}

// TableRef is a table named by a statement, as its name parts
// (catalog, schema, table; fewer when the statement gave fewer).
type TableRef []string

// Name joins the parts with ".".
func (r TableRef) Name() string { return strings.Join(r, ".") }

// Analysis is what a Backend found in a statement.
type Analysis struct {
	Tables []TableRef // every catalog table reference, deduplicated
}

// View is one table as the sandbox shows it: over Files (absolute local
// paths of the staged data) in Format, with Columns (Expr is the SQL for
// the column over the raw data's quoted column) and every Filter ANDed.
type View struct {
	Catalog, Schema, Table string
	Format                 string
	Hive                   bool
	Files                  []string
	Columns                []ViewColumn
	Filters                []string
}

// ViewColumn is one column of a View.
type ViewColumn struct {
	Name string
	Type string // the catalog's type, used when the table has no files
	Expr string // SQL over the raw data
}

// Run is one query for a Backend to execute.
type Run struct {
	Query  string
	Dir    string // the only directory the sandbox may read: the staged files
	Views  []View
	Limits Limits
	// Database, when set, is the catalog whose "public" schema the
	// sandbox makes current (USE), so that the short names the service
	// qualified in it bind to the same views; the backend creates the
	// catalog and schema if no view did.
	Database string
}

// Backend parses and executes SQL in a sandbox.
type Backend interface {
	// Analyze parses one statement and returns the tables it names. It
	// returns EInvalid (SQLSTATE 42601) for a syntax error and EPermission
	// (42501) for anything but a plain query or for a construct that could
	// reach outside the sandbox (table functions, getenv, ...).
	Analyze(ctx context.Context, query string) (*Analysis, error)
	// Run executes r.Query where only r.Views exist and streams the result
	// to sink; it returns the number of rows sent.
	Run(ctx context.Context, r *Run, sink RowSink) (int64, error)
}

// SQLSTATE codes that Steward reports.
const (
	StateSyntax         = "42601"
	StatePrivilege      = "42501"
	StateUndefinedTable = "42P01"
	StateUndefinedCol   = "42703"
	StateCanceled       = "57014"
	StateLimit          = "54000"
	StateFeature        = "0A000"
	StateInternal       = "XX000"
	StateAuth           = "28P01"
	StateData           = "22000"
	StateNotReady       = "55000" // object_not_in_prerequisite_state
)

// Errorf returns an error of kind with a SQLSTATE.
func Errorf(kind steward.ErrorKind, state, format string, args ...any) *steward.Error {
	e := steward.Errorf(kind, format, args...)
	e.Op = state
	return e
}

// SQLState returns the SQLSTATE for err: the one it carries, or one for its
// kind.
func SQLState(err error) string {
	for x := err; x != nil; {
		if se, ok := x.(*steward.Error); ok {
			if len(se.Op) == 5 && isState(se.Op) {
				return se.Op
			}
		}
		u, ok := x.(interface{ Unwrap() error })
		if !ok {
			break
		}
		x = u.Unwrap()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return StateCanceled
	}
	switch steward.KindOf(err) {
	case steward.EInvalid:
		return StateSyntax
	case steward.EPermission:
		return StatePrivilege
	case steward.ENotFound:
		return StateUndefinedTable
	case steward.EUnauthenticated:
		return StateAuth
	case steward.ETooLarge:
		return StateLimit
	}
	return StateInternal
}

func isState(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// QuoteIdent quotes a SQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteString quotes a SQL string literal.
func QuoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// SplitName splits a table name into SQL catalog, schema and table.
func SplitName(name string) (catalog, schema, table string, ok bool) {
	parts := strings.SplitN(name, ".", 3)
	switch len(parts) {
	case 2:
		return parts[0], "main", parts[1], parts[0] != "" && parts[1] != ""
	case 3:
		return parts[0], parts[1], parts[2], parts[0] != "" && parts[1] != "" && parts[2] != ""
	}
	return "", "", "", false
}
