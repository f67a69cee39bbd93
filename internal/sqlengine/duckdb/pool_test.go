package duckdb

import (
	"context"
	"sync"
	"testing"
)

// TestPoolRefills checks the pool's bookkeeping: every instance serves
// one query, the pool is full again once the background work has
// settled, however the instances were taken (one at a time, or more at
// once than the pool holds), and Close returns with releases pending.
func TestPoolRefills(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		parallel int
	}{
		{"one at a time", 1},
		{"as many as the pool", PoolSize},
		{"more than the pool", PoolSize + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(nil)
			t.Cleanup(func() { b.Close() })
			seen := map[*instance]bool{}
			for round := range 3 {
				var ins []*instance
				for range tc.parallel {
					in, err := b.fresh(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if seen[in] {
						t.Fatalf("round %d: an instance served twice", round)
					}
					seen[in] = true
					ins = append(ins, in)
				}
				for i, in := range ins {
					// A never-used instance: nothing a previous query made.
					var n int
					if err := in.conn.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'mark'").Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n != 0 {
						t.Fatalf("round %d, instance %d: sees an earlier query's table", round, i)
					}
					if _, err := in.conn.ExecContext(ctx, "CREATE TABLE mark AS SELECT 1"); err != nil {
						t.Fatal(err)
					}
					b.release(in)
				}
				b.Settle()
				if got := len(b.pool); got != PoolSize {
					t.Fatalf("round %d: %d instances ready after settling, want %d", round, got, PoolSize)
				}
			}
		})
	}
}

// TestCloseWithReleasesPending closes the Backend while used instances
// are still being released and replaced from other goroutines.
func TestCloseWithReleasesPending(t *testing.T) {
	ctx := context.Background()
	b := New(nil)
	var wg sync.WaitGroup
	for range 4 {
		in, err := b.fresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { b.release(in) })
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Settle() // returns: nothing left in the background
	if len(b.pool) != 0 {
		t.Errorf("%d instances left open after Close", len(b.pool))
	}
}
