package policyfile

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/stewardhq/steward/internal/policy"
)

// canonical is a policy's JSON without its version.
func canonical(p *policy.Policy) ([]byte, error) {
	c := *p
	c.Version = 0
	return json.Marshal(&c)
}

// FuzzFormatRoundTrip: every file ParseFile accepts is written by
// Format so that ParseFile reads back the same policies.
func FuzzFormatRoundTrip(f *testing.F) {
	if b, err := os.ReadFile("../testdata/every_kind.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("policies:\n  - id: a\n    resources: {paths: [\"s3://b/**\"]}\n    allow: [{users: [x], accesses: [read]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := policy.ParseFile("f.yaml", data)
		if err != nil {
			return
		}
		out, err := Format(ps)
		if err != nil {
			t.Fatalf("Format: %v", err)
		}
		back, err := policy.ParseFile("out.yaml", out)
		if err != nil {
			t.Fatalf("reparse of\n%s\nfailed: %v", out, err)
		}
		if len(back) != len(ps) {
			t.Fatalf("%d policies became %d", len(ps), len(back))
		}
		for i := range ps {
			a, _ := canonical(ps[i])
			b, _ := canonical(back[i])
			if !bytes.Equal(a, b) {
				t.Fatalf("policy %q changed in the round trip:\n%s\n%s", ps[i].ID, a, b)
			}
		}
	})
}
