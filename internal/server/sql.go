package server

// Governed SQL: the sqlengine service on embedded DuckDB over the catalog's
// datasets, its REST endpoint (POST /api/v1/query, through api.Deps.SQL)
// and the PostgreSQL wire front on pg_addr. Stop order: the PostgreSQL
// server stops with the background context (after the HTTP servers), which
// cancels running queries; the DuckDB parser closes with the server.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/pgwire"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
	sqlduckdb "github.com/stewardhq/steward/internal/sqlengine/duckdb"
)

type sqlParts struct {
	svc  *sqlengine.Service
	pg   *pgwire.Server
	pgLn net.Listener
}

// wireSQL builds the SQL service and, if pg_addr is set, listens for
// PostgreSQL clients. Call after the metastore, policy engine, verifier,
// audit log and object store exist.
func (s *Server) wireSQL() (*sqlengine.Service, error) {
	tmp := filepath.Join(s.cfg.DataDir, "tmp", "sql")
	os.RemoveAll(tmp) // staging left by a crash
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, &config.SettingError{Key: "data_dir", Msg: "sql staging: " + err.Error()}
	}
	backend := sqlduckdb.New(s.log.With("component", "sql"))
	s.closers = append(s.closers, backend.Close)
	groupLimits, err := sqlGroupLimits(s.cfg.SQLLimits)
	if err != nil {
		return nil, err
	}
	// Forward mode: tables' files come through a local cache keyed by ETag
	// (the embedded store hard-links its files instead).
	var cache *sqlengine.Cache
	if _, local := s.objects.(sqlengine.LocalFiler); !local {
		cache, err = sqlengine.OpenCache(filepath.Join(s.cfg.DataDir, "cache", "sql"), s.cfg.SQLCacheMaxBytes, s.log.With("component", "sql-cache"))
		if err != nil {
			return nil, &config.SettingError{Key: "data_dir", Msg: "sql cache: " + err.Error()}
		}
	}
	s.sql.svc = sqlengine.New(sqlengine.Config{
		Tables:      s.catalogTables(),
		Decider:     s.engine,
		Objects:     s.objects,
		Backend:     backend,
		Auditor:     s.dataAuditor(),
		Logger:      s.log.With("component", "sql"),
		TempDir:     tmp,
		GroupLimits: groupLimits,
		Lineage:     newSQLLineage(s),
		Cache:       cache,
		Registrar:   sqlCatalog{s},
		Writer:      sqlWriter{s},
	})
	if s.cfg.PGAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.PGAddr)
		if err != nil {
			return nil, &config.SettingError{Key: "pg_addr", Msg: fmt.Sprintf("cannot listen on %s: %v", s.cfg.PGAddr, unwrapOp(err))}
		}
		s.sql.pgLn = ln
		s.closers = append(s.closers, func() error { ln.Close(); return nil })
		s.sql.pg = pgwire.NewServer(s.sql.svc, s.verifier, s.log.With("component", "pgwire"))
		if s.cfg.PGTLSCert != "" {
			tc, err := pgwire.LoadTLS(s.cfg.PGTLSCert, s.cfg.PGTLSKey)
			if err != nil {
				return nil, &config.SettingError{Key: "pg_tls_cert", Msg: err.Error()}
			}
			s.sql.pg.SetTLS(tc, s.cfg.PGRequireTLS)
		}
	}
	return s.sql.svc, nil
}

// runSQL serves PostgreSQL clients until bg is cancelled.
func (s *Server) runSQL(bg context.Context, wg *sync.WaitGroup) {
	if s.sql.pg == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.sql.pg.Serve(bg, s.sql.pgLn); err != nil {
			s.log.Error("postgresql listener failed", "err", err)
		}
	}()
	s.log.Info("postgresql wire protocol listening", "addr", s.sql.pgLn.Addr().String())
}

// PGAddr is the PostgreSQL listener's address, or "" when it is off.
func (s *Server) PGAddr() string {
	if s.sql.pgLn == nil {
		return ""
	}
	return s.sql.pgLn.Addr().String()
}

// CatalogTables is the sqlengine.TableSource over the catalog: the SQL
// name of a dataset is its policy name (s3://bank + sales/mortgages is
// bank.sales.mortgages). A table's tags and classification are its
// effective ones: the catalog's own and, with Lineage set, what the
// dataset and each column inherit through lineage.
type CatalogTables struct {
	Store   *catalog.Store
	Decider sqlengine.Decider
	Lineage InheritedTagger // may be nil
	// Listing, if set, keeps the list of all datasets between catalog
	// versions, so that SHOW TABLES and Trino's visibility checks do not
	// read the whole catalog from the metastore on every request.
	Listing *DatasetListing
}

// DatasetListing caches every dataset of the catalog for one catalog
// version (Version is the search index's, which each replica refreshes
// from the metastore within a second).
type DatasetListing struct {
	Version func() int64

	mu  sync.Mutex
	at  int64
	ok  bool
	all []*catalog.Dataset
}

func (l *DatasetListing) list(ctx context.Context, st *catalog.Store) ([]*catalog.Dataset, error) {
	if l == nil {
		all, _, _, err := st.Since(ctx, 0)
		return all, err
	}
	v := l.Version()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ok && l.at == v {
		return l.all, nil
	}
	all, _, _, err := st.Since(ctx, 0)
	if err != nil {
		return nil, err
	}
	l.at, l.ok, l.all = v, true, all
	return all, nil
}

// InheritedTagger says what a dataset inherits through lineage;
// *lineage.Service implements it.
type InheritedTagger interface {
	InheritedTags(ctx context.Context, namespace, name string) ([]lineage.InheritedTag, policy.Classification, error)
}

// withInherited adds what d inherits through lineage to t.
func (c CatalogTables) withInherited(ctx context.Context, d *catalog.Dataset, t *sqlengine.Table) (*sqlengine.Table, error) {
	if c.Lineage == nil {
		return t, nil
	}
	inh, cls, err := c.Lineage.InheritedTags(ctx, d.Namespace, d.Name)
	if err != nil {
		return nil, err
	}
	t.Classification = max(t.Classification, cls)
	for _, it := range inh {
		tag := policy.Tag{Name: it.Name}
		if it.Value != "" {
			tag.Attrs = map[string]string{"value": it.Value}
		}
		if it.Field == "" {
			t.Tags = append(t.Tags, tag)
			continue
		}
		for i := range t.Columns {
			if t.Columns[i].Name == it.Field {
				t.Columns[i].Tags = append(t.Columns[i].Tags, tag)
			}
		}
	}
	return t, nil
}

// Table implements sqlengine.TableSource.
func (c CatalogTables) Table(ctx context.Context, name string) (*sqlengine.Table, error) {
	bucket, rest, ok := strings.Cut(name, ".")
	if !ok || bucket == "" || rest == "" {
		return nil, steward.Errorf(steward.ENotFound, "no table %s", name)
	}
	ns, dsName := "s3://"+bucket, strings.ReplaceAll(rest, ".", "/")
	d, err := c.Store.Get(ctx, ns, dsName)
	if err != nil {
		return nil, err
	}
	if catalog.PolicyName(d.Namespace, d.Name) != name {
		return nil, steward.Errorf(steward.ENotFound, "no table %s", name)
	}
	return c.withInherited(ctx, d, tableOf(d))
}

// Tables implements sqlengine.TableSource: the tables p may select.
func (c CatalogTables) Tables(ctx context.Context, p *steward.Principal) ([]*sqlengine.Table, error) {
	all, err := c.Listing.list(ctx, c.Store)
	if err != nil {
		return nil, err
	}
	var out []*sqlengine.Table
	for _, d := range all {
		t, err := c.withInherited(ctx, d, tableOf(d))
		if err != nil {
			return nil, err
		}
		if _, _, _, ok := sqlengine.SplitName(t.Name); !ok {
			continue
		}
		req := policy.Request{User: p.Username, Groups: p.Groups, Roles: p.Roles, Access: policy.AccessSelect,
			Resource: policy.Resource{Kind: policy.ResourceTable, Name: t.Name}, Tags: t.Tags, Classification: t.Classification}
		var dec policy.Decision
		c.Decider.Decide(&req, &dec)
		if dec.Allowed {
			out = append(out, t)
		}
	}
	return out, nil
}

func tableOf(d *catalog.Dataset) *sqlengine.Table {
	t := &sqlengine.Table{Name: catalog.PolicyName(d.Namespace, d.Name), Bucket: d.Bucket, Prefix: d.Prefix,
		Format: string(d.Format), Partitions: d.Partitions, Tags: policyTags(d.Tags), Classification: d.Level()}
	if t.Bucket == "" {
		if b, ok := catalog.BucketOf(d.Namespace); ok {
			t.Bucket, t.Prefix = b, d.Name
		}
	}
	for _, c := range d.Schema {
		t.Columns = append(t.Columns, sqlengine.Column{Name: c.Name, Type: c.Type, Tags: policyTags(c.Tags)})
	}
	return t
}

func policyTags(ts []catalog.Tag) []policy.Tag {
	out := make([]policy.Tag, 0, len(ts))
	for _, t := range ts {
		out = append(out, policy.Tag{Name: t.Name, Attrs: t.Attrs})
	}
	return out
}

// catalogTables is the catalog as SQL tables, shared by Steward's SQL and
// the Trino endpoints so that both list and tag tables alike.
func (s *Server) catalogTables() CatalogTables {
	if s.cat.listing == nil {
		s.cat.listing = &DatasetListing{Version: s.cat.svc.Index.Version}
	}
	return CatalogTables{Store: catalog.NewStore(s.store), Decider: s.engine, Lineage: lineageTags{s}, Listing: s.cat.listing}
}
