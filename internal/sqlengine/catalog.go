package sqlengine

import (
	"context"
	"regexp"
	"strconv"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// PostgreSQL clients learn what exists by querying the system catalogs
// (pg_catalog, information_schema): psql's \dt and \d, pgjdbc's
// DatabaseMetaData (DBeaver, most BI tools), driver type loading. Steward
// answers such a query over a catalog that holds exactly what the user may
// discover and nothing else: the tables SHOW TABLES lists (select allowed
// on the table), each with the columns the user may select (a denied
// column is absent, as it is from the query's views). No data is read.

// CatalogTable is a table as the system catalogs show it.
type CatalogTable struct {
	Catalog, Schema, Table string
	Columns                []Column // the columns the user may select, in table order
}

// CatalogRun is one system catalog query for a CatalogBackend.
type CatalogRun struct {
	Query    string
	Database string // the database the client connected to ("" if none)
	User     string
	Tables   []CatalogTable
	Limits   Limits
}

// CatalogBackend is a Backend that answers PostgreSQL system catalog
// queries; sqlengine/duckdb implements it.
type CatalogBackend interface {
	// CatalogQuery says whether query reads system catalogs only. It
	// returns EInvalid with SQLSTATE 0A000 for a query that mixes them
	// with catalog tables or names a system relation Steward does not
	// provide.
	CatalogQuery(ctx context.Context, query string) (bool, error)
	// RunCatalog runs r.Query over system catalogs that hold r.Tables
	// and nothing else, and streams the result to sink; it returns the
	// number of rows sent. A query the emulation cannot answer is
	// EInvalid with SQLSTATE 0A000.
	RunCatalog(ctx context.Context, r *CatalogRun, sink RowSink) (int64, error)
}

// mentionsCatalog is a cheap first test: only a statement naming a system
// schema or a pg_ relation is parsed as a catalog query.
var mentionsCatalog = regexp.MustCompile(`(?i)\b(pg_[a-z_]+|information_schema)\b`)

// catalogQuery answers q if it reads only system catalogs; done is false
// for any other statement.
func (s *Service) catalogQuery(ctx context.Context, req Request, q string, lim Limits, sink RowSink, sum *Summary) (done bool, err error) {
	cb, ok := s.c.Backend.(CatalogBackend)
	if !ok || !mentionsCatalog.MatchString(q) {
		return false, nil
	}
	yes, err := cb.CatalogQuery(ctx, q)
	if err != nil || !yes {
		return err != nil, err
	}
	tables, err := s.CatalogTables(ctx, req.Principal, req.ClientAddr)
	if err != nil {
		return true, err
	}
	n, err := cb.RunCatalog(ctx, &CatalogRun{Query: q, Database: req.Database, User: req.Principal.Username, Tables: tables, Limits: lim},
		&limitSink{RowSink: sink, max: lim.MaxRows})
	sum.Rows = n
	sum.Command = "SELECT " + strconv.FormatInt(n, 10)
	return true, err
}

// CatalogTables returns what p may discover as the system catalogs show
// it: the tables SHOW TABLES lists, each with the columns p may select.
func (s *Service) CatalogTables(ctx context.Context, p *steward.Principal, clientAddr string) ([]CatalogTable, error) {
	ts, err := s.c.Tables.Tables(ctx, p)
	if err != nil {
		return nil, err
	}
	now := s.c.Now()
	ip := clientIP(clientAddr)
	out := make([]CatalogTable, 0, len(ts))
	for _, t := range ts {
		cat, sch, tbl, ok := SplitName(t.Name)
		if !ok {
			continue
		}
		ct := CatalogTable{Catalog: cat, Schema: sch, Table: tbl}
		r := selectRequest(p, t.Name, t, now, ip)
		var d policy.Decision
		s.c.Decider.Decide(&r, &d)
		if !d.Allowed {
			continue // Tables lists only what p may select; decided again here, deny by default
		}
		for _, c := range t.Columns {
			if s.decideColumn(r, t, c).Allowed {
				ct.Columns = append(ct.Columns, Column{Name: c.Name, Type: c.Type})
			}
		}
		out = append(out, ct)
	}
	return out, nil
}
