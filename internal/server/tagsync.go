package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/policy"
)

// syncCatalogTags feeds the catalog's own tags and classification into the
// lineage graph (source "catalog"), so that they propagate to every
// dataset derived from them. It follows the catalog version and touches
// lineage only for datasets whose tags changed.
func (s *Server) syncCatalogTags(ctx context.Context, wg *sync.WaitGroup) {
	if s.cat.svc == nil || s.lin.svc == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var seq int64
		last := map[string]string{} // dataset/column -> signature synced
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			changed, _, version, err := s.cat.svc.Store.Since(ctx, seq)
			if err == nil {
				ok := true
				for _, d := range changed {
					if err := s.syncDataset(ctx, d, last); err != nil {
						s.log.Warn("catalog tags not yet in lineage; will retry", "dataset", catalog.Ref(d.Namespace, d.Name), "err", err)
						ok = false
					}
				}
				if ok {
					seq = version
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// syncDataset gives lineage the catalog's own tags of d and its columns
// (source "catalog"), where lineage does not hold them already. Syncs
// run one at a time (the background loop and SQL writes, which sync
// their inputs first), and one that changes anything reads the dataset
// again under that lock: the background loop works from a snapshot, and
// an older snapshot must not overwrite what a newer sync gave lineage.
func (s *Server) syncDataset(ctx context.Context, d *catalog.Dataset, last map[string]string) error {
	s.lin.syncMu.Lock()
	defer s.lin.syncMu.Unlock()
	// Compare with what lineage holds now, not with what this caller last
	// gave it: another caller may have changed it since.
	byField := map[string][]lineage.LineageTag{}
	for _, t := range s.lin.svc.OwnTags(ctx, d.Namespace, d.Name) {
		if t.Source == "catalog" {
			byField[t.Field] = append(byField[t.Field], t)
		}
	}
	have := make(map[string]string, len(byField))
	for f, ts := range byField {
		have[f] = signature(ts)
	}
	want := catalogLineageTags(d)
	if slices.ContainsFunc(want, func(w fieldTags) bool { return have[w.field] != signature(w.tags) }) {
		// Something changes: take it from the catalog's newest state.
		nd, err := s.cat.svc.Store.Get(ctx, d.Namespace, d.Name)
		switch {
		case err == nil:
			d, want = nd, catalogLineageTags(nd)
		case steward.KindOf(err) != steward.ENotFound:
			return err
		}
	}
	for _, w := range want {
		sig := signature(w.tags)
		if have[w.field] != sig {
			if err := s.lin.svc.SetTags(ctx, d.Namespace, d.Name, w.field, "catalog", w.tags); err != nil {
				return err
			}
		}
		last[d.Namespace+"\x00"+d.Name+"\x00"+w.field] = sig
	}
	return nil
}

// fieldTags are the tags lineage should hold for one field ("" for the
// dataset) of a catalog dataset.
type fieldTags struct {
	field string
	tags  []lineage.LineageTag
}

// catalogLineageTags turns d's own tags and classification into lineage
// tags: the dataset's first, then each top-level column's.
func catalogLineageTags(d *catalog.Dataset) []fieldTags {
	level := d.Level()
	var own []lineage.LineageTag
	for _, t := range d.Tags {
		own = append(own, lineage.LineageTag{Name: t.Name, Value: t.Attrs["type"], Propagate: true})
	}
	if level != policy.Unclassified {
		// The dataset's classification travels as a tag of its own.
		own = append(own, lineage.LineageTag{Name: "classification", Value: level.String(), Classification: level, Propagate: true})
	}
	out := []fieldTags{{field: "", tags: own}}
	for _, c := range d.Schema {
		var ct []lineage.LineageTag
		for _, t := range c.Tags {
			lt := lineage.LineageTag{Name: t.Name, Value: t.Attrs["type"], Propagate: true}
			if strings.HasPrefix(t.Source, "rule:") {
				// A detection rule raised the dataset because of this
				// column: what it flows into is at least as restricted.
				lt.Classification = level
			}
			ct = append(ct, lt)
		}
		out = append(out, fieldTags{field: c.Name, tags: ct})
	}
	return out
}

func signature(ts []lineage.LineageTag) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%s=%s/%d/%t", t.Name, t.Value, t.Classification, t.Propagate)
	}
	sort.Strings(parts)
	// Lineage stores a repeated tag once: compare sets.
	return strings.Join(slices.Compact(parts), ";")
}
