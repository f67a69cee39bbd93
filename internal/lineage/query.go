package lineage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// Directions of a graph query.
const (
	Both       = "both"
	Upstream   = "upstream"
	Downstream = "downstream"
)

// Node types, as Marquez names them.
const (
	TypeDataset      = "DATASET"
	TypeJob          = "JOB"
	TypeDatasetField = "DATASET_FIELD"
)

// MaxDepth bounds the depth of a graph query.
const MaxDepth = 100

// GraphQuery asks for the lineage around one node.
type GraphQuery struct {
	NodeID    string
	Depth     int    // job hops for dataset graphs, column hops for column graphs; 0 means 20
	Direction string // Both (default), Upstream or Downstream (impact analysis)
	// CanDiscover decides whether the caller may see a dataset's name,
	// given the dataset's tags as lineage knows them (own and inherited);
	// nil lets everything show. Hidden datasets and their columns appear as
	// placeholders with an opaque id and no data. It is called with the
	// graph read-locked: it must not call back into the Service.
	CanDiscover func(DatasetKey, []policy.Tag, policy.Classification) bool
}

// LineageGraph is the answer, in Marquez's shape.
type LineageGraph struct {
	Graph []LineageNode `json:"graph"`
}

// LineageNode is one node with its edges.
type LineageNode struct {
	ID       string        `json:"id"`
	Type     string        `json:"type"`
	Data     any           `json:"data"`
	InEdges  []LineageEdge `json:"inEdges"`
	OutEdges []LineageEdge `json:"outEdges"`
}

// LineageEdge links two node ids.
type LineageEdge struct {
	Origin      string `json:"origin"`
	Destination string `json:"destination"`
}

// DatasetData is the data of a dataset node.
type DatasetData struct {
	Type           string          `json:"type"`
	Namespace      string          `json:"namespace"`
	Name           string          `json:"name"`
	Fields         json.RawMessage `json:"fields,omitempty"`
	Tags           []LineageTag    `json:"tags,omitempty"`
	Inherited      []InheritedTag  `json:"inheritedTags,omitempty"`
	Classification string          `json:"classification,omitempty"`
}

// JobData is the data of a job node.
type JobData struct {
	Type       string   `json:"type"`
	Namespace  string   `json:"namespace"`
	Name       string   `json:"name"`
	CurrentRun string   `json:"currentRun,omitempty"`
	Blocks     []string `json:"blockedTags,omitempty"`
}

// FieldData is the data of a column node.
type FieldData struct {
	Type           string         `json:"type"`
	Namespace      string         `json:"namespace"`
	Dataset        string         `json:"dataset"`
	Field          string         `json:"field"`
	Tags           []LineageTag   `json:"tags,omitempty"`
	Inherited      []InheritedTag `json:"inheritedTags,omitempty"`
	Classification string         `json:"classification,omitempty"`
}

// gnode is a vertex of the traversal: a dataset, a job or a column.
type gnode struct {
	job *jobNode
	n   *node // dataset node or column node
}

func (s *Service) redactKey() []byte {
	s.keyOnce.Do(func() {
		s.key = make([]byte, 32)
		rand.Read(s.key)
	})
	return s.key
}

func (s *Service) idOf(v gnode, q *GraphQuery) (id, typ string, hidden bool) {
	switch {
	case v.job != nil:
		return "job:" + v.job.key.String(), TypeJob, false
	case v.n.field == "":
		if !q.can(v.n.ds) {
			return "dataset:redacted:" + s.opaque(v.n.ds.key.String()), TypeDataset, true
		}
		return "dataset:" + v.n.ds.key.String(), TypeDataset, false
	default:
		if !q.can(v.n.ds) {
			return "datasetField:redacted:" + s.opaque(v.n.ds.key.String()+":"+v.n.field), TypeDatasetField, true
		}
		return "datasetField:" + v.n.ds.key.String() + ":" + v.n.field, TypeDatasetField, false
	}
}

func (s *Service) opaque(x string) string {
	m := hmac.New(sha256.New, s.redactKey())
	m.Write([]byte(x))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// Graph returns the dataset and job lineage around a dataset or job node.
func (s *Service) Graph(ctx context.Context, q GraphQuery) (*LineageGraph, error) {
	kind, k, _, err := ParseNodeID(q.NodeID)
	if err != nil {
		return nil, err
	}
	if kind == "datasetField" {
		return nil, steward.Errorf(steward.EInvalid, "use the column lineage endpoint for datasetField nodes")
	}
	if err := normalize(&q); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var start gnode
	if kind == "job" {
		j := s.g.jobs[k]
		if j == nil {
			return nil, steward.Errorf(steward.ENotFound, "job %s not found", k)
		}
		start = gnode{job: j}
	} else {
		d := s.g.ds[k]
		if d == nil || !q.can(d) {
			return nil, steward.Errorf(steward.ENotFound, "dataset %s not found", k)
		}
		start = gnode{n: d.n}
	}
	// Bipartite traversal: dataset -> reading job -> written dataset.
	next := func(v gnode, down bool) []gnode {
		var out []gnode
		if v.job != nil {
			set := v.job.inputs
			if down {
				set = v.job.outputs
			}
			for d := range set {
				out = append(out, gnode{n: d.n})
			}
		} else {
			set := v.n.ds.writers
			if down {
				set = v.n.ds.readers
			}
			for j := range set {
				out = append(out, gnode{job: j})
			}
		}
		return out
	}
	// Depth counts jobs: 2 steps per level.
	return s.render(start, q, 2*q.Depth, next), nil
}

// ColumnGraph returns the column lineage around a datasetField node.
func (s *Service) ColumnGraph(ctx context.Context, q GraphQuery) (*LineageGraph, error) {
	kind, k, field, err := ParseNodeID(q.NodeID)
	if err != nil {
		return nil, err
	}
	if err := normalize(&q); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.g.ds[k]
	if d == nil || !q.can(d) {
		return nil, steward.Errorf(steward.ENotFound, "dataset %s not found", k)
	}
	var starts []gnode
	switch kind {
	case "datasetField":
		c := d.cols[field]
		if c == nil {
			return nil, steward.Errorf(steward.ENotFound, "field %s of %s not found", field, k)
		}
		starts = []gnode{{n: c}}
	case "dataset":
		for _, c := range sortedCols(d) {
			starts = append(starts, gnode{n: c})
		}
	default:
		return nil, steward.Errorf(steward.EInvalid, "column lineage starts at a dataset or datasetField node")
	}
	next := func(v gnode, down bool) []gnode {
		var out []gnode
		list := v.n.in
		if down {
			list = v.n.out
		}
		for _, e := range list {
			if down {
				out = append(out, gnode{n: e.to})
			} else {
				out = append(out, gnode{n: e.from})
			}
		}
		return out
	}
	g := &LineageGraph{Graph: []LineageNode{}}
	seen := map[string]bool{}
	for _, st := range starts {
		for _, n := range s.render(st, q, q.Depth, next).Graph {
			if !seen[n.ID] {
				seen[n.ID] = true
				g.Graph = append(g.Graph, n)
			}
		}
	}
	return g, nil
}

func (q *GraphQuery) can(d *dsNode) bool {
	if q.CanDiscover == nil {
		return true
	}
	tags, cls := d.policyTags()
	return q.CanDiscover(d.key, tags, cls)
}

// policyTags are the dataset's tags as the policy engine sees them: own
// and inherited, its columns' included, and the highest classification.
func (d *dsNode) policyTags() ([]policy.Tag, policy.Classification) {
	var tags []policy.Tag
	seen := map[string]bool{}
	cls := policy.Unclassified
	add := func(name, value string, c policy.Classification) {
		if c > cls {
			cls = c
		}
		k := tagKey(name, value)
		if seen[k] {
			return
		}
		seen[k] = true
		t := policy.Tag{Name: name}
		if value != "" {
			t.Attrs = map[string]string{"value": value}
		}
		tags = append(tags, t)
	}
	for _, n := range append([]*node{d.n}, sortedCols(d)...) {
		for _, t := range n.own {
			add(t.Name, t.Value, t.Classification)
		}
		for _, t := range sortedInh(n.inh) {
			add(t.Name, t.Value, t.Classification)
		}
	}
	return tags, cls
}

// PolicyTags returns a dataset's tags as lineage knows them (own from
// facets and SetTags, and inherited), for policy requests.
func (s *Service) PolicyTags(k DatasetKey) ([]policy.Tag, policy.Classification) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.g.ds[k]
	if d == nil {
		return nil, policy.Unclassified
	}
	return d.policyTags()
}

// PolicyName is the hierarchical name policies match a dataset by (the
// same rule as the catalog's): the namespace's authority followed by the
// name's path segments, joined with "." (s3://bank, sales/mortgages ->
// "bank.sales.mortgages").
func PolicyName(namespace, name string) string {
	auth := namespace
	if _, rest, ok := strings.Cut(namespace, "://"); ok {
		auth = rest
	}
	parts := []string{strings.Trim(auth, "/")}
	for _, s := range strings.Split(name, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ".")
}

func normalize(q *GraphQuery) error {
	if q.Depth <= 0 {
		q.Depth = 20
	}
	if q.Depth > MaxDepth {
		q.Depth = MaxDepth
	}
	switch q.Direction {
	case "":
		q.Direction = Both
	case Both, Upstream, Downstream:
	default:
		return steward.Errorf(steward.EInvalid, "direction must be both, upstream or downstream")
	}
	return nil
}

// render walks from start up and/or down at most steps edges (each vertex
// once, so cycles end) and renders the visited vertices with the edges
// among them.
func (s *Service) render(start gnode, q GraphQuery, steps int, next func(gnode, bool) []gnode) *LineageGraph {
	visited := map[gnode]bool{start: true}
	edges := map[[2]gnode]bool{}
	walk := func(down bool) {
		frontier := []gnode{start}
		seen := map[gnode]bool{start: true}
		for step := 0; step < steps && len(frontier) > 0; step++ {
			var nf []gnode
			for _, v := range frontier {
				for _, w := range next(v, down) {
					if down {
						edges[[2]gnode{v, w}] = true
					} else {
						edges[[2]gnode{w, v}] = true
					}
					if !seen[w] {
						seen[w] = true
						visited[w] = true
						nf = append(nf, w)
					}
				}
			}
			frontier = nf
		}
	}
	if q.Direction != Downstream {
		walk(false)
	}
	if q.Direction != Upstream {
		walk(true)
	}
	type rn struct {
		LineageNode
		v gnode
	}
	byV := map[gnode]*rn{}
	var list []*rn
	for v := range visited {
		id, typ, hidden := s.idOf(v, &q)
		r := &rn{LineageNode: LineageNode{ID: id, Type: typ, InEdges: []LineageEdge{}, OutEdges: []LineageEdge{}}, v: v}
		if !hidden {
			r.Data = nodeData(v)
		}
		byV[v] = r
		list = append(list, r)
	}
	for e := range edges {
		a, b := byV[e[0]], byV[e[1]]
		if a == nil || b == nil {
			continue
		}
		ed := LineageEdge{Origin: a.ID, Destination: b.ID}
		a.OutEdges = append(a.OutEdges, ed)
		b.InEdges = append(b.InEdges, ed)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	g := &LineageGraph{Graph: make([]LineageNode, 0, len(list))}
	for _, r := range list {
		sortEdges(r.InEdges)
		sortEdges(r.OutEdges)
		g.Graph = append(g.Graph, r.LineageNode)
	}
	return g
}

func sortEdges(es []LineageEdge) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].Origin != es[j].Origin {
			return es[i].Origin < es[j].Origin
		}
		return es[i].Destination < es[j].Destination
	})
}

func nodeData(v gnode) any {
	if v.job != nil {
		jd := JobData{Type: TypeJob, Namespace: v.job.key.Namespace, Name: v.job.key.Name, CurrentRun: v.job.currentRun}
		for t := range v.job.blocks {
			jd.Blocks = append(jd.Blocks, t)
		}
		sort.Strings(jd.Blocks)
		return jd
	}
	if v.n.field == "" {
		d := v.n.ds
		inh := d.inherited()
		dd := DatasetData{Type: TypeDataset, Namespace: d.key.Namespace, Name: d.key.Name, Tags: append([]LineageTag(nil), d.n.own...), Inherited: inh}
		for _, c := range sortedCols(d) {
			dd.Tags = append(dd.Tags, c.own...)
		}
		if d.schema != "" {
			var f struct {
				Fields json.RawMessage `json:"fields"`
			}
			if json.Unmarshal([]byte(d.schema), &f) == nil {
				dd.Fields = f.Fields
			}
		}
		dd.Classification = classOf(dd.Tags, inh).String()
		return dd
	}
	var inh []InheritedTag
	for _, t := range sortedInh(v.n.inh) {
		inh = append(inh, *t)
	}
	fd := FieldData{Type: TypeDatasetField, Namespace: v.n.ds.key.Namespace, Dataset: v.n.ds.key.Name, Field: v.n.field, Tags: v.n.own, Inherited: inh}
	fd.Classification = classOf(v.n.own, inh).String()
	return fd
}
