// Package metastoretest is the conformance suite every metastore backend
// must pass. Backends call Run with a function that opens a Store; later
// components add their own sub-suites to Run.
//
//	func TestSQLite(t *testing.T) {
//		metastoretest.Run(t, metastoretest.Opener(func(t *testing.T) string {
//			return "sqlite:" + filepath.Join(t.TempDir(), "steward.db")
//		}))
//	}
package metastoretest

import (
	"context"
	"sync"
	"testing"

	"github.com/stewardhq/steward/internal/metastore"
)

// OpenFunc opens a Store for t. The first call for a given t opens a fresh,
// empty database; later calls with the same t open that same database again,
// as a second replica would. The Store is closed when t ends.
type OpenFunc func(t *testing.T) *metastore.Store

// Run runs the whole conformance suite against the backend that open
// reaches, one named subtest per area.
func Run(t *testing.T, open OpenFunc) {
	t.Run("Identity", func(t *testing.T) { RunIdentity(t, open) })
	t.Run("Tx", func(t *testing.T) { RunTx(t, open) })
	t.Run("Migrations", func(t *testing.T) { RunMigrations(t, open) })
	t.Run("SQL", func(t *testing.T) { RunSQL(t, open) })
}

// Opener returns an OpenFunc over newDSN, which must return the DSN of a
// fresh database for t (for example "sqlite:"+t.TempDir()+"/db" or
// pgtest.Start(t)). It remembers the DSN per test so that a second call
// with the same t reopens the same database.
func Opener(newDSN func(t *testing.T) string) OpenFunc {
	var mu sync.Mutex
	dsns := map[*testing.T]string{}
	return func(t *testing.T) *metastore.Store {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[t]
		mu.Unlock()
		if !ok {
			dsn = newDSN(t)
			mu.Lock()
			dsns[t] = dsn
			mu.Unlock()
			t.Cleanup(func() {
				mu.Lock()
				delete(dsns, t)
				mu.Unlock()
			})
		}
		s, err := metastore.Open(context.Background(), dsn, "")
		if err != nil {
			t.Fatalf("open metastore: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}
