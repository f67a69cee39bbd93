package lineage

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stewardhq/steward/internal/policy"
)

// Inheriting lists the datasets holding more than the catalog's tags: a
// copy of tagged data while the tag reaches it, a dataset with tags from
// another source; not a dataset with only catalog tags. A reload computes
// the same set.
func TestInheriting(t *testing.T) {
	ctx := context.Background()
	db := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "m.db"))
	s := newService(t, db)
	src, dst, api := DatasetKey{"s3://raw", "customers"}, DatasetKey{"s3://scratch", "copy"}, DatasetKey{"s3://x", "api"}
	stamps := map[DatasetKey]uint64{}
	sorted := func(s *Service) []DatasetKey {
		var l []DatasetKey
		for _, x := range s.Inheriting() {
			l = append(l, x.Key)
			if x.Stamp == 0 {
				t.Errorf("%v: no stamp", x.Key)
			}
			stamps[x.Key] = x.Stamp
		}
		slices.SortFunc(l, func(a, b DatasetKey) int { return cmpKey(a, b) })
		return l
	}
	check := func(s *Service, want ...DatasetKey) {
		t.Helper()
		if got := sorted(s); !slices.Equal(got, want) {
			t.Errorf("Inheriting() = %v, want %v", got, want)
		}
	}
	if err := s.SetTags(ctx, src.Namespace, src.Name, "email", "catalog", []LineageTag{{Name: "pii.email", Classification: policy.C4, Propagate: true}}); err != nil {
		t.Fatal(err)
	}
	check(s)
	if _, err := s.RecordCopy(ctx, nil, src, dst); err != nil {
		t.Fatal(err)
	}
	check(s, dst)
	if err := s.SetTags(ctx, api.Namespace, api.Name, "", "api", []LineageTag{{Name: "gold"}}); err != nil {
		t.Fatal(err)
	}
	check(s, dst, api)
	before := stamps[dst]
	if err := s.SetTags(ctx, api.Namespace, api.Name, "", "api", []LineageTag{{Name: "silver"}}); err != nil {
		t.Fatal(err)
	}
	check(s, dst, api)
	if stamps[dst] != before {
		t.Errorf("a change elsewhere changed the copy's stamp")
	}
	if err := s.SetTags(ctx, src.Namespace, src.Name, "email", "catalog", []LineageTag{{Name: "pii.email", Classification: policy.C3, Propagate: true}}); err != nil {
		t.Fatal(err)
	}
	check(s, dst, api)
	if stamps[dst] == before {
		t.Errorf("the copy's stamp did not change with what it inherits")
	}
	check(newService(t, db), dst, api)
	if err := s.SetTags(ctx, src.Namespace, src.Name, "email", "catalog", nil); err != nil {
		t.Fatal(err)
	}
	check(s, api)
}

func cmpKey(a, b DatasetKey) int {
	switch {
	case a.String() < b.String():
		return -1
	case a.String() > b.String():
		return 1
	}
	return 0
}
