package catalog

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/stewardhq/steward/internal/policy"
)

// Index is this replica's in-memory search index over the catalog. It is
// rebuilt from the Store on start (Refresh from version 0) and kept fresh
// by polling the catalog version (Run), loading only what changed, the
// same pattern as the policy engine's Holder. Safe for concurrent use.
type Index struct {
	store *Store
	log   *slog.Logger
	now   func() time.Time

	refreshMu sync.Mutex // one refresh at a time

	mu       sync.RWMutex
	version  int64
	docs     map[Key]*doc
	byID     []*doc               // doc ID -> doc (nil when free)
	free     []int32              // free doc IDs
	postings map[string][]posting // term -> docs with the field weight
	deletes  map[string][]string  // one-deletion variant -> terms
	terms    map[string]int       // term -> number of docs
	pop      map[Key]float64      // popularity scores (see SetPopularity)
}

type doc struct {
	ds     *Dataset
	id     int32
	ref    string // NAMESPACE/NAME, the tie-break
	policy string // the policy name
	tags   []policy.Tag
	terms  map[string]float32
}

type posting struct {
	id int32
	w  float32
}

// Field weights: a match in the name counts most.
const (
	wName        = 3.0
	wTag         = 2.0
	wOwner       = 1.5
	wColumn      = 1.5
	wDescription = 1.0
)

// NewIndex returns an empty index over s; call Refresh before use.
func NewIndex(s *Store, log *slog.Logger) *Index {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Index{store: s, log: log, now: time.Now, version: -1,
		docs: map[Key]*doc{}, postings: map[string][]posting{}, deletes: map[string][]string{}, terms: map[string]int{}, pop: map[Key]float64{}}
}

// Version is the catalog version the index reflects (-1 before the first
// refresh).
func (ix *Index) Version() int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.version
}

// Refresh loads what changed since the index's version.
func (ix *Index) Refresh(ctx context.Context) error {
	v, err := ix.store.Version(ctx)
	if err != nil {
		return err
	}
	if v == ix.Version() {
		return nil
	}
	ix.refreshMu.Lock()
	defer ix.refreshMu.Unlock()
	from := max(ix.Version(), 0)
	changed, deleted, v, err := ix.store.Since(ctx, from)
	if err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, k := range deleted {
		ix.remove(k)
	}
	for _, d := range changed {
		ix.remove(Key{d.Namespace, d.Name})
		ix.add(d)
	}
	ix.version = v
	return nil
}

// Run refreshes every interval until ctx is done.
func (ix *Index) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := ix.Refresh(ctx); err != nil && ctx.Err() == nil {
			ix.log.WarnContext(ctx, "catalog index refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Get returns the indexed dataset (a shared copy: do not modify).
func (ix *Index) Get(k Key) (*Dataset, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d, ok := ix.docs[k]
	if !ok {
		return nil, false
	}
	return d.ds, true
}

// SetPopularity sets the popularity scores used in ranking (from usage).
func (ix *Index) SetPopularity(p map[Key]float64) {
	ix.mu.Lock()
	ix.pop = p
	ix.mu.Unlock()
}

func (ix *Index) add(d *Dataset) {
	dc := &doc{ds: d, terms: map[string]float32{}, ref: Ref(d.Namespace, d.Name), policy: PolicyName(d.Namespace, d.Name), tags: d.PolicyTags()}
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
			for _, del := range deletions(t) {
				ix.deletes[del] = append(ix.deletes[del], t)
			}
		}
		ix.postings[t] = append(ps, posting{dc.id, w})
		ix.terms[t]++
	}
	ix.docs[Key{d.Namespace, d.Name}] = dc
}

func (ix *Index) remove(k Key) {
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
			for _, del := range deletions(t) {
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

// MaxQueryTerms bounds the terms of one query; the rest are ignored.
const MaxQueryTerms = 16

// Tokenize splits text into lower-case terms: runs of letters and digits
// (so "customer_email" and "sales/mortgages" give two terms each).
// Terms longer than 64 bytes are cut.
func Tokenize(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len(f) > 64 {
			f = f[:64]
		}
		out = append(out, f)
	}
	return out
}

// deletions returns the strings made by deleting one rune of t (for terms
// of at least 4 runes: shorter terms are matched exactly or by prefix).
func deletions(t string) []string {
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

// Query is a search.
type Query struct {
	Text           string
	Tags           []string // every one must be present (dataset or column tag)
	Classification string   // exact C1..C4
	Owner          string   // an owner or steward entry ("alice", "group:risk")
	Format         Format
	Namespace      string
	Limit          int // default 20, at most 1000
	Offset         int
}

// Hit is one search result.
type SearchHit struct {
	Dataset *Dataset `json:"dataset"`
	Score   float64  `json:"score"`
}

// Facet counts values among the visible matching datasets.
type SearchFacet struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Result is a page of hits with facets over all matches.
type SearchResult struct {
	Total  int                      `json:"total"`
	Hits   []SearchHit              `json:"hits"`
	Facets map[string][]SearchFacet `json:"facets"`
}

type termMatch struct {
	term string
	q    float64 // quality: 1 exact, 0.8 prefix, 0.6/0.4 one/two edits
}

// expand finds the indexed terms a query term matches: itself, terms it
// is a prefix of (for query terms of 3 runes or more), and terms within
// edit distance 1 (query terms of 4+ runes) or 2 (8+ runes).
func (ix *Index) expand(qt string) []termMatch {
	var out []termMatch
	seen := map[string]bool{}
	addm := func(t string, q float64) {
		if !seen[t] {
			seen[t] = true
			out = append(out, termMatch{t, q})
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
		for _, del := range deletions(qt) {
			if _, ok := ix.postings[del]; ok {
				cands[del] = true
			}
			for _, t := range ix.deletes[del] {
				cands[t] = true
			}
			if maxd > 1 {
				for _, del2 := range deletions(del) {
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
		bases := append([]termMatch{{qt, 1}}, out...)
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

// editDistance is the optimal-string-alignment distance of a and b, or
// max+1 if it exceeds max.
func editDistance(a, b string, max int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > max || -d > max {
		return max + 1
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			best = min(best, cur[j])
		}
		if best > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// Search runs q for viewer v, showing only datasets v may discover.
func (ix *Index) Search(dec Decider, v Viewer, q Query) SearchResult {
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
		dc    *doc
		score float64
	}
	var hits []hit
	facets := map[string]map[string]int{"tag": {}, "classification": {}, "owner": {}, "format": {}}
	for _, id := range touched {
		dc := ix.byID[id]
		d := dc.ds
		if !q.matches(d) || !(v.Admin || v.Owns(d) || discover(dec, v, d, dc.policy, dc.tags)) {
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
		for _, t := range d.Tags {
			facets["tag"][t.Name]++
		}
		if d.Classification != "" {
			facets["classification"][d.Classification]++
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
	top := topK(hits, k, less)
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

func (q *Query) matches(d *Dataset) bool {
	if q.Classification != "" && !strings.EqualFold(q.Classification, d.Classification) {
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
		if HasTag(d.Tags, t) {
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

// topK returns the k smallest elements of xs by less, in order.
func topK[T any](xs []T, k int, less func(a, b T) bool) []T {
	if k <= 0 {
		return nil
	}
	if len(xs) <= 4*k || len(xs) < 256 {
		sort.Slice(xs, func(i, j int) bool { return less(xs[i], xs[j]) })
		return xs[:min(k, len(xs))]
	}
	// Selection by a bounded insertion into a sorted buffer.
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
