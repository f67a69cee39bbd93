package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/catalog"
)

// The catalog's discover decision and dataset view use the effective
// tags: a table bob makes with SQL from his C4 credit exposures is not
// found by alice (search, dataset show) but is by bob, whose view shows
// the inherited C4 and where it comes from; once the source is
// reclassified C2 alice finds it. An OpenLineage job's output made from
// C4 data is hidden the same way.
func TestCatalogSeesInheritedClassification(t *testing.T) {
	s := start(t)
	carol, alice, bob := newCLI(t, s), newCLI(t, s), newCLI(t, s)
	carol.login("carol")
	alice.login("alice")
	bob.login("bob")
	carol.must(`policies:
  - id: exposures-bob
    resources:
      tables: ["mortgages.risk.credit_exposures"]
    allow:
      - users: [bob]
        accesses: [select, discover]
`, "policy", "apply", "-f", "-")
	eventually(t, "credit exposures crawled", func() bool {
		_, _, code := bob.run("", "sql", "-c", "SELECT count(*) FROM mortgages.risk.credit_exposures")
		return code == 0
	})

	const source = "s3://mortgages/risk/credit_exposures"
	const table = "s3://home/bob/exposure_copy"
	bob.must("", "sql", "-c", "CREATE TABLE home.bob.exposure_copy AS SELECT * FROM mortgages.risk.credit_exposures")

	finds := func(c *steward, words, ref string) bool {
		t.Helper()
		var r catalog.SearchResult
		out := c.must("", "search", words, "-o", "json")
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("search: %v\n%s", err, out)
		}
		for _, h := range r.Hits {
			if catalog.Ref(h.Dataset.Namespace, h.Dataset.Name) == ref {
				return true
			}
		}
		return false
	}
	shows := func(c *steward, ref string) bool {
		t.Helper()
		_, errs, code := c.run("", "dataset", "show", ref)
		if code != 0 && !strings.Contains(errs, "not found") {
			t.Fatalf("dataset show %s: exit %d: %s", ref, code, errs)
		}
		return code == 0
	}

	// At once: lineage is recorded before the table is in the catalog.
	if finds(alice, "exposure copy", table) || shows(alice, table) {
		t.Error("alice finds or sees bob's table made from C4 data")
	}
	if !finds(bob, "exposure copy", table) {
		t.Error("bob does not find his table")
	}
	d := showDataset(t, bob, table)
	if d.Classification != "" || d.EffectiveClassification != "C4" {
		t.Errorf("bob's view: own classification %q, effective %q", d.Classification, d.EffectiveClassification)
	}
	fromSource := false
	for _, it := range d.InheritedTags {
		fromSource = fromSource || (it.Origin == source && it.Classification == "C4" && strings.HasPrefix(it.Job, "steward:sql/home.bob.exposure_copy/"))
	}
	if !fromSource {
		t.Errorf("inherited tags do not name the source: %+v", d.InheritedTags)
	}
	text := bob.must("", "dataset", "show", table)
	if !strings.Contains(text, "Effective classification:") || !strings.Contains(text, "C4 (inherited through lineage)") || !strings.Contains(text, source) {
		t.Errorf("dataset show:\n%s", text)
	}
	if out := bob.must("", "search", "exposure", "copy"); !strings.Contains(out, "C4*") {
		t.Errorf("bob's search does not mark the inherited classification:\n%s", out)
	}

	// An OpenLineage job from the exposures into a dataset bob owns.
	carol.must("", "dataset", "register", "s3://reports/risk/summary", "--owner", "bob", "--description", "exposure summary report")
	if !finds(alice, "exposure summary", "s3://reports/risk/summary") {
		t.Fatal("alice does not find the report before lineage says what it is made of")
	}
	ev := `{"eventType":"COMPLETE","eventTime":"2026-01-01T00:00:00Z","producer":"https://example.com/p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
 "run":{"runId":"0191e5a1-0000-7000-8000-0000000000c4"},"job":{"namespace":"etl","name":"exposure_summary"},
 "inputs":[{"namespace":"s3://mortgages","name":"risk/credit_exposures"}],
 "outputs":[{"namespace":"s3://reports","name":"risk/summary"}]}`
	f := filepath.Join(t.TempDir(), "ev.json")
	if err := os.WriteFile(f, []byte(ev), 0o600); err != nil {
		t.Fatal(err)
	}
	carol.must("", "lineage", "post", f)
	if finds(alice, "exposure summary", "s3://reports/risk/summary") || shows(alice, "s3://reports/risk/summary") {
		t.Error("alice finds or sees the output of a job that read C4 data")
	}
	if !finds(bob, "exposure summary", "s3://reports/risk/summary") {
		t.Error("bob does not find the report he owns")
	}
	if d := showDataset(t, bob, "s3://reports/risk/summary"); d.EffectiveClassification != "C4" || len(d.InheritedTags) == 0 || !strings.Contains(d.InheritedTags[0].Job, "etl:exposure_summary") {
		t.Errorf("report view: effective %q, inherited %+v", d.EffectiveClassification, d.InheritedTags)
	}

	// The source's classification goes down: both follow within the
	// catalog-to-lineage sync.
	bob.must("", "dataset", "edit", source, "--classification", "C2")
	eventually(t, "alice finds the copy once its source is C2", func() bool {
		return finds(alice, "exposure copy", table) && shows(alice, table)
	})
	eventually(t, "alice finds the report once its source is C2", func() bool {
		return finds(alice, "exposure summary", "s3://reports/risk/summary")
	})
	if d := showDataset(t, alice, table); d.EffectiveClassification != "C2" {
		t.Errorf("alice's view after the drop: effective %q, inherited %+v", d.EffectiveClassification, d.InheritedTags)
	}
}
