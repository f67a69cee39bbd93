package metastore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

// testConcurrentOpen opens dsn from several goroutines at once, as replicas
// starting together do: migrations must run once and every Open succeed.
func testConcurrentOpen(t *testing.T, dsn string) {
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := metastore.Open(context.Background(), dsn, "")
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	s, err := metastore.Open(context.Background(), dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n, distinct int
	if err := s.QueryRow(context.Background(), `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != distinct {
		t.Fatalf("schema_migrations has %d rows for %d versions", n, distinct)
	}
}

func TestSQLiteConcurrentOpen(t *testing.T) {
	testConcurrentOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "steward.db"))
}

func TestPostgresConcurrentOpen(t *testing.T) {
	testConcurrentOpen(t, pgtest.Start(t))
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	for _, dsn := range []string{"mysql://x", "file:x.db", "postgres:/x"} {
		if s, err := metastore.Open(context.Background(), dsn, t.TempDir()); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}
