package pgtest_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestStartGivesFreshDatabases(t *testing.T) {
	ctx := context.Background()
	open := func(dsn string) *sql.DB {
		t.Helper()
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := pgtest.Start(t), pgtest.Start(t)
	if a == b {
		t.Fatalf("two Start calls returned the same DSN %s", a)
	}
	dba, dbb := open(a), open(b)
	if _, err := dba.ExecContext(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := dbb.ExecContext(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatalf("second database is not fresh: %v", err)
	}
	var addr string
	if err := dba.QueryRowContext(ctx, `SELECT COALESCE(inet_server_addr()::text, '')`).Scan(&addr); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1/32" && addr != "127.0.0.1" && addr != "::1/128" {
		t.Logf("server address %q (external server?)", addr)
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	var dsn string
	t.Run("inner", func(t *testing.T) {
		dsn = pgtest.Start(t)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		// Left open on purpose: cleanup must drop the database anyway.
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
	})
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err == nil {
		t.Fatalf("database %s still exists after its test ended", dsn)
	}
}
