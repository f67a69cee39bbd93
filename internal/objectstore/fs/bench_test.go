package fs_test

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/fs"
)

// Benchmarks use the durable store (fsync on every PUT), as deployed.

func benchStore(b *testing.B) (*fs.Store, string) {
	b.Helper()
	s := open(b, b.TempDir())
	if err := s.CreateBucket(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	return s, "bench"
}

// BenchmarkPut4KiBParallel runs 16 writers per CPU, as many clients would:
// concurrent PUTs share index commits (group commit).
func BenchmarkPut4KiBParallel(b *testing.B) {
	s, bucket := benchStore(b)
	b.SetParallelism(16)
	body := bytes.Repeat([]byte("x"), 4<<10)
	var n atomic.Int64
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("obj/%d", n.Add(1))
			if _, err := s.Put(ctx, bucket, key, bytes.NewReader(body), int64(len(body)), objectstore.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGet4KiBParallel(b *testing.B) {
	s, bucket := benchStore(b)
	body := bytes.Repeat([]byte("x"), 4<<10)
	const keys = 256
	for i := range keys {
		if _, err := s.Put(ctx, bucket, fmt.Sprintf("obj/%d", i), bytes.NewReader(body), int64(len(body)), objectstore.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 8<<10)
		for pb.Next() {
			rc, _, err := s.Get(ctx, bucket, fmt.Sprintf("obj/%d", n.Add(1)%keys), objectstore.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	})
}

// zeros is an endless reader of zero bytes that costs nothing to produce.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func BenchmarkPut32MiB(b *testing.B) {
	s, bucket := benchStore(b)
	const size = 32 << 20
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		if _, err := s.Put(ctx, bucket, "big", io.LimitReader(zeros{}, size), size, objectstore.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet32MiB(b *testing.B) {
	s, bucket := benchStore(b)
	const size = 32 << 20
	if _, err := s.Put(ctx, bucket, "big", io.LimitReader(zeros{}, size), size, objectstore.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	for b.Loop() {
		rc, _, err := s.Get(ctx, bucket, "big", objectstore.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf); err != nil || n != size {
			b.Fatal(n, err)
		}
		rc.Close()
	}
}

// BenchmarkCompleteMultipart32MiB assembles four 8 MiB parts into one
// object: the parts are uploaded once, and each round completes a new
// upload of copies of them (UploadPartCopy is not timed apart; the
// upload's parts are written before the timer runs).
func BenchmarkCompleteMultipart32MiB(b *testing.B) {
	s, bucket := benchStore(b)
	const partSize, nParts = 8 << 20, 4
	b.SetBytes(partSize * nParts)
	for b.Loop() {
		b.StopTimer()
		up, err := s.CreateMultipart(ctx, bucket, "mp", objectstore.PutOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var parts []objectstore.CompletePart
		for n := 1; n <= nParts; n++ {
			p, err := s.UploadPart(ctx, bucket, "mp", up.UploadID, n, io.LimitReader(zeros{}, partSize), partSize, objectstore.PutOptions{})
			if err != nil {
				b.Fatal(err)
			}
			parts = append(parts, objectstore.CompletePart{Number: n, ETag: p.ETag})
		}
		b.StartTimer()
		if _, err := s.CompleteMultipart(ctx, bucket, "mp", up.UploadID, parts); err != nil {
			b.Fatal(err)
		}
	}
}
