package lineage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policy"
)

// Run states.
const (
	StateStart    = "START"
	StateRunning  = "RUNNING"
	StateComplete = "COMPLETE"
	StateFail     = "FAIL"
	StateAbort    = "ABORT"
	StateOther    = "OTHER"
)

func terminal(s string) bool { return s == StateComplete || s == StateFail || s == StateAbort }

// Service keeps the lineage graph: it stores events in the metastore and
// holds the graph in memory for traversal and propagation. Ingest
// serialises writers so that memory follows the committed order; reads run
// concurrently.
type Service struct {
	db  *metastore.Store
	log *slog.Logger

	wmu sync.Mutex   // serialises writers (DB then memory) and Refresh
	mu  sync.RWMutex // guards g
	g   *graph
	// version is the lineage version (lineage_version) the graph reflects.
	version atomic.Int64

	qmu   sync.Mutex
	queue []*ingestReq // Ingest calls waiting for a transaction

	keyOnce sync.Once
	key     []byte // HMAC key of redacted placeholder ids
}

// New loads the graph from the metastore and computes inherited tags.
func New(ctx context.Context, db *metastore.Store, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, log: log}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload rebuilds the in-memory graph from the metastore (at start, or
// when this replica fell too far behind the change feed to catch up).
func (s *Service) Reload(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.reload(ctx)
}

// reload reads the graph and its version in one transaction (a snapshot
// on PostgreSQL), so the change feed continues exactly where it leaves
// off. The caller holds wmu.
func (s *Service) reload(ctx context.Context) error {
	var g *graph
	var v int64
	err := s.db.InTx(ctx, func(tx *metastore.Tx) error {
		if tx.Dialect() == metastore.Postgres {
			if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(ctx, `SELECT version FROM lineage_version WHERE id = 1`).Scan(&v); err != nil {
			return fmt.Errorf("lineage: load version: %w", err)
		}
		var err error
		g, err = loadGraph(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.g = g
	s.mu.Unlock()
	s.version.Store(v)
	return nil
}

// loadGraph reads the whole graph and computes inherited tags.
func loadGraph(ctx context.Context, q metastore.Querier) (*graph, error) {
	g := newGraph()
	rows, err := q.Query(ctx, `SELECT namespace, name, schema_json FROM lineage_datasets`)
	if err != nil {
		return nil, fmt.Errorf("lineage: load datasets: %w", err)
	}
	for rows.Next() {
		var k DatasetKey
		var schema string
		if err := rows.Scan(&k.Namespace, &k.Name, &schema); err != nil {
			rows.Close()
			return nil, err
		}
		d := g.dataset(k)
		d.schema = schema
		for _, f := range schemaFields(schema) {
			d.col(f)
		}
	}
	rows.Close()
	rows, err = q.Query(ctx, `SELECT j.namespace, j.name, j.current_run, j.current_start, io.direction, io.namespace, io.name
		FROM lineage_jobs j LEFT JOIN lineage_run_io io ON io.run_id = j.current_run`)
	if err != nil {
		return nil, fmt.Errorf("lineage: load jobs: %w", err)
	}
	type jio struct{ ins, outs []*dsNode }
	ios := map[*jobNode]*jio{}
	for rows.Next() {
		var k JobKey
		var run, start string
		var dir, ns, name *string
		if err := rows.Scan(&k.Namespace, &k.Name, &run, &start, &dir, &ns, &name); err != nil {
			rows.Close()
			return nil, err
		}
		j := g.job(k)
		j.currentRun, j.currentStart = run, start
		if ios[j] == nil {
			ios[j] = &jio{}
		}
		if dir != nil {
			d := g.dataset(DatasetKey{*ns, *name})
			if *dir == "in" {
				ios[j].ins = append(ios[j].ins, d)
			} else {
				ios[j].outs = append(ios[j].outs, d)
			}
		}
	}
	rows.Close()
	for j, io := range ios {
		g.setJobIO(j, j.currentRun, io.ins, io.outs)
	}
	rows, err = q.Query(ctx, `SELECT out_namespace, out_name, out_field, in_namespace, in_name, in_field, job_namespace, job_name, run_id, masking FROM lineage_column_edges`)
	if err != nil {
		return nil, fmt.Errorf("lineage: load column edges: %w", err)
	}
	for rows.Next() {
		var ce colEdge
		var jk JobKey
		var masking int
		if err := rows.Scan(&ce.out.Namespace, &ce.out.Name, &ce.outField, &ce.in.Namespace, &ce.in.Name, &ce.inField, &jk.Namespace, &jk.Name, &ce.run, &masking); err != nil {
			rows.Close()
			return nil, err
		}
		j, out := g.job(jk), g.dataset(ce.out)
		e := &edge{from: g.dataset(ce.in).col(ce.inField), to: out.col(ce.outField), job: j, run: ce.run, masking: masking != 0}
		link(e)
		out.colLineageIn++
		j.colEdges = append(j.colEdges, e)
	}
	rows.Close()
	rows, err = q.Query(ctx, `SELECT namespace, name, field, tag, value, classification, propagate, source FROM lineage_tags ORDER BY namespace, name, field, tag, value`)
	if err != nil {
		return nil, fmt.Errorf("lineage: load tags: %w", err)
	}
	for rows.Next() {
		var k DatasetKey
		var t LineageTag
		var cls, prop int
		if err := rows.Scan(&k.Namespace, &k.Name, &t.Field, &t.Name, &t.Value, &cls, &prop, &t.Source); err != nil {
			rows.Close()
			return nil, err
		}
		t.Classification, t.Propagate = policy.Classification(cls), prop != 0
		n := g.dataset(k).n
		if t.Field != "" {
			n = g.dataset(k).col(t.Field)
		}
		n.own = append(n.own, t)
	}
	rows.Close()
	rows, err = q.Query(ctx, `SELECT job_namespace, job_name, tag FROM lineage_blocks`)
	if err != nil {
		return nil, fmt.Errorf("lineage: load blocks: %w", err)
	}
	for rows.Next() {
		var k JobKey
		var tag string
		if err := rows.Scan(&k.Namespace, &k.Name, &tag); err != nil {
			rows.Close()
			return nil, err
		}
		g.job(k).blocks[tag] = true
	}
	rows.Close()
	var all []*node
	for _, d := range g.ds {
		all = append(all, d.n)
		for _, c := range d.cols {
			all = append(all, c)
		}
	}
	g.propagate(all)
	return g, nil
}

// IngestResult says what Ingest did with each event.
type IngestResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// change is what one committed event does to the in-memory graph.
type change struct {
	datasets []DatasetKey
	schemas  map[DatasetKey]string
	job      *JobKey
	// jobIO, if set, replaces the job's current edges.
	jobIO *struct {
		run, start string
		ins, outs  []DatasetKey
	}
	colEdges map[DatasetKey][]colEdge    // per output, replacing the job's
	tags     map[DatasetKey][]LineageTag // facet tags, replacing the facet-sourced ones
}

// Ingest records events in one transaction, in order, and then updates the
// graph and the inherited tags before returning: an output of a run is at
// least as restricted as its inputs from the first event that names it.
// Events already seen are skipped (replay changes nothing). The events of
// one call are accepted or refused together.
//
// Concurrent calls are committed together (group commit): while one
// transaction runs, the calls that arrive queue up and the next writer
// records them all in one transaction. Each call returns only after the
// transaction holding its events committed, and each keeps its own
// outcome: if the shared transaction fails, every call in it is retried
// in a transaction of its own, so a bad event fails only its own call.
func (s *Service) Ingest(ctx context.Context, principal string, events []*Event) (IngestResult, error) {
	r := &ingestReq{principal: principal, events: events}
	s.qmu.Lock()
	s.queue = append(s.queue, r)
	s.qmu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for !r.done {
		// r is still queued: take it and whatever queued behind it.
		s.qmu.Lock()
		n, size := 0, 0
		for n < len(s.queue) && (n == 0 || size+len(s.queue[n].events) <= maxGroupEvents) {
			size += len(s.queue[n].events)
			n++
		}
		group := append([]*ingestReq(nil), s.queue[:n]...)
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:]) // drop references to taken requests
		s.queue = s.queue[:rest]
		s.qmu.Unlock()
		if len(group) == 0 {
			// Only if a writer panicked with r in its group.
			return IngestResult{}, steward.Errorf(steward.EInternal, "lineage write interrupted")
		}
		s.commitGroup(ctx, group)
	}
	return r.res, r.err
}

// maxGroupEvents bounds the events of one group-commit transaction.
const maxGroupEvents = 2000

// ingestReq is one Ingest call waiting for its transaction.
type ingestReq struct {
	principal string
	events    []*Event
	// Set by the writer that committed (or failed) it, under wmu.
	done bool
	res  IngestResult
	err  error
}

// commitGroup records the requests in one transaction, or each in its own
// if that fails. The caller holds wmu.
func (s *Service) commitGroup(ctx context.Context, group []*ingestReq) {
	if len(group) > 1 {
		// The shared transaction must not fail because one caller gave up.
		ctx = context.WithoutCancel(ctx)
	}
	res, err := s.ingestTx(ctx, group)
	if err == nil || len(group) == 1 {
		for i, r := range group {
			r.done, r.err = true, err
			if err == nil {
				r.res = res[i]
			}
		}
		return
	}
	for _, r := range group {
		res, err := s.ingestTx(ctx, []*ingestReq{r})
		r.done, r.err = true, err
		if err == nil {
			r.res = res[0]
		}
	}
}

// ingestTx records the requests' events in one transaction and applies
// them to the graph after the commit. The caller holds wmu.
func (s *Service) ingestTx(ctx context.Context, reqs []*ingestReq) ([]IngestResult, error) {
	var events []*Event
	var principals []string
	var owner []int // request of each event
	for i, r := range reqs {
		events = append(events, r.events...)
		for range r.events {
			principals = append(principals, r.principal)
			owner = append(owner, i)
		}
	}
	res := make([]IngestResult, len(reqs))
	var changes []*change
	var version int64
	now := nowText()
	err := s.db.InTx(ctx, func(tx *metastore.Tx) error {
		changes = changes[:0]
		clear(res)
		v, err := s.bump(ctx, tx)
		if err != nil {
			return err
		}
		version = v
		// Writers hold wmu, so s.g is stable here without mu.
		b := newBatch(s.g)
		fresh, err := recordKeys(ctx, tx, principals, now, events)
		if err != nil {
			return err
		}
		if err := b.insertRuns(ctx, tx, events, fresh); err != nil {
			return err
		}
		for i, ev := range events {
			if !fresh[i] {
				res[owner[i]].Duplicates++
				continue
			}
			c, err := s.apply(ctx, tx, now, ev, b)
			if err != nil {
				return err
			}
			res[owner[i]].Accepted++
			changes = append(changes, c)
		}
		if err := b.flush(ctx, tx, now); err != nil {
			return err
		}
		return s.logChange(ctx, tx, v, &logEntry{Events: wireChanges(changes)})
	})
	if err != nil {
		if steward.KindOf(err) != steward.EInternal {
			return nil, err
		}
		return nil, steward.WrapError(steward.EInternal, "lineage.Ingest", err, "could not record lineage")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var seeds []*node
	for _, c := range changes {
		seeds = append(seeds, s.g.applyChange(c)...)
	}
	s.g.propagate(seeds)
	s.version.Store(version)
	return res, nil
}

func newBatch(g *graph) *batch {
	return &batch{g: g, cur: map[JobKey][2]string{}, dirty: map[JobKey]bool{}, ds: map[DatasetKey]bool{}, jobs: map[JobKey]bool{},
		runIO: map[string]*runIO{}, colSet: map[[2]DatasetKey]bool{}, colRows: map[[2]DatasetKey][]any{}, dsRows: map[DatasetKey]int{}}
}

// batch is what one Ingest transaction knows beyond the committed graph.
type batch struct {
	g     *graph
	cur   map[JobKey][2]string // job -> current run and its start
	dirty map[JobKey]bool      // jobs to write at the end
	ds    map[DatasetKey]bool  // datasets written in this transaction
	jobs  map[JobKey]bool
	runIO map[string]*runIO // runs created in this transaction: their io so far
	// colSet: (job, output) pairs given column edges in this transaction.
	colSet map[[2]DatasetKey]bool
	// colDel: (job, output) pairs whose stored column edges are replaced.
	colDel [][2]DatasetKey
	stmts  map[string]*sql.Stmt // prepared in this transaction
	// Rows written in one statement at the end (or before a read).
	ioRows   []any // run_id, direction, namespace, name
	colRows  map[[2]DatasetKey][]any
	colOrder [][2]DatasetKey
	// Datasets to upsert at the end, each once, with its latest schema.
	dsRows map[DatasetKey]int // index in dsList
	dsList []dsRow
	// newRun: runs this batch created, with the event that created them.
	newRun map[string]*Event
}

// insertRuns inserts, in one statement per 500, the runs of the batch that
// the store does not know yet, each as its first event of the batch says.
func (b *batch) insertRuns(ctx context.Context, tx *metastore.Tx, events []*Event, fresh []bool) error {
	b.newRun = map[string]*Event{}
	var cand []*Event
	seen := map[string]bool{}
	for i, ev := range events {
		if !fresh[i] || ev.Kind != KindRun || seen[ev.Run.RunID] {
			continue
		}
		seen[ev.Run.RunID] = true
		cand = append(cand, ev)
	}
	for len(cand) > 0 {
		n := min(len(cand), 500)
		part := cand[:n]
		cand = cand[n:]
		var q strings.Builder
		q.WriteString(`INSERT INTO lineage_runs (run_id, job_namespace, job_name, state, state_time, first_time, producer) VALUES `)
		args := make([]any, 0, 7*n)
		byID := map[string]*Event{}
		for i, ev := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			t := ev.EventTime.UTC().Format(time.RFC3339Nano)
			st, stt := ev.EventType, t
			if st == StateOther {
				st, stt = "", ""
			}
			args = append(args, ev.Run.RunID, ev.Job.Namespace, ev.Job.Name, st, stt, t, ev.Producer)
			byID[ev.Run.RunID] = ev
		}
		q.WriteString(` ON CONFLICT (run_id) DO NOTHING RETURNING run_id`)
		rows, err := tx.Query(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			b.newRun[id] = byID[id]
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// insertRows writes rows (width values each) with multi-row INSERTs.
// (On SQLite, one prepared single-row INSERT per row costs more than
// compiling the multi-row statement.)
func (b *batch) insertRows(ctx context.Context, tx *metastore.Tx, head string, width int, vals []any) error {
	ph := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	const maxRows = 500
	for len(vals) > 0 {
		n := min(len(vals)/width, maxRows)
		var q strings.Builder
		q.WriteString(head)
		for i := range n {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(ph)
		}
		q.WriteString(" ON CONFLICT DO NOTHING")
		if _, err := tx.Exec(ctx, q.String(), vals[:n*width]...); err != nil {
			return err
		}
		vals = vals[n*width:]
	}
	return nil
}

func (b *batch) flushIO(ctx context.Context, tx *metastore.Tx) error {
	err := b.insertRows(ctx, tx, `INSERT INTO lineage_run_io (run_id, direction, namespace, name) VALUES `, 4, b.ioRows)
	b.ioRows = b.ioRows[:0]
	return err
}

type dsRow struct {
	k      DatasetKey
	schema string // "" keeps the stored schema
}

// addDataset buffers the upsert of dataset k; a later non-empty schema
// replaces an earlier one.
func (b *batch) addDataset(k DatasetKey, schema string) {
	if i, ok := b.dsRows[k]; ok {
		if schema != "" {
			b.dsList[i].schema = schema
		}
		return
	}
	b.dsRows[k] = len(b.dsList)
	b.dsList = append(b.dsList, dsRow{k, schema})
}

// flushDatasets upserts the buffered datasets, 500 a statement.
func (b *batch) flushDatasets(ctx context.Context, tx *metastore.Tx, now string) error {
	rows := b.dsList
	for len(rows) > 0 {
		n := min(len(rows), 500)
		var q strings.Builder
		q.WriteString(`INSERT INTO lineage_datasets (namespace, name, schema_json, created_at, updated_at) VALUES `)
		args := make([]any, 0, 5*n)
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, r.k.Namespace, r.k.Name, r.schema, now, now)
		}
		q.WriteString(` ON CONFLICT (namespace, name) DO UPDATE SET updated_at = excluded.updated_at,
			schema_json = CASE WHEN excluded.schema_json = '' THEN lineage_datasets.schema_json ELSE excluded.schema_json END`)
		if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// flush writes what the batch buffered.
func (b *batch) flush(ctx context.Context, tx *metastore.Tx, now string) error {
	if err := b.flushDatasets(ctx, tx, now); err != nil {
		return err
	}
	if err := b.flushIO(ctx, tx); err != nil {
		return err
	}
	if err := b.deleteColEdges(ctx, tx); err != nil {
		return err
	}
	var cols []any
	for _, p := range b.colOrder {
		cols = append(cols, b.colRows[p]...)
	}
	if err := b.insertRows(ctx, tx, `INSERT INTO lineage_column_edges (out_namespace, out_name, out_field, in_namespace, in_name, in_field, job_namespace, job_name, run_id, masking) VALUES `, 10, cols); err != nil {
		return err
	}
	return b.flushJobs(ctx, tx, now)
}

// storedColEdges reports whether the store holds column edges of job
// into out (the graph reflects the store).
func (b *batch) storedColEdges(job JobKey, out DatasetKey) bool {
	j := b.g.jobs[job]
	if j == nil {
		return false
	}
	for _, e := range j.colEdges {
		if e.to.ds.key == out {
			return true
		}
	}
	return false
}

// deleteColEdges deletes the stored column edges of the (job, output)
// pairs in colDel.
func (b *batch) deleteColEdges(ctx context.Context, tx *metastore.Tx) error {
	if len(b.colDel) == 0 {
		return nil
	}
	st, err := b.stmt(ctx, tx, `DELETE FROM lineage_column_edges WHERE out_namespace = ? AND out_name = ? AND job_namespace = ? AND job_name = ?`)
	if err != nil {
		return err
	}
	for _, p := range b.colDel {
		if _, err := st.ExecContext(ctx, p[1].Namespace, p[1].Name, p[0].Namespace, p[0].Name); err != nil {
			return err
		}
	}
	return nil
}

// stmt returns q prepared in tx, preparing it once per transaction.
func (b *batch) stmt(ctx context.Context, tx *metastore.Tx, q string) (*sql.Stmt, error) {
	if st := b.stmts[q]; st != nil {
		return st, nil
	}
	st, err := tx.Prepare(ctx, q)
	if err != nil {
		return nil, err
	}
	if b.stmts == nil {
		b.stmts = map[string]*sql.Stmt{}
	}
	b.stmts[q] = st
	return st, nil
}

type runIO struct{ ins, outs []DatasetKey }

// flushJobs writes the jobs created or whose current run changed, in one
// statement.
func (b *batch) flushJobs(ctx context.Context, tx *metastore.Tx, now string) error {
	if len(b.dirty) == 0 {
		return nil
	}
	keys := make([]JobKey, 0, len(b.dirty))
	for k := range b.dirty {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	var q strings.Builder
	q.WriteString(`INSERT INTO lineage_jobs (namespace, name, current_run, current_start, created_at) VALUES `)
	args := make([]any, 0, 5*len(keys))
	for i, k := range keys {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?)")
		c := b.cur[k]
		args = append(args, k.Namespace, k.Name, c[0], c[1], now)
	}
	q.WriteString(` ON CONFLICT (namespace, name) DO UPDATE SET current_run = excluded.current_run, current_start = excluded.current_start`)
	_, err := tx.Exec(ctx, q.String(), args...)
	return err
}

// recordKeys records the events' keys and reports which are new: a replay
// (or a repeat within the batch) is not.
func recordKeys(ctx context.Context, tx *metastore.Tx, principals []string, now string, events []*Event) ([]bool, error) {
	fresh := make([]bool, len(events))
	keys := make([]string, len(events))
	first := map[string]int{}
	for i, ev := range events {
		keys[i] = eventKey(ev)
		if _, ok := first[keys[i]]; !ok {
			first[keys[i]] = i
		}
	}
	const chunk = 500
	var uniq []string
	for i, k := range keys {
		if first[k] == i {
			uniq = append(uniq, k)
		}
	}
	for len(uniq) > 0 {
		n := min(chunk, len(uniq))
		part := uniq[:n]
		uniq = uniq[n:]
		var q strings.Builder
		q.WriteString(`INSERT INTO lineage_events (event_key, received_at, principal) VALUES `)
		args := make([]any, 0, 3*n)
		for i, k := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?)")
			args = append(args, k, now, principals[first[k]])
		}
		q.WriteString(` ON CONFLICT DO NOTHING RETURNING event_key`)
		rows, err := tx.Query(ctx, q.String(), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			fresh[first[k]] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return fresh, nil
}

func (b *batch) knownDS(k DatasetKey) bool {
	if b.ds[k] {
		return true
	}
	_, ok := b.g.ds[k]
	return ok
}

func (b *batch) current(ctx context.Context, tx *metastore.Tx, jk JobKey) ([2]string, error) {
	if c, ok := b.cur[jk]; ok || b.jobs[jk] {
		return c, nil
	}
	if j := b.g.jobs[jk]; j != nil {
		return [2]string{j.currentRun, j.currentStart}, nil
	}
	var c [2]string
	err := tx.QueryRow(ctx, `SELECT current_run, current_start FROM lineage_jobs WHERE namespace = ? AND name = ?`, jk.Namespace, jk.Name).Scan(&c[0], &c[1])
	return c, err
}

// eventKey identifies an event for replay: run id, type and time for run
// events (as the issue asks), a hash of the canonical body otherwise.
func eventKey(ev *Event) string {
	if ev.Kind == KindRun {
		return "run:" + ev.Run.RunID + ":" + ev.EventType + ":" + ev.EventTime.UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(ev)
	h := sha256.Sum256(b)
	return string(ev.Kind) + ":" + hex.EncodeToString(h[:])
}

func (s *Service) apply(ctx context.Context, tx *metastore.Tx, now string, ev *Event, b *batch) (*change, error) {
	c := &change{schemas: map[DatasetKey]string{}, colEdges: map[DatasetKey][]colEdge{}, tags: map[DatasetKey][]LineageTag{}}
	upsertDS := func(d Dataset) error {
		k := DatasetKey{d.Namespace, d.Name}
		c.datasets = append(c.datasets, k)
		schema := ""
		if raw, ok := d.Facets["schema"]; ok {
			schema = string(raw)
			c.schemas[k] = schema
		}
		_, hasTags := d.Facets["tags"]
		_, hasOwners := d.Facets["ownership"]
		if schema == "" && !hasTags && !hasOwners && b.knownDS(k) {
			return nil // nothing to write: the row exists
		}
		b.ds[k] = true
		b.addDataset(k, schema)
		if tags, ok := facetTags(d.Facets); ok {
			c.tags[k] = tags
			if _, err := tx.Exec(ctx, `DELETE FROM lineage_tags WHERE namespace = ? AND name = ? AND source = 'facet'`, k.Namespace, k.Name); err != nil {
				return err
			}
			for _, t := range tags {
				if _, err := tx.Exec(ctx, `INSERT INTO lineage_tags (namespace, name, field, tag, value, classification, propagate, source) VALUES (?, ?, ?, ?, ?, ?, ?, 'facet') ON CONFLICT DO NOTHING`,
					k.Namespace, k.Name, t.Field, t.Name, t.Value, int(t.Classification), boolInt(t.Propagate)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch ev.Kind {
	case KindDataset:
		if err := upsertDS(*ev.Dataset); err != nil {
			return nil, err
		}
		return c, nil
	}
	jk := JobKey{ev.Job.Namespace, ev.Job.Name}
	c.job = &jk
	if _, ok := b.g.jobs[jk]; !ok && !b.jobs[jk] {
		b.jobs[jk] = true // inserted by flushJobs
		b.dirty[jk] = true
	}
	for _, d := range ev.Inputs {
		if err := upsertDS(d); err != nil {
			return nil, err
		}
	}
	for _, d := range ev.Outputs {
		if err := upsertDS(d); err != nil {
			return nil, err
		}
	}
	runID := ""
	evTime := ev.EventTime.UTC().Format(time.RFC3339Nano)
	if ev.Kind == KindRun {
		runID = ev.Run.RunID
		state := ev.EventType
		if state == StateOther {
			state = ""
		}
		// Insert or update the run by the documented rules. Runs new to
		// the store were inserted by insertRuns with their first event of
		// the batch.
		first := evTime
		if b.newRun[runID] == ev {
			b.runIO[runID] = &runIO{}
		} else {
			var oldState, oldTime string
			var oldJobNS, oldJobName string
			if err := tx.QueryRow(ctx, `SELECT state, state_time, first_time, job_namespace, job_name FROM lineage_runs WHERE run_id = ?`, runID).Scan(&oldState, &oldTime, &first, &oldJobNS, &oldJobName); err != nil {
				return nil, err
			}
			if oldJobNS != jk.Namespace || oldJobName != jk.Name {
				return nil, steward.Errorf(steward.EConflict, "run %s belongs to job %s:%s, not %s", runID, oldJobNS, oldJobName, jk)
			}
			newState, newTime := oldState, oldTime
			if state != "" && !(terminal(oldState) && !terminal(state)) && (oldState == "" || evTime >= oldTime || (terminal(state) && !terminal(oldState))) {
				newState, newTime = state, evTime
			}
			if evTime < first {
				first = evTime
			}
			if _, err := tx.Exec(ctx, `UPDATE lineage_runs SET state = ?, state_time = ?, first_time = ? WHERE run_id = ?`, newState, newTime, first, runID); err != nil {
				return nil, err
			}
		}
		evTime = first
	} else {
		// A JobEvent's inputs and outputs are the job's static lineage,
		// recorded like a run of the job that starts at the event's time.
		runID = "job-event:" + eventKey(ev)[len("JobEvent:"):][:16]
	}
	if n := len(ev.Inputs) + len(ev.Outputs); n > 0 {
		for i, d := range append(append([]Dataset(nil), ev.Inputs...), ev.Outputs...) {
			dir := "in"
			if i >= len(ev.Inputs) {
				dir = "out"
			}
			b.ioRows = append(b.ioRows, runID, dir, d.Namespace, d.Name)
		}
		if io := b.runIO[runID]; io != nil {
			for _, d := range ev.Inputs {
				io.ins = appendKey(io.ins, DatasetKey{d.Namespace, d.Name})
			}
			for _, d := range ev.Outputs {
				io.outs = appendKey(io.outs, DatasetKey{d.Namespace, d.Name})
			}
		}
	}
	// The job's current run: the most recently started one.
	cr, err := b.current(ctx, tx, jk)
	if err != nil {
		return nil, err
	}
	if cr[0] == runID || evTime >= cr[1] {
		if cr[0] != runID || cr[1] != evTime {
			b.dirty[jk] = true
		}
		io := &struct {
			run, start string
			ins, outs  []DatasetKey
		}{run: runID, start: evTime}
		if known := b.runIO[runID]; known != nil {
			// Created in this transaction: its io is what we saw.
			io.ins = append([]DatasetKey(nil), known.ins...)
			io.outs = append([]DatasetKey(nil), known.outs...)
			c.jobIO = io
		} else if cr[0] == runID && len(ev.Inputs)+len(ev.Outputs) > 0 || cr[0] != runID {
			if err := b.flushIO(ctx, tx); err != nil {
				return nil, err
			}
			rows, err := tx.Query(ctx, `SELECT direction, namespace, name FROM lineage_run_io WHERE run_id = ?`, runID)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var dir string
				var k DatasetKey
				if err := rows.Scan(&dir, &k.Namespace, &k.Name); err != nil {
					rows.Close()
					return nil, err
				}
				if dir == "in" {
					io.ins = append(io.ins, k)
				} else {
					io.outs = append(io.outs, k)
				}
			}
			rows.Close()
			c.jobIO = io
		}
		b.cur[jk] = [2]string{runID, evTime}
	}
	// Column lineage of each output replaces this job's edges into it.
	for _, d := range ev.Outputs {
		raw, ok := d.Facets["columnLineage"]
		if !ok {
			continue
		}
		out := DatasetKey{d.Namespace, d.Name}
		edges, err := parseColumnLineage(raw, out, runID)
		if err != nil {
			return nil, err
		}
		c.colEdges[out] = edges
		pair := [2]DatasetKey{jk, out}
		if !b.colSet[pair] && b.storedColEdges(jk, out) {
			b.colDel = append(b.colDel, pair) // the stored edges are replaced
		}
		b.colSet[pair] = true
		rows := make([]any, 0, 10*len(edges))
		for _, e := range edges {
			rows = append(rows, out.Namespace, out.Name, e.outField, e.in.Namespace, e.in.Name, e.inField, jk.Namespace, jk.Name, runID, boolInt(e.masking))
		}
		if _, ok := b.colRows[pair]; !ok {
			b.colOrder = append(b.colOrder, pair)
		}
		b.colRows[pair] = rows // replaces rows of an earlier event in this batch
	}
	return c, nil
}

func appendKey(l []DatasetKey, k DatasetKey) []DatasetKey {
	for _, x := range l {
		if x == k {
			return l
		}
	}
	return append(l, k)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isNoRows(err error) bool {
	return err != nil && steward.KindOf(metastore.NotFound(err, "x")) == steward.ENotFound
}

// applyChange applies one committed event to the graph and returns the
// nodes to recompute.
func (g *graph) applyChange(c *change) []*node {
	var seeds []*node
	for _, k := range c.datasets {
		d := g.dataset(k)
		if sc, ok := c.schemas[k]; ok {
			d.schema = sc
			for _, f := range schemaFields(sc) {
				d.col(f)
			}
		}
	}
	for k, tags := range c.tags {
		d := g.dataset(k)
		seeds = append(seeds, replaceFacetTags(d, tags)...)
	}
	if c.job != nil {
		j := g.job(*c.job)
		if c.jobIO != nil {
			ins := make([]*dsNode, 0, len(c.jobIO.ins))
			for _, k := range c.jobIO.ins {
				ins = append(ins, g.dataset(k))
			}
			outs := make([]*dsNode, 0, len(c.jobIO.outs))
			for _, k := range c.jobIO.outs {
				outs = append(outs, g.dataset(k))
			}
			j.currentStart = c.jobIO.start
			seeds = append(seeds, g.setJobIO(j, c.jobIO.run, ins, outs)...)
		}
		keys := make([]DatasetKey, 0, len(c.colEdges))
		for k := range c.colEdges {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(a, b int) bool { return keys[a].String() < keys[b].String() })
		for _, k := range keys {
			seeds = append(seeds, g.setColumnEdges(j, g.dataset(k), c.colEdges[k])...)
		}
	}
	return seeds
}

func replaceFacetTags(d *dsNode, tags []LineageTag) []*node {
	var seeds []*node
	strip := func(n *node) {
		kept := n.own[:0]
		for _, t := range n.own {
			if t.Source != "facet" {
				kept = append(kept, t)
			}
		}
		if len(kept) != len(n.own) {
			seeds = append(seeds, n)
		}
		n.own = kept
	}
	strip(d.n)
	for _, c := range d.cols {
		strip(c)
	}
	for _, t := range tags {
		t.Source = "facet"
		n := d.n
		if t.Field != "" {
			n = d.col(t.Field)
		}
		n.own = append(n.own, t)
		seeds = append(seeds, n)
	}
	return seeds
}

// facetTags reads the tags and ownership facets of a dataset as own tags.
// A tag whose value is C1..C4 (or whose key is "classification") carries
// that classification. Owners become tags "owner" that do not propagate.
func facetTags(facets map[string]json.RawMessage) ([]LineageTag, bool) {
	var out []LineageTag
	found := false
	if raw, ok := facets["tags"]; ok {
		found = true
		var f struct {
			Tags []struct {
				Key, Value, Source, Field string
			} `json:"tags"`
		}
		if json.Unmarshal(raw, &f) == nil {
			for _, t := range f.Tags {
				tag := LineageTag{Name: t.Key, Value: t.Value, Field: t.Field, Propagate: true}
				if c, ok := policy.ParseClassification(t.Value); ok {
					tag.Classification = c
				}
				out = append(out, tag)
			}
		}
	}
	if raw, ok := facets["ownership"]; ok {
		found = true
		var f struct {
			Owners []struct{ Name, Type string } `json:"owners"`
		}
		if json.Unmarshal(raw, &f) == nil {
			for _, o := range f.Owners {
				out = append(out, LineageTag{Name: "owner", Value: o.Name})
			}
		}
	}
	return out, found
}

// schemaFields lists the top-level field names of a schema facet.
func schemaFields(raw string) []string {
	if raw == "" {
		return nil
	}
	var f struct {
		Fields []struct{ Name string } `json:"fields"`
	}
	if json.Unmarshal([]byte(raw), &f) != nil {
		return nil
	}
	out := make([]string, 0, len(f.Fields))
	for _, x := range f.Fields {
		if x.Name != "" {
			out = append(out, x.Name)
		}
	}
	return out
}

// parseColumnLineage reads the columnLineage facet of output out. An input
// field whose transformations include one marked masking=true makes a
// masking edge: it carries no tags. The facet's dataset-wide "dataset"
// list (indirect dependencies such as filters and joins) makes no column
// edges.
func parseColumnLineage(raw json.RawMessage, out DatasetKey, run string) ([]colEdge, error) {
	var f struct {
		Fields map[string]struct {
			InputFields []struct {
				Namespace, Name, Field string
				Transformations        []struct {
					Type, Subtype string
					Masking       bool
				}
			} `json:"inputFields"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, steward.Errorf(steward.EInvalid, "columnLineage facet of %s: %v", out, err)
	}
	var edges []colEdge
	names := make([]string, 0, len(f.Fields))
	for k := range f.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, of := range names {
		for _, in := range f.Fields[of].InputFields {
			masking := false
			for _, t := range in.Transformations {
				masking = masking || t.Masking
			}
			edges = append(edges, colEdge{out: out, outField: of, in: DatasetKey{in.Namespace, in.Name}, inField: in.Field, run: run, masking: masking})
		}
	}
	return edges, nil
}

// InheritedTags returns what the dataset inherits through lineage (its
// columns' inherited tags included, with Field set) and the highest
// classification among them. An unknown dataset inherits nothing. The
// catalog's own tags are not included: compose them with these.
func (s *Service) InheritedTags(ctx context.Context, namespace, name string) ([]InheritedTag, policy.Classification, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.g.ds[DatasetKey{namespace, name}]
	if d == nil {
		return nil, policy.Unclassified, nil
	}
	tags := d.inherited()
	return tags, maxClass(tags), nil
}

// ColumnInheritedTags is InheritedTags for one column.
func (s *Service) ColumnInheritedTags(ctx context.Context, namespace, name, field string) ([]InheritedTag, policy.Classification, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.g.ds[DatasetKey{namespace, name}]
	if d == nil || d.cols[field] == nil {
		return nil, policy.Unclassified, nil
	}
	var tags []InheritedTag
	for _, t := range sortedInh(d.cols[field].inh) {
		tags = append(tags, *t)
	}
	return tags, maxClass(tags), nil
}

// classOf is the highest classification of own and inherited tags.
func classOf(own []LineageTag, inh []InheritedTag) policy.Classification {
	c := maxClass(inh)
	for _, t := range own {
		if t.Classification > c {
			c = t.Classification
		}
	}
	return c
}

func maxClass(tags []InheritedTag) policy.Classification {
	c := policy.Unclassified
	for _, t := range tags {
		if t.Classification > c {
			c = t.Classification
		}
	}
	return c
}

// OwnTags returns the own tags lineage knows for a dataset and its columns
// (from facets and SetTags).
func (s *Service) OwnTags(ctx context.Context, namespace, name string) []LineageTag {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.g.ds[DatasetKey{namespace, name}]
	if d == nil {
		return nil
	}
	out := append([]LineageTag(nil), d.n.own...)
	for _, c := range sortedCols(d) {
		out = append(out, c.own...)
	}
	return out
}

// SetTags replaces the own tags of a dataset (field "") or column that
// came from source (e.g. "catalog" or "api"; "facet" is reserved for
// OpenLineage facets) and propagates the change downstream at once,
// retracting what no remaining path provides. The dataset is created if
// unknown.
func (s *Service) SetTags(ctx context.Context, namespace, name, field, source string, tags []LineageTag) error {
	if namespace == "" || name == "" || source == "" || source == "facet" {
		return steward.Errorf(steward.EInvalid, "namespace, name and a source other than 'facet' are required")
	}
	entry := &logEntry{Tags: &tagsChange{Dataset: DatasetKey{namespace, name}, Field: field, Source: source, Tags: tags}}
	return s.change(ctx, "lineage.SetTags", entry, func(tx *metastore.Tx, now string) error {
		if _, err := tx.Exec(ctx, `INSERT INTO lineage_datasets (namespace, name, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, namespace, name, now, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM lineage_tags WHERE namespace = ? AND name = ? AND field = ? AND source = ?`, namespace, name, field, source); err != nil {
			return err
		}
		for _, t := range tags {
			if t.Name == "" {
				return steward.Errorf(steward.EInvalid, "a tag needs a name")
			}
			if _, err := tx.Exec(ctx, `INSERT INTO lineage_tags (namespace, name, field, tag, value, classification, propagate, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
				namespace, name, field, t.Name, t.Value, int(t.Classification), boolInt(t.Propagate), source); err != nil {
				return err
			}
		}
		return nil
	}, func() []*node { return s.g.setTags(DatasetKey{namespace, name}, field, source, tags) })
}

// change runs one versioned write outside Ingest: under the write lock,
// one transaction bumps the lineage version, runs fn and logs entry for
// the other replicas; then the in-memory graph applies it (apply returns
// the nodes to recompute) and propagates.
func (s *Service) change(ctx context.Context, op string, entry *logEntry, fn func(tx *metastore.Tx, now string) error, apply func() []*node) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	now := nowText()
	var version int64
	err := s.db.InTx(ctx, func(tx *metastore.Tx) error {
		v, err := s.bump(ctx, tx)
		if err != nil {
			return err
		}
		version = v
		if err := fn(tx, now); err != nil {
			return err
		}
		return s.logChange(ctx, tx, v, entry)
	})
	if err != nil {
		return wrapInternal(op, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.g.propagate(apply())
	s.version.Store(version)
	return nil
}

// setTags replaces the own tags of a dataset or column that came from
// source and returns the node to recompute.
func (g *graph) setTags(k DatasetKey, field, source string, tags []LineageTag) []*node {
	d := g.dataset(k)
	n := d.n
	if field != "" {
		n = d.col(field)
	}
	kept := n.own[:0]
	for _, t := range n.own {
		if t.Source != source {
			kept = append(kept, t)
		}
	}
	n.own = kept
	for _, t := range tags {
		t.Field, t.Source = field, source
		n.own = append(n.own, t)
	}
	return []*node{n}
}

// SetBlocks replaces the tags a job blocks on its edges ("*" blocks all):
// Atlas's per-edge propagation block list, e.g. a job that hashes the
// e-mail column blocks PII.
func (s *Service) SetBlocks(ctx context.Context, job JobKey, tags []string) error {
	if job.Namespace == "" || job.Name == "" {
		return steward.Errorf(steward.EInvalid, "a job namespace and name are required")
	}
	return s.change(ctx, "lineage.SetBlocks", &logEntry{Blocks: &blocksChange{Job: job, Tags: tags}}, func(tx *metastore.Tx, now string) error {
		if _, err := tx.Exec(ctx, `INSERT INTO lineage_jobs (namespace, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, job.Namespace, job.Name, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM lineage_blocks WHERE job_namespace = ? AND job_name = ?`, job.Namespace, job.Name); err != nil {
			return err
		}
		for _, t := range tags {
			if _, err := tx.Exec(ctx, `INSERT INTO lineage_blocks (job_namespace, job_name, tag) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, job.Namespace, job.Name, t); err != nil {
				return err
			}
		}
		return nil
	}, func() []*node { return s.g.setBlocks(job, tags) })
}

// setBlocks replaces a job's block list and returns the nodes to
// recompute.
func (g *graph) setBlocks(job JobKey, tags []string) []*node {
	j := g.job(job)
	j.blocks = map[string]bool{}
	for _, t := range tags {
		j.blocks[t] = true
	}
	var seeds []*node
	for _, e := range j.dsEdges {
		seeds = append(seeds, e.to)
	}
	for _, e := range j.colEdges {
		seeds = append(seeds, e.to)
	}
	return seeds
}

func wrapInternal(op string, err error) error {
	if k := steward.KindOf(err); k != steward.EInternal {
		return err
	}
	return steward.WrapError(steward.EInternal, op, err, "lineage store failed")
}

// LineageExplanation answers "why is this dataset classified so?".
type LineageExplanation struct {
	Dataset        DatasetKey     `json:"dataset"`
	Classification string         `json:"classification,omitempty"`
	Own            []LineageTag   `json:"own,omitempty"`
	Inherited      []InheritedTag `json:"inherited,omitempty"`
	Reasons        []string       `json:"reasons"`
}

// Explain returns the dataset's own and inherited tags with a sentence for
// each inherited one.
func (s *Service) Explain(ctx context.Context, namespace, name string) (*LineageExplanation, error) {
	inh, cls, err := s.InheritedTags(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	own := s.OwnTags(ctx, namespace, name)
	for _, t := range own {
		if t.Classification > cls {
			cls = t.Classification
		}
	}
	ex := &LineageExplanation{Dataset: DatasetKey{namespace, name}, Classification: cls.String(), Own: own, Inherited: inh, Reasons: []string{}}
	for _, t := range inh {
		ex.Reasons = append(ex.Reasons, t.Explain())
	}
	return ex, nil
}

// ParseNodeID parses a Marquez node id: "dataset:NAMESPACE:NAME",
// "job:NAMESPACE:NAME" or "datasetField:NAMESPACE:NAME:FIELD". Namespaces
// often contain ':' (postgres://host:5432), so the field and then the name
// are the parts after the last ':'; names must not contain ':'.
func ParseNodeID(id string) (kind string, k DatasetKey, field string, err error) {
	bad := steward.Errorf(steward.EInvalid, "node id %q: want dataset:NAMESPACE:NAME, job:NAMESPACE:NAME or datasetField:NAMESPACE:NAME:FIELD", id)
	kind, rest, ok := strings.Cut(id, ":")
	if !ok {
		return "", k, "", bad
	}
	if kind == "datasetField" {
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 {
			return "", k, "", bad
		}
		rest, field = rest[:i], rest[i+1:]
		if field == "" {
			return "", k, "", bad
		}
	} else if kind != "dataset" && kind != "job" {
		return "", k, "", bad
	}
	i := lastSep(rest)
	if i <= 0 || i == len(rest)-1 {
		return "", k, "", bad
	}
	return kind, DatasetKey{rest[:i], rest[i+1:]}, field, nil
}

// lastSep finds the ':' separating namespace from name: the last ':' not
// part of "://".
func lastSep(s string) int {
	for i := len(s) - 1; i > 0; i-- {
		if s[i] != ':' || strings.HasPrefix(s[i:], "://") {
			continue
		}
		return i
	}
	return -1
}

func nowText() string { return time.Now().UTC().Format(time.RFC3339Nano) }
