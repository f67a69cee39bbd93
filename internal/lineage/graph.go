package lineage

import (
	"sort"
	"strings"

	"github.com/stewardhq/steward/internal/policy"
)

// DatasetKey names a dataset (or a job) by its OpenLineage namespace and name.
type DatasetKey struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// JobKey names a job.
type JobKey = DatasetKey

func (k DatasetKey) String() string { return k.Namespace + ":" + k.Name }

// LineageTag is an own tag of a dataset (Field empty) or of one of its columns.
// Propagate says whether it flows downstream (Apache Atlas's propagate
// flag, true by default); Classification is the level the tag implies,
// if any.
type LineageTag struct {
	Name           string                `json:"name"`
	Value          string                `json:"value,omitempty"`
	Field          string                `json:"field,omitempty"`
	Classification policy.Classification `json:"classification,omitempty"`
	Propagate      bool                  `json:"propagate"`
	Source         string                `json:"source,omitempty"`
}

// InheritedTag is a tag that reached a dataset or column through lineage,
// with its provenance: where it originates and the last hop that brought
// it (from which dataset or column, through which job and run).
type InheritedTag struct {
	Name           string                `json:"name"`
	Value          string                `json:"value,omitempty"`
	Classification policy.Classification `json:"classification,omitempty"`
	// Field is the column of the dataset that carries the tag (empty for a
	// dataset-level tag).
	Field string `json:"field,omitempty"`
	// Origin is the dataset (and column) whose own tag this is.
	Origin      DatasetKey `json:"origin"`
	OriginField string     `json:"origin_field,omitempty"`
	// From is the upstream dataset (and column) of the last hop; Job and
	// Run the job and run of that hop.
	From      DatasetKey `json:"from"`
	FromField string     `json:"from_field,omitempty"`
	Job       JobKey     `json:"job"`
	Run       string     `json:"run,omitempty"`
}

// Explain renders the provenance for people: "PII (C3) because column
// email of crm:customers flows here through job etl:load, run 1234".
func (t InheritedTag) Explain() string {
	var b strings.Builder
	b.WriteString(t.Name)
	if t.Value != "" {
		b.WriteString("=" + t.Value)
	}
	if c := t.Classification.String(); c != "" {
		b.WriteString(" (" + c + ")")
	}
	if t.Field != "" {
		b.WriteString(" on column " + t.Field)
	}
	b.WriteString(" because ")
	if t.OriginField != "" {
		b.WriteString("column " + t.OriginField + " of ")
	}
	b.WriteString(t.Origin.String() + " flows here")
	if t.From != t.Origin || t.FromField != t.OriginField {
		b.WriteString(" via ")
		if t.FromField != "" {
			b.WriteString("column " + t.FromField + " of ")
		}
		b.WriteString(t.From.String())
	}
	b.WriteString(" through job " + t.Job.String())
	if t.Run != "" {
		b.WriteString(", run " + t.Run)
	}
	return b.String()
}

// node is a dataset (field "") or a column in the propagation graph.
type node struct {
	ds    *dsNode
	field string
	own   []LineageTag
	// in: edges bringing tags here.
	in  []*edge
	out []*edge
	inh []*InheritedTag // sorted by tag name and value

	mark uint32 // graph epoch in which propagate found it affected
	inQ  bool   // in propagate's worklist
}

type edge struct {
	from, to *node
	job      *jobNode
	run      string
	masking  bool
}

type dsNode struct {
	key    DatasetKey
	n      *node // the dataset itself
	cols   map[string]*node
	schema string
	// colLineage: column edges arrive here, so the dataset-level roll-up of
	// upstream column tags is replaced by column-level flow.
	colLineageIn int
	readers      map[*jobNode]bool // jobs reading this dataset
	writers      map[*jobNode]bool // jobs writing it
}

type jobNode struct {
	key          JobKey
	currentRun   string
	currentStart string
	inputs       map[*dsNode]bool
	outputs      map[*dsNode]bool
	blocks       map[string]bool
	// dsEdges: the dataset-level propagation edges this job contributes.
	dsEdges []*edge
	// colEdges: the column edges of this job's columnLineage facets.
	colEdges []*edge
}

// graph is the in-memory lineage graph. It is guarded by Service.mu.
type graph struct {
	ds    map[DatasetKey]*dsNode
	jobs  map[JobKey]*jobNode
	epoch uint32
	// tagged: the datasets holding more than the catalog's tags (tagged.go).
	tagged map[DatasetKey]uint64
}

func newGraph() *graph {
	return &graph{ds: map[DatasetKey]*dsNode{}, jobs: map[JobKey]*jobNode{}}
}

func (g *graph) dataset(k DatasetKey) *dsNode {
	d := g.ds[k]
	if d == nil {
		d = &dsNode{key: k, cols: map[string]*node{}, readers: map[*jobNode]bool{}, writers: map[*jobNode]bool{}}
		d.n = &node{ds: d}
		g.ds[k] = d
	}
	return d
}

func (d *dsNode) col(field string) *node {
	c := d.cols[field]
	if c == nil {
		c = &node{ds: d, field: field}
		d.cols[field] = c
	}
	return c
}

func (g *graph) job(k JobKey) *jobNode {
	j := g.jobs[k]
	if j == nil {
		j = &jobNode{key: k, inputs: map[*dsNode]bool{}, outputs: map[*dsNode]bool{}, blocks: map[string]bool{}}
		g.jobs[k] = j
	}
	return j
}

func removeEdge(list []*edge, e *edge) []*edge {
	for i, x := range list {
		if x == e {
			list[i] = list[len(list)-1]
			return list[:len(list)-1]
		}
	}
	return list
}

func (g *graph) unlink(e *edge) {
	e.from.out = removeEdge(e.from.out, e)
	e.to.in = removeEdge(e.to.in, e)
}

func link(e *edge) {
	e.from.out = append(e.from.out, e)
	e.to.in = append(e.to.in, e)
}

// setJobIO replaces a job's current inputs and outputs and returns the
// nodes whose inherited tags must be recomputed.
func (g *graph) setJobIO(j *jobNode, run string, ins, outs []*dsNode) []*node {
	var touched []*node
	for _, e := range j.dsEdges {
		g.unlink(e)
		touched = append(touched, e.to)
	}
	j.dsEdges = j.dsEdges[:0]
	for d := range j.inputs {
		delete(d.readers, j)
	}
	for d := range j.outputs {
		delete(d.writers, j)
	}
	j.inputs, j.outputs = map[*dsNode]bool{}, map[*dsNode]bool{}
	for _, d := range ins {
		j.inputs[d] = true
		d.readers[j] = true
	}
	for _, d := range outs {
		j.outputs[d] = true
		d.writers[j] = true
	}
	for in := range j.inputs {
		for out := range j.outputs {
			e := &edge{from: in.n, to: out.n, job: j, run: run}
			link(e)
			j.dsEdges = append(j.dsEdges, e)
			touched = append(touched, out.n)
		}
	}
	j.currentRun = run
	return touched
}

// colEdge is one column lineage edge to install.
type colEdge struct {
	out, in DatasetKey
	outField, inField,
	run string
	masking bool
}

// setColumnEdges replaces the column edges job j contributes to output
// dataset out.
func (g *graph) setColumnEdges(j *jobNode, out *dsNode, edges []colEdge) []*node {
	var touched []*node
	kept := j.colEdges[:0]
	for _, e := range j.colEdges {
		if e.to.ds == out {
			g.unlink(e)
			out.colLineageIn--
			touched = append(touched, e.to)
			continue
		}
		kept = append(kept, e)
	}
	j.colEdges = kept
	for _, ce := range edges {
		in := g.dataset(ce.in)
		e := &edge{from: in.col(ce.inField), to: out.col(ce.outField), job: j, run: ce.run, masking: ce.masking}
		link(e)
		out.colLineageIn++
		j.colEdges = append(j.colEdges, e)
		touched = append(touched, e.to)
	}
	touched = append(touched, out.n)
	return touched
}

// carries reports the tags node m passes along e: its own propagating
// tags and what it inherited, minus what the edge blocks.
func (e *edge) blocked(tag string) bool {
	if e.masking {
		return true
	}
	return e.job != nil && (e.job.blocks[tag] || e.job.blocks["*"])
}

// successors of n in the propagation graph: edges out of n; for a column
// or dataset whose tags roll up to the dataset level downstream (the output
// has no column lineage), the dataset edges of its dataset.
func (g *graph) successors(n *node, fn func(*node)) {
	for _, e := range n.out {
		fn(e.to)
	}
	if n.field != "" {
		for _, e := range n.ds.n.out {
			if e.to.ds.colLineageIn == 0 {
				fn(e.to)
			}
		}
	}
}

func tagKey(name, value string) string { return name + "=" + value }

// compute returns n's inherited tags from its in-edges, given the current
// state of its predecessors.
func (g *graph) compute(n *node) []*InheritedTag {
	var out []*InheritedTag
	add := func(e *edge, from *node, t InheritedTag) {
		if e.blocked(t.Name) {
			return
		}
		for _, old := range out {
			if old.Name == t.Name && old.Value == t.Value {
				if t.Classification > old.Classification {
					old.Classification = t.Classification
				}
				return
			}
		}
		t.Field = n.field
		t.From, t.FromField, t.Job, t.Run = from.ds.key, from.field, e.job.key, e.run
		out = append(out, &t)
	}
	pass := func(e *edge, from *node) {
		for _, t := range from.own {
			if t.Propagate {
				add(e, from, InheritedTag{Name: t.Name, Value: t.Value, Classification: t.Classification, Origin: from.ds.key, OriginField: from.field})
			}
		}
		for _, t := range from.inh {
			add(e, from, *t)
		}
	}
	for _, e := range n.in {
		pass(e, e.from)
		// A dataset-level edge into a dataset without column lineage also
		// carries every column tag of its input.
		if n.field == "" && e.from.field == "" && n.ds.colLineageIn == 0 {
			for _, c := range sortedCols(e.from.ds) {
				pass(e, c)
			}
		}
	}
	if len(out) > 1 {
		sort.Slice(out, func(i, j int) bool { return tagKey(out[i].Name, out[i].Value) < tagKey(out[j].Name, out[j].Value) })
	}
	return out
}

// sortedInh returns inherited tags in order (they are kept sorted).
func sortedInh(l []*InheritedTag) []*InheritedTag { return l }

func sortedCols(d *dsNode) []*node {
	out := make([]*node, 0, len(d.cols))
	for _, c := range d.cols {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].field < out[j].field })
	return out
}

// propagate recomputes inherited tags of everything downstream of seeds
// (included) by reachability: the affected nodes are reset and refilled by
// a monotone fixpoint from their unaffected predecessors, so a tag that no
// path still provides disappears, and cycles terminate.
func (g *graph) propagate(seeds []*node) int {
	g.epoch++
	ep := g.epoch
	stack := make([]*node, 0, len(seeds))
	for _, s := range seeds {
		if s != nil && s.mark != ep {
			s.mark = ep
			stack = append(stack, s)
		}
	}
	order := make([]*node, 0, len(stack))
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		order = append(order, n)
		g.successors(n, func(m *node) {
			if m.mark != ep {
				m.mark = ep
				stack = append(stack, m)
			}
		})
	}
	for _, n := range order {
		n.inh = nil
		n.inQ = true
	}
	// Worklist: process in discovery order, requeue successors when a
	// node's set grows (sets only grow from empty, so this terminates).
	queue := append([]*node(nil), order...)
	for i := 0; i < len(queue); i++ {
		n := queue[i]
		n.inQ = false
		nw := g.compute(n)
		if sameInh(nw, n.inh) {
			continue
		}
		n.inh = nw
		g.successors(n, func(m *node) {
			if m.mark == ep && !m.inQ {
				m.inQ = true
				queue = append(queue, m)
			}
		})
	}
	g.noteTagged(order)
	return len(order)
}

func sameInh(a, b []*InheritedTag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value || a[i].Classification != b[i].Classification {
			return false
		}
	}
	return true
}

// inherited returns the dataset's inherited tags, its columns' included.
func (d *dsNode) inherited() []InheritedTag {
	var out []InheritedTag
	for _, t := range sortedInh(d.n.inh) {
		out = append(out, *t)
	}
	for _, c := range sortedCols(d) {
		for _, t := range sortedInh(c.inh) {
			out = append(out, *t)
		}
	}
	return out
}
