package server

// The catalog's view of lineage: what a dataset inherits from the data it
// was made from (SQL CREATE TABLE AS and INSERT, S3 copies, OpenLineage
// jobs) joins its own catalog tags in the catalog's discover decision
// (search, lists, dataset show, recommendations, bookmarks), in search
// filters and facets (classification=, tag=) and in the dataset view
// (inherited_tags, effective_classification), as the S3
// gateway and SQL already decide with them (tags.go, sql.go).

import (
	"context"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/policy"
)

var _ catalog.Inheritance = catalogInheritance{}

// catalogInheritance answers the catalog from the lineage graph in
// memory. Before lineage is wired (the demo seed runs first) nothing is
// inherited.
type catalogInheritance struct{ s *Server }

// Version implements catalog.Inheritance: lineage's version, which every
// change of the graph (here or, after Refresh, on another replica) bumps
// once its propagation is done.
func (c catalogInheritance) Version() int64 {
	if c.s.lin.svc == nil {
		return 0
	}
	return c.s.lin.svc.Version()
}

// PolicyTags implements catalog.Inheritance with what lineage holds for
// the dataset: its inherited tags and the own tags lineage knows (the
// catalog's, synced, and those of OpenLineage facets), as the S3 gateway
// sees them (effectiveTags).
func (c catalogInheritance) PolicyTags(namespace, name string) ([]policy.Tag, policy.Classification) {
	if c.s.lin.svc == nil {
		return nil, policy.Unclassified
	}
	return c.s.lin.svc.PolicyTags(lineage.DatasetKey{Namespace: namespace, Name: name})
}

// Inheriting implements catalog.Inheritance: the datasets lineage holds
// more for than the catalog's own tags (inherited ones, or tags from
// OpenLineage facets or the lineage API), for the search index's filters
// and facets.
func (c catalogInheritance) Inheriting() []catalog.InheritingDataset {
	if c.s.lin.svc == nil {
		return nil
	}
	ks := c.s.lin.svc.Inheriting()
	out := make([]catalog.InheritingDataset, len(ks))
	for i, k := range ks {
		out[i] = catalog.InheritingDataset{Key: catalog.Key{Namespace: k.Key.Namespace, Name: k.Key.Name}, Stamp: k.Stamp}
	}
	return out
}

// Inherited implements catalog.Inheritance: the inherited tags with their
// provenance, then the tags lineage holds as the dataset's own that did
// not come from the catalog (OpenLineage tags facets, the lineage API).
func (c catalogInheritance) Inherited(ctx context.Context, namespace, name string) ([]catalog.DatasetInheritedTag, error) {
	if c.s.lin.svc == nil {
		return nil, nil
	}
	inh, _, err := c.s.lin.svc.InheritedTags(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	var out []catalog.DatasetInheritedTag
	for _, t := range inh {
		out = append(out, catalog.DatasetInheritedTag{
			Name: t.Name, Value: t.Value, Classification: t.Classification.String(), Column: t.Field,
			Origin: catalog.Ref(t.Origin.Namespace, t.Origin.Name), OriginColumn: t.OriginField,
			From: catalog.Ref(t.From.Namespace, t.From.Name), Job: t.Job.String(), Reason: t.Explain(),
		})
	}
	for _, t := range c.s.lin.svc.OwnTags(ctx, namespace, name) {
		if t.Source == "catalog" {
			continue
		}
		reason := t.Name
		if t.Value != "" {
			reason += "=" + t.Value
		}
		reason += " set on this dataset through lineage (" + t.Source + ")"
		out = append(out, catalog.DatasetInheritedTag{Name: t.Name, Value: t.Value, Classification: t.Classification.String(), Column: t.Field,
			Origin: catalog.Ref(namespace, name), OriginColumn: t.Field, Reason: reason})
	}
	return out, nil
}
