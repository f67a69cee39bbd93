package sqlengine

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyFence keeps DuckDB (cgo, a heavy link) inside
// internal/sqlengine/duckdb: the policy engine and the SQL domain and
// protocol packages must not link it.
func TestDependencyFence(t *testing.T) {
	for _, pkg := range []string{"../policy", ".", "../pgwire"} {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "duckdb") {
					t.Errorf("%s links %s", pkg, l)
				}
			}
		})
	}
}

func TestSplitName(t *testing.T) {
	for _, tc := range []struct {
		in       string
		c, s, tb string
		ok       bool
	}{
		{"bank.sales.mortgages", "bank", "sales", "mortgages", true},
		{"bank.customers", "bank", "main", "customers", true},
		{"bank.a.b.c", "bank", "a", "b.c", true},
		{"x", "", "", "", false},
		{"a..b", "", "", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c, s, tb, ok := SplitName(tc.in)
			if ok != tc.ok || ok && (c != tc.c || s != tc.s || tb != tc.tb) {
				t.Errorf("got %q %q %q %v", c, s, tb, ok)
			}
		})
	}
}

func TestBelongs(t *testing.T) {
	for _, tc := range []struct {
		rel, format string
		want        bool
	}{
		{"part-0.parquet", "parquet", true},
		{"year=2024/month=01/p.parquet", "parquet", true},
		{"sub/p.parquet", "parquet", false},
		{"../x.parquet", "parquet", false},
		{"_SUCCESS", "parquet", false},
		{".hidden.parquet", "parquet", false},
		{"a.csv.gz", "csv", true},
		{"a.csv", "parquet", false},
		{"year=1/../../x.csv", "csv", false},
	} {
		t.Run(tc.rel, func(t *testing.T) {
			if got := belongs(tc.rel, tc.format); got != tc.want {
				t.Errorf("belongs(%q, %q) = %v", tc.rel, tc.format, got)
			}
		})
	}
}
