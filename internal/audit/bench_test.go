package audit

import (
	"context"
	"testing"
)

// BenchmarkRecordParallel measures durable appends (fsync per group commit)
// from many concurrent writers: b.SetParallelism(64) runs 64 goroutines per
// CPU, as a busy gateway would.
func BenchmarkRecordParallel(b *testing.B) {
	for _, p := range []int{16, 64} {
		b.Run(map[int]string{16: "writers=16xCPU", 64: "writers=64xCPU"}[p], func(b *testing.B) {
			benchRecord(b, p)
		})
	}
}

func benchRecord(b *testing.B, parallelism int) {
	l := openLog(b, b.TempDir(), Options{})
	ev := event(1)
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := l.Record(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if st.Commits > 0 {
		b.ReportMetric(float64(st.Records)/float64(st.Commits), "records/commit")
	}
}

// BenchmarkRecordSequential measures one writer: every Record waits for its
// own fsync, so this is the latency floor, not throughput.
func BenchmarkRecordSequential(b *testing.B) {
	l := openLog(b, b.TempDir(), Options{})
	ev := event(1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Record(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerify measures reading and checking a trail.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	l := openLog(b, dir, Options{NoSync: true})
	recordN(b, l, 0, 20000)
	l.Close()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(dir)
		if err != nil || !rep.OK() {
			b.Fatal(err, rep.Problem)
		}
	}
	b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "records/s")
}
