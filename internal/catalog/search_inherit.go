package catalog

import (
	"context"
	"slices"

	"github.com/stewardhq/steward/internal/policy"
)

// Effective tags in search filters and facets.
//
// The index's own lists (tagDocs, docInfo.level) hold the catalog's own
// tags. What datasets inherit through lineage sits beside them in an
// inhOverlay: for each dataset the Inheritance lists (Inheriting), its
// effective classification and the names of its effective tags that its
// own lack, taken from effective() as the discover rule takes them (one
// source of truth), plus the reverse lists tag -> datasets. Filters
// (classification=, tag=) and facets read both, so a derived copy of C4
// or pii.email data is found and counted like its source.
//
// An overlay holds for one inheritance version and one generation of the
// index's document numbering; the first search after either changes
// rebuilds it from the list of inheriting datasets (the few derived ones,
// not the catalog), asking PolicyTags again only for those whose stamp or
// document changed. Searches in the meantime wait for it, so a lineage
// change is in filters and facets at once, as it is in the discover
// decision.

// inhOverlay is the effective tags of the datasets that inherit.
// Immutable once built.
type inhOverlay struct {
	ver   int64  // inheritance version
	gen   uint64 // Index.gen: the document numbering it refers to
	print uint64 // fingerprint of the Inheriting list it was built from
	// docs: doc ID -> what it has beyond its own tags.
	docs map[uint32]inhDoc
	// tagDocs: interned tag name -> docs that have it only through
	// lineage (disjoint from Index.tagDocs of the same name).
	tagDocs map[uint32][]uint32
	// Tag names the index has not interned get IDs from base on.
	base  uint32
	names map[string]uint32
	extra []string
}

type inhDoc struct {
	level policy.Classification // effective: own and inherited
	tags  []uint32              // effective tag names the own tags lack
	stamp uint64                // Inheritance's stamp it was derived at
	born  uint32                // docInfo.born it was derived for
}

// name returns the text of a tag name ID from the index or ov.
func (ix *Index) tagName(ov *inhOverlay, id uint32) string {
	if ov != nil && id >= ov.base {
		return ov.extra[id-ov.base]
	}
	return ix.nameOf[id]
}

// lookupName returns the ID of a tag name in the index or ov.
func (ix *Index) lookupName(ov *inhOverlay, s string) (uint32, bool) {
	if id, ok := ix.names[s]; ok {
		return id, true
	}
	if ov != nil {
		id, ok := ov.names[s]
		return id, ok
	}
	return 0, false
}

// overlay returns the current overlay, rebuilding it if lineage or the
// index changed since; nil without inheritance. Called with ix.mu held
// for reading.
func (ix *Index) overlay() *inhOverlay {
	if ix.inherit == nil {
		return nil
	}
	// Read before the answers it covers (see Inheritance.Version).
	ver := ix.inherit.Version()
	if ov := ix.ov.Load(); ov != nil && ov.ver == ver && ov.gen == ix.gen {
		return ov
	}
	ix.ovMu.Lock()
	defer ix.ovMu.Unlock()
	if ov := ix.ov.Load(); ov != nil && ov.ver == ver && ov.gen == ix.gen {
		return ov
	}
	ov := ix.buildOverlay(ver)
	ix.ov.Store(ov)
	return ov
}

// buildOverlay builds the overlay for inheritance version ver. What the
// previous overlay derived for a dataset is kept when neither the
// dataset (docInfo.born) nor what lineage says of it (the stamp) changed,
// so a lineage change costs a PolicyTags lookup only for the datasets it
// touched.
func (ix *Index) buildOverlay(ver int64) *inhOverlay {
	list := ix.inherit.Inheriting()
	prev := ix.ov.Load()
	fp := fingerprint(list)
	if prev != nil && prev.gen == ix.gen && fp != 0 && prev.print == fp {
		// Nothing that datasets inherit changed (a lineage change
		// elsewhere): the same overlay, for this version.
		ov := *prev
		ov.ver = ver
		return &ov
	}
	ov := &inhOverlay{ver: ver, gen: ix.gen, print: fp, docs: make(map[uint32]inhDoc, len(list)), tagDocs: map[uint32][]uint32{},
		base: uint32(len(ix.nameOf)), names: map[string]uint32{}}
	for _, x := range list {
		id, ok := ix.keys[x.Key]
		if !ok {
			continue
		}
		d := &ix.docs[id]
		od, ok := ix.reusable(prev, id, d, x.Stamp)
		if !ok {
			od = ix.derive(ov, x.Key, d)
			od.stamp, od.born = x.Stamp, d.born
		}
		for _, t := range od.tags {
			ov.tagDocs[t] = append(ov.tagDocs[t], id)
		}
		ov.docs[id] = od
	}
	return ov
}

// fingerprint identifies the list's (dataset, stamp) pairs: stamps are
// unique to one state of one dataset, so the sum of their hashes changes
// with any pair (0: a stamp is unknown).
func fingerprint(list []InheritingDataset) uint64 {
	h := uint64(len(list))*0x9e3779b97f4a7c15 + 1
	for _, x := range list {
		if x.Stamp == 0 {
			return 0
		}
		z := x.Stamp + 0x9e3779b97f4a7c15 // splitmix64
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		h += z ^ z>>31
	}
	if h == 0 {
		h = 1
	}
	return h
}

// reusable returns what prev derived for doc id if it still holds.
func (ix *Index) reusable(prev *inhOverlay, id uint32, d *docInfo, stamp uint64) (inhDoc, bool) {
	if prev == nil || stamp == 0 {
		return inhDoc{}, false
	}
	od, ok := prev.docs[id]
	if !ok || od.stamp != stamp || od.born != d.born {
		return inhDoc{}, false
	}
	for _, t := range od.tags {
		if t >= prev.base {
			return inhDoc{}, false // a name of prev's own: derive again
		}
	}
	return od, true
}

// derive computes doc d's effective classification and the names of the
// effective tags its own lack, from effective() as the discover rule
// does.
func (ix *Index) derive(ov *inhOverlay, k Key, d *docInfo) inhDoc {
	tags, level := effective(ix.inherit, k.Namespace, k.Name, nil, d.level)
	od := inhDoc{level: level}
	own := d.tags()
	for _, t := range tags {
		if t.Name == classificationTag {
			continue
		}
		nid, known := ix.lookupName(ov, t.Name)
		if known && nid < ov.base && slices.Contains(own, nid) {
			continue // its own
		}
		if !known {
			nid = ov.base + uint32(len(ov.extra))
			ov.names[t.Name] = nid
			ov.extra = append(ov.extra, t.Name)
		}
		if !slices.Contains(od.tags, nid) {
			od.tags = append(od.tags, nid)
		}
	}
	return od
}

// effLevel is doc id's effective classification.
func (e *eval) effLevel(id uint32, d *docInfo) policy.Classification {
	if e.ov != nil {
		if od, ok := e.ov.docs[id]; ok {
			return od.level
		}
	}
	return d.level
}

// hasTag says whether doc id has tag name t, own or through lineage.
func (e *eval) hasTag(id uint32, d *docInfo, t uint32) bool {
	if slices.Contains(d.tags(), t) {
		return true
	}
	if e.ov != nil {
		if od, ok := e.ov.docs[id]; ok {
			return slices.Contains(od.tags, t)
		}
	}
	return false
}

// inheritedTags returns the dataset-tag facet's extra names for doc id.
func (e *eval) inheritedTags(id uint32) []uint32 {
	if e.ov == nil {
		return nil
	}
	return e.ov.docs[id].tags
}

// viewOf returns the hit's dataset with the view fields the dataset view
// shows (inherited tags with their provenance, effective
// classification) when it inherits something; d itself otherwise.
func (ix *Index) viewOf(ov *inhOverlay, id uint32, d *Dataset) *Dataset {
	if ov == nil {
		return d
	}
	od, ok := ov.docs[id]
	if !ok {
		return d
	}
	inh, err := ix.inherit.Inherited(context.Background(), d.Namespace, d.Name)
	if err != nil {
		ix.log.Warn("catalog search: inherited tags unavailable for a hit", "dataset", Ref(d.Namespace, d.Name), "err", err)
		return d
	}
	c := *d
	c.InheritedTags, c.EffectiveClassification = inh, od.level.String()
	return &c
}
