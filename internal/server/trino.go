package server

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/policy/trino"
)

// trinoHandler serves Trino's OPA access-control plugin, deciding with the
// catalog's tables and tags as Steward's own SQL does.
func (s *Server) trinoHandler() http.Handler {
	cat := trinoCatalog{s.catalogTables()}
	h := trino.NewHandler(trino.EngineFunc(s.engine.Engine), cat, s.audit, s.log.With("component", "trino"))
	h.Tables = cat
	return h
}

// trinoCatalog gives Trino's OPA endpoints what Steward's own SQL sees, so
// both decide alike: the tables a user may select (which make their
// catalog and schema visible to Trino) and each table's and column's
// effective tags and classification.
type trinoCatalog struct{ tables CatalogTables }

// VisibleTables implements trino.TableLister.
func (c trinoCatalog) VisibleTables(ctx context.Context, user string, groups []string) ([]string, error) {
	ts, err := c.tables.Tables(ctx, &steward.Principal{Kind: steward.KindUser, Username: user, Groups: groups})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return names, nil
}

// Tags implements trino.TagSource as Steward's SQL tags its requests: a
// column carries its table's tags and its own. Catalogs, schemas and names
// the catalog does not know have none.
func (c trinoCatalog) Tags(ctx context.Context, name, column string) ([]policy.Tag, policy.Classification, error) {
	if strings.Count(name, ".") < 2 {
		return nil, policy.Unclassified, nil
	}
	t, err := c.tables.Table(ctx, name)
	if steward.KindOf(err) == steward.ENotFound {
		return nil, policy.Unclassified, nil
	}
	if err != nil {
		return nil, policy.Unclassified, err
	}
	tags := t.Tags
	if column != "" {
		for _, col := range t.Columns {
			if col.Name == column {
				tags = append(slices.Clip(tags), col.Tags...)
			}
		}
	}
	return tags, t.Classification, nil
}
