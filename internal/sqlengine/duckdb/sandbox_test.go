package duckdb

import (
	"context"
	"testing"

	"github.com/stewardhq/steward/internal/sqlengine"
)

// TestSandboxSettings checks what each query's instance is given: the
// principal's memory and threads, external access off, configuration
// locked, and a database of its own (nothing one query made is seen by the
// next).
func TestSandboxSettings(t *testing.T) {
	b := New(nil)
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	setting := func(t *testing.T, in *instance, name string) string {
		t.Helper()
		var v string
		if err := in.conn.QueryRowContext(ctx, "SELECT current_setting(?)::VARCHAR", name).Scan(&v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	for _, tc := range []struct {
		name, memory, wantMem string
		threads               int
		wantThreads           string
	}{
		{"as configured", "4GB", "3.7 GiB", 2, "2"},
		{"binary units", "512MiB", "512.0 MiB", 1, "1"},
		{"unparsable falls back to the default", "lots", "953.6 MiB", 0, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &sqlengine.Run{Dir: t.TempDir(), Limits: sqlengine.Limits{Memory: tc.memory, Threads: tc.threads}}
			in, _, err := b.sandbox(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			defer b.release(in)
			for name, want := range map[string]string{
				"memory_limit": tc.wantMem, "threads": tc.wantThreads,
				"enable_external_access": "false", "lock_configuration": "true",
				"autoload_known_extensions": "false", "autoinstall_known_extensions": "false",
				"allow_community_extensions": "false", "allow_persistent_secrets": "false",
			} {
				if got := setting(t, in, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if _, err := in.conn.ExecContext(ctx, "CREATE TEMP TABLE leftover AS SELECT 1 AS x"); err != nil {
				t.Fatal(err)
			}
		})
	}
	in, _, err := b.sandbox(ctx, &sqlengine.Run{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.release(in)
	var n int
	if err := in.conn.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'leftover'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a fresh instance sees %d tables left by earlier queries", n)
	}
}

// TestViewTextCannotLoosenTheSandbox: a policy's filter or mask text is
// part of the view statements sent with the setup; the configuration is
// locked before them, so a filter that smuggles a SET fails the query
// instead of changing a setting.
func TestViewTextCannotLoosenTheSandbox(t *testing.T) {
	b := New(nil)
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	for _, filter := range []string{
		"true); SET lock_configuration=false; SELECT (true",
		"true); SET memory_limit='64GB'; SELECT (true",
	} {
		r := &sqlengine.Run{Dir: t.TempDir(), Views: []sqlengine.View{{Catalog: "bank", Schema: "main", Table: "t", Format: "csv",
			Columns: []sqlengine.ViewColumn{{Name: "x", Type: "INTEGER", Expr: `"x"`}}, Filters: []string{filter}}}}
		in, _, err := b.sandbox(ctx, r)
		if err == nil {
			b.release(in)
			t.Errorf("filter %q: the sandbox was built", filter)
		}
	}
}
