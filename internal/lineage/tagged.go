package lineage

// The datasets whose effective tags say more than the catalog's own: the
// catalog's search index filters and counts by effective tags, and asks
// lineage for these (once per version) instead of every dataset it holds.

import "sync/atomic"

// catalogSource is the source of the tags the catalog gives lineage (the
// server's catalog-to-lineage sync).
const catalogSource = "catalog"

// InheritingDataset is a dataset Inheriting lists. Stamp changes whenever
// what PolicyTags says of the dataset may have changed (it is unique
// across graphs and reloads), so a reader can keep what it derived from
// an unchanged stamp.
type InheritingDataset struct {
	Key   DatasetKey
	Stamp uint64
}

// tagStamps numbers the recomputations of datasets' tags.
var tagStamps atomic.Uint64

// Inheriting returns the datasets that inherit tags through lineage (on
// the dataset or a column) or hold own tags from another source than the
// catalog (OpenLineage facets, the lineage API): those for which
// PolicyTags says more than the catalog's own tags. Unordered.
func (s *Service) Inheriting() []InheritingDataset {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]InheritingDataset, 0, len(s.g.tagged))
	for k, st := range s.g.tagged {
		out = append(out, InheritingDataset{k, st})
	}
	return out
}

// noteTagged updates the tagged set for the datasets of nodes whose tags
// propagate recomputed (every change of own or inherited tags goes through
// propagate, its nodes among the seeds).
func (g *graph) noteTagged(nodes []*node) {
	if g.tagged == nil {
		g.tagged = map[DatasetKey]uint64{}
	}
	var last *dsNode
	done := map[*dsNode]struct{}{}
	for _, n := range nodes {
		d := n.ds
		if d == last {
			continue
		}
		last = d
		if _, ok := done[d]; ok {
			continue
		}
		done[d] = struct{}{}
		if d.taggedBeyondCatalog() {
			g.tagged[d.key] = tagStamps.Add(1)
		} else {
			delete(g.tagged, d.key)
		}
	}
}

func (d *dsNode) taggedBeyondCatalog() bool {
	has := func(n *node) bool {
		if len(n.inh) > 0 {
			return true
		}
		for _, t := range n.own {
			if t.Source != catalogSource {
				return true
			}
		}
		return false
	}
	if has(d.n) {
		return true
	}
	for _, c := range d.cols {
		if has(c) {
			return true
		}
	}
	return false
}
