package s3store_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/storetest"
	"github.com/stewardhq/steward/internal/testutil/s3upstream"
)

// BenchmarkForward compares the forwarding store with the same SDK
// talking to the upstream directly (same connection pool size, unsigned
// payload), for 1 MiB objects: the store's own cost is the difference.
//
//	go test -run '^$' -bench Forward -benchtime 3s ./internal/objectstore/s3/
func BenchmarkForward(b *testing.B) {
	ctx := context.Background()
	endpoint, access, secret := s3upstream.Start(b)
	store := newStore(b, "")
	bucket := storetest.NewBucket(b, store)
	direct := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials:                  credentials.NewStaticCredentialsProvider(access, secret, ""),
		HTTPClient:                   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
		RequestChecksumCalculation:   aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation:   aws.ResponseChecksumValidationWhenRequired,
		ContinueHeaderThresholdBytes: -1,
	})
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	storetest.Put(b, store, bucket, "obj", string(data), objectstore.PutOptions{})

	b.Run("Get/direct", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			out, err := direct.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, out.Body)
			out.Body.Close()
		}
	})
	b.Run("Get/forward", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			rc, _, err := store.Get(ctx, bucket, "obj", objectstore.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
	b.Run("Put/direct", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			_, err := direct.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("put"), Body: bytes.NewReader(data),
				ContentLength: aws.Int64(int64(len(data)))}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Put/forward", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := store.Put(ctx, bucket, "put", bytes.NewReader(data), int64(len(data)), objectstore.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBody measures the store's own cost of streaming a body each
// way over a kept-alive loopback connection to a minimal upstream, so
// that the SDK, the transport and the copies show without an S3
// server's work. GET reads the body with io.Copy, as the gateway does.
//
//	go test -run '^$' -bench Body -benchmem -count 5 ./internal/objectstore/s3/
func BenchmarkBody(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{4 << 10, 32 << 20} {
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		_, store := startFake(b, body)
		name := fmt.Sprintf("%dKiB", size>>10)
		b.Run("Get/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			defer reportCPU(b)()
			for b.Loop() {
				rc, _, err := store.Get(ctx, "bench", "obj", objectstore.GetOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(size) {
					b.Fatal(n, err)
				}
				rc.Close()
			}
		})
		b.Run("Put/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := store.Put(ctx, "bench", "obj", bytes.NewReader(body), int64(size), objectstore.PutOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU reports the process's CPU time (user+system, client and
// fake upstream together) per operation, which a loaded machine moves
// far less than wall-clock time.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
