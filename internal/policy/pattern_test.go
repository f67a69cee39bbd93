package policy

import (
	"fmt"
	"hash/maphash"
	"slices"
	"testing"
)

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
		{"ns.s.t*", '.', false, fastNone},
		{"ns.*.t", '.', false, fastNone},
		{"ns.s.**.t", '.', false, fastNone},
		{"s3://b/k/*.parquet", '/', false, fastNone},
		{"s3://b/k/**/x", '/', false, fastNone},
		{"s3://b/*/x/**", '/', false, fastNone},
		{"s3://b/k//*", '/', false, fastNone},
	}
	paths := []string{"", "b", "b/", "bb", "b/k", "b/kk", "b/k/", "b/k/x.parquet", "b/k/x.parquet/y", "b//k", "b/alice/k",
		"ns", "ns.s", "ns.s.t", "ns.s.t.u", "ns.ss", "ns.s.", "ns.s.tt", "ns.x.t", "ns.s.a.t", "ns.s.t.t",
		"b/k/", "b/k//", "b/k//a", "b/k/a/x", "b/k/x", "b/q/x/y", "b/q/x"}
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

// TestFrozenTrie checks that the frozen trie collects exactly what the
// trie it was built from collects.
func TestFrozenTrie(t *testing.T) {
	srcs := []string{"s3://b", "s3://b/**", "s3://b/k/**", "s3://b/k/*.parquet", "s3://b/{USER}/**", "s3://b/{USER}",
		"s3://b/{USER}/x/**", "s3://**", "s3://c/*/d", "s3://b//e", "s3://b/k/x.parquet"}
	var tr trie
	for i, s := range srcs {
		p, err := compilePattern(s, '/', false)
		if err != nil {
			t.Fatal(err)
		}
		tr.insert(p, int32(i))
	}
	f := freeze(&tr, maphash.MakeSeed())
	paths := []string{"", "b", "b/", "b/k", "b/k/x.parquet", "b/alice", "b/alice/x", "b/alice/x/y", "b/bob/x", "c/q/d", "b//e", "z", "b/{USER}/x", "b/{USER}"}
	for _, user := range []string{"", "alice", "k"} {
		for _, path := range paths {
			want := tr.collect(path, user, '/', nil)
			got := f.collect(path, user, '/', nil)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%q as %q: frozen %v, trie %v", path, user, got, want)
			}
		}
	}
	var empty trie
	if got := freeze(&empty, maphash.MakeSeed()); len(got.collect("b/k", "u", '/', nil)) != 0 {
		t.Error("empty frozen trie collects")
	}
}

// TestIndexedMatchAgrees checks that what the index proves about a
// candidate's resource agrees with matching the resource in full.
func TestIndexedMatchAgrees(t *testing.T) {
	paths := []string{"s3://b/**", "s3://b/k", "s3://b/k/*", "s3://b/k/*.parquet", "s3://b/*", "s3://b/k/**", "s3://b/{USER}/*", "s3://b//*"}
	tables := []string{"ns.s.*", "ns.s.t", "ns.*", "ns.s.t*", "ns.s.**", "x.*"}
	var ps []*Policy
	for i, p := range paths {
		ps = append(ps, &Policy{ID: fmt.Sprintf("p%d", i), Enabled: true, Resources: ResourceSpec{Paths: []string{p}},
			Allow: []Item{{Groups: []string{"g"}, Accesses: []Access{AccessRead}}}})
		ps = append(ps, &Policy{ID: fmt.Sprintf("r%d", i), Enabled: true, Resources: ResourceSpec{Paths: []string{p}, Recursive: true},
			Allow: []Item{{Groups: []string{"g"}, Accesses: []Access{AccessRead}}}})
	}
	colSets := [][]string{nil, {"c"}, {"c*", "x"}, {"*"}, {"*_id"}, {"c?"}, {"{USER}"}}
	for i, tb := range tables {
		for j, cols := range colSets {
			ps = append(ps, &Policy{ID: fmt.Sprintf("t%d-%d", i, j), Enabled: true, Resources: ResourceSpec{Tables: []string{tb}, Columns: cols},
				Allow: []Item{{Groups: []string{"g"}, Accesses: []Access{AccessSelect}}}})
		}
	}
	for i, tags := range [][]TagMatch{{{Name: "pii"}}, {{Name: "pii"}, {MinClassification: C3}}, {{Name: "pii", Attrs: map[string]string{"type": "email"}}}, {{MinClassification: C2}}} {
		ps = append(ps, &Policy{ID: fmt.Sprintf("tag%d", i), Enabled: true, Tags: tags,
			Allow: []Item{{Groups: []string{"g"}, Accesses: []Access{AccessSelect, AccessRead}}}})
	}
	e, err := Compile(ps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	proved := map[proofKind]int{}
	var reqs []Request
	for _, p := range []string{"b", "b/", "b/k", "b/k/", "b/k/x", "b/k/x.parquet", "b/k/x/y", "b/alice/x", "b/alice/x/y", "b//x", "b//x/y", "c/k"} {
		reqs = append(reqs, Request{User: "alice", Resource: Resource{Kind: ResourceObject, Path: p}})
	}
	for _, n := range []string{"ns", "ns.s", "ns.s.", "ns.s.t", "ns.s.tt", "ns.s.t.c", "ns.x", "x.y", "x.y.z"} {
		for _, col := range []string{"", "c", "cc", "x", "user_id", "alice", "d"} {
			reqs = append(reqs, Request{User: "alice", Resource: Resource{Kind: ResourceTable, Name: n, Column: col}})
		}
	}
	for i := range reqs {
		switch i % 4 {
		case 0:
			reqs[i].Tags = []Tag{{Name: "pii", Attrs: map[string]string{"type": "email"}}}
		case 1:
			reqs[i].Tags = []Tag{{Name: "pii"}}
			reqs[i].Classification = C3
		case 2:
			reqs[i].Classification = C4 + 1 // invalid: nothing is proved for it
		}
	}
	for _, req := range reqs {
		for _, ci := range e.access.collect(&req, nil, nil) {
			cp, h := &e.slab[ci], &e.hot[ci]
			want, _ := cp.applies(&req, false, false)
			got, _ := e.appliesTo(cp, &req, h, false, false)
			if _, ok := e.indexedMatch(h, &req); ok {
				proved[h.proof]++
			}
			if got != want {
				t.Errorf("%s on %s: indexed %v, full %v", cp.p.ID, req.Resource, got, want)
			}
		}
	}
	for k := proofPrefix; k <= proofTags; k++ {
		if proved[k] == 0 {
			t.Errorf("no candidate was proved by the index with proof kind %d", k)
		}
	}
}
