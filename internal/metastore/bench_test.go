package metastore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

// BenchmarkIdentity measures the identity store on both backends:
//
//	go test -run '^$' -bench Identity ./internal/metastore/
func BenchmarkIdentity(b *testing.B) {
	backends := []struct {
		name string
		dsn  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "steward.db") }},
		{"postgres", func(b *testing.B) string { return pgtest.Start(b) }},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := metastore.Open(ctx, be.dsn(b), "")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			for _, g := range []string{"eng", "admins"} {
				if err := s.CreateGroup(ctx, &steward.Group{Name: g}); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 100 {
				u := &steward.User{Username: fmt.Sprintf("seed%03d", i), Email: "x@example.com", Roles: []string{"r"}, Groups: []string{"eng", "admins"}}
				if err := s.CreateUser(ctx, u, "hash"); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("GetUser", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.GetUser(ctx, "seed042"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("PasswordHash", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.PasswordHash(ctx, "seed042"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("ListUsers100", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.ListUsers(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			n := 0
			b.Run("CreateUser", func(b *testing.B) {
				for b.Loop() {
					n++
					if err := s.CreateUser(ctx, &steward.User{Username: fmt.Sprintf("new%d", n), Groups: []string{"eng"}}, "hash"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
