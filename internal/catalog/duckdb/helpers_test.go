package duckdb

import (
	"context"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/metastore"
)

var timeFar = time.Now().Add(time.Hour)

// catalogStore is a catalog store on a fresh embedded metastore.
func catalogStore(t *testing.T) *catalog.Store {
	t.Helper()
	db, err := metastore.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return catalog.NewStore(db)
}
