package catalog

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/policy"
)

// The search benchmark: a deterministic synthetic catalog with a
// realistic vocabulary (a few thousand words with a Zipf-like frequency:
// the commonest words appear in most datasets), 20 columns per dataset,
// tags, owners and groups, C1-C4 with 10% C4, searched by non-admin
// viewers through a real policy engine.
//
//	go test ./internal/catalog/ -run '^$' -bench 'Search$' -benchtime 2000x
//
// sizes the catalog at 1,000,000 datasets; STEWARD_BENCH_DATASETS
// overrides it. BenchmarkSearchLegacy runs the previous implementation on
// the same corpus (100,000 by default: it is too slow at a million).

// corpus generates datasets deterministically.
type corpus struct {
	r     *rand.Rand
	zipf  *rand.Zipf
	words []string
	now   time.Time
}

// domainWords are the commonest words, in rank order.
var domainWords = []string{"customer", "account", "id", "date", "amount", "transaction", "status", "code", "type", "name",
	"balance", "payment", "rate", "country", "product", "mortgage", "loan", "card", "branch", "risk", "exposure", "ledger",
	"limit", "fraud", "score", "campaign", "contact", "email", "phone", "address", "currency", "interest", "term", "monthly",
	"daily", "report", "market", "retail", "corporate", "credit", "debit", "invoice", "order", "supplier", "employee", "salary",
	"region", "segment", "channel", "event", "session", "click", "model", "feature", "forecast", "budget", "cost", "revenue",
	"margin", "portfolio", "asset", "liability", "collateral", "default", "arrears", "provision", "capital", "liquidity"}

var benchCountries = []string{"belgium", "netherlands", "france", "germany", "spain", "italy", "ireland", "poland", "portugal",
	"austria", "denmark", "sweden", "norway", "finland", "luxembourg", "greece", "czechia", "hungary", "romania", "switzerland"}

var benchTags = []string{"pii", "finance", "gdpr", "marketing", "risk", "hr", "reference", "gold", "silver", "bronze",
	"raw", "curated", "sensitive", "public", "regulatory", "basel", "ifrs9", "aml", "kyc", "secret"}

func newCorpus() *corpus {
	r := rand.New(rand.NewPCG(1, 2))
	c := &corpus{r: r, now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	c.words = append(c.words, domainWords...)
	syl := []string{"ka", "lo", "mi", "ne", "ru", "ta", "vo", "pe", "si", "da", "bor", "len", "tor", "mar", "quin", "vel", "sta", "gri", "plo", "zen"}
	seen := map[string]bool{}
	for _, w := range c.words {
		seen[w] = true
	}
	for len(c.words) < 5000 {
		n := 2 + r.IntN(3)
		var b strings.Builder
		for range n {
			b.WriteString(syl[r.IntN(len(syl))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			c.words = append(c.words, w)
		}
	}
	c.zipf = rand.NewZipf(r, 1.1, 2, uint64(len(c.words)-1))
	return c
}

func (c *corpus) word() string { return c.words[c.zipf.Uint64()] }

// dataset returns the i-th synthetic dataset.
func (c *corpus) dataset(i int) *Dataset {
	r := c.r
	country := benchCountries[r.IntN(len(benchCountries))]
	d := &Dataset{Namespace: "s3://bucket" + strconv.Itoa(i%200),
		Name:    fmt.Sprintf("%s/%s_%s_%s_%d", c.word(), c.word(), c.word(), country, i),
		Owners:  []string{"user" + strconv.Itoa(int(c.zipf.Uint64()%2000))},
		Format:  []Format{FormatParquet, FormatParquet, FormatParquet, FormatCSV, FormatCSV, FormatJSON}[r.IntN(6)],
		Changed: c.now.Add(-time.Duration(r.IntN(1000*24)) * time.Hour)}
	var desc strings.Builder
	desc.WriteString("The")
	for range 10 + r.IntN(10) {
		desc.WriteString(" " + c.word())
	}
	desc.WriteString(" for " + country + ".")
	d.Description = desc.String()
	if r.IntN(5) == 0 {
		d.Stewards = []string{"group:team" + strconv.Itoa(r.IntN(100))}
	}
	switch x := r.IntN(20); {
	case x < 6:
		d.Classification = "C1"
	case x < 13:
		d.Classification = "C2"
	case x < 18:
		d.Classification = "C3"
	default:
		d.Classification = "C4"
	}
	for range r.IntN(3) {
		d.Tags = append(d.Tags, Tag{Name: benchTags[r.IntN(len(benchTags))]})
	}
	for col := range 20 {
		cl := Column{Name: c.word() + "_" + c.word(), Type: []string{"VARCHAR", "BIGINT", "DOUBLE", "DATE"}[r.IntN(4)]}
		if col%7 == 3 {
			cl.Name += "_" + strconv.Itoa(col)
		}
		if r.IntN(30) == 0 {
			cl.Tags = []Tag{{Name: "pii"}}
		}
		d.Schema = append(d.Schema, cl)
	}
	d.normalize()
	return d
}

// benchSize is the catalog size: n, or STEWARD_BENCH_DATASETS.
func benchSize(n int) int {
	if v, err := strconv.Atoi(os.Getenv("STEWARD_BENCH_DATASETS")); err == nil && v > 0 {
		return v
	}
	return n
}

// benchDecider is a real policy engine with the kinds of discover
// policies a bank has: C4 visible to the risk group, "secret" tags hidden
// from all but auditors, one bucket's datasets shared with a team.
func benchDecider(tb testing.TB) *policy.Engine {
	tb.Helper()
	disc := []policy.Access{policy.AccessDiscover}
	e, err := policy.Compile([]*policy.Policy{
		{ID: "c4-risk", Kind: policy.KindAccess, Enabled: true, Tags: []policy.TagMatch{{MinClassification: policy.C4}},
			Allow: []policy.Item{{Groups: []string{"risk"}, Accesses: disc}}},
		{ID: "secret", Kind: policy.KindAccess, Enabled: true, Tags: []policy.TagMatch{{Name: "secret"}},
			Deny:           []policy.Item{{Groups: []string{policy.Public}, Accesses: disc}},
			DenyExceptions: []policy.Item{{Groups: []string{"auditors"}, Accesses: disc}}},
		{ID: "bucket7", Kind: policy.KindAccess, Enabled: true, Resources: policy.ResourceSpec{Datasets: []string{"bucket7.*"}},
			Allow: []policy.Item{{Groups: []string{"team7"}, Accesses: disc}}},
	}, policy.Options{Version: 1})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// benchViewers are the non-admin viewers the benchmark searches as.
var benchViewers = []Viewer{
	{User: "user7", Groups: []string{"team3"}},
	{User: "user1", Groups: []string{"risk"}},
	{User: "user42", Groups: []string{"team7", "analysts"}},
	{User: "user300"},
}

// benchQueries is the query mix: a common word, two words, typos,
// prefixes, filters, a rare word, no text.
var benchQueries = []Query{
	{Text: "customer"},
	{Text: "account balance"},
	{Text: "mortgage belgium"},
	{Text: "mortage"},
	{Text: "custmer contact"},
	{Text: "transact"},
	{Text: "portf"},
	{Text: "fraud score ireland"},
	{Text: "payment", Classification: "C2"},
	{Text: "loan", Tags: []string{"pii"}},
	{Text: "risk", Owner: "user7"},
	{Text: "collateral", Format: FormatCSV},
	{Format: FormatJSON},
	{Text: "kalomi"},
}

var (
	benchIdx    *Index
	benchIdxN   int
	benchBuild  time.Duration
	benchHeapMB float64
)

// buildBenchIndex builds (once per size) the index of n datasets.
func buildBenchIndex(tb testing.TB, n int) *Index {
	tb.Helper()
	if benchIdx != nil && benchIdxN == n {
		return benchIdx
	}
	benchIdx = nil
	runtime.GC()
	t0 := time.Now()
	c := newCorpus()
	ix := NewIndex(nil, nil)
	ix.now = func() time.Time { return c.now }
	const batch = 10_000
	ds := make([]*Dataset, 0, batch)
	for i := 0; i < n; i++ {
		ds = append(ds, c.dataset(i))
		if len(ds) == batch || i == n-1 {
			ix.apply(ds, nil, int64(i))
			ds = ds[:0]
		}
	}
	benchBuild = time.Since(t0)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	benchHeapMB = float64(ms.HeapInuse) / (1 << 20)
	benchIdx, benchIdxN = ix, n
	return ix
}

func percentile(lat []time.Duration, p int) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// searcher is what the benchmark drives (the index and its predecessor).
type searcher interface {
	Search(dec Decider, v Viewer, q Query) SearchResult
}

// threadCPU is the CPU time of the calling OS thread (Linux; 0
// elsewhere). On a shared machine it shows the work a query costs
// regardless of what else runs.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runSearchBench(b *testing.B, s searcher, dec Decider) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lat := make([]time.Duration, 0, b.N)
	cpu := make([]time.Duration, 0, b.N)
	perQuery := make([][]time.Duration, len(benchQueries))
	approx := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		qi := i % len(benchQueries)
		v := benchViewers[(i/len(benchQueries))%len(benchViewers)]
		c0 := threadCPU()
		t0 := time.Now()
		r := s.Search(dec, v, benchQueries[qi])
		d := time.Since(t0)
		cpu = append(cpu, threadCPU()-c0)
		lat = append(lat, d)
		perQuery[qi] = append(perQuery[qi], cpu[len(cpu)-1])
		if r.Approximate {
			approx++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(lat, 95).Nanoseconds()), "p95-ns")
	b.ReportMetric(float64(percentile(lat, 99).Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(percentile(cpu, 50).Nanoseconds()), "cpu-p50-ns")
	b.ReportMetric(float64(percentile(cpu, 95).Nanoseconds()), "cpu-p95-ns")
	b.ReportMetric(float64(approx)/float64(b.N), "approx-share")
	if testing.Verbose() {
		for qi, l := range perQuery {
			b.Logf("%-45s cpu p50 %8v p95 %8v", fmt.Sprintf("%+v", benchQueries[qi]), percentile(l, 50), percentile(l, 95))
		}
	}
}

// BenchmarkSearch reports search latency percentiles over the query mix
// (as p50-ns, p95-ns, p99-ns), the index build time and heap in use, on
// 1,000,000 datasets unless STEWARD_BENCH_DATASETS says otherwise.
func BenchmarkSearch(b *testing.B) {
	ix := buildBenchIndex(b, benchSize(1_000_000))
	runSearchBench(b, ix, benchDecider(b))
	b.ReportMetric(benchBuild.Seconds(), "build-s")
	b.ReportMetric(benchHeapMB, "heap-MiB")
}

// BenchmarkSearchChange measures how long one dataset change takes to
// become visible: apply the change (what Refresh does after reading it
// from the store) and find it by a word only it has.
func BenchmarkSearchChange(b *testing.B) {
	ix := buildBenchIndex(b, benchSize(1_000_000))
	dec := benchDecider(b)
	v := benchViewers[0]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := decodeBody(ix.docs[(i*7919)%len(ix.docs)].body) // an existing dataset
		if err != nil {
			b.Fatal(err)
		}
		d.Classification, d.Tags = "C2", nil // visible to v
		word := "zqchange" + strconv.Itoa(i)
		d.Description += " " + word
		t0 := time.Now()
		ix.apply([]*Dataset{d}, nil, int64(benchIdxN+i))
		r := ix.Search(dec, v, Query{Text: word})
		lat = append(lat, time.Since(t0))
		if r.Total != 1 {
			b.Fatalf("changed dataset not found: total %d", r.Total)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(lat, 95).Nanoseconds()), "p95-ns")
}

// BenchmarkSearchLegacy runs the previous implementation on the same
// corpus and queries (100,000 datasets unless
// STEWARD_BENCH_LEGACY_DATASETS says otherwise).
func BenchmarkSearchLegacy(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("STEWARD_BENCH_LEGACY_DATASETS")); err == nil && v > 0 {
		n = v
	}
	c := newCorpus()
	ix := newLegacyIndex(nil, nil)
	ix.now = func() time.Time { return c.now }
	for i := 0; i < n; i++ {
		ix.add(c.dataset(i))
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	runSearchBench(b, ix, benchDecider(b))
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

// BenchmarkSearchInherited is BenchmarkSearch with lineage: one dataset
// in a hundred inherits C4 (so it is hidden from three of the four
// viewers), answered by an in-memory Inheritance under a read lock as
// lineage does. "steady": lineage does not change, so the per-viewer
// discover cache holds; "changing": lineage changes before every query
// (the worst case: every query decides afresh and asks lineage for each
// dataset it considers).
//
//	STEWARD_BENCH_DATASETS=100000 go test ./internal/catalog/ -run '^$' -bench 'Search$|SearchInherited' -benchtime 700x -count 3
func BenchmarkSearchInherited(b *testing.B) {
	ix := buildBenchIndex(b, benchSize(1_000_000))
	inh := newFakeInheritance()
	for id := 0; id < len(ix.docs); id += 100 {
		if d := &ix.docs[id]; d.live {
			k := Key{ix.nameOf[d.ns], d.name}
			inh.m[k] = []DatasetInheritedTag{{Name: "classification", Value: "C4", Classification: "C4"}}
			inh.stamps[k] = uint64(id + 1) // as lineage stamps them (Inheritance.Inheriting)
		}
	}
	ix.inherit = inh
	b.Cleanup(func() { ix.inherit = nil; ix.ov.Store(nil) })
	dec := benchDecider(b)
	b.Run("steady", func(b *testing.B) { runSearchBench(b, ix, dec) })
	b.Run("changing", func(b *testing.B) { runSearchBench(b, bumping{ix, inh}, dec) })
}

// bumping changes the inheritance version before every search.
type bumping struct {
	ix  *Index
	inh *fakeInheritance
}

func (s bumping) Search(dec Decider, v Viewer, q Query) SearchResult {
	s.inh.mu.Lock()
	s.inh.ver++
	s.inh.mu.Unlock()
	return s.ix.Search(dec, v, q)
}
