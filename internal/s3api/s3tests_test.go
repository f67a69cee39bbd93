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
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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
	// S3 echoes the (empty) token it was given (s3-tests
	// test_bucket_listv2_continuationtoken_empty).
	if out.ContinuationToken == nil || *out.ContinuationToken != "" {
		t.Errorf("ContinuationToken not echoed: %v", out.ContinuationToken)
	}
	out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("alice-tok")})
	if err != nil || out.ContinuationToken != nil {
		t.Errorf("a token appeared that was not given: %v %v", out.ContinuationToken, err)
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

func TestConditionalReadHeaders(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-cond")
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-cond"), Key: aws.String("k"), Body: body("x")})
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name, method, hdr, val string
	}{
		{"GET If-None-Match", http.MethodGet, "If-None-Match", aws.ToString(put.ETag)},
		{"HEAD If-None-Match", http.MethodHead, "If-None-Match", aws.ToString(put.ETag)},
		{"GET If-Modified-Since", http.MethodGet, "If-Modified-Since", future},
		{"HEAD If-Modified-Since", http.MethodHead, "If-Modified-Since", future},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := rawDo(t, e, tc.method, "/alice-cond/k", map[string]string{tc.hdr: tc.val})
			if resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != aws.ToString(put.ETag) || resp.Header.Get("Last-Modified") == "" {
				t.Errorf("status %d ETag %q Last-Modified %q", resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"))
			}
		})
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("alice-cond"), Key: aws.String("copy"), CopySource: aws.String("alice-cond/k"),
		CopySourceIfNoneMatch: put.ETag})
	if apiCode(err) != "PreconditionFailed" {
		t.Errorf("CopyObject with a matching copy-source-if-none-match: %v, want PreconditionFailed", err)
	}
}

func TestDeleteMarkerReadHeaders(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-dm")
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("alice-dm"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-dm"), Key: aws.String("k"), Body: body("x")}); err != nil {
		t.Fatal(err)
	}
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alice-dm"), Key: aws.String("k")})
	if err != nil || aws.ToString(del.VersionId) == "" {
		t.Fatalf("DeleteObject: %v", err)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		resp, _ := rawDo(t, e, m, "/alice-dm/k", nil)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Amz-Delete-Marker") != "true" || resp.Header.Get("X-Amz-Version-Id") != aws.ToString(del.VersionId) {
			t.Errorf("%s: status %d marker %q version %q (want %q)", m, resp.StatusCode, resp.Header.Get("X-Amz-Delete-Marker"), resp.Header.Get("X-Amz-Version-Id"), aws.ToString(del.VersionId))
		}
	}
}

func TestSuspendedVersioningWritesNameNoVersion(t *testing.T) {
	ctx := context.Background()
	_, c := newBucketClient(t, "alice-susp")
	for _, st := range []types.BucketVersioningStatus{types.BucketVersioningStatusEnabled, types.BucketVersioningStatusSuspended} {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("alice-susp"),
			VersioningConfiguration: &types.VersioningConfiguration{Status: st}}); err != nil {
			t.Fatal(err)
		}
	}
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-susp"), Key: aws.String("k"), Body: body("x")})
	if err != nil {
		t.Fatal(err)
	}
	if put.VersionId != nil {
		t.Errorf("PutObject: version id %q, want none", aws.ToString(put.VersionId))
	}
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("alice-susp"), Key: aws.String("m")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("alice-susp"), Key: aws.String("m"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: body("x")})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("alice-susp"), Key: aws.String("m"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if done.VersionId != nil {
		t.Errorf("CompleteMultipartUpload: version id %q, want none", aws.ToString(done.VersionId))
	}
}

func TestUSEast1Semantics(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-east")
	t.Run("CreateBucket again", func(t *testing.T) {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-east")}); err != nil {
			t.Errorf("re-creating an owned bucket in us-east-1: %v, want 200", err)
		}
	})
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-east"), Key: aws.String("k"), Body: body("hello")}); err != nil {
		t.Fatal(err)
	}
	t.Run("empty Content-MD5", func(t *testing.T) {
		creds, err := e.session("alice").Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/alice-east/md5", nil)
		req.Header["Content-Md5"] = []string{""}
		signRequest(t, req, creds)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "<Code>InvalidDigest</Code>") {
			t.Errorf("status %d: %s", resp.StatusCode, raw)
		}
	})
	t.Run("HEAD Range bytes=-0", func(t *testing.T) {
		for _, m := range []string{http.MethodHead, http.MethodGet} {
			resp, _ := rawDo(t, e, m, "/alice-east/k", map[string]string{"Range": "bytes=-0"})
			if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
				t.Errorf("%s: status %d, want 416", m, resp.StatusCode)
			}
		}
	})
}
