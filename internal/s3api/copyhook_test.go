package s3api_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/s3api"
)

// TestBeforeCopy: every server-side copy (CopyObject, UploadPartCopy) is
// announced after authorization and before the target is written; a
// failing hook fails the copy and writes nothing; denied copies are never
// announced.
func TestBeforeCopy(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var calls []string
	fail := false
	var e *env
	e = newEnv(t, s3api.Config{BeforeCopy: func(ctx context.Context, sb, sk, db, dk string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, sb+"/"+sk+">"+db+"/"+dk)
		// The target does not exist yet when the hook runs.
		if _, err := e.store.Head(ctx, db, dk, objectstore.GetOptions{}); err == nil {
			t.Errorf("target %s/%s written before the hook", db, dk)
		}
		if fail {
			return errors.New("lineage store down")
		}
		return nil
	}})
	alice := e.s3Client(e.session("alice"))
	if _, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("src/a.csv"), Body: body(strings.Repeat("x", 6<<20))}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("dst/a.csv"), CopySource: aws.String("data/src/a.csv")}); err != nil {
		t.Fatalf("CopyObject: %v", err)
	}
	up, err := alice.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("dst/b.csv")})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := alice.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("data"), Key: aws.String("dst/b.csv"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String("data/src/a.csv")})
	if err != nil {
		t.Fatalf("UploadPartCopy: %v", err)
	}
	if _, err := alice.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("dst/b.csv"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	// Denied (data/secret is denied to analysts): no announcement.
	if _, err := alice.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("secret/a.csv"), CopySource: aws.String("data/src/a.csv")}); apiCode(err) != "AccessDenied" {
		t.Errorf("copy into a denied path: %v", err)
	}
	// A failing hook fails the copy, and the target does not appear.
	mu.Lock()
	fail = true
	mu.Unlock()
	if _, err := alice.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("dst/c.csv"), CopySource: aws.String("data/src/a.csv")},
		func(o *s3.Options) { o.RetryMaxAttempts = 1 }); apiCode(err) != "InternalError" {
		t.Errorf("copy with a failing hook: %v", err)
	}
	if _, err := e.store.Head(ctx, "data", "dst/c.csv", objectstore.GetOptions{}); err == nil {
		t.Error("a failed copy wrote its target")
	}
	want := "data/src/a.csv>data/dst/a.csv data/src/a.csv>data/dst/b.csv data/src/a.csv>data/dst/c.csv"
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("announced copies:\n got %s\nwant %s", got, want)
	}
}
