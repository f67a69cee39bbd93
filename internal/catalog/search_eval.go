package catalog

import (
	"container/heap"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/policy"
)

// How a query runs.
//
// The query's terms are expanded (exact, typo, prefix) into vocabulary
// terms, each with a posting list in impact order. The lists are read
// best first, in chunks, always from the list whose next posting promises
// the most; each document met for the first time is checked against the
// filters and the discover decision, then scored exactly from its own
// term list (so a document found through one term gets the credit of all
// the others). Reading stops when every list is exhausted (exact totals
// and facets), or when the page's hits are certain (the k-th best score
// is at least the most any unread document could score) and CountBound
// visible matches were counted (Approximate: total is a lower bound,
// facets cover the matches read), or after ScanBudget postings
// or ConsiderBudget documents (Approximate too: the hits are the best
// found, which in practice are the best: the lists are read best first).
//
// A selective owner, tag or namespace filter is evaluated the other way
// round: its document list is read in full and every document scored.

// Bounds of one query's work.
const (
	// CountBound is how many visible matches are counted before the
	// search may stop counting (see SearchResult.Approximate).
	CountBound = 1_000
	// ScanBudget bounds the postings read, and ConsiderBudget the
	// documents scored, by one query; a query that reaches either returns
	// the best hits found (Approximate).
	ScanBudget     = 100_000
	ConsiderBudget = 4_000
	// driverMax is the longest filter list read in full instead of the
	// posting lists.
	driverMax = 4_000
	// preMax is the longest filter list turned into a bitset that the
	// scan checks first.
	preMax = 500_000
	chunk  = 128
)

// MemoTTL is how long a viewer's cached discover decisions live. The
// cache is also dropped when the decider's version changes and per
// dataset when a dataset changes; the TTL bounds staleness for policies
// whose effect depends on time (validity schedules, time conditions).
const MemoTTL = 30 * time.Second

const maxMemos = 64

// visMemo caches one viewer's discover decisions per document: 0 not yet
// decided, 1 visible, 2 hidden, plus memoInherits when the document
// inherited tags when it was decided.
//
// A lineage change (a new inheritance version) does not drop the
// decisions: it clears fresh, and a decision whose fresh bit is unset is
// checked again with one lookup of what the document inherits now. A
// document that inherited nothing then and inherits nothing now keeps its
// decision; any other is decided afresh. So a lineage change costs a
// lookup per document a search meets, not a policy decision.
type visMemo struct {
	mu     sync.Mutex
	ver    int64
	inhVer int64    // the inheritance version fresh refers to
	fresh  *seenSet // documents whose decision holds at inhVer
	born   time.Time
	used   time.Time
	state  []uint8
	dec    Decider
	viewer string
}

// memoInherits marks a memoized decision taken with inherited tags.
const memoInherits = 4

// versioned is a Decider whose decisions change only with its version
// (*policystore.Holder, *policy.Engine).
type versioned interface{ Version() int64 }

func viewerKey(v Viewer) string {
	g, r := slices.Clone(v.Groups), slices.Clone(v.Roles)
	slices.Sort(g)
	slices.Sort(r)
	return v.User + "\x00" + strings.Join(g, "\x01") + "\x00" + strings.Join(r, "\x01")
}

// memo returns the locked memo for (dec, v), or nil when decisions cannot
// be cached (a decider without a version, or of a non-pointer type).
func (ix *Index) memo(dec Decider, v Viewer, now time.Time) *visMemo {
	vd, ok := dec.(versioned)
	if !ok || reflect.ValueOf(dec).Kind() != reflect.Pointer {
		return nil
	}
	key := viewerKey(v)
	ver := vd.Version()
	var inhVer int64
	if ix.inherit != nil {
		// Read before any inherited tags are: a change after this makes
		// the next search check them again (see visMemo).
		inhVer = ix.inherit.Version()
	}
	ix.memoMu.Lock()
	m := ix.memos[key]
	if m == nil {
		if len(ix.memos) >= maxMemos {
			var oldest string
			var ot time.Time
			for k, x := range ix.memos {
				if oldest == "" || x.used.Before(ot) {
					oldest, ot = k, x.used
				}
			}
			delete(ix.memos, oldest)
		}
		m = &visMemo{viewer: key}
		ix.memos[key] = m
	}
	m.used = now
	ix.memoMu.Unlock()
	m.mu.Lock()
	if m.dec != dec || m.ver != ver || now.Sub(m.born) > MemoTTL || now.Before(m.born) {
		m.dec, m.ver, m.born = dec, ver, now
		clear(m.state)
	}
	if len(m.state) < len(ix.docs) {
		m.state = append(m.state, make([]uint8, len(ix.docs)-len(m.state))...)
	}
	if m.fresh == nil || len(m.fresh.bits)*64 < len(ix.docs) {
		m.fresh = &seenSet{bits: make([]uint64, (len(ix.docs)+63)/64+len(ix.docs)/512)}
		m.inhVer = inhVer
	}
	if m.inhVer != inhVer {
		clear(m.fresh.bits)
		m.inhVer = inhVer
	}
	return m
}

// forget drops cached decisions and the decoded dataset of doc id (it
// changed). Called with ix.mu held for writing, so no search holds a
// memo.
func (ix *Index) forget(id uint32) {
	delete(ix.cache, id)
	ix.memoMu.Lock()
	defer ix.memoMu.Unlock()
	for _, m := range ix.memos {
		if int(id) < len(m.state) {
			m.state[id] = 0
		}
	}
}

// eval is one query's state.
type eval struct {
	ix     *Index
	dec    Decider
	v      Viewer
	q      *Query
	now    time.Time
	memo   *visMemo
	ov     *inhOverlay // effective tags of the datasets that inherit (nil: none)
	mine   []uint32    // interned owner entries that make v an owner
	qterms [][]expansion
	// filters
	level   policy.Classification
	tags    []uint32
	owner   uint32
	ns      uint32
	noMatch bool // a filter names something no dataset has

	pre        *seenSet // documents in the shortest filter list (nil: none)
	heap       hitHeap
	k          int
	total      int
	considered int
	fTag       map[uint32]int
	fOwner     map[uint32]int
	fClass     [policy.C4 + 1]int
	fFormat    map[Format]int
}

type scored struct {
	id    uint32
	score float64
}

// hitHeap is a min-heap of the best hits so far (the worst on top).
type hitHeap struct {
	ix *Index
	h  []scored
}

func (h *hitHeap) Len() int      { return len(h.h) }
func (h *hitHeap) Swap(i, j int) { h.h[i], h.h[j] = h.h[j], h.h[i] }
func (h *hitHeap) Less(i, j int) bool {
	return h.ix.better(h.h[j], h.h[i])
}
func (h *hitHeap) Push(x any) { h.h = append(h.h, x.(scored)) }
func (h *hitHeap) Pop() any {
	x := h.h[len(h.h)-1]
	h.h = h.h[:len(h.h)-1]
	return x
}

// better orders hits: higher score first, then by NAMESPACE/NAME.
func (ix *Index) better(a, b scored) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	da, db := &ix.docs[a.id], &ix.docs[b.id]
	return Ref(ix.nameOf[da.ns], da.name) < Ref(ix.nameOf[db.ns], db.name)
}

// Search runs q for viewer v, showing only datasets v may discover.
func (ix *Index) Search(dec Decider, v Viewer, q Query) SearchResult {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	q.Limit = min(q.Limit, 1000)
	q.Offset = max(q.Offset, 0)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e := &eval{ix: ix, dec: dec, v: v, q: &q, now: ix.now(), k: q.Offset + q.Limit,
		fTag: map[uint32]int{}, fOwner: map[uint32]int{}, fFormat: map[Format]int{}}
	e.heap.ix = ix
	if ov := ix.overlay(); ov != nil && len(ov.docs) > 0 {
		e.ov = ov
	}
	approx := false
	if e.prepare() {
		if !v.Admin && dec != nil {
			if e.memo = ix.memo(dec, v, e.now); e.memo != nil {
				defer e.memo.mu.Unlock()
			}
		}
		if ls, n, ok := e.driver(); ok {
			for _, l := range ls {
				for _, id := range l {
					e.consider(id)
				}
			}
		} else {
			if ls != nil && n <= preMax {
				// Too long to read in full, but a bitset of it rejects
				// most scanned documents without touching them.
				e.pre = getSeen(len(ix.docs))
				defer putSeen(e.pre)
				for _, l := range ls {
					for _, id := range l {
						e.pre.mark(id)
					}
				}
			}
			approx = e.scan()
		}
	}
	return e.result(approx)
}

// prepare resolves the query's terms and filters; false if nothing can
// match.
func (e *eval) prepare() bool {
	ix, q := e.ix, e.q
	words := Tokenize(q.Text)
	if len(words) > MaxQueryTerms {
		words = words[:MaxQueryTerms]
	}
	for _, w := range words {
		exps := ix.expand(w)
		slices.SortFunc(exps, func(a, b expansion) int { return int(a.term) - int(b.term) })
		e.qterms = append(e.qterms, exps)
	}
	if q.Classification != "" {
		c, ok := policy.ParseClassification(q.Classification)
		if !ok {
			return false
		}
		e.level = c
	}
	for _, t := range q.Tags {
		id, ok := ix.lookupName(e.ov, t)
		if !ok || len(ix.tagDocs[id]) == 0 && (e.ov == nil || len(e.ov.tagDocs[id]) == 0) {
			return false
		}
		e.tags = append(e.tags, id)
	}
	e.owner, e.ns = math.MaxUint32, math.MaxUint32
	if q.Owner != "" {
		id, ok := ix.names[q.Owner]
		if !ok {
			return false
		}
		e.owner = id
	}
	if q.Namespace != "" {
		id, ok := ix.names[q.Namespace]
		if !ok {
			return false
		}
		e.ns = id
	}
	if !e.v.Admin {
		if id, ok := ix.names[e.v.User]; ok && e.v.User != "" {
			e.mine = append(e.mine, id)
		}
		for _, g := range e.v.Groups {
			if id, ok := ix.names["group:"+g]; ok {
				e.mine = append(e.mine, id)
			}
		}
	}
	if len(words) > 0 {
		anyTerm := false
		for _, t := range e.qterms {
			anyTerm = anyTerm || len(t) > 0
		}
		return anyTerm
	}
	return true
}

// driver returns the shortest filter document list (in pieces: a tag's
// own and inherited lists) and its length; ok if short enough to read in
// full.
func (e *eval) driver() ([][]uint32, int, bool) {
	var best [][]uint32
	n, ok := 0, false
	try := func(ls ...[]uint32) {
		m := 0
		for _, l := range ls {
			m += len(l)
		}
		if !ok || m < n {
			best, n, ok = ls, m, true
		}
	}
	for _, t := range e.tags {
		if e.ov != nil && len(e.ov.tagDocs[t]) > 0 {
			try(e.ix.tagDocs[t], e.ov.tagDocs[t])
		} else {
			try(e.ix.tagDocs[t])
		}
	}
	if e.owner != math.MaxUint32 {
		try(e.ix.ownerDocs[e.owner])
	}
	if e.ns != math.MaxUint32 {
		try(e.ix.nsDocs[e.ns])
	}
	return best, n, ok && n <= e.ix.driverMax
}

// cursor reads one posting list.
type cursor struct {
	post []posting
	pos  int
	f    float64 // the expansion's weight (1 for the all-documents list)
	qt   int     // the query term it expands
}

func (c *cursor) bound() float64 {
	if c.pos >= len(c.post) {
		return 0
	}
	return c.f * float64(c.post[c.pos].imp)
}

// scan reads the posting lists best first; it reports whether it stopped
// before reading everything.
func (e *eval) scan() bool {
	ix := e.ix
	var cs []cursor
	if len(e.qterms) == 0 {
		cs = append(cs, cursor{post: ix.all.post, f: 1})
	}
	for i, exps := range e.qterms {
		for _, x := range exps {
			cs = append(cs, cursor{post: ix.terms[x.term].post, f: x.f, qt: i})
		}
	}
	nq := max(len(e.qterms), 1)
	seen := getSeen(len(ix.docs))
	defer putSeen(seen)
	read := 0
	bestPerTerm := make([]float64, nq)
	for {
		// The most an unread document can score: the sum over query
		// terms of the best next posting among its expansions.
		clear(bestPerTerm)
		pick, pickB := -1, 0.0
		for i := range cs {
			b := cs[i].bound()
			if b > bestPerTerm[cs[i].qt] {
				bestPerTerm[cs[i].qt] = b
			}
			if b > pickB {
				pick, pickB = i, b
			}
		}
		if pick < 0 {
			return false // all read
		}
		threshold := 0.0
		for _, b := range bestPerTerm {
			threshold += b
		}
		threshold *= 1 + 1e-5 // float32 impacts
		if e.heap.Len() >= e.k && e.heap.h[0].score >= threshold && e.total >= e.ix.countBound {
			return true
		}
		if read >= ScanBudget || e.considered >= ConsiderBudget {
			return true
		}
		c := &cs[pick]
		end := min(c.pos+chunk, len(c.post))
		for _, p := range c.post[c.pos:end] {
			if e.pre != nil && !e.pre.has(p.id) {
				continue
			}
			if seen.mark(p.id) {
				e.consider(p.id)
			}
		}
		read += end - c.pos
		c.pos = end
	}
}

// seenSet marks documents met by one query: a bitset, small enough to
// stay in cache (128 KiB per million documents).
type seenSet struct{ bits []uint64 }

var seenPool sync.Pool

func getSeen(n int) *seenSet {
	s, _ := seenPool.Get().(*seenSet)
	if s == nil {
		s = &seenSet{}
	}
	words := (n + 63) / 64
	if len(s.bits) < words {
		s.bits = make([]uint64, words+words/8)
	} else {
		clear(s.bits)
	}
	return s
}

func putSeen(s *seenSet) { seenPool.Put(s) }

func (s *seenSet) has(id uint32) bool { return s.bits[id>>6]&(1<<(id&63)) != 0 }

func (s *seenSet) mark(id uint32) bool {
	w, b := id>>6, uint64(1)<<(id&63)
	if s.bits[w]&b != 0 {
		return false
	}
	s.bits[w] |= b
	return true
}

// consider checks, scores and counts one document.
func (e *eval) consider(id uint32) {
	e.considered++
	d := &e.ix.docs[id]
	if !d.live || !e.filtered(id, d) {
		return
	}
	s, ok := e.score(d)
	if !ok || !e.visible(id, d) {
		return
	}
	e.total++
	for _, t := range d.datasetTags() {
		e.fTag[t]++
	}
	for _, t := range e.inheritedTags(id) {
		if !slices.Contains(d.datasetTags(), t) {
			e.fTag[t]++
		}
	}
	for _, o := range d.ownersOnly() {
		e.fOwner[o]++
	}
	e.fClass[e.effLevel(id, d)]++
	if d.format != "" {
		e.fFormat[d.format]++
	}
	h := scored{id, s}
	if e.heap.Len() < e.k {
		heap.Push(&e.heap, h)
	} else if e.ix.better(h, e.heap.h[0]) {
		e.heap.h[0] = h
		heap.Fix(&e.heap, 0)
	}
}

// filtered applies the query's filters, tags and classification on
// effective tags.
func (e *eval) filtered(id uint32, d *docInfo) bool {
	q := e.q
	if e.level != 0 && e.effLevel(id, d) != e.level {
		return false
	}
	if q.Format != "" && q.Format != d.format {
		return false
	}
	if e.ns != math.MaxUint32 && d.ns != e.ns {
		return false
	}
	if e.owner != math.MaxUint32 && !slices.Contains(d.owners(), e.owner) {
		return false
	}
	for _, t := range e.tags {
		if !e.hasTag(id, d, t) {
			return false
		}
	}
	return true
}

// visible is the discover rule on the effective tags (see
// Service.CanDiscover), cached per viewer.
func (e *eval) visible(id uint32, d *docInfo) bool {
	if e.v.Admin {
		return true
	}
	m := e.memo
	if m != nil && m.state[id]&3 == 1 && (e.ix.inherit == nil || m.fresh.has(id)) {
		return true
	}
	for _, o := range d.owners() {
		if slices.Contains(e.mine, o) {
			return true
		}
	}
	if m != nil && m.state[id]&3 == 2 && (e.ix.inherit == nil || m.fresh.has(id)) {
		return false
	}
	ns := e.ix.nameOf[d.ns]
	tags, level := d.policyTags, d.level
	inherits := false
	if e.ix.inherit != nil {
		lt, lc := e.ix.inherit.PolicyTags(ns, d.name)
		if inherits = len(lt) > 0 || lc > policy.Unclassified; inherits {
			tags, level = append(slices.Clip(tags), lt...), max(level, lc)
		} else if m != nil && (m.state[id] == 1 || m.state[id] == 2) {
			// Decided without inheritance, and still none: it holds.
			m.fresh.mark(id)
			return m.state[id] == 1
		}
	}
	if e.dec == nil {
		return level < policy.C4
	}
	ok := discover(e.dec, e.v, level, PolicyName(ns, d.name), tags)
	if m != nil {
		st := uint8(2)
		if ok {
			st = 1
		}
		if inherits {
			st |= memoInherits
		}
		m.state[id] = st
		m.fresh.mark(id)
	}
	return ok
}

// score is d's exact score: per query term the best of its expansions
// (weight x field weight), summed, times the squared share of query terms
// matched (documents matching every term come first), times popularity
// and freshness. ok is false when no query term matches.
func (e *eval) score(d *docInfo) (float64, bool) {
	prior := float64(d.popF * freshFactor(d.changed, e.now))
	if len(e.qterms) == 0 {
		return prior, true
	}
	sum, matched := 0.0, 0
	for _, exps := range e.qterms {
		best := 0.0
		for _, x := range exps {
			j, _ := slices.BinarySearch(d.terms, x.term<<3)
			if j < len(d.terms) && d.terms[j]>>3 == x.term {
				if s := x.f * float64(fieldWeights[d.terms[j]&7]); s > best {
					best = s
				}
			}
		}
		if best > 0 {
			sum += best
			matched++
		}
	}
	if matched == 0 {
		return 0, false
	}
	cov := float64(matched) / float64(len(e.qterms))
	return sum * cov * cov * prior, true
}

func (e *eval) result(approx bool) SearchResult {
	ix := e.ix
	res := SearchResult{Total: e.total, Approximate: approx, Hits: []SearchHit{}, Facets: map[string][]SearchFacet{}}
	top := make([]scored, len(e.heap.h))
	copy(top, e.heap.h)
	slices.SortFunc(top, func(a, b scored) int {
		if ix.better(a, b) {
			return -1
		}
		if ix.better(b, a) {
			return 1
		}
		return 0
	})
	for i := e.q.Offset; i < len(top); i++ {
		d, err := ix.dataset(top[i].id)
		if err != nil {
			ix.log.Error("catalog index: cannot decode an indexed dataset", "err", err)
			continue
		}
		level := e.effLevel(top[i].id, &ix.docs[top[i].id])
		res.Hits = append(res.Hits, SearchHit{Dataset: ix.viewOf(e.ov, top[i].id, d), Score: top[i].score, EffectiveClassification: level.String()})
	}
	named := func(m map[uint32]int) []SearchFacet {
		fs := []SearchFacet{}
		for id, c := range m {
			fs = append(fs, SearchFacet{ix.tagName(e.ov, id), c})
		}
		return fs
	}
	res.Facets["tag"] = named(e.fTag)
	res.Facets["owner"] = named(e.fOwner)
	cl := []SearchFacet{}
	for c := policy.C1; c <= policy.C4; c++ {
		if e.fClass[c] > 0 {
			cl = append(cl, SearchFacet{c.String(), e.fClass[c]})
		}
	}
	res.Facets["classification"] = cl
	fm := []SearchFacet{}
	for f, c := range e.fFormat {
		fm = append(fm, SearchFacet{string(f), c})
	}
	res.Facets["format"] = fm
	for name, fs := range res.Facets {
		slices.SortFunc(fs, func(a, b SearchFacet) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Compare(a.Value, b.Value)
		})
		if len(fs) > 50 {
			res.Facets[name] = fs[:50]
		}
	}
	return res
}
