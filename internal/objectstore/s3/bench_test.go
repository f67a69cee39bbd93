package s3store_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

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
