package cli

import (
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
