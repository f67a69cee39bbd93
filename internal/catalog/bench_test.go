package catalog

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"
)

// benchIndex builds an index of n synthetic datasets with 20 columns each
// (STEWARD_BENCH_DATASETS overrides n).
func benchIndex(b *testing.B, n int) *Index {
	b.Helper()
	if v, err := strconv.Atoi(os.Getenv("STEWARD_BENCH_DATASETS")); err == nil && v > 0 {
		n = v
	}
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"customer", "account", "transaction", "mortgage", "loan", "payment", "card", "branch", "risk", "exposure", "rate", "country", "product", "ledger", "balance", "limit", "fraud", "score", "campaign", "contact"}
	countries := []string{"belgium", "netherlands", "france", "germany", "spain", "italy", "ireland", "poland"}
	ix := NewIndex(nil, nil)
	for i := 0; i < n; i++ {
		w1, w2 := words[r.IntN(len(words))], words[r.IntN(len(words))]
		d := &Dataset{Namespace: "s3://bucket" + strconv.Itoa(i%50), Name: fmt.Sprintf("%s/%s_%s_%d", w1, w2, countries[r.IntN(len(countries))], i),
			Description: fmt.Sprintf("The %s %s data for %s, refreshed daily (%d)", w1, w2, countries[r.IntN(len(countries))], i),
			Owners:      []string{"user" + strconv.Itoa(r.IntN(2000))}, Classification: "C" + strconv.Itoa(1+r.IntN(4)), Format: FormatParquet,
			Changed: time.Now().Add(-time.Duration(r.IntN(1000)) * time.Hour)}
		for c := 0; c < 20; c++ {
			d.Schema = append(d.Schema, Column{Name: fmt.Sprintf("%s_%s_%d", words[r.IntN(len(words))], words[r.IntN(len(words))], c%5), Type: "VARCHAR"})
		}
		ix.add(d)
	}
	return ix
}

// BenchmarkSearch reports the p95 latency of a mix of queries (exact,
// multi-word, typo, prefix) as the p95-ns metric.
func BenchmarkSearch(b *testing.B) {
	ix := benchIndex(b, 100_000)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	queries := []string{"mortgage belgium", "mortage", "transact", "fraud score ireland", "custmer contact", "ledger"}
	v := Viewer{User: "user7"}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		ix.Search(nil, v, Query{Text: queries[i%len(queries)], Limit: 20})
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)*95/100].Nanoseconds()), "p95-ns")
}
