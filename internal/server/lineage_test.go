package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLineageThroughCLI posts an OpenLineage event with the CLI, reads the
// graph and the explanation back: an output made from a PII column is C3.
func TestLineageThroughCLI(t *testing.T) {
	s := start(t)
	carol := newCLI(t, s)
	carol.login("carol")
	ev := `{"eventType":"START","eventTime":"2026-01-01T00:00:00Z","producer":"https://example.com/p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
 "run":{"runId":"0191e5a1-0000-7000-8000-00000000000b"},"job":{"namespace":"etl","name":"contacts"},
 "inputs":[{"namespace":"crm","name":"customers","facets":{"tags":{"_producer":"p","_schemaURL":"u","tags":[{"key":"PII","value":"C3","field":"email"}]}}}],
 "outputs":[{"namespace":"dw","name":"contacts"}]}`
	f := filepath.Join(t.TempDir(), "ev.json")
	if err := os.WriteFile(f, []byte(ev), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := carol.must("", "lineage", "post", f); !strings.Contains(out, "1 accepted") {
		t.Fatalf("post: %s", out)
	}
	out := carol.must("", "lineage", "dw:contacts", "--direction", "upstream")
	if !strings.Contains(out, "dataset:crm:customers") || !strings.Contains(out, "job:etl:contacts") {
		t.Fatalf("graph:\n%s", out)
	}
	out = carol.must("", "lineage", "explain", "dw:contacts")
	if !strings.Contains(out, "dw:contacts: C3") || !strings.Contains(out, "column email of crm:customers") {
		t.Fatalf("explain:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"eventType":"START"}`), 0o600)
	if _, errs, code := carol.run("", "lineage", "post", bad); code == 0 || !strings.Contains(errs, "missing propert") {
		t.Fatalf("bad event: %d %s", code, errs)
	}
}
