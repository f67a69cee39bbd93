package s3api_test

// Regressions found by running ceph/s3-tests against the gateway.

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
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

func TestListObjectsV2EmptyContinuationToken(t *testing.T) {
	ctx := context.Background()
	_, c := newBucketClient(t, "alice-tok")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-tok"), Key: aws.String("k"), Body: body("x")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("alice-tok"), ContinuationToken: aws.String("")})
	if err != nil {
		t.Fatalf("empty continuation-token: %v", err)
	}
	if len(out.Contents) != 1 {
		t.Errorf("got %d keys, want 1", len(out.Contents))
	}
}

func TestListEncodingTypeURL(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-enc")
	key := "a dir/b+c d&e.txt"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-enc"), Key: aws.String(key), Body: body("x")}); err != nil {
		t.Fatal(err)
	}
	resp, raw := rawDo(t, e, http.MethodGet, "/alice-enc?list-type=2&encoding-type=url&prefix=a%20dir/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	for _, want := range []string{"<Key>a%20dir/b%2Bc%20d%26e.txt</Key>", "<Prefix>a%20dir/</Prefix>"} {
		if !strings.Contains(raw, want) {
			t.Errorf("missing %s in %s", want, raw)
		}
	}
}

// signRequest signs a bodiless request with session credentials.
func signRequest(t *testing.T, req *http.Request, c aws.Credentials) {
	t.Helper()
	ph := hashHex("")
	req.Header.Set("X-Amz-Content-Sha256", ph)
	if c.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), c, req, ph, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// rawDo sends a signed bodiless request as alice and returns the answer.
func rawDo(t *testing.T, e *env, method, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	creds, err := e.session("alice").Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	signRequest(t, req, creds)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(raw)
}
