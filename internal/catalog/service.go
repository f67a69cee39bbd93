package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stewardhq/steward"
)

// Inference is what a crawler learned from a dataset's files.
type Inference struct {
	Format     Format
	Partitions []string
	Schema     []Column // with Stats
	Size       int64
	FileCount  int64
	RowCount   int64
	// Samples holds up to MaxSample non-null values per top-level column,
	// as text, for sensitive-data detection. They are never stored.
	Samples map[string][]string
	// Problems are per-file errors; the files with problems are skipped.
	Problems []CrawlProblem
	// LastModified is the newest file's modification time.
	LastModified time.Time
}

// Crawler infers schema and statistics from the files under a prefix
// (implemented in internal/catalog/duckdb). Errors are for the whole
// crawl (the bucket cannot be listed); file-level errors go in Problems.
type Crawler interface {
	Crawl(ctx context.Context, bucket, prefix string) (*Inference, error)
	// Datasets lists the datasets present in the object store, with what
	// their files add up to, for the periodic sweep.
	Datasets(ctx context.Context) ([]Listing, error)
}

// Listing is what the object store holds of one dataset, counted as a
// crawl counts it (Inference): the files of a known format that belong to
// the dataset (by DatasetOf), their total size and the newest
// modification time. The sweep compares it with what the last crawl
// recorded to find datasets that changed while nobody was watching.
type Listing struct {
	Key
	FileCount    int64
	Size         int64
	LastModified time.Time
}

// ChangeNotifier is told when an object changed (written, completed or
// deleted through the S3 gateway). It must not block.
type ChangeNotifier interface {
	ObjectChanged(bucket, key string)
}

// Service is the catalog: the store, this replica's search index, the
// discovery decision, detection rules and the crawl worker.
type Service struct {
	Store   *Store
	Index   *Index
	Decider Decider
	// Inherit says what datasets inherit through lineage (nil: nothing);
	// set it with SetInheritance.
	Inherit Inheritance
	Rules   []Rule
	Crawler Crawler // may be nil: no crawling
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	changed map[Key]time.Time // marks not yet written to the store
}

var _ ChangeNotifier = (*Service)(nil)

// NewService returns a catalog service. dec may be nil (no policies: C4
// visible only to owners). Call Start or Index.Refresh before serving.
func NewService(store *Store, dec Decider, crawler Crawler, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{Store: store, Index: NewIndex(store, log), Decider: dec, Rules: DefaultRules(), Crawler: crawler,
		log: log, now: func() time.Time { return time.Now().UTC() }, changed: map[Key]time.Time{}}
}

// Search runs a query for v.
func (s *Service) Search(v Viewer, q Query) SearchResult { return s.Index.Search(s.Decider, v, q) }

// Get returns a dataset v may discover, fresh from the store, with what
// it inherits through lineage (InheritedTags, EffectiveClassification).
// A dataset v may not discover (on its effective tags) is reported as not
// found.
func (s *Service) Get(ctx context.Context, v Viewer, namespace, name string) (*Dataset, error) {
	d, err := s.Store.Get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	if !s.CanDiscover(v, d) {
		return nil, notFound(namespace, name)
	}
	return s.withInherited(ctx, d)
}

func notFound(namespace, name string) error {
	return steward.Errorf(steward.ENotFound, "dataset %q not found", clip(Ref(namespace, name)))
}

// Register creates a dataset. Administrators only (the API checks and
// audits that); the caller passes v for the record.
func (s *Service) Register(ctx context.Context, v Viewer, d *Dataset) (*Dataset, error) {
	if !v.Admin {
		return nil, steward.Errorf(steward.EPermission, "only administrators register datasets")
	}
	out, err := s.Store.Create(ctx, d)
	if err == nil {
		s.refresh(ctx)
	}
	return out, err
}

// Patch is a partial change of a dataset's metadata; nil fields stay.
type DatasetPatch struct {
	Description    *string                `json:"description,omitempty"`
	Owners         *[]string              `json:"owners,omitempty"`
	Stewards       *[]string              `json:"stewards,omitempty"`
	Classification *string                `json:"classification,omitempty"`
	Format         *Format                `json:"format,omitempty"`
	AddTags        []Tag                  `json:"add_tags,omitempty"`
	RemoveTags     []string               `json:"remove_tags,omitempty"`
	Columns        map[string]ColumnPatch `json:"columns,omitempty"` // by dotted column path
}

// ColPatch changes one column.
type ColumnPatch struct {
	Description *string  `json:"description,omitempty"`
	AddTags     []Tag    `json:"add_tags,omitempty"`
	RemoveTags  []string `json:"remove_tags,omitempty"`
}

// Apply applies p to d. Errors: EInvalid (unknown column).
func (p *DatasetPatch) Apply(d *Dataset) error {
	if p.Description != nil {
		d.Description = *p.Description
	}
	if p.Owners != nil {
		d.Owners = *p.Owners
	}
	if p.Stewards != nil {
		d.Stewards = *p.Stewards
	}
	if p.Classification != nil {
		d.Classification = *p.Classification
	}
	if p.Format != nil {
		d.Format = *p.Format
	}
	d.Tags = editTags(d.Tags, p.AddTags, p.RemoveTags)
	for name, cp := range p.Columns {
		c := d.Column(name)
		if c == nil {
			return steward.Errorf(steward.EInvalid, "column %q not in the schema", clip(name))
		}
		if cp.Description != nil {
			c.Description = *cp.Description
		}
		c.Tags = editTags(c.Tags, cp.AddTags, cp.RemoveTags)
	}
	return nil
}

func editTags(ts []Tag, add []Tag, remove []string) []Tag {
	var out []Tag
	for _, t := range ts {
		drop := false
		for _, r := range remove {
			drop = drop || r == t.Name
		}
		if !drop {
			out = append(out, t)
		}
	}
	return append(out, add...)
}

// Edit changes a dataset's metadata with fn, if v may edit it (owners,
// stewards and administrators). ifVersion, if not zero, must equal the
// stored version (EConflict otherwise). Errors: ENotFound (also when v
// may not discover it), EPermission, EInvalid, EConflict.
func (s *Service) Edit(ctx context.Context, v Viewer, namespace, name string, ifVersion int64, fn func(d *Dataset) error) (*Dataset, error) {
	out, err := s.Store.Update(ctx, namespace, name, false, func(d *Dataset, _ bool) error {
		if !s.CanDiscover(v, d) {
			return notFound(namespace, name)
		}
		if !v.CanEdit(d) {
			return steward.Errorf(steward.EPermission, "only the dataset's owners, stewards and administrators may change it")
		}
		if ifVersion != 0 && d.Version != ifVersion {
			return steward.Errorf(steward.EConflict, "dataset changed since version %d (now %d)", ifVersion, d.Version)
		}
		return fn(d)
	})
	if err != nil {
		return nil, err
	}
	s.refresh(ctx)
	return s.withInherited(ctx, out)
}

// ReplaceMetadata overwrites d's editable metadata (description, owners,
// stewards, tags, classification, format, column descriptions and tags)
// with n's; crawled facts (schema types, statistics, counts) stay.
func ReplaceMetadata(d, n *Dataset) {
	d.Description, d.Owners, d.Stewards, d.Tags, d.Classification = n.Description, n.Owners, n.Stewards, n.Tags, n.Classification
	if n.Format != "" {
		d.Format = n.Format
	}
	if len(d.Schema) == 0 {
		d.Schema = n.Schema
		return
	}
	for _, nc := range n.Schema {
		walkColumns([]Column{nc}, func(p string, c *Column) {
			if dc := d.Column(p); dc != nil {
				dc.Description, dc.Tags = c.Description, c.Tags
			}
		})
	}
}

// Delete removes a dataset's catalog entry (not its files): owners and
// administrators.
// before, if set, runs once v is authorized and may veto (e.g. when the
// audit record cannot be written).
func (s *Service) Delete(ctx context.Context, v Viewer, namespace, name string, before func(d *Dataset) error) error {
	d, err := s.Get(ctx, v, namespace, name)
	if err != nil {
		return err
	}
	if !v.CanEdit(d) {
		return steward.Errorf(steward.EPermission, "only the dataset's owners and administrators may delete it")
	}
	if before != nil {
		if err := before(d); err != nil {
			return err
		}
	}
	err = s.Store.Delete(ctx, namespace, name)
	if err == nil {
		s.refresh(ctx)
	}
	return err
}

// DecideSuggestion accepts (the tag is applied to the column) or rejects
// a pending tag suggestion. before is as for Delete.
func (s *Service) DecideSuggestion(ctx context.Context, v Viewer, namespace, name, id string, accept bool, before func(d *Dataset) error) (*Dataset, error) {
	return s.Edit(ctx, v, namespace, name, 0, func(d *Dataset) error {
		if before != nil {
			if err := before(d); err != nil {
				return err
			}
		}
		for i := range d.Suggestions {
			sg := &d.Suggestions[i]
			if sg.ID != id {
				continue
			}
			if sg.Status != SuggestionPending {
				return steward.Errorf(steward.EConflict, "suggestion %q is already %s", clip(id), sg.Status)
			}
			sg.Status = SuggestionRejected
			if accept {
				sg.Status = SuggestionAccepted
				c := d.Column(sg.Column)
				if c == nil {
					return steward.Errorf(steward.EConflict, "column %q is no longer in the schema", clip(sg.Column))
				}
				t := sg.Tag
				t.Source = "suggestion"
				c.Tags = append(c.Tags, t)
			}
			return nil
		}
		return steward.Errorf(steward.ENotFound, "suggestion %q not found", clip(id))
	})
}

func (s *Service) refresh(ctx context.Context) {
	if err := s.Index.Refresh(ctx); err != nil {
		s.log.WarnContext(ctx, "catalog index refresh failed", "err", err)
	}
}

// ObjectChanged marks the object's dataset changed. It only records the
// mark in memory; the crawl worker (Run) writes marks to the store, where
// every replica's worker sees them, and crawls after the debounce.
func (s *Service) ObjectChanged(bucket, key string) {
	if FormatOf(key) == FormatUnknown {
		// Not a data file: no crawl reads it (nor the sweep counts it),
		// so a dataset's catalog entry cannot change with it.
		return
	}
	ns, name, ok := DatasetOf(bucket, key)
	if !ok {
		return
	}
	s.mu.Lock()
	s.changed[Key{ns, name}] = s.now()
	s.mu.Unlock()
}

// flushMarks writes the in-memory change marks to the store.
func (s *Service) flushMarks(ctx context.Context) {
	s.mu.Lock()
	marks := s.changed
	s.changed = map[Key]time.Time{}
	s.mu.Unlock()
	// One transaction for all: a steady stream of writes into many
	// datasets would otherwise cost a metastore commit per dataset per poll.
	if err := s.Store.MarkChangedAll(ctx, marks); err != nil {
		s.log.WarnContext(ctx, "catalog: cannot record changes; the sweep will find them", "datasets", len(marks), "err", err)
	}
}

// CrawlOptions tune the crawl worker.
type CrawlOptions struct {
	Debounce time.Duration // wait this long after the last change (default 2s)
	Poll     time.Duration // how often to look for changes (default 500ms)
	Sweep    time.Duration // how often to look for datasets that changed unseen (default 1h; negative: never)
}

// Run runs the crawl worker until ctx is done: it writes change marks,
// crawls datasets whose last change is older than the debounce, and
// periodically sweeps the object store for datasets that changed unseen
// (Sweep). Without a Crawler it
// only refreshes the index.
func (s *Service) Run(ctx context.Context, o CrawlOptions) {
	if o.Debounce <= 0 {
		o.Debounce = 2 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.Sweep == 0 {
		o.Sweep = time.Hour
	}
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	nextSweep := s.now().Add(10 * time.Second)
	for {
		s.refresh(ctx)
		if s.Crawler != nil {
			s.flushMarks(ctx)
			if o.Sweep > 0 && s.now().After(nextSweep) {
				if _, err := s.Sweep(ctx); err != nil {
					s.log.WarnContext(ctx, "catalog sweep", "err", err)
				}
				nextSweep = s.now().Add(o.Sweep)
			}
			s.CrawlPending(ctx, s.now().Add(-o.Debounce))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep marks changed the datasets whose files changed while nobody was
// watching (writes while Steward was down, or made on an upstream store
// directly), for the crawl worker: those the catalog does not know, those
// never crawled or whose last crawl failed, those whose file count, size
// or newest file differ from what the last crawl recorded, and those whose
// files all disappeared. Unchanged datasets are not crawled again. It
// returns how many it marked. Errors: EUnavailable without a crawler;
// otherwise those of listing the object store or reading the catalog.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	if s.Crawler == nil {
		return 0, steward.Errorf(steward.EUnavailable, "no crawler configured")
	}
	listed, err := s.Crawler.Datasets(ctx)
	if err != nil {
		return 0, fmt.Errorf("catalog sweep: list datasets: %w", err)
	}
	stored, _, _, err := s.Store.Since(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("catalog sweep: %w", err)
	}
	known := make(map[Key]*Dataset, len(stored))
	for _, d := range stored {
		known[Key{d.Namespace, d.Name}] = d
	}
	now := s.now()
	marks := map[Key]time.Time{}
	for _, l := range listed {
		if d, ok := known[l.Key]; !ok || stale(d, l) {
			marks[l.Key] = now
		}
		delete(known, l.Key)
	}
	// Known datasets the listing no longer shows: their files are gone.
	// A crawl records that (no data files, counts zero) once.
	for k, d := range known {
		if _, ok := BucketOf(k.Namespace); ok && d.FileCount > 0 && !crawlFailed(d) {
			marks[k] = now
		}
	}
	if err := s.Store.MarkChangedAll(ctx, marks); err != nil {
		return 0, fmt.Errorf("catalog sweep: record changes: %w", err)
	}
	s.log.DebugContext(ctx, "catalog sweep", "listed", len(listed), "changed", len(marks))
	return len(marks), nil
}

// stale reports whether the last crawl of d did not see what l shows.
func stale(d *Dataset, l Listing) bool {
	return d.Crawled.IsZero() || crawlFailed(d) ||
		d.FileCount != l.FileCount || d.Size != l.Size ||
		// Changed is at least the newest file the last crawl saw.
		l.LastModified.After(d.Changed)
}

// crawlFailed reports whether the latest crawl of d failed: a successful
// crawl sets Crawled to the time of the problems it records, a failed
// one records a problem later than Crawled.
func crawlFailed(d *Dataset) bool {
	for _, p := range d.Problems {
		if p.Time.After(d.Crawled) {
			return true
		}
	}
	return false
}

// CrawlPending crawls datasets marked changed before `before`.
func (s *Service) CrawlPending(ctx context.Context, before time.Time) {
	s.flushMarks(ctx)
	cs, err := s.Store.Pending(ctx, before, 100)
	if err != nil {
		s.log.WarnContext(ctx, "catalog: pending changes", "err", err)
		return
	}
	for _, c := range cs {
		if ctx.Err() != nil {
			return
		}
		if _, err := s.Crawl(ctx, c.Namespace, c.Name); err != nil {
			s.log.WarnContext(ctx, "catalog: crawl failed", "dataset", Ref(c.Namespace, c.Name), "err", err)
		}
		if err := s.Store.Done(ctx, c); err != nil {
			s.log.WarnContext(ctx, "catalog: clear change", "err", err)
		}
	}
}

// Crawl crawls one dataset now and records what was learned: the schema
// (keeping descriptions and tags of columns that remain), statistics,
// detections (rules applied, suggestions added) and problems. A crawl
// that learns nothing keeps the previous knowledge and records why.
func (s *Service) Crawl(ctx context.Context, namespace, name string) (*Dataset, error) {
	if s.Crawler == nil {
		return nil, steward.Errorf(steward.EUnavailable, "no crawler configured")
	}
	bucket, ok := BucketOf(namespace)
	if !ok {
		return nil, steward.Errorf(steward.EInvalid, "only s3:// datasets can be crawled")
	}
	inf, cerr := s.Crawler.Crawl(ctx, bucket, name+"/")
	now := s.now()
	if cerr == nil && inf.FileCount == 0 {
		// Nothing there (all deleted): do not create an entry for it.
		if _, err := s.Store.Get(ctx, namespace, name); steward.KindOf(err) == steward.ENotFound {
			return nil, nil
		}
	}
	d, err := s.Store.Update(ctx, namespace, name, true, func(d *Dataset, isNew bool) error {
		if cerr != nil {
			s.log.WarnContext(ctx, "crawl failed", "dataset", Ref(namespace, name), "err", cerr)
			d.Problems = append(d.Problems, CrawlProblem{Time: now, Message: "crawl failed: " + steward.MessageOf(cerr)})
			return nil
		}
		mergeInference(d, inf, now)
		var dets []Detection
		walkColumns(d.Schema, func(p string, c *Column) {
			if det, ok := Detect(p, inf.Samples[p], now); ok {
				dets = append(dets, det)
			}
		})
		ApplyDetections(d, dets, s.Rules)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.refresh(ctx)
	if cerr != nil {
		return d, cerr
	}
	return d, nil
}

func mergeInference(d *Dataset, inf *Inference, now time.Time) {
	for _, p := range inf.Problems {
		if p.Time.IsZero() {
			p.Time = now
		}
		d.Problems = append(d.Problems, p)
	}
	if inf.FileCount == 0 {
		d.Problems = append(d.Problems, CrawlProblem{Time: now, Message: "no data files under the prefix"})
		d.Size, d.FileCount, d.RowCount = 0, 0, 0
		return
	}
	if len(inf.Schema) == 0 {
		// No file could be read: keep the previous schema and counts.
		d.Problems = append(d.Problems, CrawlProblem{Time: now, Message: fmt.Sprintf("none of the %d files could be read; keeping what was known", inf.FileCount)})
		return
	}
	old := d.Schema
	d.Schema = inf.Schema
	for _, oc := range old {
		walkColumns([]Column{oc}, func(p string, c *Column) {
			if nc := d.Column(p); nc != nil {
				nc.Description = c.Description
				nc.Tags = c.Tags
			}
		})
	}
	if inf.Format != "" {
		d.Format = inf.Format
	}
	d.Partitions = inf.Partitions
	d.Size, d.FileCount, d.RowCount = inf.Size, inf.FileCount, inf.RowCount
	if !inf.LastModified.IsZero() && inf.LastModified.After(d.Changed) {
		d.Changed = inf.LastModified
	}
	d.Crawled = now
	if len(inf.Problems) == 0 {
		d.Problems = nil
	}
}
