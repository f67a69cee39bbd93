package s3api_test

// More regressions from ceph/s3-tests (second round), each against the
// real handler over HTTP.

import (
	"bytes"
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
)

// rawSend signs and sends a request as alice with the given body (nil
// for none); a body of unknown length (size < 0) goes out with
// Transfer-Encoding: chunked.
func rawSend(t *testing.T, e *env, method, path string, hdr http.Header, payload []byte, size int64) (*http.Response, string) {
	t.Helper()
	creds, err := e.session("alice").Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader
	if payload != nil {
		rd = io.MultiReader(bytes.NewReader(payload)) // hides the length from net/http
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.ContentLength = size
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	ph := hashHex(string(payload))
	req.Header.Set("X-Amz-Content-Sha256", ph)
	req.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), creds, req, ph, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(raw)
}

func TestCompleteMultipartUploadAgain(t *testing.T) {
	ctx := context.Background()
	_, c := newBucketClient(t, "alice-mpu")
	b := aws.String("alice-mpu")
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("m")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("m"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: body("abc")})
	if err != nil {
		t.Fatal(err)
	}
	complete := func(parts ...types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
		return c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("m"), UploadId: mp.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	}
	first, err := complete(types.CompletedPart{ETag: part.ETag, PartNumber: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		etag     *string
		wantCode string
	}{
		{"same parts answer the same result", part.ETag, ""},
		{"other parts are not that upload", aws.String(`"0123456789abcdef0123456789abcdef"`), "NoSuchUpload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again, err := complete(types.CompletedPart{ETag: tc.etag, PartNumber: aws.Int32(1)})
			if apiCode(err) != tc.wantCode {
				t.Fatalf("error %v, want %q", err, tc.wantCode)
			}
			if err == nil && aws.ToString(again.ETag) != aws.ToString(first.ETag) {
				t.Errorf("ETag %s, want %s", aws.ToString(again.ETag), aws.ToString(first.ETag))
			}
		})
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("m"), UploadId: mp.UploadId}); apiCode(err) != "NoSuchUpload" {
		t.Errorf("abort after completion: %v, want NoSuchUpload", err)
	}
}

func TestCompleteMultipartPartSentTwice(t *testing.T) {
	ctx := context.Background()
	_, c := newBucketClient(t, "alice-resend")
	b, k := aws.String("alice-resend"), aws.String("m")
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	// The client lists every answer it got for part 1; the copy uploaded
	// last is listed last and is the one kept.
	var parts []types.CompletedPart
	for _, data := range []string{"BBBBBBBB", "AAAAAAAA"} {
		p, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: body(data)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{ETag: p.ETag, PartNumber: aws.Int32(1)})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatalf("complete with a part listed twice: %v", err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(data) != "AAAAAAAA" {
		t.Errorf("object %q, want the part written last", data)
	}
	// Descending part numbers are still refused.
	mp2, _ := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k})
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: mp2.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: parts[0].ETag, PartNumber: aws.Int32(2)}, {ETag: parts[0].ETag, PartNumber: aws.Int32(1)}}}})
	if apiCode(err) != "InvalidPartOrder" {
		t.Errorf("descending parts: %v, want InvalidPartOrder", err)
	}
}

func TestPutChunkedTransferEncoding(t *testing.T) {
	e, c := newBucketClient(t, "alice-te")
	for _, tc := range []struct {
		name    string
		payload []byte
		size    int64
		status  int
	}{
		{"chunked without length", []byte("bar"), -1, http.StatusOK},
		{"chunked empty body", []byte{}, -1, http.StatusOK},
		{"with length", []byte("baz"), 3, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := rawSend(t, e, http.MethodPut, "/alice-te/k", nil, tc.payload, tc.size)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			got, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("alice-te"), Key: aws.String("k")})
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(got.Body)
			got.Body.Close()
			if !bytes.Equal(data, tc.payload) {
				t.Errorf("stored %q, want %q", data, tc.payload)
			}
		})
	}
	t.Run("part without length", func(t *testing.T) {
		mp, err := c.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String("alice-te"), Key: aws.String("m")})
		if err != nil {
			t.Fatal(err)
		}
		resp, raw := rawSend(t, e, http.MethodPut, "/alice-te/m?partNumber=1&uploadId="+aws.ToString(mp.UploadId), nil, []byte("x"), -1)
		if resp.StatusCode != http.StatusLengthRequired || !strings.Contains(raw, "MissingContentLength") {
			t.Errorf("status %d: %s", resp.StatusCode, raw)
		}
	})
}

func TestMetadataByteForByte(t *testing.T) {
	e, _ := newBucketClient(t, "alice-meta")
	for _, tc := range []struct{ name, value string }{
		{"latin-1", "Hello World\xe9"},
		{"utf-8", "Hello World\u00e9 \u4e16\u754c"},
		{"ascii", "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := rawSend(t, e, http.MethodPut, "/alice-meta/k", http.Header{"X-Amz-Meta-Meta1": {tc.value}}, []byte("x"), 1)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT status %d: %s", resp.StatusCode, raw)
			}
			for _, m := range []string{http.MethodGet, http.MethodHead} {
				resp, _ := rawSend(t, e, m, "/alice-meta/k", nil, nil, 0)
				if got := resp.Header["X-Amz-Meta-Meta1"]; len(got) != 1 || got[0] != tc.value {
					t.Errorf("%s: metadata %q, want %q", m, got, tc.value)
				}
			}
		})
	}
}

func TestContentEncodingKeptAsSent(t *testing.T) {
	e, _ := newBucketClient(t, "alice-ce")
	for _, tc := range []struct{ sent, want string }{
		{"gzip", "gzip"},
		{"deflate, gzip", "deflate, gzip"},
		{"deflate,gzip", "deflate,gzip"},
		{"gzip, aws-chunked", "gzip"},
		{"aws-chunked, gzip", "gzip"},
		{"aws-chunked", ""},
		{"aws-chunked, aws-chunked", ""},
	} {
		t.Run(tc.sent, func(t *testing.T) {
			resp, raw := rawSend(t, e, http.MethodPut, "/alice-ce/k", http.Header{"Content-Encoding": {tc.sent}}, []byte("x"), 1)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT status %d: %s", resp.StatusCode, raw)
			}
			resp, _ = rawSend(t, e, http.MethodHead, "/alice-ce/k", nil, nil, 0)
			if got := resp.Header.Get("Content-Encoding"); got != tc.want {
				t.Errorf("Content-Encoding %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnparsableKeyIsInvalidURI(t *testing.T) {
	e, _ := newBucketClient(t, "alice-uri")
	for _, tc := range []struct{ name, path string }{
		{"C1 control characters", "/alice-uri/%C2%AE%C2%8A-"},
		{"not UTF-8", "/alice-uri/%FF%FE"},
		{"NUL", "/alice-uri/a%00b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := rawDo(t, e, http.MethodGet, tc.path, nil)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(raw, "<Code>InvalidURI</Code>") || !strings.Contains(raw, "Couldn&#39;t parse the specified URI.") {
				t.Errorf("status %d: %s", resp.StatusCode, raw)
			}
			if evs := e.audit.byRequest(resp.Header.Get("X-Amz-Request-Id")); len(evs) == 0 || evs[len(evs)-1].Outcome != "failure" {
				t.Errorf("refusal not audited: %+v", evs)
			}
		})
	}
}

func TestDeleteMarkerHeaderWithoutVersioning(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-nv")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-nv"), Key: aws.String("k"), Body: body("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alice-nv"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		resp, _ := rawDo(t, e, m, "/alice-nv/k", nil)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Amz-Delete-Marker") != "false" {
			t.Errorf("%s: status %d, x-amz-delete-marker %q", m, resp.StatusCode, resp.Header.Get("X-Amz-Delete-Marker"))
		}
	}
}

func TestListObjectsV1PrefixNotEncoded(t *testing.T) {
	e, _ := newBucketClient(t, "alice-pfx")
	for _, tc := range []struct{ name, query, want string }{
		{"v1 keeps Prefix as sent", "?encoding-type=url&prefix=%0A", "<Prefix>&#xA;</Prefix>"},
		{"v2 encodes Prefix", "?list-type=2&encoding-type=url&prefix=%0A", "<Prefix>%0A</Prefix>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := rawDo(t, e, http.MethodGet, "/alice-pfx"+tc.query, nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(raw, tc.want) {
				t.Errorf("status %d, want %s in %s", resp.StatusCode, tc.want, raw)
			}
		})
	}
}

func TestACLsDescribePolicyAccess(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-acl")
	b := aws.String("alice-acl")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: body("x")}); err != nil {
		t.Fatal(err)
	}
	acl, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: b, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b})
	if err != nil {
		t.Fatal(err)
	}
	if acl.Owner == nil || len(list.Contents) != 1 || list.Contents[0].Owner == nil ||
		aws.ToString(acl.Owner.ID) != aws.ToString(list.Contents[0].Owner.ID) || aws.ToString(acl.Owner.DisplayName) != aws.ToString(list.Contents[0].Owner.DisplayName) {
		t.Fatalf("ACL owner %+v differs from the listing's %+v", acl.Owner, list.Contents)
	}
	if len(acl.Grants) != 1 || acl.Grants[0].Permission != types.PermissionFullControl || aws.ToString(acl.Grants[0].Grantee.ID) != aws.ToString(acl.Owner.ID) {
		t.Errorf("grants %+v, want the owner's FULL_CONTROL only", acl.Grants)
	}
	bob := e.s3Client(e.session("bob"))
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"PutObjectAcl private", func() error {
			_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: aws.String("k"), ACL: types.ObjectCannedACLPrivate})
			return err
		}, ""},
		{"PutObjectAcl public-read", func() error {
			_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: aws.String("k"), ACL: types.ObjectCannedACLPublicRead})
			return err
		}, "AccessControlListNotSupported"},
		{"PutBucketAcl public-read-write", func() error {
			_, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: b, ACL: types.BucketCannedACLPublicReadWrite})
			return err
		}, "AccessControlListNotSupported"},
		{"PutBucketAcl private", func() error {
			_, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: b, ACL: types.BucketCannedACLPrivate})
			return err
		}, ""},
		{"PutObjectAcl policy of the owner's full control", func() error {
			_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: aws.String("k"), AccessControlPolicy: &types.AccessControlPolicy{
				Owner: acl.Owner, Grants: []types.Grant{{Grantee: &types.Grantee{Type: types.TypeCanonicalUser, ID: acl.Owner.ID}, Permission: types.PermissionFullControl}}}})
			return err
		}, ""},
		{"PutObjectAcl policy granting another", func() error {
			_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: aws.String("k"), AccessControlPolicy: &types.AccessControlPolicy{
				Owner: acl.Owner, Grants: []types.Grant{{Grantee: &types.Grantee{Type: types.TypeCanonicalUser, ID: aws.String("bob")}, Permission: types.PermissionRead}}}})
			return err
		}, "AccessControlListNotSupported"},
		{"GetBucketAcl", func() error {
			_, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: b})
			return err
		}, ""},
		{"GetObjectAcl of a missing key", func() error {
			_, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: b, Key: aws.String("missing")})
			return err
		}, "NoSuchKey"},
		{"GetObjectAcl denied", func() error {
			_, err := bob.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: b, Key: aws.String("k")})
			return err
		}, "AccessDenied"},
		{"PutObjectAcl denied", func() error {
			_, err := bob.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: aws.String("k"), ACL: types.ObjectCannedACLPrivate})
			return err
		}, "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiCode(tc.call()); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestListBucketsPages(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-b1")
	for _, b := range []string{"alice-b3", "alice-b2"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(out *s3.ListBucketsOutput) string {
		var n []string
		for _, b := range out.Buckets {
			n = append(n, aws.ToString(b.Name))
		}
		return strings.Join(n, ",")
	}
	first, err := c.ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if names(first) != "alice-b1,alice-b2" || aws.ToString(first.ContinuationToken) == "" {
		t.Fatalf("first page %s, token %q", names(first), aws.ToString(first.ContinuationToken))
	}
	next, err := c.ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(2), ContinuationToken: first.ContinuationToken})
	if err != nil {
		t.Fatal(err)
	}
	if names(next) != "alice-b3" || next.ContinuationToken != nil {
		t.Errorf("second page %s, token %v", names(next), next.ContinuationToken)
	}
	exact, err := c.ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(3)})
	if err != nil || names(exact) != "alice-b1,alice-b2,alice-b3" || exact.ContinuationToken != nil {
		t.Errorf("a page that holds them all: %v %s token %v", err, names(exact), exact.ContinuationToken)
	}
	pfx, err := c.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String("alice-b2")})
	if err != nil || names(pfx) != "alice-b2" {
		t.Errorf("prefix: %v %s", err, names(pfx))
	}
	if _, err := c.ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(0)}); apiCode(err) != "InvalidArgument" {
		t.Errorf("max-buckets=0: %v", err)
	}
	// Bob may list none of them: he sees no bucket and no token.
	bob, err := e.s3Client(e.session("bob")).ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(1)})
	if err != nil || len(bob.Buckets) != 0 || bob.ContinuationToken != nil {
		t.Errorf("bob: %v %s token %v", err, names(bob), bob.ContinuationToken)
	}
}

func TestExpectedBucketOwner(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-own")
	list, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	me := aws.ToString(list.Owner.ID)
	for _, tc := range []struct {
		name, owner, want string
	}{
		{"the owner ListBuckets reports", me, ""},
		{"another owner", me + "foo", "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-own"), Key: aws.String("k"), Body: body("x"), ExpectedBucketOwner: aws.String(tc.owner)})
			if apiCode(err) != tc.want {
				t.Fatalf("PutObject: %v, want %q", err, tc.want)
			}
			_, err = c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("alice-own"), ExpectedBucketOwner: aws.String(tc.owner)})
			if apiCode(err) != tc.want {
				t.Fatalf("ListObjects: %v, want %q", err, tc.want)
			}
			if err != nil {
				evs := e.audit.byRequest(requestIDOf(err))
				if len(evs) == 0 || evs[len(evs)-1].Decision != "deny" {
					t.Errorf("refusal not audited as a denial: %+v", evs)
				}
			}
		})
	}
}

func TestListMultipartUploadsPages(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-ups")
	b := aws.String("alice-ups")
	for _, k := range []string{"a", "a", "b", "dir/x", "dir/y", "z"} {
		if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	entries := func(out *s3.ListMultipartUploadsOutput) string {
		var n []string
		for _, u := range out.Uploads {
			n = append(n, aws.ToString(u.Key))
			if aws.ToString(u.Initiator.ID) != "alice" || aws.ToString(u.Owner.DisplayName) != "alice" {
				t.Errorf("upload %s: initiator %+v owner %+v", aws.ToString(u.Key), u.Initiator, u.Owner)
			}
		}
		for _, p := range out.CommonPrefixes {
			n = append(n, aws.ToString(p.Prefix))
		}
		return strings.Join(n, ",")
	}
	// Page through with a delimiter, two entries a page.
	var pages []string
	in := &s3.ListMultipartUploadsInput{Bucket: b, Delimiter: aws.String("/"), MaxUploads: aws.Int32(2)}
	for i := 0; i < 10; i++ {
		out, err := c.ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, entries(out))
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		if aws.ToString(out.NextKeyMarker) == "" {
			t.Fatal("truncated page without NextKeyMarker")
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	if got := strings.Join(pages, "|"); got != "a,a|b,dir/|z" {
		t.Errorf("pages %s, want a,a|b,dir/|z", got)
	}
	pfx, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("dir/")})
	if err != nil || entries(pfx) != "dir/x,dir/y" {
		t.Errorf("prefix dir/: %v %s", err, entries(pfx))
	}
	// bob may not list the bucket.
	if _, err := e.s3Client(e.session("bob")).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b}); apiCode(err) != "AccessDenied" {
		t.Errorf("bob: %v, want AccessDenied", err)
	}
}

func TestChecksumModeAnswersStoredChecksum(t *testing.T) {
	ctx := context.Background()
	_, c := newBucketClient(t, "alice-ck")
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-ck"), Key: aws.String("k"), Body: body("hello"), ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if err != nil {
		t.Fatal(err)
	}
	if put.ChecksumType != types.ChecksumTypeFullObject || aws.ToString(put.ChecksumSHA256) == "" {
		t.Errorf("PutObject: type %q sha256 %q", put.ChecksumType, aws.ToString(put.ChecksumSHA256))
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("alice-ck"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ChecksumSHA256) != aws.ToString(put.ChecksumSHA256) || head.ChecksumType != types.ChecksumTypeFullObject {
		t.Errorf("HeadObject: sha256 %q type %q, want %q FULL_OBJECT", aws.ToString(head.ChecksumSHA256), head.ChecksumType, aws.ToString(put.ChecksumSHA256))
	}
}

func TestUnimplementedOnMissingBucket(t *testing.T) {
	e, _ := newBucketClient(t, "alice-here")
	for _, tc := range []struct {
		name, path, code string
	}{
		{"missing bucket the principal may list", "/alice-gone?policy", "NoSuchBucket"},
		{"existing bucket", "/alice-here?policy", "NotImplemented"},
		{"missing bucket the principal may not list", "/bob-gone?policy", "NotImplemented"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, raw := rawDo(t, e, http.MethodGet, tc.path, nil)
			if !strings.Contains(raw, "<Code>"+tc.code+"</Code>") {
				t.Errorf("want %s: %s", tc.code, raw)
			}
		})
	}
}

func TestTaggingHeader(t *testing.T) {
	e, _ := newBucketClient(t, "alice-tags")
	for _, tc := range []struct{ tagging, code string }{
		{"&", ""},
		{"key", ""},
		{"key1=val1&key2=val2", ""},
		{"key-key_key.key/key=value-value_value.value/value", ""},
		{"key%20key=value%2B", ""},
		{"=", "InvalidArgument"},
		{"key%", "InvalidArgument"},
		{"key=val&key=val", "InvalidArgument"},
		{"key?=val", "InvalidTag"},
		{"key=val!", "InvalidTag"},
	} {
		t.Run(tc.tagging, func(t *testing.T) {
			resp, raw := rawSend(t, e, http.MethodPut, "/alice-tags/k", http.Header{"X-Amz-Tagging": {tc.tagging}}, []byte("x"), 1)
			if tc.code == "" && resp.StatusCode != http.StatusOK || tc.code != "" && !strings.Contains(raw, "<Code>"+tc.code+"</Code>") {
				t.Errorf("status %d, want %q: %s", resp.StatusCode, tc.code, raw)
			}
		})
	}
}

func TestMultipartMetadataByteForByte(t *testing.T) {
	ctx := context.Background()
	e, c := newBucketClient(t, "alice-mpmeta")
	const latin1 = "caf\xe9"
	resp, raw := rawSend(t, e, http.MethodPost, "/alice-mpmeta/m?uploads", http.Header{"X-Amz-Meta-Meta1": {latin1}, "X-Amz-Tagging": {"k=v"}}, nil, 0)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	_, id, _ := strings.Cut(raw, "<UploadId>")
	id, _, _ = strings.Cut(id, "</UploadId>")
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("alice-mpmeta"), Key: aws.String("m"), UploadId: aws.String(id), PartNumber: aws.Int32(1), Body: body("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("alice-mpmeta"), Key: aws.String("m"), UploadId: aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	resp, _ = rawSend(t, e, http.MethodHead, "/alice-mpmeta/m", nil, nil, 0)
	if got := resp.Header["X-Amz-Meta-Meta1"]; len(got) != 1 || got[0] != latin1 || resp.Header.Get("X-Amz-Tagging-Count") != "1" {
		t.Errorf("metadata %q, tag count %q", got, resp.Header.Get("X-Amz-Tagging-Count"))
	}
}
