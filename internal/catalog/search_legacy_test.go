package catalog

// The search index as it was before the impact-ordered rework, kept
// (test-only) so that BenchmarkSearchLegacy measures it side by side
// with the current one on the same corpus.

import (
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/policy"
)

// legacyIndex is this replica's in-memory search index over the catalog. It is
// rebuilt from the Store on start (Refresh from version 0) and kept fresh
// by polling the catalog version (Run), loading only what changed, the
// same pattern as the policy engine's Holder. Safe for concurrent use.
type legacyIndex struct {
	store *Store
	log   *slog.Logger
	now   func() time.Time

	refreshMu sync.Mutex // one refresh at a time

	mu       sync.RWMutex
	version  int64
	docs     map[Key]*legacyDoc
	byID     []*legacyDoc               // legacyDoc ID -> legacyDoc (nil when free)
	free     []int32                    // free legacyDoc IDs
	postings map[string][]legacyPosting // term -> docs with the field weight
	deletes  map[string][]string        // one-deletion variant -> terms
	terms    map[string]int             // term -> number of docs
	pop      map[Key]float64            // popularity scores (see SetPopularity)
	// inherit: effective tags (own plus inherited) in discover, filters
	// and facets, exhaustively, as the reference for the index's overlay.
	inherit Inheritance
}

type legacyDoc struct {
	ds     *Dataset
	id     int32
	ref    string // NAMESPACE/NAME, the tie-break
	policy string // the policy name
	tags   []policy.Tag
	terms  map[string]float32
}

type legacyPosting struct {
	id int32
	w  float32
}

// newLegacyIndex returns an empty index over s; call Refresh before use.
func newLegacyIndex(s *Store, log *slog.Logger) *legacyIndex {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &legacyIndex{store: s, log: log, now: time.Now, version: -1,
		docs: map[Key]*legacyDoc{}, postings: map[string][]legacyPosting{}, deletes: map[string][]string{}, terms: map[string]int{}, pop: map[Key]float64{}}
}

func (ix *legacyIndex) add(d *Dataset) {
	dc := &legacyDoc{ds: d, terms: map[string]float32{}, ref: Ref(d.Namespace, d.Name), policy: PolicyName(d.Namespace, d.Name), tags: d.PolicyTags()}
	if n := len(ix.free); n > 0 {
		dc.id = ix.free[n-1]
		ix.free = ix.free[:n-1]
		ix.byID[dc.id] = dc
	} else {
		dc.id = int32(len(ix.byID))
		ix.byID = append(ix.byID, dc)
	}
	put := func(text string, w float32) {
		for _, t := range Tokenize(text) {
			if dc.terms[t] < w {
				dc.terms[t] = w
			}
		}
	}
	put(d.Name, wName)
	put(d.Description, wDescription)
	for _, t := range d.Tags {
		put(t.Name, wTag)
		for _, v := range t.Attrs {
			put(v, wTag/2)
		}
	}
	for _, o := range append(append([]string{}, d.Owners...), d.Stewards...) {
		put(strings.TrimPrefix(o, "group:"), wOwner)
	}
	walkColumns(d.Schema, func(p string, c *Column) {
		put(p, wColumn)
		put(c.Description, wDescription/2)
		for _, t := range c.Tags {
			put(t.Name, wTag/2)
		}
	})
	put(string(d.Format), 0.5)
	for t, w := range dc.terms {
		ps, ok := ix.postings[t]
		if !ok {
			for _, del := range legacyDeletions(t) {
				ix.deletes[del] = append(ix.deletes[del], t)
			}
		}
		ix.postings[t] = append(ps, legacyPosting{dc.id, w})
		ix.terms[t]++
	}
	ix.docs[Key{d.Namespace, d.Name}] = dc
}

func (ix *legacyIndex) remove(k Key) {
	dc, ok := ix.docs[k]
	if !ok {
		return
	}
	delete(ix.docs, k)
	ix.byID[dc.id] = nil
	ix.free = append(ix.free, dc.id)
	for t := range dc.terms {
		ps := ix.postings[t]
		for i := range ps {
			if ps[i].id == dc.id {
				ps[i] = ps[len(ps)-1]
				ps = ps[:len(ps)-1]
				break
			}
		}
		ix.postings[t] = ps
		ix.terms[t]--
		if len(ps) == 0 {
			delete(ix.postings, t)
			delete(ix.terms, t)
			for _, del := range legacyDeletions(t) {
				l := ix.deletes[del]
				for i, x := range l {
					if x == t {
						l[i] = l[len(l)-1]
						l = l[:len(l)-1]
						break
					}
				}
				if len(l) == 0 {
					delete(ix.deletes, del)
				} else {
					ix.deletes[del] = l
				}
			}
		}
	}
}

type legacyTermMatch struct {
	term string
	q    float64 // quality: 1 exact, 0.8 prefix, 0.6/0.4 one/two edits
}

// expand finds the indexed terms a query term matches: itself, terms it
// is a prefix of (for query terms of 3 runes or more), and terms within
// edit distance 1 (query terms of 4+ runes) or 2 (8+ runes).
func (ix *legacyIndex) expand(qt string) []legacyTermMatch {
	var out []legacyTermMatch
	seen := map[string]bool{}
	addm := func(t string, q float64) {
		if !seen[t] {
			seen[t] = true
			out = append(out, legacyTermMatch{t, q})
		}
	}
	if _, ok := ix.postings[qt]; ok {
		addm(qt, 1)
	}
	n := len([]rune(qt))
	if n >= 4 {
		maxd := 1
		if n >= 8 {
			maxd = 2
		}
		// Candidates: terms equal to a deletion of qt, terms with a
		// deletion equal to qt or to a deletion of qt.
		cands := map[string]bool{}
		for _, t := range ix.deletes[qt] {
			cands[t] = true
		}
		for _, del := range legacyDeletions(qt) {
			if _, ok := ix.postings[del]; ok {
				cands[del] = true
			}
			for _, t := range ix.deletes[del] {
				cands[t] = true
			}
			if maxd > 1 {
				for _, del2 := range legacyDeletions(del) {
					if _, ok := ix.postings[del2]; ok {
						cands[del2] = true
					}
					for _, t := range ix.deletes[del2] {
						cands[t] = true
					}
				}
			}
		}
		for t := range cands {
			if d := editDistance(qt, t, maxd); d >= 1 && d <= maxd {
				addm(t, 0.8-0.2*float64(d))
			}
		}
	}
	if n >= 3 {
		// Prefix matches of the query term and of its typo corrections
		// ("mortage" -> "mortgage" -> "mortgages"): one scan of the
		// vocabulary, bounded by the number of matches kept.
		bases := append([]legacyTermMatch{{qt, 1}}, out...)
		c := 0
		for t := range ix.postings {
			for _, b := range bases {
				if len(t) > len(b.term) && strings.HasPrefix(t, b.term) {
					addm(t, 0.8*b.q)
					c++
					break
				}
			}
			if c >= 64 {
				break
			}
		}
	}
	return out
}

// Search runs q for viewer v, showing only datasets v may discover.
func (ix *legacyIndex) Search(dec Decider, v Viewer, q Query) SearchResult {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	q.Limit = min(q.Limit, 1000)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	qterms := Tokenize(q.Text)
	if len(qterms) > MaxQueryTerms {
		qterms = qterms[:MaxQueryTerms]
	}
	n := len(ix.byID)
	scores := make([]float32, n)
	matched := make([]uint8, n)
	best := make([]float32, n)
	var touched, termTouched []int32
	ndocs := float64(len(ix.docs)) + 1
	if len(qterms) == 0 {
		for id, dc := range ix.byID {
			if dc != nil {
				scores[id] = 1
				touched = append(touched, int32(id))
			}
		}
	}
	for _, qt := range qterms {
		termTouched = termTouched[:0]
		for _, m := range ix.expand(qt) {
			ps := ix.postings[m.term]
			idf := math.Log(1 + ndocs/float64(len(ps)))
			f := float32(m.q * idf)
			for _, p := range ps {
				sc := f * p.w
				if best[p.id] == 0 {
					termTouched = append(termTouched, p.id)
				}
				if sc > best[p.id] {
					best[p.id] = sc
				}
			}
		}
		for _, id := range termTouched {
			if matched[id] == 0 {
				touched = append(touched, id)
			}
			scores[id] += best[id]
			matched[id]++
			best[id] = 0
		}
	}
	now := ix.now()
	type hit struct {
		dc    *legacyDoc
		score float64
	}
	var hits []hit
	facets := map[string]map[string]int{"tag": {}, "classification": {}, "owner": {}, "format": {}}
	for _, id := range touched {
		dc := ix.byID[id]
		d := dc.ds
		tags, level := effective(ix.inherit, d.Namespace, d.Name, dc.tags, d.Level())
		// Tag names the dataset has only through lineage (the tag facet
		// counts them with its own dataset tags).
		var inhNames []string
		for _, t := range tags[len(dc.tags):] {
			if t.Name != classificationTag && !slices.ContainsFunc(dc.tags, func(o policy.Tag) bool { return o.Name == t.Name }) && !slices.Contains(inhNames, t.Name) {
				inhNames = append(inhNames, t.Name)
			}
		}
		if !legacyMatches(&q, d, level, inhNames) || !(v.Admin || v.Owns(d) || discover(dec, v, level, dc.policy, tags)) {
			continue
		}
		s := float64(scores[id])
		if n := len(qterms); n > 0 {
			// Datasets matching every term come first.
			s *= math.Pow(float64(matched[id])/float64(n), 2)
		}
		if p := ix.pop[Key{d.Namespace, d.Name}]; p > 0 {
			s *= 1 + 0.2*math.Log1p(p)
		}
		age := now.Sub(d.Changed).Hours() / 24
		s *= 1 + 0.1*math.Exp(-math.Max(age, 0)/30)
		hits = append(hits, hit{dc, s})
		var counted []string
		for _, t := range d.Tags {
			if !slices.Contains(counted, t.Name) {
				counted = append(counted, t.Name)
				facets["tag"][t.Name]++
			}
		}
		for _, n := range inhNames {
			if !slices.Contains(counted, n) {
				counted = append(counted, n)
				facets["tag"][n]++
			}
		}
		if level != policy.Unclassified {
			facets["classification"][level.String()]++
		}
		for _, o := range d.Owners {
			facets["owner"][o]++
		}
		if d.Format != "" {
			facets["format"][string(d.Format)]++
		}
	}
	less := func(a, b hit) bool {
		if a.score != b.score {
			return a.score > b.score
		}
		return a.dc.ref < b.dc.ref
	}
	// Only the page needs ordering: keep the best Offset+Limit.
	k := min(len(hits), q.Offset+q.Limit)
	top := legacyTopK(hits, k, less)
	res := SearchResult{Total: len(hits), Facets: map[string][]SearchFacet{}}
	for i := q.Offset; i < len(top); i++ {
		res.Hits = append(res.Hits, SearchHit{Dataset: top[i].dc.ds, Score: top[i].score})
	}
	if res.Hits == nil {
		res.Hits = []SearchHit{}
	}
	for name, m := range facets {
		fs := []SearchFacet{}
		for v, c := range m {
			fs = append(fs, SearchFacet{v, c})
		}
		sort.Slice(fs, func(i, j int) bool {
			if fs[i].Count != fs[j].Count {
				return fs[i].Count > fs[j].Count
			}
			return fs[i].Value < fs[j].Value
		})
		if len(fs) > 50 {
			fs = fs[:50]
		}
		res.Facets[name] = fs
	}
	return res
}

func legacyMatches(q *Query, d *Dataset, level policy.Classification, inherited []string) bool {
	if q.Classification != "" && !strings.EqualFold(q.Classification, level.String()) {
		return false
	}
	if q.Format != "" && q.Format != d.Format {
		return false
	}
	if q.Namespace != "" && q.Namespace != d.Namespace {
		return false
	}
	if q.Owner != "" {
		ok := false
		for _, o := range append(append([]string{}, d.Owners...), d.Stewards...) {
			ok = ok || o == q.Owner
		}
		if !ok {
			return false
		}
	}
	for _, t := range q.Tags {
		if HasTag(d.Tags, t) || slices.Contains(inherited, t) {
			continue
		}
		found := false
		walkColumns(d.Schema, func(_ string, c *Column) { found = found || HasTag(c.Tags, t) })
		if !found {
			return false
		}
	}
	return true
}

// legacyDeletions returns the strings made by deleting one rune of t.
func legacyDeletions(t string) []string {
	r := []rune(t)
	if len(r) < 4 {
		return nil
	}
	out := make([]string, 0, len(r))
	for i := range r {
		out = append(out, string(r[:i])+string(r[i+1:]))
	}
	return out
}

// legacyTopK returns the k smallest elements of xs by less, in order.
func legacyTopK[T any](xs []T, k int, less func(a, b T) bool) []T {
	if k <= 0 {
		return nil
	}
	if len(xs) <= 4*k || len(xs) < 256 {
		sort.Slice(xs, func(i, j int) bool { return less(xs[i], xs[j]) })
		return xs[:min(k, len(xs))]
	}
	buf := make([]T, 0, k+1)
	for _, x := range xs {
		if len(buf) == k && !less(x, buf[k-1]) {
			continue
		}
		i := sort.Search(len(buf), func(i int) bool { return less(x, buf[i]) })
		buf = append(buf, x)
		copy(buf[i+1:], buf[i:])
		buf[i] = x
		if len(buf) > k {
			buf = buf[:k]
		}
	}
	return buf
}
