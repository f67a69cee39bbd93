package catalog

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// facetCount returns the count of value in r's facet name (0 if absent).
func facetCount(r SearchResult, name, value string) int {
	for _, f := range r.Facets[name] {
		if f.Value == value {
			return f.Count
		}
	}
	return 0
}

func hitNames(r SearchResult) []string {
	var out []string
	for _, h := range r.Hits {
		out = append(out, h.Dataset.Name)
	}
	slices.Sort(out)
	return out
}

// Search filters and facets use effective tags: a table made from C4
// data with a pii.email column is found by classification=C4 and
// tag=pii.email, and counted in the facets, by whoever may discover it
// (group risk, its owner), and stays invisible to anyone else; its hit
// shows what it inherits. A lineage change or a change of the dataset is
// in the filters at the next search.
func TestSearchFiltersUseEffectiveTags(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, benchDecider(t))
	inh := newFakeInheritance()
	s.SetInheritance(inh)
	register(t, s, Dataset{Namespace: "s3://bank", Name: "risk/exposures", Owners: []string{"carol"}, Description: "credit exposures", Classification: "C4",
		Tags: []Tag{{Name: "pii"}}, Schema: []Column{{Name: "email", Type: "VARCHAR", Tags: []Tag{{Name: "pii.email"}}}}})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "bob/exposure_copy", Owners: []string{"bob"}, Description: "derived exposures", Classification: "C2",
		Schema: []Column{{Name: "email", Type: "VARCHAR"}}})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "ops/ledger", Owners: []string{"dave"}, Description: "ledger", Classification: "C2"})
	copyKey := Key{"s3://bank", "bob/exposure_copy"}
	const src = "s3://bank/risk/exposures"
	inh.set(copyKey,
		DatasetInheritedTag{Name: "classification", Value: "C4", Classification: "C4", Origin: src, From: src},
		DatasetInheritedTag{Name: "pii", Origin: src, From: src},
		DatasetInheritedTag{Name: "pii.email", Column: "email", Origin: src, OriginColumn: "email", From: src},
		DatasetInheritedTag{Name: "gdpr.erasure", Origin: src, From: src}, // a tag no catalog dataset has
	)

	alice, bob, rita := Viewer{User: "alice"}, Viewer{User: "bob"}, Viewer{User: "rita", Groups: []string{"risk"}}
	cases := []struct {
		name   string
		v      Viewer
		q      Query
		want   []string
		facets map[[2]string]int // (facet, value) -> count
	}{
		{"risk C4", rita, Query{Classification: "C4"}, []string{"bob/exposure_copy", "risk/exposures"},
			map[[2]string]int{{"classification", "C4"}: 2, {"classification", "C2"}: 0, {"tag", "pii"}: 2}},
		{"risk pii.email", rita, Query{Tags: []string{"pii.email"}}, []string{"bob/exposure_copy", "risk/exposures"}, nil},
		{"risk pii.email with text", rita, Query{Text: "exposures", Tags: []string{"pii.email", "pii"}}, []string{"bob/exposure_copy", "risk/exposures"}, nil},
		{"risk lineage-only tag", rita, Query{Tags: []string{"gdpr.erasure"}}, []string{"bob/exposure_copy"},
			map[[2]string]int{{"tag", "gdpr.erasure"}: 1}},
		{"risk all", rita, Query{}, []string{"bob/exposure_copy", "ops/ledger", "risk/exposures"},
			map[[2]string]int{{"classification", "C4"}: 2, {"classification", "C2"}: 1, {"tag", "pii"}: 2, {"tag", "pii.email"}: 1, {"tag", "classification"}: 0}},
		{"risk own C2 is effective C4", rita, Query{Classification: "C2"}, []string{"ops/ledger"}, nil},
		{"owner C4", bob, Query{Classification: "C4"}, []string{"bob/exposure_copy"}, map[[2]string]int{{"classification", "C4"}: 1}},
		{"owner pii.email", bob, Query{Tags: []string{"pii.email"}}, []string{"bob/exposure_copy"}, nil},
		{"alice C4", alice, Query{Classification: "C4"}, nil, map[[2]string]int{{"classification", "C4"}: 0}},
		{"alice pii.email", alice, Query{Tags: []string{"pii.email"}}, nil, nil},
		{"alice lineage-only tag", alice, Query{Tags: []string{"gdpr.erasure"}}, nil, map[[2]string]int{{"tag", "gdpr.erasure"}: 0}},
		{"alice all", alice, Query{}, []string{"ops/ledger"},
			map[[2]string]int{{"classification", "C4"}: 0, {"classification", "C2"}: 1, {"tag", "pii"}: 0, {"tag", "pii.email"}: 0}},
		{"admin C4", admin, Query{Classification: "C4"}, []string{"bob/exposure_copy", "risk/exposures"}, nil},
	}
	for _, driver := range []int{driverMax, 0} {
		s.Index.driverMax = driver // 0: tag lists become a bitset over the scan
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := s.Search(c.v, c.q)
				if got := hitNames(r); !slices.Equal(got, c.want) || r.Total != len(c.want) {
					t.Errorf("hits %v (total %d), want %v", got, r.Total, c.want)
				}
				for fv, n := range c.facets {
					if got := facetCount(r, fv[0], fv[1]); got != n {
						t.Errorf("facet %s=%s counts %d, want %d (%+v)", fv[0], fv[1], got, n, r.Facets[fv[0]])
					}
				}
			})
		}
	}

	// The hit is marked like the dataset view; the index's copy is not.
	r := s.Search(rita, Query{Tags: []string{"pii.email"}, Text: "derived"})
	if len(r.Hits) != 1 {
		t.Fatalf("hits %v", hitNames(r))
	}
	h := r.Hits[0]
	if h.EffectiveClassification != "C4" || h.Dataset.EffectiveClassification != "C4" || len(h.Dataset.InheritedTags) != 4 || h.Dataset.InheritedTags[2].Column != "email" {
		t.Errorf("hit %+v, dataset view fields %q %+v", h, h.Dataset.EffectiveClassification, h.Dataset.InheritedTags)
	}
	if d, _ := s.Index.Get(copyKey); d == nil || d.InheritedTags != nil || d.EffectiveClassification != "" {
		t.Errorf("the indexed dataset was modified: %+v", d)
	}
	if r := s.Search(rita, Query{Tags: []string{"pii"}, Text: "ledger"}); len(r.Hits) != 0 {
		t.Errorf("a dataset that inherits nothing is marked: %+v", r.Hits)
	}

	// The dataset changes (a new document): still found.
	if _, err := s.Edit(ctx, bob, copyKey.Namespace, copyKey.Name, 0, func(d *Dataset) error { d.Description = "derived exposures, edited"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := hitNames(s.Search(rita, Query{Classification: "C4", Text: "edited"})); !slices.Equal(got, []string{"bob/exposure_copy"}) {
		t.Errorf("after an edit: %v", got)
	}
	// Lineage drops the inheritance: the copy is C2 with no tags again.
	inh.set(copyKey)
	for _, c := range []struct {
		q    Query
		want []string
	}{
		{Query{Classification: "C4"}, []string{"risk/exposures"}},
		{Query{Tags: []string{"pii.email"}}, []string{"risk/exposures"}},
		{Query{Tags: []string{"gdpr.erasure"}}, nil},
		{Query{Classification: "C2"}, []string{"bob/exposure_copy", "ops/ledger"}},
	} {
		if got := hitNames(s.Search(rita, c.q)); !slices.Equal(got, c.want) {
			t.Errorf("%+v after lineage dropped: %v, want %v", c.q, got, c.want)
		}
	}
	if got := hitNames(s.Search(alice, Query{Classification: "C2"})); !slices.Equal(got, []string{"bob/exposure_copy", "ops/ledger"}) {
		t.Errorf("alice after lineage dropped: %v", got)
	}

	// What it inherits changes (the source went C3), then its own
	// classification does: each is in the filters at the next search.
	inh.set(copyKey, DatasetInheritedTag{Name: "classification", Value: "C4", Classification: "C4", Origin: src, From: src})
	if got := hitNames(s.Search(rita, Query{Classification: "C4"})); !slices.Equal(got, []string{"bob/exposure_copy", "risk/exposures"}) {
		t.Errorf("C4 once inherited again: %v", got)
	}
	inh.set(copyKey, DatasetInheritedTag{Name: "classification", Value: "C3", Classification: "C3", Origin: src, From: src},
		DatasetInheritedTag{Name: "pii.email", Column: "email", Origin: src, From: src})
	inh.set(Key{"s3://bank", "ops/ledger"}, DatasetInheritedTag{Name: "gold"}) // another dataset changes too
	classOf := func(q Query) []string { t.Helper(); return hitNames(s.Search(rita, q)) }
	if got := classOf(Query{Classification: "C3"}); !slices.Equal(got, []string{"bob/exposure_copy"}) {
		t.Errorf("C3 after the source went C3: %v", got)
	}
	if got := classOf(Query{Classification: "C4"}); !slices.Equal(got, []string{"risk/exposures"}) {
		t.Errorf("C4 after the source went C3: %v", got)
	}
	inh.set(Key{"s3://bank", "ops/ledger"}) // a lineage change elsewhere keeps what the copy inherits
	if got := classOf(Query{Classification: "C3", Tags: []string{"pii.email"}}); !slices.Equal(got, []string{"bob/exposure_copy"}) {
		t.Errorf("C3 pii.email after a change elsewhere: %v", got)
	}
	if _, err := s.Edit(ctx, bob, copyKey.Namespace, copyKey.Name, 0, func(d *Dataset) error { d.Classification = "C4"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := classOf(Query{Classification: "C4"}); !slices.Equal(got, []string{"bob/exposure_copy", "risk/exposures"}) {
		t.Errorf("C4 after the copy's own classification went C4: %v", got)
	}
	if got := classOf(Query{Classification: "C3"}); len(got) != 0 {
		t.Errorf("C3 after the copy's own classification went C4: %v", got)
	}
}

// BenchmarkSearchOverlay measures what the first search after a lineage
// or catalog change adds for effective filters and facets: rebuilding the
// effective tags of the datasets that inherit, one in a hundred as in
// BenchmarkSearchInherited. "full": nothing derived before (a catalog
// change of every inheriting dataset, or an Inheritance without stamps);
// "lineage-changed": a lineage version whose stamps are unchanged but
// for one dataset (what a CTAS or an OpenLineage run does);
// "lineage-unchanged": a lineage version that changed no inheriting
// dataset.
//
//	STEWARD_BENCH_DATASETS=100000 go test ./internal/catalog/ -run '^$' -bench 'SearchOverlay' -count 5
func BenchmarkSearchOverlay(b *testing.B) {
	ix := buildBenchIndex(b, benchSize(1_000_000))
	inh := newFakeInheritance()
	var first Key
	for id := 0; id < len(ix.docs); id += 100 {
		if d := &ix.docs[id]; d.live {
			k := Key{ix.nameOf[d.ns], d.name}
			inh.m[k] = []DatasetInheritedTag{{Name: "classification", Value: "C4", Classification: "C4"}, {Name: "pii", Column: "email"}}
			inh.stamps[k] = uint64(id + 1)
			first = k
		}
	}
	ix.inherit = inh
	b.Cleanup(func() { ix.inherit = nil; ix.ov.Store(nil) })
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		var ov *inhOverlay
		for b.Loop() {
			ix.ov.Store(nil)
			ov = ix.buildOverlay(1)
		}
		b.ReportMetric(float64(len(ov.docs)), "inheriting")
	})
	b.Run("lineage-unchanged", func(b *testing.B) {
		b.ReportAllocs()
		ix.ov.Store(ix.buildOverlay(1))
		for i := 0; b.Loop(); i++ {
			ix.ov.Store(ix.buildOverlay(int64(i + 2)))
		}
	})
	b.Run("lineage-changed", func(b *testing.B) {
		b.ReportAllocs()
		ix.ov.Store(ix.buildOverlay(1))
		for i := 0; b.Loop(); i++ {
			inh.stamps[first] = uint64(len(ix.docs) + i + 1)
			ix.ov.Store(ix.buildOverlay(int64(i + 2)))
		}
	})
}

// Searches running while lineage and the catalog change see a consistent
// overlay (run with -race): a dataset inheriting C4 is found by
// classification=C4 whenever lineage says so at the time of the search.
func TestSearchOverlayConcurrent(t *testing.T) {
	s := newTestService(t, benchDecider(t))
	inh := newFakeInheritance()
	s.SetInheritance(inh)
	for _, n := range []string{"a", "b", "c", "d"} {
		register(t, s, Dataset{Namespace: "s3://bank", Name: "derived/" + n, Description: "derived", Classification: "C2"})
	}
	c4 := DatasetInheritedTag{Name: "classification", Value: "C4", Classification: "C4"}
	stable := Key{"s3://bank", "derived/a"}
	inh.set(stable, c4, DatasetInheritedTag{Name: "pii.email"})
	rita := Viewer{User: "rita", Groups: []string{"risk"}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // lineage and catalog changes
		defer close(done)
		ctx := context.Background()
		for i := range 200 {
			k := Key{"s3://bank", "derived/" + string(rune('b'+i%3))}
			if i%2 == 0 {
				inh.set(k, c4)
			} else {
				inh.set(k)
			}
			if i%10 == 0 {
				if _, err := s.Edit(ctx, admin, "s3://bank", "derived/d", 0, func(d *Dataset) error { d.Description += "."; return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, q := range []Query{{Classification: "C4"}, {Tags: []string{"pii.email"}}} {
					if !slices.Contains(hitNames(s.Search(rita, q)), stable.Name) {
						t.Errorf("%+v: the stable derived dataset is missing", q)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
