package cli

import (
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/catalog"
)

func TestParseTag(t *testing.T) {
	for _, tc := range []struct {
		in    string
		name  string
		attrs int
		bad   bool
	}{
		{"finance", "finance", 0, false},
		{"PII:type=email", "PII", 1, false},
		{"PII:type=email,level=high", "PII", 2, false},
		{"", "", 0, true},
		{"PII:type", "", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			tg, err := parseTag(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("err %v", err)
			}
			if !tc.bad && (tg.Name != tc.name || len(tg.Attrs) != tc.attrs) {
				t.Errorf("got %+v", tg)
			}
		})
	}
}

func TestDatasetID(t *testing.T) {
	id, err := datasetID("s3://bank/sales/mortgages")
	if err != nil || id != catalog.ID("s3://bank", "sales/mortgages") {
		t.Fatalf("%q %v", id, err)
	}
	if id2, err := datasetID(id); err != nil || id2 != id {
		t.Errorf("an ID passes through: %q %v", id2, err)
	}
	if _, err := datasetID("nonsense!"); err == nil {
		t.Error("nonsense accepted")
	}
}

// The search table marks what a hit inherits through lineage: its
// classification and its tags, each once, beside its own.
func TestSearchTableShowsInherited(t *testing.T) {
	copyDS := &catalog.Dataset{Namespace: "s3://home", Name: "bob/copy", Classification: "C2",
		Tags: []catalog.Tag{{Name: "finance"}, {Name: "pii.email"}},
		InheritedTags: []catalog.DatasetInheritedTag{{Name: "pii.email", Column: "customer_id"}, {Name: "pii.iban"},
			{Name: "pii.iban", Column: "account"}}}
	plain := &catalog.Dataset{Namespace: "s3://bank", Name: "sales/orders", Classification: "C2"}
	out := render(searchTable(&catalog.SearchResult{Total: 2, Hits: []catalog.SearchHit{
		{Dataset: copyDS, EffectiveClassification: "C4"}, {Dataset: plain, EffectiveClassification: "C2"}}}))
	lines := strings.Split(out, "\n")
	if len(lines) < 4 {
		t.Fatalf("output:\n%s", out)
	}
	row := lines[1]
	for _, want := range []string{"C4*", "finance pii.email pii.iban*"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	if strings.Contains(row, "pii.email*") || strings.Count(row, "pii.iban") != 1 {
		t.Errorf("row %q repeats a tag", row)
	}
	if strings.Contains(lines[2], "*") {
		t.Errorf("a dataset that inherits nothing is marked: %q", lines[2])
	}
	if !strings.Contains(out, "* inherited through lineage") {
		t.Errorf("no footnote:\n%s", out)
	}
}
