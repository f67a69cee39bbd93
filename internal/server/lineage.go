package server

// Lineage wiring (internal/lineage, issue 6), kept apart from server.go:
// the OpenLineage intake, the graph API and propagation.
//
// The S3 gateway's copies are recorded by recordCopy (its BeforeCopy
// hook); SQL CREATE TABLE AS and INSERT go through sqlwrite.go; policy
// requests take the dataset's tags from the catalog (own) plus
// Lineage().InheritedTags (inherited).

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/lineage"
)

type lineageParts struct {
	svc    *lineage.Service
	syncMu sync.Mutex // one catalog-to-lineage tag sync at a time (tagsync.go)
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

// recordCopy is the S3 gateway's BeforeCopy hook: a server-side copy is a
// run of the job steward:copy from the source's dataset to the target's,
// recorded before the target is written so it inherits the source's tags
// from its first byte. Objects outside any dataset folder (a key at the
// bucket's top) are datasets of their own, named by the key.
func (s *Server) recordCopy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string) error {
	key := func(bucket, k string) lineage.DatasetKey {
		if ns, name, ok := catalog.DatasetOf(bucket, k); ok {
			return lineage.DatasetKey{Namespace: ns, Name: name}
		}
		return lineage.DatasetKey{Namespace: "s3://" + bucket, Name: k}
	}
	src, dst := key(srcBucket, srcKey), key(dstBucket, dstKey)
	if src == dst {
		return nil // a copy within one dataset adds no edge
	}
	_, err := s.lin.svc.RecordCopy(ctx, steward.PrincipalFrom(ctx), src, dst)
	return err
}

// Lineage is the lineage service, for components that record movements
// or need inherited tags.
func (s *Server) Lineage() *lineage.Service { return s.lin.svc }
