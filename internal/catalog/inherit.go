package catalog

import (
	"context"
	"slices"

	"github.com/stewardhq/steward/internal/policy"
)

// Inherited tags. A dataset's effective tags are its own (the catalog's)
// plus what it inherits from the data it was made from (lineage: SQL
// CREATE TABLE AS, S3 copies, OpenLineage jobs), and its effective
// classification is the highest of both, as in Apache Atlas's propagated
// classifications. The discover decision (search, lists, Get,
// recommendations, bookmarks) is taken on the effective tags, so a table
// made from C4 data is as hidden as its source; the dataset view shows
// what is inherited and from where. Search filters (classification=,
// tag=) and facets use the same effective tags and classification, so a
// derived copy of C4 or pii.email data is found and counted with its
// source by whoever may discover it.
//
// The catalog does not know lineage: the server gives it an Inheritance
// (SetInheritance). Search asks it only for the datasets whose discover
// decision is not cached; after a lineage change (a new inheritance
// version) the next search checks each cached decision it meets with one
// lookup and decides afresh only where something is inherited (visMemo),
// so a lineage change is seen by the next search, at once. For filters
// and facets the index keeps the effective tags of the datasets that
// inherit something (inhOverlay, search_inherit.go), rebuilt by the first
// search after a lineage or catalog change.

// Inheritance says what datasets inherit through lineage. Implementations
// answer from memory: PolicyTags is called during searches.
type Inheritance interface {
	// Version changes whenever what any dataset inherits may have
	// changed; it is read before the answers it covers.
	Version() int64
	// PolicyTags returns the tags lineage holds for the dataset (its
	// columns' included) as policies see them, and their highest
	// classification; nothing for a dataset lineage does not know.
	PolicyTags(namespace, name string) ([]policy.Tag, policy.Classification)
	// Inherited returns the dataset's inherited tags with their
	// provenance, for the dataset view.
	Inherited(ctx context.Context, namespace, name string) ([]DatasetInheritedTag, error)
	// Inheriting lists the datasets for which PolicyTags may say more
	// than their own catalog tags (they inherit something, or lineage
	// holds tags set on them elsewhere); for any other dataset it adds
	// nothing. The search index reads it once per Version to filter and
	// count by effective tags (see inhOverlay).
	Inheriting() []InheritingDataset
}

// InheritingDataset is a dataset Inheritance.Inheriting lists. Stamp
// changes whenever what PolicyTags says of it may have changed, and is
// unique to that state of that dataset, so the search index asks
// PolicyTags again only for changed ones and keeps everything when no
// stamp changed; 0 means unknown (always ask).
type InheritingDataset struct {
	Key
	Stamp uint64
}

// classificationTag is the tag lineage carries a classification as (the
// catalog's classification, an OpenLineage "classification" tag). Search
// shows it as the effective classification, not as a tag.
const classificationTag = "classification"

// DatasetInheritedTag is a tag a dataset has because of where its data came
// from, with its provenance.
type DatasetInheritedTag struct {
	Name           string `json:"name"`
	Value          string `json:"value,omitempty"`
	Classification string `json:"classification,omitempty" doc:"C1..C4 if the tag carries a classification."`
	Column         string `json:"column,omitempty" doc:"The column of this dataset that carries the tag; empty for the dataset itself."`
	Origin         string `json:"origin,omitempty" doc:"NAMESPACE/NAME of the dataset whose own tag this is."`
	OriginColumn   string `json:"origin_column,omitempty"`
	From           string `json:"from,omitempty" doc:"NAMESPACE/NAME of the dataset of the last hop."`
	Job            string `json:"job,omitempty" doc:"NAMESPACE:NAME of the job of the last hop."`
	Reason         string `json:"reason,omitempty" doc:"Why, in words."`
}

// SetInheritance makes the discover decision and the dataset view use
// effective tags (own plus inherited). Call before serving.
func (s *Service) SetInheritance(inh Inheritance) {
	s.Inherit = inh
	s.Index.inherit = inh
}

// CanDiscover is the discovery rule on d's effective tags: its own and
// what it inherits through the service's Inheritance.
func (s *Service) CanDiscover(v Viewer, d *Dataset) bool {
	if v.Admin || v.Owns(d) {
		return true
	}
	tags, level := effective(s.Inherit, d.Namespace, d.Name, d.PolicyTags(), d.Level())
	return discover(s.Decider, v, level, PolicyName(d.Namespace, d.Name), tags)
}

// effective adds what (namespace, name) inherits to its own policy tags
// and classification. own is not modified.
func effective(inh Inheritance, namespace, name string, own []policy.Tag, level policy.Classification) ([]policy.Tag, policy.Classification) {
	if inh == nil {
		return own, level
	}
	lt, lc := inh.PolicyTags(namespace, name)
	switch {
	case len(own) == 0:
		own = lt
	case len(lt) > 0:
		own = append(slices.Clip(own), lt...)
	}
	return own, max(level, lc)
}

// withInherited fills d's view fields: its inherited tags and its
// effective classification (the highest of its own and the inherited).
func (s *Service) withInherited(ctx context.Context, d *Dataset) (*Dataset, error) {
	d.InheritedTags, d.EffectiveClassification = nil, d.Classification
	if s.Inherit == nil {
		return d, nil
	}
	inh, err := s.Inherit.Inherited(ctx, d.Namespace, d.Name)
	if err != nil {
		return nil, err
	}
	level := d.Level()
	for _, t := range inh {
		if c, ok := policy.ParseClassification(t.Classification); ok {
			level = max(level, c)
		}
	}
	d.InheritedTags, d.EffectiveClassification = inh, level.String()
	return d, nil
}
