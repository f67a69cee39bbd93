package policy

import "testing"

// TestPatternFastPath checks that the string-comparison fast paths agree
// with the general segment matcher.
func TestPatternFastPath(t *testing.T) {
	pats := []struct {
		s    string
		sep  byte
		rec  bool
		fast fastKind
	}{
		{"s3://b", '/', false, fastExact},
		{"s3://b/k/x.parquet", '/', false, fastExact},
		{"s3://b/", '/', false, fastExact},
		{"s3://b//k", '/', false, fastExact},
		{"s3://b/k", '/', true, fastPrefix},
		{"s3://b/k/**", '/', false, fastPrefix},
		{"s3://b/k/**/**", '/', false, fastPrefix},
		{"s3://b/**/x", '/', false, fastNone},
		{"s3://**", '/', false, fastNone},
		{"s3://b/*", '/', false, fastNone},
		{"s3://b/{USER}/**", '/', false, fastNone},
		{"ns.s.t", '.', false, fastExact},
		{"ns.s.**", '.', false, fastPrefix},
		{"ns.s.*", '.', false, fastNone},
	}
	paths := []string{"", "b", "b/", "bb", "b/k", "b/kk", "b/k/", "b/k/x.parquet", "b/k/x.parquet/y", "b//k", "b/alice/k",
		"ns", "ns.s", "ns.s.t", "ns.s.t.u", "ns.ss", "ns.s."}
	for _, tc := range pats {
		p, err := compilePattern(tc.s, tc.sep, tc.rec)
		if err != nil {
			t.Fatalf("%s: %v", tc.s, err)
		}
		if p.fast != tc.fast {
			t.Errorf("%s: fast = %d, want %d", tc.s, p.fast, tc.fast)
		}
		for _, path := range paths {
			got, want := p.match(path, "alice"), matchSegs(p.segs, path, false, "alice", p.sep)
			if got != want {
				t.Errorf("%s on %q: fast path %v, segments %v", tc.s, path, got, want)
			}
		}
	}
}

func FuzzPatternFastPath(f *testing.F) {
	f.Add("s3://b/k/**", "b/k/x", false)
	f.Add("s3://b/k", "b/k", true)
	f.Add("ns.s.t", "ns.s.t", false)
	f.Fuzz(func(t *testing.T, pat, path string, rec bool) {
		for _, sep := range []byte{'/', '.'} {
			p, err := compilePattern(pat, sep, rec && sep == '/')
			if err != nil {
				continue
			}
			if got, want := p.match(path, "u"), matchSegs(p.segs, path, false, "u", p.sep); got != want {
				t.Fatalf("%q on %q: fast path %v, segments %v", pat, path, got, want)
			}
		}
	})
}
