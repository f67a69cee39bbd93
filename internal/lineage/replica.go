package lineage

// The change feed that keeps several replicas on one metastore in step.
// Every transaction that changes the graph bumps lineage_version (its row
// lock orders writers across replicas, so versions follow commit order)
// and appends what it did to lineage_changes under the new version. A
// writer that finds the version moved past what its graph reflects
// applies the missing changes first, inside its transaction, so it never
// computes a change on a stale graph; Refresh (or Run) applies them
// between writes. Every change is a replacement of keyed state (a job's
// current edges, a dataset's schema or facet tags, a source's tags, a
// block list), so applying it to a graph that already reflects it is
// harmless.

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/stewardhq/steward/internal/metastore"
)

// keepChanges is how many versions of the change feed are kept; a replica
// further behind reloads the whole graph. Entries can be large (a batch of
// 1,000 events), so the feed is kept short: with group commit a version
// carries many events, so this is tens of seconds of the heaviest
// ingest measured, against a Refresh every half second.
const keepChanges = 1000

// logEntry is one committed change to the graph: events ingested, tags
// set, or a block list set.
type logEntry struct {
	Events []wireChange  `json:"events,omitempty"`
	Tags   *tagsChange   `json:"tags,omitempty"`
	Blocks *blocksChange `json:"blocks,omitempty"`
}

type tagsChange struct {
	Dataset DatasetKey   `json:"dataset"`
	Field   string       `json:"field,omitempty"`
	Source  string       `json:"source"`
	Tags    []LineageTag `json:"tags"`
}

type blocksChange struct {
	Job  JobKey   `json:"job"`
	Tags []string `json:"tags"`
}

// wireChange is a change (one event's effect) as stored in the feed.
type wireChange struct {
	Datasets []DatasetKey   `json:"d,omitempty"`
	Schemas  []wireSchema   `json:"s,omitempty"`
	Job      *JobKey        `json:"j,omitempty"`
	JobIO    *wireJobIO     `json:"io,omitempty"`
	ColEdges []wireColEdges `json:"c,omitempty"`
	Tags     []wireTags     `json:"t,omitempty"`
}

type wireSchema struct {
	Dataset DatasetKey `json:"k"`
	Schema  string     `json:"s"`
}

type wireJobIO struct {
	Run   string       `json:"r"`
	Start string       `json:"s"`
	Ins   []DatasetKey `json:"i,omitempty"`
	Outs  []DatasetKey `json:"o,omitempty"`
}

type wireColEdges struct {
	Out   DatasetKey    `json:"k"`
	Edges []wireColEdge `json:"e"`
}

type wireColEdge struct {
	In       DatasetKey `json:"i"`
	OutField string     `json:"of"`
	InField  string     `json:"if"`
	Run      string     `json:"r,omitempty"`
	Masking  bool       `json:"m,omitempty"`
}

type wireTags struct {
	Dataset DatasetKey   `json:"k"`
	Tags    []LineageTag `json:"t"`
}

func sortedKeys[V any](m map[DatasetKey]V) []DatasetKey {
	keys := make([]DatasetKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

func wireChanges(cs []*change) []wireChange {
	out := make([]wireChange, len(cs))
	for i, c := range cs {
		w := &out[i]
		w.Datasets, w.Job = c.datasets, c.job
		for _, k := range sortedKeys(c.schemas) {
			w.Schemas = append(w.Schemas, wireSchema{k, c.schemas[k]})
		}
		if c.jobIO != nil {
			w.JobIO = &wireJobIO{Run: c.jobIO.run, Start: c.jobIO.start, Ins: c.jobIO.ins, Outs: c.jobIO.outs}
		}
		for _, k := range sortedKeys(c.colEdges) {
			we := wireColEdges{Out: k, Edges: make([]wireColEdge, 0, len(c.colEdges[k]))}
			for _, e := range c.colEdges[k] {
				we.Edges = append(we.Edges, wireColEdge{In: e.in, OutField: e.outField, InField: e.inField, Run: e.run, Masking: e.masking})
			}
			w.ColEdges = append(w.ColEdges, we)
		}
		for _, k := range sortedKeys(c.tags) {
			w.Tags = append(w.Tags, wireTags{k, c.tags[k]})
		}
	}
	return out
}

func (w *wireChange) change() *change {
	c := &change{datasets: w.Datasets, job: w.Job, schemas: map[DatasetKey]string{}, colEdges: map[DatasetKey][]colEdge{}, tags: map[DatasetKey][]LineageTag{}}
	for _, s := range w.Schemas {
		c.schemas[s.Dataset] = s.Schema
	}
	if w.JobIO != nil {
		c.jobIO = &struct {
			run, start string
			ins, outs  []DatasetKey
		}{w.JobIO.Run, w.JobIO.Start, w.JobIO.Ins, w.JobIO.Outs}
	}
	for _, ce := range w.ColEdges {
		edges := make([]colEdge, 0, len(ce.Edges))
		for _, e := range ce.Edges {
			edges = append(edges, colEdge{out: ce.Out, in: e.In, outField: e.OutField, inField: e.InField, run: e.Run, masking: e.Masking})
		}
		c.colEdges[ce.Out] = edges
	}
	for _, t := range w.Tags {
		c.tags[t.Dataset] = t.Tags
	}
	return c
}

// apply applies a feed entry to the graph and returns the nodes to
// recompute.
func (g *graph) apply(e *logEntry) []*node {
	var seeds []*node
	for i := range e.Events {
		seeds = append(seeds, g.applyChange(e.Events[i].change())...)
	}
	if t := e.Tags; t != nil {
		seeds = append(seeds, g.setTags(t.Dataset, t.Field, t.Source, t.Tags)...)
	}
	if b := e.Blocks; b != nil {
		seeds = append(seeds, g.setBlocks(b.Job, b.Tags)...)
	}
	return seeds
}

// bump takes the next lineage version in tx (locking out other writers,
// of every replica, until tx ends) and brings the graph up to the version
// before it. The caller holds wmu.
func (s *Service) bump(ctx context.Context, tx *metastore.Tx) (int64, error) {
	var v int64
	if err := tx.QueryRow(ctx, `UPDATE lineage_version SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("lineage: next version: %w", err)
	}
	if v-1 > s.version.Load() {
		if err := s.catchUp(ctx, tx, v-1, true); err != nil {
			return 0, err
		}
	}
	return v, nil
}

// logChange appends e to the change feed as version v, pruning old
// entries now and then.
func (s *Service) logChange(ctx context.Context, tx *metastore.Tx, v int64, e *logEntry) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO lineage_changes (version, body) VALUES (?, ?)`, v, string(body)); err != nil {
		return fmt.Errorf("lineage: record change: %w", err)
	}
	if v%100 == 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM lineage_changes WHERE version <= ?`, v-keepChanges); err != nil {
			return fmt.Errorf("lineage: prune changes: %w", err)
		}
	}
	return nil
}

// catchUp applies the feed's changes after the graph's version up to and
// including upto, or reloads the whole graph if some were pruned. In a
// writer's transaction (inTx) it reads through q, which sees exactly the
// versions up to upto. The caller holds wmu.
func (s *Service) catchUp(ctx context.Context, q metastore.Querier, upto int64, inTx bool) error {
	from := s.version.Load()
	rows, err := q.Query(ctx, `SELECT version, body FROM lineage_changes WHERE version > ? AND version <= ? ORDER BY version`, from, upto)
	if err != nil {
		return fmt.Errorf("lineage: read changes: %w", err)
	}
	var entries []*logEntry
	next := from + 1
	for rows.Next() {
		var v int64
		var body string
		if err := rows.Scan(&v, &body); err != nil {
			rows.Close()
			return err
		}
		if v != next {
			break // pruned: reload
		}
		e := &logEntry{}
		if err := json.Unmarshal([]byte(body), e); err != nil {
			rows.Close()
			return fmt.Errorf("lineage: change %d: %w", v, err)
		}
		entries = append(entries, e)
		next++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if next != upto+1 {
		s.log.Info("lineage: change feed pruned past this replica's version; reloading the graph", "version", from, "latest", upto)
		if !inTx {
			return s.reload(ctx)
		}
		g, err := loadGraph(ctx, q)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.g = g
		s.mu.Unlock()
		s.version.Store(upto)
		return nil
	}
	s.mu.Lock()
	var seeds []*node
	for _, e := range entries {
		seeds = append(seeds, s.g.apply(e)...)
	}
	s.g.propagate(seeds)
	s.mu.Unlock()
	s.version.Store(upto)
	return nil
}

// Version is the lineage version the in-memory graph reflects: the number
// of committed changes to the graph, by any replica.
func (s *Service) Version() int64 { return s.version.Load() }

// Refresh applies the changes other replicas committed since the graph's
// version, so that their ingests change effective tags here too. It costs
// one small query when nothing changed.
func (s *Service) Refresh(ctx context.Context) error {
	var v int64
	if err := s.db.QueryRow(ctx, `SELECT version FROM lineage_version WHERE id = 1`).Scan(&v); err != nil {
		return wrapInternal("lineage.Refresh", err)
	}
	if v <= s.version.Load() {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if v <= s.version.Load() {
		return nil
	}
	return wrapInternal("lineage.Refresh", s.catchUp(ctx, s.db, v, false))
}

// Run calls Refresh every interval until ctx ends, logging failures (the
// next tick retries). With several replicas, an interval of at most half a
// second keeps effective tags within a second of the event everywhere.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("lineage: could not apply other replicas' changes; will retry", "err", err)
		}
	}
}
