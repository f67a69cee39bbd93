package catalog

import (
	"context"
	"sync"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// fakeInheritance is lineage as the catalog sees it: per dataset, the
// inherited tags, with a version bumped on every change.
type fakeInheritance struct {
	mu     sync.RWMutex
	ver    int64
	m      map[Key][]DatasetInheritedTag
	stamps map[Key]uint64 // the version of each dataset's last set (0: unknown)
}

func newFakeInheritance() *fakeInheritance {
	return &fakeInheritance{m: map[Key][]DatasetInheritedTag{}, stamps: map[Key]uint64{}}
}

func (f *fakeInheritance) set(k Key, tags ...DatasetInheritedTag) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ver++
	f.stamps[k] = uint64(f.ver)
	if len(tags) == 0 {
		delete(f.m, k)
		return
	}
	f.m[k] = tags
}

func (f *fakeInheritance) Version() int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.ver
}

func (f *fakeInheritance) PolicyTags(namespace, name string) ([]policy.Tag, policy.Classification) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var tags []policy.Tag
	level := policy.Unclassified
	for _, t := range f.m[Key{namespace, name}] {
		tags = append(tags, policy.Tag{Name: t.Name})
		if c, ok := policy.ParseClassification(t.Classification); ok {
			level = max(level, c)
		}
	}
	return tags, level
}

func (f *fakeInheritance) Inheriting() []InheritingDataset {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]InheritingDataset, 0, len(f.m))
	for k := range f.m {
		out = append(out, InheritingDataset{k, f.stamps[k]})
	}
	return out
}

func (f *fakeInheritance) Inherited(_ context.Context, namespace, name string) ([]DatasetInheritedTag, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return append([]DatasetInheritedTag(nil), f.m[Key{namespace, name}]...), nil
}

// A dataset's discover decision and view follow what it inherits: a
// table made from C4 data is hidden like its source, from search and Get,
// until the inheritance goes; its owner sees it with the inherited
// classification and where it comes from.
func TestDiscoverInherited(t *testing.T) {
	ctx := context.Background()
	for _, dec := range []struct {
		name string
		d    Decider
	}{{"engine", benchDecider(t)}, {"no policies", nil}} {
		t.Run(dec.name, func(t *testing.T) {
			s := newTestService(t, dec.d)
			inh := newFakeInheritance()
			s.SetInheritance(inh)
			register(t, s, Dataset{Namespace: "s3://bank", Name: "bob/exposure_copy", Owners: []string{"bob"}, Description: "derived exposures", Classification: "C2"})
			register(t, s, Dataset{Namespace: "s3://bank", Name: "risk/exposures", Owners: []string{"carol"}, Description: "credit exposures", Classification: "C4"})
			k := Key{"s3://bank", "bob/exposure_copy"}
			c4 := DatasetInheritedTag{Name: "classification", Value: "C4", Classification: "C4", Origin: "s3://bank/risk/exposures", From: "s3://bank/risk/exposures", Job: "steward:sql/x", Reason: "classification=C4 (C4) because s3://bank:risk/exposures flows here"}

			alice, bob, rita := Viewer{User: "alice"}, Viewer{User: "bob"}, Viewer{User: "rita", Groups: []string{"risk"}}
			sees := func(t *testing.T, v Viewer) bool {
				t.Helper()
				r := s.Search(v, Query{Text: "exposures", Limit: 10})
				found := false
				for _, h := range r.Hits {
					found = found || h.Dataset.Name == k.Name
				}
				_, err := s.Get(ctx, v, k.Namespace, k.Name)
				if (err == nil) != found {
					t.Errorf("%s: search finds it %v, Get says %v", v.User, found, err)
				}
				if err != nil && steward.KindOf(err) != steward.ENotFound {
					t.Errorf("%s: Get: %v, want not found", v.User, err)
				}
				return found
			}
			if !sees(t, alice) {
				t.Fatal("alice does not see a C2 dataset that inherits nothing")
			}
			inh.set(k, c4) // alice's decision is cached; the version drops it
			if sees(t, alice) {
				t.Error("alice finds a dataset that inherits C4")
			}
			if !sees(t, bob) {
				t.Error("bob does not find his own dataset")
			}
			if rita := sees(t, rita); rita != (dec.d != nil) {
				t.Errorf("rita (C4 discover allowed by policy) sees it: %v", rita)
			}
			d, err := s.Get(ctx, bob, k.Namespace, k.Name)
			if err != nil {
				t.Fatal(err)
			}
			if d.Classification != "C2" || d.EffectiveClassification != "C4" || len(d.InheritedTags) != 1 || d.InheritedTags[0].Origin != "s3://bank/risk/exposures" {
				t.Errorf("bob's view: own %q effective %q inherited %+v", d.Classification, d.EffectiveClassification, d.InheritedTags)
			}
			r := s.Search(bob, Query{Text: "exposure copy"})
			if len(r.Hits) == 0 || r.Hits[0].Dataset.Name != k.Name || r.Hits[0].EffectiveClassification != "C4" {
				t.Errorf("bob's hits %+v", r.Hits)
			}
			// Editing does not store the view, and returns it.
			d, err = s.Edit(ctx, bob, k.Namespace, k.Name, 0, func(d *Dataset) error { d.Description += "."; return nil })
			if err != nil || d.EffectiveClassification != "C4" {
				t.Fatalf("edit: %v, %+v", err, d)
			}
			if st, _ := s.Store.Get(ctx, k.Namespace, k.Name); len(st.InheritedTags) != 0 || st.EffectiveClassification != "" {
				t.Errorf("the view was stored: %+v", st)
			}

			inh.set(k) // the source's classification is removed
			if !sees(t, alice) {
				t.Error("alice does not find it once nothing is inherited")
			}
			if d, _ := s.Get(ctx, alice, k.Namespace, k.Name); d == nil || d.EffectiveClassification != "C2" || d.InheritedTags != nil {
				t.Errorf("alice's view %+v", d)
			}

			// An inherited tag that a policy hides.
			inh.set(k, DatasetInheritedTag{Name: "secret", Origin: "s3://bank/risk/exposures"})
			if dec.d != nil && sees(t, alice) {
				t.Error("alice finds a dataset that inherits a tag hidden from her")
			}
			if !sees(t, bob) {
				t.Error("bob does not find his own dataset")
			}
		})
	}
}

// What a client sends in the view fields is not stored.
func TestViewFieldsNotStored(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	register(t, s, Dataset{Namespace: "s3://bank", Name: "x", EffectiveClassification: "C1", InheritedTags: []DatasetInheritedTag{{Name: "fake"}}})
	d, err := s.Store.Get(ctx, "s3://bank", "x")
	if err != nil {
		t.Fatal(err)
	}
	if d.EffectiveClassification != "" || d.InheritedTags != nil {
		t.Errorf("stored %+v", d)
	}
	if d, _ := s.Get(ctx, admin, "s3://bank", "x"); d.EffectiveClassification != "" || d.InheritedTags != nil {
		t.Errorf("view without inheritance %+v", d)
	}
}

// countingDecider counts the decisions the engine takes.
type countingDecider struct {
	*policy.Engine
	n int
}

func (c *countingDecider) Decide(r *policy.Request, d *policy.Decision) {
	c.n++
	c.Engine.Decide(r, d)
}

// A lineage change keeps the cached decisions of datasets whose
// inheritance did not change (one lookup each, no policy decision) and
// decides afresh those that now inherit something.
func TestLineageChangeKeepsUnaffectedDecisions(t *testing.T) {
	dec := &countingDecider{Engine: benchDecider(t)}
	s := newTestService(t, dec)
	inh := newFakeInheritance()
	s.SetInheritance(inh)
	for _, n := range []string{"a", "b", "c"} {
		register(t, s, Dataset{Namespace: "s3://bank", Name: "ledger/" + n, Description: "ledger", Classification: "C2"})
	}
	alice := Viewer{User: "alice"}
	total := func() int { t.Helper(); return s.Search(alice, Query{Text: "ledger"}).Total }
	if got := total(); got != 3 {
		t.Fatalf("alice sees %d, want 3", got)
	}
	before := dec.n
	inh.set(Key{"s3://other", "x"}, DatasetInheritedTag{Name: "classification", Classification: "C4"})
	if got := total(); got != 3 || dec.n != before {
		t.Errorf("after an unrelated lineage change: %d visible, %d new decisions; want 3 and 0", got, dec.n-before)
	}
	inh.set(Key{"s3://bank", "ledger/b"}, DatasetInheritedTag{Name: "classification", Classification: "C4"})
	if got := total(); got != 2 || dec.n != before+1 {
		t.Errorf("after ledger/b inherits C4: %d visible, %d new decisions; want 2 and 1", got, dec.n-before)
	}
	if got := total(); got != 2 || dec.n != before+1 {
		t.Errorf("again: %d visible, %d new decisions; want 2 and 1", got, dec.n-before)
	}
}
