package server

// SQL writes (CREATE TABLE AS, INSERT): the lineage and catalog sides of
// sqlengine's Lineage and Registrar, over the lineage service and the
// catalog store. Each write is its own lineage job (namespace "steward",
// name "sql/<table>/<id>") so that an INSERT adds edges and never
// replaces those of earlier writes into the same table: the table keeps
// inheriting from everything it was ever made of.

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
)

var (
	_ sqlengine.Lineage   = (*sqlLineage)(nil)
	_ sqlengine.Registrar = sqlCatalog{}
)

// datasetKey is the catalog and lineage name of a table's data.
func datasetKey(t *sqlengine.Table) lineage.DatasetKey {
	return lineage.DatasetKey{Namespace: "s3://" + t.Bucket, Name: strings.Trim(t.Prefix, "/")}
}

// sqlLineage records SQL writes in the lineage graph.
type sqlLineage struct {
	s      *Server
	mu     sync.Mutex
	synced map[string]string // what syncDataset last gave lineage, per dataset/column
}

func newSQLLineage(s *Server) *sqlLineage {
	return &sqlLineage{s: s, synced: map[string]string{}}
}

// RecordWrite implements sqlengine.Lineage.
func (l *sqlLineage) RecordWrite(ctx context.Context, p *steward.Principal, target *sqlengine.Table, inputs []*sqlengine.Table, cols []sqlengine.ColumnLineage) error {
	svc := l.s.lin.svc
	if svc == nil {
		return steward.Errorf(steward.EUnavailable, "lineage is not available")
	}
	// The background sync feeds catalog tags to lineage within a second;
	// do it now for the inputs so that the output inherits at once.
	var ins []lineage.DatasetKey
	byName := map[string]lineage.DatasetKey{}
	for _, t := range inputs {
		k := datasetKey(t)
		ins = append(ins, k)
		byName[t.Name] = k
		if l.s.cat.svc == nil {
			continue
		}
		d, err := l.s.cat.svc.Store.Get(ctx, k.Namespace, k.Name)
		if err != nil {
			return err
		}
		l.mu.Lock()
		err = l.s.syncDataset(ctx, d, l.synced)
		l.mu.Unlock()
		if err != nil {
			return err
		}
	}
	out := datasetKey(target)
	var edges []lineage.ColumnEdge
	for _, c := range cols {
		in, ok := byName[c.Input]
		if !ok {
			continue
		}
		edges = append(edges, lineage.ColumnEdge{Output: out, OutputField: c.Output, Input: in, InputField: c.InputColumn, Masking: c.Masking})
	}
	job := lineage.JobKey{Namespace: lineage.Namespace, Name: "sql/" + target.Name + "/" + uuid.NewString()[:8]}
	_, err := svc.RecordRun(steward.WithPrincipal(ctx, p), job, ins, []lineage.DatasetKey{out}, edges)
	return err
}

// sqlCatalog registers SQL-written tables in the catalog.
type sqlCatalog struct{ s *Server }

func (c sqlCatalog) store() (*catalog.Service, error) {
	if c.s.cat.svc == nil {
		return nil, steward.Errorf(steward.EUnavailable, "the catalog is not available")
	}
	return c.s.cat.svc, nil
}

// Create implements sqlengine.Registrar: the new dataset, owned by p, with
// the result's schema and no tags or classification of its own. What it
// inherits (its inputs' tags and classification) is lineage's, recorded
// before this runs: the table's effective tags are the catalog's own
// (those its owners set later) plus lineage's inherited, so they follow
// the inputs both ways, as for S3 copies and OpenLineage jobs. Storing
// the inherited classification here would freeze it as the table's own.
// t.Classification (the inputs' highest, as decided at write time) is
// not stored for that reason; sqlengine wrote lineage first and stops if
// that fails, so the table is never visible before it inherits.
func (c sqlCatalog) Create(ctx context.Context, p *steward.Principal, t *sqlengine.Table) error {
	svc, err := c.store()
	if err != nil {
		return err
	}
	k := datasetKey(t)
	d := &catalog.Dataset{Namespace: k.Namespace, Name: k.Name, Format: catalog.FormatParquet,
		Owners:      []string{p.Username},
		Description: "Created with SQL by " + p.Username + "."}
	for _, col := range t.Columns {
		d.Schema = append(d.Schema, catalog.Column{Name: col.Name, Type: col.Type, Nullable: true})
	}
	if _, err := svc.Register(ctx, catalog.Viewer{User: p.Username, Admin: true}, d); err != nil {
		return err
	}
	return nil
}

// Appended implements sqlengine.Registrar. The catalog entry does not
// change: the INSERT's lineage run, recorded first, brings the new
// inputs' tags and classification to the table's effective ones (its
// own, set by its owners, stay as they are); the crawler refreshes the
// statistics after the file is stored.
func (c sqlCatalog) Appended(ctx context.Context, p *steward.Principal, t *sqlengine.Table, cls policy.Classification) error {
	_, err := c.store()
	return err
}

// Remove implements sqlengine.Registrar.
func (c sqlCatalog) Remove(ctx context.Context, t *sqlengine.Table) error {
	svc, err := c.store()
	if err != nil {
		return err
	}
	k := datasetKey(t)
	if err := svc.Store.Delete(ctx, k.Namespace, k.Name); err != nil {
		return err
	}
	return svc.Index.Refresh(ctx)
}

// Owns implements sqlengine.Registrar: p is an owner by name or through
// one of their groups ("group:NAME").
func (c sqlCatalog) Owns(ctx context.Context, p *steward.Principal, name string) (bool, error) {
	svc, err := c.store()
	if err != nil {
		return false, err
	}
	bucket, rest, _ := strings.Cut(name, ".")
	d, err := svc.Store.Get(ctx, "s3://"+bucket, strings.ReplaceAll(rest, ".", "/"))
	if err != nil {
		return false, err
	}
	for _, o := range d.Owners {
		if o == p.Username {
			return true, nil
		}
		if g, ok := strings.CutPrefix(o, "group:"); ok && slices.Contains(p.Groups, g) {
			return true, nil
		}
	}
	return false, nil
}

// lineageTags gives CatalogTables the tags a dataset inherits through
// lineage (nil until lineage is wired).
type lineageTags struct{ s *Server }

func (l lineageTags) InheritedTags(ctx context.Context, namespace, name string) ([]lineage.InheritedTag, policy.Classification, error) {
	if l.s.lin.svc == nil {
		return nil, policy.Unclassified, nil
	}
	return l.s.lin.svc.InheritedTags(ctx, namespace, name)
}

// sqlWriter stores SQL-written files through the gateway's store, so the
// crawler refreshes the table's statistics as for any write.
type sqlWriter struct{ s *Server }

func (w sqlWriter) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts objectstore.PutOptions) (objectstore.ObjectInfo, error) {
	if w.s.cat.svc == nil {
		return w.s.objects.Put(ctx, bucket, key, body, size, opts)
	}
	return w.s.gatewayStore().Put(ctx, bucket, key, body, size, opts)
}

// sqlGroupLimits turns the sql_limits setting into per-group limits.
func sqlGroupLimits(in map[string]config.SQLLimit) (map[string]sqlengine.Limits, error) {
	out := make(map[string]sqlengine.Limits, len(in))
	for g, l := range in {
		if l.Timeout < 0 || l.MaxRows < 0 {
			return nil, &config.SettingError{Key: "sql_limits." + g, Msg: "timeout and max_rows must not be negative"}
		}
		if l.Memory != "" {
			if _, err := sqlengine.ParseSize(l.Memory); err != nil {
				return nil, &config.SettingError{Key: "sql_limits." + g + ".memory", Msg: steward.MessageOf(err)}
			}
		}
		out[g] = sqlengine.Limits{Timeout: l.Timeout, MaxRows: l.MaxRows, Memory: l.Memory}
	}
	return out, nil
}
