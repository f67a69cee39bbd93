package catalog

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/klauspost/compress/zstd"

	"github.com/stewardhq/steward/internal/policy"
)

// Index is this replica's in-memory search index over the catalog. It is
// rebuilt from the Store on start (Refresh from version 0) and kept fresh
// by polling the catalog version (Run), loading only what changed, the
// same pattern as the policy engine's Holder. Safe for concurrent use.
//
// Layout (see search_eval.go for how a query runs):
//   - documents are numbered densely (uint32) and kept compact: the
//     dataset itself is stored as S2-compressed JSON and decoded only for
//     the hits of a page and for Get; what search needs per document
//     (classification, format, interned owners and tags, the sorted term
//     IDs with their field weights, the static prior) sits in docInfo;
//   - every vocabulary term has a posting list of (doc, impact) sorted by
//     impact = field weight x static prior (popularity x freshness), so a
//     query reads the best documents first and stops early;
//   - typo tolerance uses a deletion dictionary over the vocabulary (not
//     over documents) and prefix matching a sorted vocabulary;
//   - the discover decision is cached per viewer (see visMemo).
type Index struct {
	store *Store
	log   *slog.Logger
	now   func() time.Time

	refreshMu sync.Mutex // one refresh at a time

	mu      sync.RWMutex
	version int64
	keys    map[Key]uint32 // dataset -> doc ID
	docs    []docInfo      // by doc ID; live says whether in use
	free    []uint32       // free doc IDs
	live    int            // number of live documents
	all     termInfo       // every live doc, impact = prior (queries without text)

	termIDs  map[string]uint32
	terms    []termInfo
	sorted   []uint32            // term IDs in text order (prefix search)
	newTerms []uint32            // term IDs not yet merged into sorted
	deletes  map[string][]uint32 // one-deletion variant -> term IDs
	dirty    []uint32            // term IDs whose posting tail needs sorting

	names     map[string]uint32 // interned owners, tags, namespaces
	nameOf    []string
	ownerDocs map[uint32][]uint32 // owner or steward -> docs (unordered)
	tagDocs   map[uint32][]uint32 // dataset or column tag -> docs (unordered)
	nsDocs    map[uint32][]uint32 // namespace -> docs (unordered)

	pop map[Key]float64 // popularity scores (see SetPopularity)

	// inherit adds what datasets inherit through lineage to the discover
	// decision (Service.SetInheritance; nil: nothing inherited).
	inherit Inheritance
	// gen counts changes of the document numbering (adds, removes), so
	// that an overlay knows what it refers to; ov is the effective tags
	// of the datasets that inherit (search_inherit.go), built by ovMu's
	// holder.
	gen  uint64
	ovMu sync.Mutex
	ov   atomic.Pointer[inhOverlay]

	memoMu sync.Mutex
	memos  map[string]*visMemo

	countBound int // CountBound; lowered by tests
	driverMax  int // driverMax; lowered by tests

	cacheMu sync.Mutex
	cache   map[uint32]*Dataset // decoded datasets, recently returned
}

// cacheSize bounds the decoded datasets kept for Get and hits.
const cacheSize = 4096

// dataset returns doc id's dataset, decoded (shared: do not modify).
// Called with ix.mu held.
func (ix *Index) dataset(id uint32) (*Dataset, error) {
	ix.cacheMu.Lock()
	d := ix.cache[id]
	ix.cacheMu.Unlock()
	if d != nil {
		return d, nil
	}
	d, err := decodeBody(ix.docs[id].body)
	if err != nil {
		return nil, err
	}
	ix.cacheMu.Lock()
	if len(ix.cache) >= cacheSize {
		for k := range ix.cache { // a random victim
			delete(ix.cache, k)
			break
		}
	}
	ix.cache[id] = d
	ix.cacheMu.Unlock()
	return d, nil
}

// docInfo is what search needs of one dataset.
type docInfo struct {
	body   []byte // S2-compressed JSON of the Dataset
	name   string
	ns     uint32 // interned namespace
	live   bool
	level  policy.Classification
	format Format
	// meta holds interned names: owners, then stewards, then dataset
	// tags, then column tags (deduplicated), split by the counts.
	meta                  []uint32
	nOwn, nOwnSt, nDSTags int32
	born                  uint32 // Index.gen when added (an overlay reuses what it derived only for the same)
	policyTags            []policy.Tag
	popF                  float32 // popularity factor
	prior                 float32 // popF x freshness when indexed (an upper bound later)
	changed               int64   // unix seconds of Changed
	// terms are the document's term IDs shifted left by 3, each with
	// its field weight code (see fieldWeights) in the low bits, sorted.
	terms []uint32
}

func (d *docInfo) owners() []uint32     { return d.meta[:d.nOwnSt] }
func (d *docInfo) ownersOnly() []uint32 { return d.meta[:d.nOwn] }
func (d *docInfo) tags() []uint32       { return d.meta[d.nOwnSt:] }
func (d *docInfo) datasetTags() []uint32 {
	return d.meta[d.nOwnSt : d.nOwnSt+d.nDSTags]
}

// maxTerms bounds the vocabulary: term IDs keep 3 bits for the weight.
const maxTerms = 1 << 29

type termInfo struct {
	text   string
	post   []posting // post[:sorted] in impact order, then an unsorted tail
	sorted int
}

type posting struct {
	id  uint32
	imp float32 // field weight x prior
}

// Field weights: a match in the name counts most.
const (
	wName        = 3.0
	wTag         = 2.0
	wOwner       = 1.5
	wColumn      = 1.5
	wDescription = 1.0
)

// fieldWeights are the distinct weights a term can have in a document,
// indexed by the code docInfo.tw stores.
var fieldWeights = [...]float32{0.5, 1, 1.5, 2, 3}

func weightCode(w float32) uint8 {
	for i, x := range fieldWeights {
		if w <= x {
			return uint8(i)
		}
	}
	return uint8(len(fieldWeights) - 1)
}

// NewIndex returns an empty index over s; call Refresh before use.
func NewIndex(s *Store, log *slog.Logger) *Index {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Index{store: s, log: log, now: time.Now, version: -1,
		keys: map[Key]uint32{}, termIDs: map[string]uint32{}, deletes: map[string][]uint32{},
		names: map[string]uint32{}, ownerDocs: map[uint32][]uint32{}, tagDocs: map[uint32][]uint32{}, nsDocs: map[uint32][]uint32{},
		pop: map[Key]float64{}, memos: map[string]*visMemo{}, countBound: CountBound, driverMax: driverMax, cache: map[uint32]*Dataset{}}
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
	ix.apply(changed, deleted, v)
	return nil
}

// apply brings the index to version v: the changed datasets replace
// their previous entries, the deleted ones go.
func (ix *Index) apply(changed []*Dataset, deleted []Key, v int64) {
	// Encoding is the slow part of indexing: do it outside the lock.
	prepared := make([]*prepDoc, len(changed))
	workers := 1
	if len(changed) >= 1000 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(changed); i += workers {
				prepared[i] = prepare(changed[i])
			}
		})
	}
	wg.Wait()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, k := range deleted {
		ix.remove(k)
	}
	for _, p := range prepared {
		ix.remove(p.key)
		ix.addPrepared(p)
	}
	ix.finish()
	ix.version = v
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
	id, ok := ix.keys[k]
	if !ok {
		return nil, false
	}
	d, err := ix.dataset(id)
	if err != nil {
		ix.log.Error("catalog index: cannot decode an indexed dataset", "dataset", Ref(k.Namespace, k.Name), "err", err)
		return nil, false
	}
	return d, true
}

// Len returns the number of indexed datasets.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.live
}

// SetPopularity sets the popularity scores used in ranking (from usage).
// It re-sorts every posting list, which takes seconds with a million
// datasets: call it when usage is recomputed, not per request.
func (ix *Index) SetPopularity(p map[Key]float64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.pop = p
	now := ix.now()
	ratio := make([]float32, len(ix.docs))
	for k, id := range ix.keys {
		d := &ix.docs[id]
		d.popF = popFactor(p[k])
		np := d.popF * freshFactor(d.changed, now)
		if d.prior > 0 {
			ratio[id] = np / d.prior
		}
		d.prior = np
	}
	rescale := func(t *termInfo) {
		for i := range t.post {
			t.post[i].imp *= ratio[t.post[i].id]
		}
		t.sorted = 0
		sortTail(t)
	}
	rescale(&ix.all)
	for i := range ix.terms {
		rescale(&ix.terms[i])
	}
}

func popFactor(p float64) float32 {
	if p > 0 {
		return float32(1 + 0.2*math.Log1p(p))
	}
	return 1
}

// freshFactor favours recently changed data: up to 1.1, decaying over a
// month.
func freshFactor(changed int64, now time.Time) float32 {
	age := float64(now.Unix()-changed) / 86400
	return float32(1 + 0.1*math.Exp(-math.Max(age, 0)/30))
}

// prepDoc is a dataset tokenized and encoded, ready to be added.
type prepDoc struct {
	d     *Dataset
	key   Key
	body  []byte
	terms map[string]float32
}

func prepare(d *Dataset) *prepDoc {
	p := &prepDoc{d: d, key: Key{d.Namespace, d.Name}, terms: map[string]float32{}}
	p.body = encodeBody(d)
	put := func(text string, w float32) {
		for _, t := range Tokenize(text) {
			if p.terms[t] < w {
				p.terms[t] = w
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
	for _, o := range d.Owners {
		put(strings.TrimPrefix(o, "group:"), wOwner)
	}
	for _, o := range d.Stewards {
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
	return p
}

// Bodies are zstd-compressed JSON without the fields derived from the
// namespace and name (ID, Bucket, Prefix), which decoding restores.
var (
	zEnc = sync.OnceValue(func() *zstd.Encoder {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		return e
	})
	zDec = sync.OnceValue(func() *zstd.Decoder {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
		return d
	})
)

func encodeBody(d *Dataset) []byte {
	c := *d
	if c.ID == ID(c.Namespace, c.Name) {
		c.ID = ""
	}
	if b, ok := BucketOf(c.Namespace); ok && c.Bucket == b && c.Prefix == c.Name+"/" {
		c.Bucket, c.Prefix = "", ""
	}
	js, err := json.Marshal(&c)
	if err != nil {
		// A Dataset always marshals; keep an empty body rather than panic.
		js = []byte("{}")
	}
	return zEnc().EncodeAll(js, make([]byte, 0, len(js)/2))
}

func decodeBody(body []byte) (*Dataset, error) {
	js, err := zDec().DecodeAll(body, nil)
	if err != nil {
		return nil, err
	}
	var d Dataset
	if err := json.Unmarshal(js, &d); err != nil {
		return nil, err
	}
	if d.ID == "" {
		d.ID = ID(d.Namespace, d.Name)
	}
	if b, ok := BucketOf(d.Namespace); ok && d.Bucket == "" {
		d.Bucket, d.Prefix = b, d.Name+"/"
	}
	return &d, nil
}

// add indexes d; call finish after a batch of adds.
func (ix *Index) add(d *Dataset) { ix.addPrepared(prepare(d)) }

func (ix *Index) intern(s string) uint32 {
	if id, ok := ix.names[s]; ok {
		return id
	}
	id := uint32(len(ix.nameOf))
	ix.names[s] = id
	ix.nameOf = append(ix.nameOf, s)
	return id
}

func (ix *Index) addPrepared(p *prepDoc) {
	d := p.d
	var id uint32
	if n := len(ix.free); n > 0 {
		id = ix.free[n-1]
		ix.free = ix.free[:n-1]
	} else {
		id = uint32(len(ix.docs))
		ix.docs = append(ix.docs, docInfo{})
	}
	ix.forget(id)
	ix.gen++
	now := ix.now()
	di := docInfo{body: p.body, name: d.Name, ns: ix.intern(d.Namespace), live: true, level: d.Level(), format: d.Format,
		changed: d.Changed.Unix(), popF: popFactor(ix.pop[p.key]), born: uint32(ix.gen)}
	di.prior = di.popF * freshFactor(di.changed, now)
	var meta []uint32
	for _, o := range d.Owners {
		if s := ix.intern(o); !slices.Contains(meta, s) {
			meta = append(meta, s)
		}
	}
	di.nOwn = int32(len(meta))
	for _, o := range d.Stewards {
		if s := ix.intern(o); !slices.Contains(meta, s) {
			meta = append(meta, s)
		}
	}
	di.nOwnSt = int32(len(meta))
	addTag := func(name string) {
		if s := ix.intern(name); !slices.Contains(meta[di.nOwnSt:], s) {
			meta = append(meta, s)
		}
	}
	for _, t := range d.Tags {
		addTag(t.Name)
	}
	di.nDSTags = int32(len(meta)) - di.nOwnSt
	walkColumns(d.Schema, func(_ string, c *Column) {
		for _, t := range c.Tags {
			addTag(t.Name)
		}
	})
	di.meta = slices.Clip(meta)
	di.policyTags = d.PolicyTags()
	for _, o := range di.owners() {
		ix.ownerDocs[o] = append(ix.ownerDocs[o], id)
	}
	for _, t := range di.tags() {
		ix.tagDocs[t] = append(ix.tagDocs[t], id)
	}
	ix.nsDocs[di.ns] = append(ix.nsDocs[di.ns], id)

	di.terms = make([]uint32, 0, len(p.terms))
	for t, w := range p.terms {
		tid, ok := ix.termID(t)
		if !ok {
			continue
		}
		code := weightCode(w)
		di.terms = append(di.terms, tid<<3|uint32(code))
		ix.appendPosting(tid, posting{id, fieldWeights[code] * di.prior})
	}
	slices.Sort(di.terms)
	ix.all.post = append(ix.all.post, posting{id, di.prior})
	ix.docs[id] = di
	ix.keys[p.key] = id
	ix.live++
}

func (ix *Index) termID(t string) (uint32, bool) {
	if id, ok := ix.termIDs[t]; ok {
		return id, true
	}
	if len(ix.terms) >= maxTerms {
		return 0, false
	}
	id := uint32(len(ix.terms))
	ix.termIDs[t] = id
	ix.terms = append(ix.terms, termInfo{text: t})
	ix.newTerms = append(ix.newTerms, id)
	for _, del := range deletions(t) {
		ix.deletes[del] = append(ix.deletes[del], id)
	}
	return id, true
}

func (ix *Index) appendPosting(tid uint32, p posting) {
	t := &ix.terms[tid]
	if len(t.post) == t.sorted {
		ix.dirty = append(ix.dirty, tid)
	}
	t.post = append(t.post, p)
}

func (ix *Index) remove(k Key) {
	id, ok := ix.keys[k]
	if !ok {
		return
	}
	delete(ix.keys, k)
	ix.gen++
	di := &ix.docs[id]
	for _, tw := range di.terms {
		removePosting(&ix.terms[tw>>3], id)
	}
	removePosting(&ix.all, id)
	for _, o := range di.owners() {
		ix.ownerDocs[o] = removeID(ix.ownerDocs[o], id)
	}
	for _, t := range di.tags() {
		ix.tagDocs[t] = removeID(ix.tagDocs[t], id)
	}
	ix.nsDocs[di.ns] = removeID(ix.nsDocs[di.ns], id)
	*di = docInfo{}
	ix.free = append(ix.free, id)
	ix.live--
	ix.forget(id)
}

// removePosting deletes doc id from t, keeping the order.
func removePosting(t *termInfo, id uint32) {
	for i := range t.post {
		if t.post[i].id == id {
			t.post = append(t.post[:i], t.post[i+1:]...)
			if i < t.sorted {
				t.sorted--
			}
			return
		}
	}
}

func removeID(l []uint32, id uint32) []uint32 {
	for i, x := range l {
		if x == id {
			l[i] = l[len(l)-1]
			return l[:len(l)-1]
		}
	}
	return l
}

// finish sorts what a batch of adds left unsorted.
func (ix *Index) finish() {
	bulk := len(ix.dirty) > 10_000
	for _, tid := range ix.dirty {
		t := &ix.terms[tid]
		sortTail(t)
		if bulk && cap(t.post)-len(t.post) > len(t.post)/8 {
			t.post = slices.Clone(t.post) // drop what appending left spare
		}
	}
	ix.dirty = ix.dirty[:0]
	sortTail(&ix.all)
	if len(ix.newTerms) > 0 {
		cmp := func(a, b uint32) int { return strings.Compare(ix.terms[a].text, ix.terms[b].text) }
		slices.SortFunc(ix.newTerms, cmp)
		merged := make([]uint32, 0, len(ix.sorted)+len(ix.newTerms))
		i, j := 0, 0
		for i < len(ix.sorted) && j < len(ix.newTerms) {
			if cmp(ix.sorted[i], ix.newTerms[j]) <= 0 {
				merged = append(merged, ix.sorted[i])
				i++
			} else {
				merged = append(merged, ix.newTerms[j])
				j++
			}
		}
		merged = append(append(merged, ix.sorted[i:]...), ix.newTerms[j:]...)
		ix.sorted, ix.newTerms = merged, ix.newTerms[:0]
	}
}

// byImpact orders postings best first, then by doc ID.
func byImpact(a, b posting) int {
	if a.imp != b.imp {
		if a.imp > b.imp {
			return -1
		}
		return 1
	}
	if a.id < b.id {
		return -1
	}
	if a.id > b.id {
		return 1
	}
	return 0
}

// sortTail brings t.post into impact order: a short tail is inserted in
// place, a long one sorted and merged.
func sortTail(t *termInfo) {
	tail := len(t.post) - t.sorted
	switch {
	case tail <= 0:
	case tail <= 16 || t.sorted == 0:
		if t.sorted == 0 {
			slices.SortFunc(t.post, byImpact)
			break
		}
		for k := t.sorted; k < len(t.post); k++ {
			p := t.post[k]
			i, _ := slices.BinarySearchFunc(t.post[:k], p, byImpact)
			copy(t.post[i+1:k+1], t.post[i:k])
			t.post[i] = p
		}
	default:
		head, rest := t.post[:t.sorted], slices.Clone(t.post[t.sorted:])
		slices.SortFunc(rest, byImpact)
		merged := make([]posting, 0, len(t.post))
		i, j := 0, 0
		for i < len(head) && j < len(rest) {
			if byImpact(head[i], rest[j]) <= 0 {
				merged = append(merged, head[i])
				i++
			} else {
				merged = append(merged, rest[j])
				j++
			}
		}
		t.post = append(append(merged, head[i:]...), rest[j:]...)
	}
	t.sorted = len(t.post)
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

// Query is a search. Tags and Classification match effective tags: a
// dataset's own and what it inherits through lineage (Inheritance).
type Query struct {
	Text           string
	Tags           []string // every one must be present (dataset or column tag, own or inherited)
	Classification string   // exact C1..C4, the effective classification
	Owner          string   // an owner or steward entry ("alice", "group:risk")
	Format         Format
	Namespace      string
	Limit          int // default 20, at most 1000
	Offset         int
}

// SearchHit is one search result. Dataset is shared with the index's
// cache: do not modify it. For a dataset that inherits something through
// lineage it is a copy with the view fields the dataset view shows
// (InheritedTags with their provenance, EffectiveClassification).
type SearchHit struct {
	Dataset *Dataset `json:"dataset"`
	Score   float64  `json:"score"`
	// EffectiveClassification is the highest of the dataset's own
	// classification and what it inherits through lineage.
	EffectiveClassification string `json:"effective_classification,omitempty" doc:"The highest of the dataset's own classification and what it inherits through lineage."`
}

// SearchFacet counts values among the visible matching datasets: their
// effective classification, their own dataset tags and the tags they
// inherit (on the dataset or a column: lineage gives policies both alike).
type SearchFacet struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Result is a page of hits with facets over the matches.
//
// When more than CountBound visible datasets match, the search stops
// counting once the best hits are certain: Approximate is then true,
// Total is a lower bound (at least CountBound) and the facets count the
// best CountBound or so matches. Datasets the viewer may not discover are
// never counted.
type SearchResult struct {
	Total       int                      `json:"total"`
	Approximate bool                     `json:"approximate,omitempty" doc:"True when total is a lower bound and facets count only the best-ranked matches (more matches than the counting bound)."`
	Hits        []SearchHit              `json:"hits"`
	Facets      map[string][]SearchFacet `json:"facets"`
}
