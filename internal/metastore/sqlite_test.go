package metastore_test

import (
	"path/filepath"
	"testing"

	"github.com/stewardhq/steward/internal/metastore/metastoretest"
)

func TestSQLite(t *testing.T) {
	metastoretest.Run(t, metastoretest.Opener(func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "steward.db")
	}))
}
