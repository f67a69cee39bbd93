package server

import (
	"context"
	"strings"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/policy"
)

// effectiveTags gives the S3 gateway the effective tags of the data a
// request touches: the catalog's own tags and classification of the
// object's dataset, and what the dataset inherits through lineage. The
// classification is the highest of the two.
type effectiveTags struct{ s *Server }

func (e effectiveTags) EffectiveTags(ctx context.Context, r policy.Resource) ([]policy.Tag, policy.Classification, error) {
	if r.Kind != policy.ResourceObject {
		return nil, policy.Unclassified, nil
	}
	bucket, key, _ := strings.Cut(r.Path, "/")
	if key == "" {
		return nil, policy.Unclassified, nil
	}
	ns, name, ok := catalog.DatasetOf(bucket, key)
	if !ok {
		return nil, policy.Unclassified, nil
	}
	var tags []policy.Tag
	cls := policy.Unclassified
	if e.s.cat.svc != nil {
		if d, ok := e.s.cat.svc.Index.Get(catalog.Key{Namespace: ns, Name: name}); ok {
			tags, cls = d.PolicyTags(), d.Level()
		}
	}
	if e.s.lin.svc != nil {
		lt, lc := e.s.lin.svc.PolicyTags(lineage.DatasetKey{Namespace: ns, Name: name})
		tags = append(tags, lt...)
		cls = max(cls, lc)
	}
	return tags, cls, nil
}
