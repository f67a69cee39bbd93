package catalog

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/policy"
)

// smallIndex builds an index of n synthetic datasets (see corpus) and the
// legacy index over the same datasets.
func smallIndex(t testing.TB, n int) (*Index, *legacyIndex, map[Key]*Dataset) {
	t.Helper()
	c := newCorpus()
	ix := NewIndex(nil, nil)
	ix.now = func() time.Time { return c.now }
	old := newLegacyIndex(nil, nil)
	old.now = ix.now
	byKey := map[Key]*Dataset{}
	var ds []*Dataset
	for i := 0; i < n; i++ {
		d := c.dataset(i)
		ds = append(ds, d)
		old.add(d)
		byKey[Key{d.Namespace, d.Name}] = d
	}
	ix.apply(ds, nil, 1)
	return ix, old, byKey
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-4*math.Max(math.Abs(a), math.Abs(b)) }

// The impact-ordered search with early termination returns what the
// exhaustive one (the legacy index) returns: the same scores in the same
// order, the same totals when exact, and a lower bound when approximate.
func TestSearchMatchesExhaustive(t *testing.T) {
	ix, old, byKey := smallIndex(t, 3000)
	ix.countBound = 50 // so that common words stop early
	dec := benchDecider(t)
	for _, driver := range []int{driverMax, 10} {
		ix.driverMax = driver // 10: filters are scanned through a bitset
		compareExhaustive(t, ix, old, byKey, dec)
	}
}

// The same with effective tags: one dataset in 37 inherits C4, pii and a
// tag no dataset has of its own, one in 53 the tag "secret" (hidden by
// policy from all but auditors); filters, facets and discover follow
// them in both indexes.
func TestSearchMatchesExhaustiveInherited(t *testing.T) {
	ix, old, byKey := smallIndex(t, 3000)
	ix.countBound = 50
	inh := newFakeInheritance()
	i := 0
	for k := range byKey {
		switch {
		case i%37 == 0:
			inh.set(k, DatasetInheritedTag{Name: "classification", Value: "C4", Classification: "C4"}, DatasetInheritedTag{Name: "pii"},
				DatasetInheritedTag{Name: "lineage.only", Column: "x"})
		case i%53 == 0:
			inh.set(k, DatasetInheritedTag{Name: "secret"})
		}
		i++
	}
	ix.inherit, old.inherit = inh, inh
	dec := benchDecider(t)
	for _, driver := range []int{driverMax, 10} {
		ix.driverMax = driver
		compareExhaustive(t, ix, old, byKey, dec)
	}
}

func compareExhaustive(t *testing.T, ix *Index, old *legacyIndex, byKey map[Key]*Dataset, dec Decider) {
	queries := []Query{
		{Text: "customer"}, {Text: "account balance"}, {Text: "mortgage belgium"}, {Text: "mortage"},
		{Text: "fraud score ireland"}, {Text: "payment", Classification: "C2"}, {Text: "loan", Tags: []string{"pii"}},
		{Text: "risk", Owner: "user7"}, {Text: "collateral", Format: FormatCSV}, {Format: FormatJSON},
		{Text: "customer", Limit: 5, Offset: 10}, {Classification: "C4"}, {Text: "balance", Namespace: "s3://bucket3"},
		{Tags: []string{"lineage.only"}}, {Text: "customer", Classification: "C4"}, {Tags: []string{"pii"}, Classification: "C4"},
		{Text: "account", Tags: []string{"secret"}},
	}
	viewers := append([]Viewer{{User: "root", Admin: true}}, benchViewers...)
	for _, v := range viewers {
		for _, q := range queries {
			t.Run(strconv.Itoa(ix.driverMax)+"/"+v.User+"/"+q.Text+"/"+q.Classification+string(q.Format)+q.Owner, func(t *testing.T) {
				got := ix.Search(dec, v, q)
				want := old.Search(dec, v, q)
				if got.Approximate {
					if got.Total < ix.countBound || got.Total > want.Total {
						t.Errorf("approximate total %d, want between %d and %d", got.Total, ix.countBound, want.Total)
					}
				} else if got.Total != want.Total {
					t.Errorf("total %d, want %d", got.Total, want.Total)
				}
				if len(got.Hits) != len(want.Hits) {
					t.Fatalf("%d hits, want %d", len(got.Hits), len(want.Hits))
				}
				for i := range got.Hits {
					if !near(got.Hits[i].Score, want.Hits[i].Score) {
						t.Errorf("hit %d: score %v (%s), want %v (%s)", i, got.Hits[i].Score, got.Hits[i].Dataset.Name, want.Hits[i].Score, want.Hits[i].Dataset.Name)
					}
					d := byKey[Key{got.Hits[i].Dataset.Namespace, got.Hits[i].Dataset.Name}]
					if !CanDiscover(dec, v, d) {
						t.Errorf("hit %s is not discoverable by %s", d.Name, v.User)
					}
				}
				sum := 0
				for _, f := range got.Facets["classification"] {
					sum += f.Count
				}
				if !got.Approximate && sum > got.Total {
					t.Errorf("classification facets count %d datasets, total %d", sum, got.Total)
				}
				if !got.Approximate {
					for _, name := range []string{"classification", "format", "tag", "owner"} {
						if !sameFacets(got.Facets[name], want.Facets[name]) {
							t.Errorf("%s facets %v, want %v", name, got.Facets[name], want.Facets[name])
						}
					}
				}
			})
		}
	}
}

func sameFacets(a, b []SearchFacet) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, f := range a {
		m[f.Value] = f.Count
	}
	for _, f := range b {
		if m[f.Value] != f.Count {
			return false
		}
	}
	return true
}

// A change is visible in the next search, including a change of what a
// viewer may discover (the cached decisions follow the dataset).
func TestSearchFollowsChanges(t *testing.T) {
	ix, _, _ := smallIndex(t, 500)
	dec := benchDecider(t)
	v := benchViewers[0] // not in the risk group: no C4
	d := &Dataset{Namespace: "s3://bank", Name: "zz/unique_dataset", Description: "quokka figures", Owners: []string{"bob"}, Classification: "C2"}
	ix.apply([]*Dataset{d}, nil, 2)
	find := func() int { return ix.Search(dec, v, Query{Text: "quokka"}).Total }
	if n := find(); n != 1 {
		t.Fatalf("new dataset: %d hits", n)
	}
	c4 := *d
	c4.Classification = "C4"
	ix.apply([]*Dataset{&c4}, nil, 3)
	if n := find(); n != 0 {
		t.Errorf("after C4: %d hits, want 0", n)
	}
	if n := ix.Search(dec, Viewer{User: "bob"}, Query{Text: "quokka"}).Total; n != 1 {
		t.Errorf("owner: %d hits, want 1", n)
	}
	if n := ix.Search(dec, Viewer{User: "x", Groups: []string{"risk"}}, Query{Text: "quokka"}).Total; n != 1 {
		t.Errorf("risk group: %d hits, want 1", n)
	}
	back := *d
	back.Description = "wombat figures"
	ix.apply([]*Dataset{&back}, nil, 4)
	if n := find(); n != 0 {
		t.Errorf("old word still found: %d", n)
	}
	if n := ix.Search(dec, v, Query{Text: "wombat"}).Total; n != 1 {
		t.Errorf("new word: %d hits", n)
	}
	ix.apply(nil, []Key{{d.Namespace, d.Name}}, 5)
	if n := ix.Search(dec, v, Query{Text: "wombat"}).Total; n != 0 {
		t.Errorf("deleted: %d hits", n)
	}
	if _, ok := ix.Get(Key{d.Namespace, d.Name}); ok {
		t.Error("deleted dataset still in Get")
	}
	if ix.Len() != 500 {
		t.Errorf("len %d, want 500", ix.Len())
	}
}

// A new policy version drops the cached decisions.
func TestSearchPolicyVersion(t *testing.T) {
	ix, _, _ := smallIndex(t, 50)
	d := &Dataset{Namespace: "s3://bank", Name: "secret", Description: "platypus", Classification: "C4"}
	ix.apply([]*Dataset{d}, nil, 2)
	v := Viewer{User: "eve"}
	compile := func(ver int64, groups ...string) *policy.Engine {
		e, err := policy.Compile([]*policy.Policy{{ID: "c4", Kind: policy.KindAccess, Enabled: true, Tags: []policy.TagMatch{{MinClassification: policy.C4}},
			Allow: []policy.Item{{Users: []string{"eve"}, Groups: groups, Accesses: []policy.Access{policy.AccessDiscover}}}}}, policy.Options{Version: ver})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if n := ix.Search(compile(1), v, Query{Text: "platypus"}).Total; n != 1 {
		t.Fatalf("allowed: %d", n)
	}
	deny, err := policy.Compile(nil, policy.Options{Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := ix.Search(deny, v, Query{Text: "platypus"}).Total; n != 0 {
		t.Errorf("after the policy went: %d hits", n)
	}
}

// Hostile and odd query text is just text (also as a tag filter).
func FuzzSearchText(f *testing.F) {
	for _, s := range []string{"", "mortgage belgium", "\x00'; DROP TABLE x; --", "ééé", "a", "mortg", "zzzzzzzzzzzzzzzz",
		"\xff\xfe", "customer customer customer customer customer customer customer customer customer customer customer customer customer customer customer customer customer", "1234"} {
		f.Add(s, "C2")
	}
	ix, _, byKey := smallIndex(f, 300)
	dec := benchDecider(f)
	f.Fuzz(func(t *testing.T, text, class string) {
		for _, v := range benchViewers[:2] {
			r := ix.Search(dec, v, Query{Text: text, Classification: class, Tags: []string{text}, Limit: 7})
			if len(r.Hits) > 7 || r.Total < len(r.Hits) {
				t.Fatalf("%d hits, total %d", len(r.Hits), r.Total)
			}
			for _, h := range r.Hits {
				if !CanDiscover(dec, v, byKey[Key{h.Dataset.Namespace, h.Dataset.Name}]) {
					t.Fatalf("%s sees %s", v.User, h.Dataset.Name)
				}
			}
		}
	})
}

// Searches run concurrently with each other and with changes (run with
// -race to check).
func TestSearchConcurrent(t *testing.T) {
	ix, _, _ := smallIndex(t, 300)
	dec := benchDecider(t)
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				v := benchViewers[(w+i)%len(benchViewers)]
				ix.Search(dec, v, benchQueries[i%len(benchQueries)])
			}
		}()
	}
	c := newCorpus()
	for i := range 20 {
		d := c.dataset(i) // replaces the i-th dataset
		d.Description += " changed"
		ix.apply([]*Dataset{d}, nil, int64(10+i))
	}
	for range 4 {
		<-done
	}
	if r := ix.Search(dec, Viewer{User: "root", Admin: true}, Query{Text: "changed"}); r.Total != 20 {
		t.Errorf("changed: %d hits, want 20", r.Total)
	}
}
