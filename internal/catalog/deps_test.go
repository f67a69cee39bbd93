package catalog

import (
	"os/exec"
	"strings"
	"testing"
)

// The catalog domain links no DuckDB: only internal/catalog/duckdb does, so
// that the API, the gateway and the policy engine stay free of cgo.
func TestNoDuckDB(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(strings.ToLower(p), "duckdb") {
			t.Errorf("internal/catalog depends on %s", p)
		}
	}
}
