package policystore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/policystore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

// BenchmarkVersion is the refresher's poll: one single-row query.
func BenchmarkVersion(b *testing.B) {
	run := func(b *testing.B, dsn string) {
		s := newStoreB(b, dsn)
		ctx := context.Background()
		b.ResetTimer()
		for b.Loop() {
			if _, err := s.Version(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("sqlite", func(b *testing.B) { run(b, "sqlite:"+filepath.Join(b.TempDir(), "s.db")) })
	b.Run("postgres", func(b *testing.B) { run(b, pgtest.Start(b)) })
}

// BenchmarkRefresh1000 loads and compiles a set of 1000 policies, what a
// replica does once per change.
func BenchmarkRefresh1000(b *testing.B) {
	ctx := context.Background()
	s := newStoreB(b, "sqlite:"+filepath.Join(b.TempDir(), "s.db"))
	var f strings.Builder
	f.WriteString("policies:\n")
	for i := range 1000 {
		fmt.Fprintf(&f, "  - id: p%d\n    resources: {paths: [\"s3://bucket%d/**\"]}\n    allow: [{groups: [g%d], accesses: [read, list]}]\n", i, i, i%50)
	}
	if _, err := s.ApplyFile(ctx, "big.yaml", []byte(f.String()), policystore.ApplyOptions{Actor: "bench"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		h := policystore.NewHolder(s, nil)
		if ok, err := h.Refresh(ctx); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func newStoreB(b *testing.B, dsn string) *policystore.Store {
	b.Helper()
	db, err := metastoreOpen(b, dsn)
	if err != nil {
		b.Fatal(err)
	}
	return policystore.New(db)
}
