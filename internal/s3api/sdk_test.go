package s3api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stewardhq/steward/internal/s3api"
)

func TestSDKWebIdentityFlow(t *testing.T) {
	e := newEnv(t, s3api.Config{})
	ctx := context.Background()
	c := e.s3Client(e.webIdentity("token-alice", "arn:aws:iam::steward:role/*"))

	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	// Default SDK behaviour: a trailing CRC32 checksum in an aws-chunked body.
	payload := bytes.Repeat([]byte("steward "), 20000)
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/a b+c.txt"), Body: bytes.NewReader(payload),
		Metadata: map[string]string{"owner": "alice"}, ContentType: aws.String("text/plain")})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if put.ETag == nil || put.ChecksumCRC32 == nil {
		t.Logf("%+v", put.ResultMetadata)
		t.Errorf("PutObject: ETag %v, CRC32 %v", put.ETag, put.ChecksumCRC32)
	}
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("sum/" + string(alg)), Body: bytes.NewReader(payload), ChecksumAlgorithm: alg}); err != nil {
			t.Errorf("PutObject with %s: %v", alg, err)
		}
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/a b+c.txt"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(get.Body)
	get.Body.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("GetObject body: %d bytes, err %v", len(got), err)
	}
	if get.Metadata["owner"] != "alice" || aws.ToString(get.ContentType) != "text/plain" {
		t.Errorf("GetObject metadata %v, type %v", get.Metadata, aws.ToString(get.ContentType))
	}
	rg, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/a b+c.txt"), Range: aws.String("bytes=8-15")})
	if err != nil {
		t.Fatalf("ranged GetObject: %v", err)
	}
	part, _ := io.ReadAll(rg.Body)
	rg.Body.Close()
	if string(part) != "steward " || aws.ToString(rg.ContentRange) != "bytes 8-15/160000" {
		t.Errorf("range: %q %v", part, aws.ToString(rg.ContentRange))
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/a b+c.txt"), IfNoneMatch: put.ETag}); err == nil {
		t.Errorf("If-None-Match with the current ETag: want 304")
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/a b+c.txt")}); err != nil {
		t.Errorf("HeadObject: %v", err)
	}

	// Listing with delimiter, pagination and url encoding.
	for _, k := range []string{"list/a", "list/b", "list/c/d", "list/e"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(k), Body: body("x")}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	var prefixes []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String("list/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
		for _, cp := range page.CommonPrefixes {
			prefixes = append(prefixes, *cp.Prefix)
		}
	}
	if strings.Join(keys, ",") != "list/a,list/b,list/e" || strings.Join(prefixes, ",") != "list/c/" {
		t.Errorf("ListObjectsV2: keys %v prefixes %v", keys, prefixes)
	}
	v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("data"), Prefix: aws.String("dir/"), EncodingType: types.EncodingTypeUrl})
	if err != nil || len(v1.Contents) != 1 || aws.ToString(v1.Contents[0].Key) != "dir/a%20b%2Bc.txt" {
		t.Errorf("ListObjects: %v %+v", err, v1)
	}

	// Copy, tagging.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("copy"), CopySource: aws.String("data/dir/a%20b%2Bc.txt")}); err != nil {
		t.Fatalf("CopyObject: %v", err)
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("copy"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("pii"), Value: aws.String("no")}}}}); err != nil {
		t.Fatalf("PutObjectTagging: %v", err)
	}
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("copy")})
	if err != nil || len(tags.TagSet) != 1 || *tags.TagSet[0].Key != "pii" {
		t.Errorf("GetObjectTagging: %v %+v", err, tags)
	}
	if _, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("copy")}); err != nil {
		t.Errorf("DeleteObjectTagging: %v", err)
	}

	// Multipart.
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("big")})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	part1 := bytes.Repeat([]byte("a"), 5<<20)
	u1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("big"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
	if err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	u2, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("data"), Key: aws.String("big"), UploadId: mp.UploadId, PartNumber: aws.Int32(2),
		CopySource: aws.String("data/copy"), CopySourceRange: aws.String("bytes=0-7")})
	if err != nil {
		t.Fatalf("UploadPartCopy: %v", err)
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("data"), Key: aws.String("big"), UploadId: mp.UploadId})
	if err != nil || len(lp.Parts) != 2 {
		t.Fatalf("ListParts: %v %+v", err, lp)
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("data")})
	if err != nil || len(lu.Uploads) != 1 {
		t.Fatalf("ListMultipartUploads: %v %+v", err, lu)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("big"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: u1.ETag}, {PartNumber: aws.Int32(2), ETag: u2.CopyPartResult.ETag}}}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("big")})
	if err != nil || aws.ToInt64(h.ContentLength) != 5<<20+8 {
		t.Errorf("HeadObject of completed upload: %v %v", err, h)
	}
	mp2, _ := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("aborted")})
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("aborted"), UploadId: mp2.UploadId}); err != nil {
		t.Errorf("AbortMultipartUpload: %v", err)
	}

	// Versioning.
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("data"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatalf("PutBucketVersioning: %v", err)
	}
	gv, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("data")})
	if err != nil || gv.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("GetBucketVersioning: %v %v", err, gv)
	}
	v1p, _ := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("ver"), Body: body("one")})
	c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("ver"), Body: body("two")})
	old, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("ver"), VersionId: v1p.VersionId})
	if err != nil {
		t.Fatalf("versioned GetObject: %v", err)
	}
	ob, _ := io.ReadAll(old.Body)
	old.Body.Close()
	if string(ob) != "one" {
		t.Errorf("old version = %q", ob)
	}
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("ver")})
	if err != nil || !aws.ToBool(del.DeleteMarker) {
		t.Errorf("DeleteObject on versioned bucket: %v %+v", err, del)
	}
	lv, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("data"), Prefix: aws.String("ver")})
	if err != nil || len(lv.Versions) != 2 || len(lv.DeleteMarkers) != 1 {
		t.Errorf("ListObjectVersions: %v versions %d markers %d", err, len(lv.Versions), len(lv.DeleteMarkers))
	}

	// DeleteObjects decides per key.
	do, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("data"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("list/a")}, {Key: aws.String("secret/x")}}}})
	if err != nil {
		t.Fatalf("DeleteObjects: %v", err)
	}
	if len(do.Deleted) != 1 || len(do.Errors) != 1 || aws.ToString(do.Errors[0].Code) != "AccessDenied" {
		t.Errorf("DeleteObjects: deleted %d errors %+v", len(do.Deleted), do.Errors)
	}

	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 {
		t.Errorf("ListBuckets: %v %+v", err, lb)
	}
	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("data")})
	if err != nil || loc.LocationConstraint != "" {
		t.Errorf("GetBucketLocation: %v %v", err, loc)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("data")}); apiCode(err) != "BucketNotEmpty" {
		t.Errorf("DeleteBucket of a full bucket: %v", err)
	}
}

func TestDenialsAreAccessDeniedAndAudited(t *testing.T) {
	e := newEnv(t, s3api.Config{})
	ctx := context.Background()
	alice := e.s3Client(e.session("alice"))
	bob := e.s3Client(e.session("bob"))
	if _, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func() error
	}{
		{"get missing secret key", func() error {
			_, err := alice.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("secret/nothing")})
			return err
		}},
		{"put secret key", func() error {
			_, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("secret/x"), Body: body("x")})
			return err
		}},
		{"bob lists data", func() error {
			_, err := bob.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data")})
			return err
		}},
		{"bob creates a bucket not his", func() error {
			_, err := bob.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-stuff")})
			return err
		}},
		{"copy from a secret source", func() error {
			_, err := alice.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("leak"), CopySource: aws.String("data/secret/x")})
			return err
		}},
		{"missing bucket is still denied", func() error {
			_, err := bob.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nope"), Key: aws.String("k")})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if apiCode(err) != "AccessDenied" {
				t.Fatalf("got %v, want AccessDenied", err)
			}
			id := requestIDOf(err)
			if id == "" {
				t.Fatal("no request id")
			}
			evs := e.audit.byRequest(id)
			if len(evs) != 1 || evs[0].Decision != "deny" || evs[0].Outcome != "failure" {
				t.Fatalf("audit for %s: %+v", id, evs)
			}
		})
	}
	if _, err := bob.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bob-stuff")}); err != nil {
		t.Fatalf("bob creates his own bucket: %v", err)
	}
	lb, err := bob.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || *lb.Buckets[0].Name != "bob-stuff" {
		t.Errorf("bob sees %+v (%v), want only bob-stuff", lb, err)
	}
}

func TestAuditFailureFailsClosed(t *testing.T) {
	e := newEnv(t, s3api.Config{})
	ctx := context.Background()
	c := e.s3Client(e.session("alice"), func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	e.audit.setFail(true)
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("k"), Body: body("x")})
	if apiCode(err) != "ServiceUnavailable" {
		t.Fatalf("PutObject with a broken audit trail: %v", err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("k")})
	if apiCode(err) != "ServiceUnavailable" {
		t.Fatalf("GetObject with a broken audit trail: %v", err)
	}
	e.audit.setFail(false)
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("k")}); err == nil {
		t.Fatal("the object was stored although its audit record failed")
	}
}

func TestPresignedURLs(t *testing.T) {
	e := newEnv(t, s3api.Config{})
	ctx := context.Background()
	c := e.s3Client(e.session("alice"))
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	ps := s3.NewPresignClient(c)
	put, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("pre/signed")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(put.Method, put.URL, strings.NewReader("hello"))
	for k, vs := range put.SignedHeader {
		req.Header[k] = vs
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("presigned PUT: %v %v %s", err, resp.Status, b)
	}
	resp.Body.Close()
	get, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("pre/signed")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = e.srv.Client().Get(get.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("presigned GET: %s %q", resp.Status, b)
	}
	// Tampering with the key breaks the signature.
	resp, _ = e.srv.Client().Get(strings.Replace(get.URL, "pre/signed", "pre/other", 1))
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("tampered presigned GET: %s", resp.Status)
	}
}
