package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/catalog"
)

// The demo as a new user tries it: alice searches and finds the mortgages
// first (also with a typo), sees the customers' e-mail column tagged after
// the crawl, and never sees bob's C4 exposures; bob does.
func TestCatalogDemo(t *testing.T) {
	s := start(t)
	alice, bob := newCLI(t, s), newCLI(t, s)
	alice.login("alice")
	bob.login("bob")
	search := func(c *steward, words ...string) catalog.SearchResult {
		t.Helper()
		var r catalog.SearchResult
		out := c.must("", append([]string{"search", "-o", "json"}, words...)...)
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		return r
	}
	for _, q := range [][]string{{"mortgage", "belgium"}, {"mortage"}} {
		r := search(alice, q...)
		if len(r.Hits) == 0 || r.Hits[0].Dataset.Name != "market/mortgages_by_country" {
			t.Errorf("alice searches %v: %+v", q, r.Hits)
		}
	}
	if r := search(alice, "exposures"); r.Total != 0 {
		t.Errorf("alice sees bob's C4 data: %+v", r.Hits)
	}
	if r := search(bob, "exposures"); r.Total != 1 {
		t.Errorf("bob does not see his C4 data: %+v", r.Hits)
	}
	// The crawl worker infers the customers' schema and tags the e-mail
	// column a moment after start.
	var d catalog.Dataset
	for i := 0; ; i++ {
		out := alice.must("", "dataset", "show", "s3://mortgages/retail/customers", "-o", "json")
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		if c := d.Column("email"); c != nil && catalog.HasTag(c.Tags, catalog.TagPII) {
			break
		}
		if i == 200 {
			t.Fatalf("customers not crawled and tagged: %+v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d.Classification != "C3" || d.RowCount != 200 || d.Owners[0] != "bob" {
		t.Errorf("customers: %+v", d)
	}
	text := alice.must("", "dataset", "show", "s3://mortgages/retail/customers")
	if !strings.Contains(text, "PII:type=email") {
		t.Errorf("show:\n%s", text)
	}
	if _, errs, code := alice.run("", "dataset", "edit", "s3://mortgages/retail/customers", "--description", "mine now"); code == 0 || !strings.Contains(errs, "owners") {
		t.Errorf("alice edits bob's dataset: %d %s", code, errs)
	}
	bob.must("", "dataset", "tag", "s3://mortgages/retail/customers", "gold")
	bob.must("", "dataset", "edit", "s3://mortgages/retail/customers", "--description", "Retail customers of the bank")
	if r := search(alice, "--tag", "gold"); r.Total != 1 {
		t.Errorf("tag filter: %+v", r)
	}
}
