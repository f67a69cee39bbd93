package s3api_test

// Regressions found by running ceph/s3-tests against the gateway.

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stewardhq/steward/internal/s3api"
)

func newBucketClient(t *testing.T, bucket string) (*env, *s3.Client) {
	t.Helper()
	e := newEnv(t, s3api.Config{})
	c := e.s3Client(e.session("alice"))
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	return e, c
}

func TestListObjectVersionsNullVersionMarker(t *testing.T) {
	ctx := context.Background()
	_, c := newBucketClient(t, "alice-vers")
	for _, k := range []string{"v/a", "v/b", "v/c"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-vers"), Key: aws.String(k), Body: body("x")}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("alice-vers"), MaxKeys: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(page.IsTruncated) || aws.ToString(page.NextKeyMarker) != "v/b" || aws.ToString(page.NextVersionIdMarker) != "null" {
		t.Fatalf("truncated=%v next key %q version %q", aws.ToBool(page.IsTruncated), aws.ToString(page.NextKeyMarker), aws.ToString(page.NextVersionIdMarker))
	}
	next, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("alice-vers"), MaxKeys: aws.Int32(2),
		KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Versions) != 1 || aws.ToString(next.Versions[0].Key) != "v/c" || aws.ToBool(next.IsTruncated) {
		t.Fatalf("second page: %d versions, truncated %v", len(next.Versions), aws.ToBool(next.IsTruncated))
	}
	// A page ending on a common prefix has no version marker.
	cp, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("alice-vers"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if cp.NextVersionIdMarker != nil && aws.ToString(cp.NextVersionIdMarker) != "" {
		t.Errorf("common prefix page: version marker %q", aws.ToString(cp.NextVersionIdMarker))
	}
}
