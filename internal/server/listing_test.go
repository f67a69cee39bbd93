package server

import (
	"context"
	"testing"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/metastore"
)

// TestDatasetListing: the list of datasets is read once per catalog
// version and read again when the version moves.
func TestDatasetListing(t *testing.T) {
	ctx := context.Background()
	ms, err := metastore.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	st := catalog.NewStore(ms)
	version := int64(1)
	l := &DatasetListing{Version: func() int64 { return version }}
	if _, err := st.Create(ctx, &catalog.Dataset{Namespace: "s3://bank", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	first, err := l.list(ctx, st)
	if err != nil || len(first) != 1 {
		t.Fatalf("first listing: %v %d", err, len(first))
	}
	if _, err := st.Create(ctx, &catalog.Dataset{Namespace: "s3://bank", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if same, _ := l.list(ctx, st); len(same) != 1 {
		t.Errorf("same version read the store again: %d datasets", len(same))
	}
	version = 2
	if next, _ := l.list(ctx, st); len(next) != 2 {
		t.Errorf("a new version kept the old list: %d datasets", len(next))
	}
	var none *DatasetListing
	if all, err := none.list(ctx, st); err != nil || len(all) != 2 {
		t.Errorf("no listing cache reads the store: %v %d", err, len(all))
	}
}
