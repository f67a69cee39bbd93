package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

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

func (s *Server) syncDataset(ctx context.Context, d *catalog.Dataset, last map[string]string) error {
	level := d.Level()
	// Skip only what lineage holds now, not what this caller last gave
	// it: SQL writes sync their inputs too, and a skip on a stale memory
	// would leave lineage behind the catalog (a removed tag kept, or an
	// added one missing).
	have := map[string][]lineage.LineageTag{}
	for _, t := range s.lin.svc.OwnTags(ctx, d.Namespace, d.Name) {
		if t.Source == "catalog" {
			have[t.Field] = append(have[t.Field], t)
		}
	}
	set := func(field string, tags []lineage.LineageTag) error {
		key := d.Namespace + "\x00" + d.Name + "\x00" + field
		sig := signature(tags)
		if signature(have[field]) == sig {
			last[key] = sig
			return nil
		}
		if err := s.lin.svc.SetTags(ctx, d.Namespace, d.Name, field, "catalog", tags); err != nil {
			return err
		}
		last[key] = sig
		return nil
	}
	var own []lineage.LineageTag
	for _, t := range d.Tags {
		own = append(own, lineage.LineageTag{Name: t.Name, Value: t.Attrs["type"], Propagate: true})
	}
	if level != policy.Unclassified {
		// The dataset's classification travels as a tag of its own.
		own = append(own, lineage.LineageTag{Name: "classification", Value: level.String(), Classification: level, Propagate: true})
	}
	if err := set("", own); err != nil {
		return err
	}
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
		if err := set(c.Name, ct); err != nil {
			return err
		}
	}
	return nil
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
