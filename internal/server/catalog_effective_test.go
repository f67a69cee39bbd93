package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/server"
)

// The catalog's discover decision and dataset view use the effective
// tags: a table bob makes with SQL from his C4 credit exposures is not
// found by alice (search, dataset show) but is by bob, whose view shows
// the inherited C4 and where it comes from; once the source is
// reclassified C2 alice finds it. An OpenLineage job's output made from
// C4 data is hidden the same way.
func TestCatalogSeesInheritedClassification(t *testing.T) {
	s := start(t)
	carol, alice, bob := bobOwnsExposures(t, s)
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

// Search filters and facets use effective tags too: bob's table made
// with SQL from his C4 credit exposures, whose customer_id column he
// tagged pii.email, is found by classification=C4 and tag=pii.email and
// counted in the C4 facet for bob, who may discover it; alice finds and
// counts neither.
func TestCatalogSearchFiltersSeeInheritedTags(t *testing.T) {
	s := start(t)
	_, alice, bob := bobOwnsExposures(t, s)
	const source = "s3://mortgages/risk/credit_exposures"
	const table = "s3://home/bob/exposure_copy"
	eventually(t, "credit exposures crawled and their column tagged", func() bool {
		_, _, code := bob.run("", "dataset", "tag", source, "pii.email", "--column", "customer_id")
		return code == 0
	})
	bob.must("", "sql", "-c", "CREATE TABLE home.bob.exposure_copy AS SELECT * FROM mortgages.risk.credit_exposures")

	search := func(c *steward, args ...string) *catalog.SearchResult {
		t.Helper()
		var r catalog.SearchResult
		out := c.must("", append([]string{"search", "-o", "json", "--limit", "100"}, args...)...)
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("search %v: %v\n%s", args, err, out)
		}
		return &r
	}
	hit := func(r *catalog.SearchResult, ref string) *catalog.SearchHit {
		for i, h := range r.Hits {
			if catalog.Ref(h.Dataset.Namespace, h.Dataset.Name) == ref {
				return &r.Hits[i]
			}
		}
		return nil
	}
	count := func(r *catalog.SearchResult, facet, value string) int {
		for _, f := range r.Facets[facet] {
			if f.Value == value {
				return f.Count
			}
		}
		return 0
	}

	for _, args := range [][]string{{"--classification", "C4"}, {"--tag", "pii.email"}, {"--tag", "pii.email", "--classification", "C4"}} {
		r := search(bob, args...)
		h := hit(r, table)
		if h == nil || hit(r, source) == nil {
			t.Errorf("bob's search %v does not find the copy and its source: %d hits", args, len(r.Hits))
			continue
		}
		if h.EffectiveClassification != "C4" || h.Dataset.EffectiveClassification != "C4" || len(h.Dataset.InheritedTags) == 0 {
			t.Errorf("bob's hit %v: effective %q / %q, inherited %+v", args, h.EffectiveClassification, h.Dataset.EffectiveClassification, h.Dataset.InheritedTags)
		}
		if n := count(r, "classification", "C4"); n != r.Total {
			t.Errorf("bob's search %v: C4 facet counts %d of %d", args, n, r.Total)
		}
	}
	if r := search(bob); hit(r, table) == nil || count(r, "classification", "C4") < 2 || count(r, "tag", "pii.email") < 1 {
		t.Errorf("bob's facets: %+v", r.Facets)
	}
	if r := search(bob, "--classification", "C2"); hit(r, table) != nil {
		t.Error("the copy (no own classification, C4 inherited) is found as C2")
	}
	for _, args := range [][]string{{"--classification", "C4"}, {"--tag", "pii.email"}, {}} {
		r := search(alice, args...)
		if hit(r, table) != nil || hit(r, source) != nil || count(r, "classification", "C4") != 0 || count(r, "tag", "pii.email") != 0 {
			t.Errorf("alice's search %v finds or counts C4 data: %d hits, facets %+v", args, len(r.Hits), r.Facets)
		}
	}
}

// bobOwnsExposures logs carol, alice and bob in and lets bob (alone)
// select and discover the demo's C4 credit exposures.
func bobOwnsExposures(t *testing.T, s *server.Server) (carol, alice, bob *steward) {
	t.Helper()
	carol, alice, bob = newCLI(t, s), newCLI(t, s), newCLI(t, s)
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
	return carol, alice, bob
}
