// Package metastore persists Steward's metadata (identities, provider state,
// policies, catalog, lineage) in SQLite (the embedded default, a file in the
// data dir) or PostgreSQL (for several replicas). Both backends run the same
// portable SQL: queries are written with '?' placeholders and rebound for
// PostgreSQL, and schema differences live in per-dialect versioned
// migrations. One conformance suite (metastoretest) runs against both.
package metastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stewardhq/steward"
)

// Dialect names the SQL backend.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is a connection to the metastore. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
}

// Open connects to the metastore named by dsn and applies pending
// migrations. An empty dsn means SQLite at dataDir/steward.db; "sqlite:PATH"
// names another SQLite file; "postgres://..." or "postgresql://..." connects
// to PostgreSQL.
func Open(ctx context.Context, dsn, dataDir string) (*Store, error) {
	var s *Store
	switch {
	case dsn == "" || strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			path = filepath.Join(dataDir, "steward.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("metastore: %w", err)
		}
		q := url.Values{}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(FULL)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("metastore: open sqlite: %w", err)
		}
		s = &Store{db: db, dialect: SQLite}
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("metastore: open postgres: %w", err)
		}
		db.SetMaxOpenConns(20)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s = &Store{db: db, dialect: Postgres}
	default:
		return nil, fmt.Errorf("metastore: unsupported DSN scheme (want sqlite:PATH or postgres://...)")
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.ping(pctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("metastore: connect %s: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// ping connects. A new SQLite file switching to WAL can answer SQLITE_BUSY
// to a second process or connection opening it at the same moment without
// consulting the busy timeout; that is retried until ctx ends.
func (s *Store) ping(ctx context.Context) error {
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := s.db.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Dialect reports the backend in use.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping checks the backend is reachable, for readiness probes.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Querier is what both *Store and *Tx offer: portable SQL with '?'
// placeholders.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
	Dialect() Dialect
}

var (
	_ Querier = (*Store)(nil)
	_ Querier = (*Tx)(nil)
)

func (s *Store) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, rebind(s.dialect, q), args...)
}

func (s *Store) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, rebind(s.dialect, q), args...)
}

func (s *Store) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, rebind(s.dialect, q), args...)
}

// Tx is a transaction on the metastore.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
}

func (t *Tx) Dialect() Dialect { return t.dialect }

func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, rebind(t.dialect, q), args...)
}

func (t *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, rebind(t.dialect, q), args...)
}

func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, rebind(t.dialect, q), args...)
}

// Prepare prepares q for repeated use in the transaction; the statement
// is closed when the transaction ends.
func (t *Tx) Prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, rebind(t.dialect, q))
}

// InTx runs fn in a transaction, committing if fn returns nil and rolling
// back otherwise. Serialization failures on PostgreSQL are retried.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.inTx(ctx, fn)
		if err != nil && attempt < 5 && isRetryable(err) {
			time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
			continue
		}
		return err
	}
}

func (s *Store) inTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqltx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("metastore: begin: %w", err)
	}
	if err := fn(&Tx{tx: sqltx, dialect: s.dialect}); err != nil {
		sqltx.Rollback()
		return err
	}
	if err := sqltx.Commit(); err != nil {
		return fmt.Errorf("metastore: commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique or primary key
// constraint violation on either backend.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign key violation.
func IsForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

func isRetryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// NotFound converts sql.ErrNoRows into a steward ENotFound error naming
// what was missing; other errors pass through.
func NotFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return steward.Errorf(steward.ENotFound, "%s not found", what)
	}
	return err
}

// rebind turns '?' placeholders into $1, $2, ... for PostgreSQL, leaving
// question marks inside quoted strings and identifiers ('...', "..."), line
// comments (-- ...) and block comments (/* ... */) alone. A doubled quote
// inside a string needs no special case: it closes and reopens the string.
// Not handled (do not use with '?' placeholders): dollar-quoted strings,
// E'...' backslash escapes, nested block comments.
func rebind(d Dialect, q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(q[i+1:], c)
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+end+2])
			i += end + 1
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+end+1])
			i += end
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+end+4])
			i += end + 3
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
