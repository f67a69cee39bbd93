package cli

import (
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/stewardhq/steward/internal/catalog"
)

func render(fn func(*tabwriter.Writer)) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fn(tw)
	tw.Flush()
	return b.String()
}

func TestUsageText(t *testing.T) {
	u := &catalog.DatasetUsage{Namespace: "s3://bank", Name: "risk/mortgages", Days: 2, Reads: 5, Readers: 2, Popularity: 2.5,
		Daily:    []catalog.DailyReads{{Day: "2026-11-25"}, {Day: "2026-11-26", Reads: 5, Readers: 2}},
		TopUsers: []catalog.UserReads{{User: "alice", Reads: 4, Days: 1}, {User: "bob", Reads: 1, Days: 1}}}
	out := render(usageText(u))
	for _, want := range []string{"s3://bank/risk/mortgages", "5 reads by 2 readers", "alice  4", "2026-11-26  5      2        " + strings.Repeat("#", 40)} {
		if !strings.Contains(out, want) {
			t.Errorf("usage text lacks %q:\n%s", want, out)
		}
	}
}

func TestRecommendText(t *testing.T) {
	if out := render(recommendText(nil)); !strings.Contains(out, "No recommendations yet") {
		t.Errorf("empty: %s", out)
	}
	rs := []catalog.Recommendation{{Dataset: &catalog.Dataset{Namespace: "s3://bank", Name: "risk/rates", Classification: "C2"}, Score: 3,
		Reasons: []string{"used by 2 people in group risk", "often used together with s3://bank/risk/mortgages"}}}
	out := render(recommendText(rs))
	if !strings.Contains(out, "s3://bank/risk/rates") || !strings.Contains(out, "group risk; often used together") {
		t.Errorf("recommendations:\n%s", out)
	}
}
