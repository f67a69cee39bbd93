package server

// Lineage wiring (internal/lineage, issue 6), kept apart from server.go:
// the OpenLineage intake, the graph API and propagation.
//
// For the integrator: the S3 gateway's CopyObject hook calls
// s.Lineage().RecordCopy(ctx, principal, lineage.DatasetKey{Namespace:
// "s3://"+srcBucket, Name: srcKey}, lineage.DatasetKey{...dst}); SQL CREATE
// TABLE AS calls RecordRun; policy requests take the dataset's tags from
// the catalog (own) plus Lineage().InheritedTags (inherited).

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/lineage"
)

type lineageParts struct {
	svc *lineage.Service
}

// wireLineage loads the lineage graph and registers its endpoints on the
// API. Discovery in graphs is decided by the policy engine.
func (s *Server) wireLineage(ctx context.Context) error {
	svc, err := lineage.New(ctx, s.store, s.log.With("component", "lineage"))
	if err != nil {
		return fmt.Errorf("lineage: %w", err)
	}
	s.lin.svc = svc
	s.api.RegisterLineage(api.LineageDeps{
		Service:  svc,
		Discover: api.PolicyDiscoverer{Engine: s.engine, AdminGroup: s.cfg.AdminGroup},
	})
	return nil
}

// runLineage follows the lineage changes other replicas make (through the
// shared metastore) until ctx ends, so effective tags agree everywhere
// within a second.
func (s *Server) runLineage(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() { defer wg.Done(); s.lin.svc.Run(ctx, 500*time.Millisecond) }()
}

// Lineage is the lineage service, for components that record movements
// or need inherited tags.
func (s *Server) Lineage() *lineage.Service { return s.lin.svc }
