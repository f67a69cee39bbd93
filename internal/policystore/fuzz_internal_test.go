package policystore

import (
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

func FuzzOwnerPattern(f *testing.F) {
	for _, s := range []string{"s3://mortgages/**", "s3://b/p/*/x", "dataset:ns.*", "table:a.b.?", "s3://", "table:", "s3://b/[x]", "s3://**/**/**/**/**/**"} {
		f.Add(s, "mortgages/loans/x")
	}
	f.Fuzz(func(t *testing.T, pat, name string) {
		op, err := parseOwnerPattern(pat)
		if err != nil {
			if steward.KindOf(err) != steward.EInvalid {
				t.Fatalf("kind %s", steward.KindOf(err))
			}
			return
		}
		op.match(op.kind, name)
		op.specificity()
	})
}

func FuzzRequestTarget(f *testing.F) {
	for _, s := range []string{"s3://b/p/**", "s3://b", "dataset:a.b", "table:a.b", "table:a.b#c", "s3://b//x", "s3://b/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rt, err := parseRequestTarget(s)
		if err != nil {
			if steward.KindOf(err) != steward.EInvalid {
				t.Fatalf("kind %s", steward.KindOf(err))
			}
			return
		}
		// What a request names must be a valid grant.
		r := &AccessRequest{ID: "x", Requester: "alice", Accesses: []string{"read"}}
		if _, err := policy.Compile([]*policy.Policy{grantPolicy(r, rt, "bob", time.Unix(0, 0), time.Unix(3600, 0))}, policy.Options{}); err != nil && !strings.Contains(err.Error(), "validity") {
			t.Fatalf("target %q does not compile as a grant: %v", s, err)
		}
	})
}
