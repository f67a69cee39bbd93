package server

// Catalog wiring (internal/catalog, issue 5), kept apart from server.go:
// the catalog service with its search index, the DuckDB crawler, the hook
// that lets S3 gateway writes mark datasets changed, and the demo
// datasets.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
	catalogduckdb "github.com/stewardhq/steward/internal/catalog/duckdb"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/objectstore"
)

type catalogParts struct {
	svc     *catalog.Service
	usage   *catalog.Usage
	listing *DatasetListing // sql.go
}

// wireCatalog builds the catalog over the metastore and the object store
// and loads its search index. Call after the object store is open.
func (s *Server) wireCatalog(ctx context.Context) error {
	tmp := filepath.Join(s.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return &config.SettingError{Key: "data_dir", Msg: "catalog: " + err.Error()}
	}
	crawler := catalogduckdb.New(s.objects, tmp, s.log.With("component", "crawler"))
	s.cat.svc = catalog.NewService(catalog.NewStore(s.store), s.engine, crawler, s.log.With("component", "catalog"))
	s.cat.svc.SetInheritance(catalogInheritance{s}) // catalog_effective.go
	if err := s.cat.svc.Index.Refresh(ctx); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	s.cat.usage = catalog.NewUsage(s.store, s.cat.svc, s.log.With("component", "usage"))
	s.cat.usage.Popularity = s.cat.svc.Index.SetPopularity
	return nil
}

// dataAuditor is the audit trail for data access (S3 and SQL): every event
// goes to the audit log unchanged, and successful reads also count as
// dataset usage (popularity, readers, recommendations).
func (s *Server) dataAuditor() steward.Auditor {
	return catalog.UsageAuditor{Next: s.audit, Usage: s.cat.usage}
}

// gatewayStore is the object store the S3 gateway writes through: every
// successful write or delete marks its dataset changed for the crawler.
func (s *Server) gatewayStore() objectstore.Store {
	return catalog.NotifyingStore{Store: s.objects, N: s.cat.svc}
}

// runCatalog runs the index refresh and the crawl worker until ctx ends.
func (s *Server) runCatalog(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.cat.svc.Run(ctx, catalog.CrawlOptions{Debounce: time.Second, Poll: 250 * time.Millisecond})
	}()
	wg.Add(1)
	go func() { defer wg.Done(); s.cat.usage.Run(ctx) }()
}

// Catalog is the catalog service, for components that look datasets up.
func (s *Server) Catalog() *catalog.Service { return s.cat.svc }
