package lineage

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/policy"
)

// BenchmarkIngest measures sustained ingest on SQLite (synchronous=FULL):
// batches of 100 run events (START with two inputs, one output and column
// lineage), each batch one transaction, propagation included. Decoding is
// measured apart in BenchmarkDecode.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	s := newService(b, openStore(b, "sqlite:"+filepath.Join(b.TempDir(), "m.db")))
	if err := s.SetTags(ctx, "crm", "src0", "email", "catalog", []LineageTag{{Name: "PII", Classification: policy.C3, Propagate: true}}); err != nil {
		b.Fatal(err)
	}
	const batch = 100
	events := make([]*Event, 0, batch)
	b.ResetTimer()
	cpu0 := cpuTime()
	n := 0
	for i := 0; i < b.N; i++ {
		events = events[:0]
		for j := 0; j < batch; j++ {
			k := i*batch + j
			events = append(events, benchEvent(k))
		}
		if _, err := s.Ingest(ctx, "bench", events); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	// CPU time per event: what the figure would be on an idle machine
	// (the shared test machine's load makes wall time noisy).
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/event")
}

// BenchmarkIngestConcurrent measures single-event Ingest calls from many
// concurrent callers, as concurrent POST /lineage requests make them:
// group commit lets them share transactions (and fsyncs).
func BenchmarkIngestConcurrent(b *testing.B) {
	ctx := context.Background()
	s := newService(b, openStore(b, "sqlite:"+filepath.Join(b.TempDir(), "m.db")))
	var next atomic.Int64
	b.SetParallelism(32) // 32 callers per CPU
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Ingest(ctx, "bench", []*Event{benchEvent(int(next.Add(1)))}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchEvent(k int) *Event {
	in0 := Dataset{Namespace: "crm", Name: fmt.Sprintf("src%d", k%50)}
	in1 := Dataset{Namespace: "crm", Name: fmt.Sprintf("src%d", (k+1)%50)}
	out := Dataset{Namespace: "dw", Name: fmt.Sprintf("out%d", k%5000)}
	cl := fmt.Sprintf(`{"_producer":"p","_schemaURL":"u","fields":{"mail":{"inputFields":[{"namespace":"crm","name":"%s","field":"email"}]}}}`, in0.Name)
	out.Facets = map[string]json.RawMessage{"columnLineage": json.RawMessage(cl)}
	return &Event{Kind: KindRun, EventType: StateStart, EventTime: time.Unix(int64(k), 0).UTC(), Producer: "p", SchemaURL: "u",
		Run: &Run{RunID: fmt.Sprintf("run-%d", k)}, Job: &Job{Namespace: "etl", Name: fmt.Sprintf("job%d", k%5000)},
		Inputs: []Dataset{in0, in1}, Outputs: []Dataset{out}}
}

// BenchmarkDecode measures schema validation and decoding of one event.
func BenchmarkDecode(b *testing.B) {
	raw := readFixture(b, "events/event_full.json")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPropagate100k measures one tag change (set, then removed, in
// turn) at the root of a 100,000-dataset graph (a 4-ary tree of jobs, each
// reading its parent and writing one dataset) reaching every node,
// metastore write included.
func BenchmarkPropagate100k(b *testing.B) {
	ctx := context.Background()
	s := newService(b, openStore(b, "sqlite:"+filepath.Join(b.TempDir(), "m.db")))
	const n = 100_000
	g := newGraph()
	ds := make([]*dsNode, n)
	for i := range ds {
		ds[i] = g.dataset(DatasetKey{"dw", fmt.Sprintf("d%d", i)})
	}
	for i := 1; i < n; i++ {
		j := g.job(JobKey{"etl", fmt.Sprintf("j%d", i)})
		g.setJobIO(j, fmt.Sprintf("r%d", i), []*dsNode{ds[(i-1)/4]}, []*dsNode{ds[i]})
	}
	s.g = g
	tag := []LineageTag{{Name: "PII", Classification: policy.C3, Propagate: true}}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		t := tag
		if i%2 == 1 {
			t = nil
		}
		if err := s.SetTags(ctx, "dw", "d0", "", "catalog", t); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
	if b.N%2 == 1 {
		if _, cls, _ := s.InheritedTags(ctx, "dw", fmt.Sprintf("d%d", n-1)); cls != policy.C3 {
			b.Fatalf("leaf classification %v", cls)
		}
	}
}
