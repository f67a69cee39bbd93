package metastore_test

import (
	"testing"

	"github.com/stewardhq/steward/internal/metastore/metastoretest"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

func TestMain(m *testing.M) {
	if crashChild() { // never returns true: the child runs until killed
		return
	}
	pgtest.Main(m)
}

func TestPostgres(t *testing.T) {
	metastoretest.Run(t, metastoretest.Opener(func(t *testing.T) string { return pgtest.Start(t) }))
}
