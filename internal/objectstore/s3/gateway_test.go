package s3store_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	s3store "github.com/stewardhq/steward/internal/objectstore/s3"
	"github.com/stewardhq/steward/internal/s3api"
)

// keyResolver knows one long-lived access key.
type keyResolver struct{ cred s3api.Credential }

func (k keyResolver) ResolveCredential(_ context.Context, id, token string) (*s3api.Credential, error) {
	if id != k.cred.AccessKeyID || token != "" {
		e := steward.Errorf(steward.EUnauthenticated, "unknown access key")
		e.Op = "InvalidAccessKeyId"
		return nil, e
	}
	c := k.cred
	return &c, nil
}

type auditLog struct {
	mu     sync.Mutex
	events []steward.AuditEvent
}

func (a *auditLog) Record(_ context.Context, ev steward.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return nil
}

func (a *auditLog) count() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.events) }

// gateway serves the S3 API over a forwarding store: alice may do
// anything except under any key starting "secret/".
func gateway(t *testing.T) (*s3.Client, *s3store.Store, *auditLog) {
	t.Helper()
	store := newStore(t, "gw-")
	audit := &auditLog{}
	authz := s3api.AuthorizerFunc(func(_ context.Context, r *s3api.AuthzRequest) s3api.Decision {
		if strings.Contains(r.Resource.Path, "/secret/") {
			return s3api.Decision{Reason: "secret"}
		}
		return s3api.Decision{Allowed: true, Policy: "test@1"}
	})
	cred := s3api.Credential{AccessKeyID: "STEWARDTESTKEY", SecretKey: "steward-test-secret",
		Principal: &steward.Principal{Kind: steward.KindUser, Subject: "sub-alice", Username: "alice"}}
	h := s3api.New(s3api.Config{}, store, keyResolver{cred}, authz, s3api.NoTags{}, audit, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(cred.AccessKeyID, cred.SecretKey.Reveal(), ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
	})
	return c, store, audit
}

// patternBody is n deterministic bytes that can be read and re-read
// (seeked) without being held in memory.
type patternBody struct{ off, n int64 }

func (p *patternBody) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x*31 + x>>9)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func (p *patternBody) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		p.off = off
	case io.SeekCurrent:
		p.off += off
	case io.SeekEnd:
		p.off = p.n + off
	}
	return p.off, nil
}

// heapWatch samples HeapInuse until stopped and returns the peak.
func heapWatch() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func TestGatewayForwards(t *testing.T) {
	c, store, audit := gateway(t)
	ctx := context.Background()
	b := aws.String("fwd-data")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	// The bucket exists upstream under the installation's prefix.
	if _, err := store.HeadBucket(ctx, "fwd-data"); err != nil {
		t.Fatalf("HeadBucket through the store: %v", err)
	}

	t.Run("put get list delete", func(t *testing.T) {
		for _, k := range []string{"dir/a.txt", "dir/b.txt", "dir/sub/c.txt", "top.txt"} {
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(k), Body: strings.NewReader("body of " + k),
				ContentType: aws.String("text/plain"), Metadata: map[string]string{"owner": "alice"}}); err != nil {
				t.Fatalf("PutObject %s: %v", k, err)
			}
		}
		get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("dir/a.txt")})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		got, _ := io.ReadAll(get.Body)
		get.Body.Close()
		if string(got) != "body of dir/a.txt" || get.Metadata["owner"] != "alice" || aws.ToString(get.ContentType) != "text/plain" {
			t.Fatalf("GetObject = %q %v %v", got, get.Metadata, aws.ToString(get.ContentType))
		}
		rg, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("dir/a.txt"), Range: aws.String("bytes=8-10")})
		if err != nil {
			t.Fatalf("ranged GetObject: %v", err)
		}
		got, _ = io.ReadAll(rg.Body)
		rg.Body.Close()
		if string(got) != "dir" || aws.ToString(rg.ContentRange) != "bytes 8-10/17" {
			t.Fatalf("range = %q %s", got, aws.ToString(rg.ContentRange))
		}
		var keys, prefixes []string
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: b, Delimiter: aws.String("/"), Prefix: aws.String("dir/"), MaxKeys: aws.Int32(1)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListObjectsV2: %v", err)
			}
			for _, o := range page.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
			for _, cp := range page.CommonPrefixes {
				prefixes = append(prefixes, aws.ToString(cp.Prefix))
			}
		}
		if fmt.Sprint(keys, prefixes) != "[dir/a.txt dir/b.txt] [dir/sub/]" {
			t.Fatalf("listing = %v %v", keys, prefixes)
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("top.txt")}); err != nil {
			t.Fatalf("DeleteObject: %v", err)
		}
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("top.txt")})
		var nf *types.NotFound
		if !errors.As(err, &nf) {
			t.Fatalf("HeadObject after delete: %v", err)
		}
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("top.txt")})
		var nsk *types.NoSuchKey
		if !errors.As(err, &nsk) {
			t.Fatalf("GetObject after delete: %v", err)
		}
	})

	t.Run("denied requests never reach the upstream", func(t *testing.T) {
		before := audit.count()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("secret/plan.txt"), Body: strings.NewReader("x")})
		if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Fatalf("PutObject under secret/: %v", err)
		}
		if _, err := store.Head(ctx, "fwd-data", "secret/plan.txt", objectstore.GetOptions{}); steward.KindOf(err) != steward.ENotFound {
			t.Fatalf("denied object upstream: %v", err)
		}
		if audit.count() <= before {
			t.Fatal("denial not audited")
		}
	})

	t.Run("64 MiB streamed both ways", func(t *testing.T) {
		const n = 64 << 20
		h := md5.New()
		io.Copy(h, &patternBody{n: n})
		want := fmt.Sprintf("%x", h.Sum(nil))
		base := heapNow()
		stop := heapWatch()
		put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("big"), Body: &patternBody{n: n}, ContentLength: aws.Int64(n)})
		if err != nil {
			stop()
			t.Fatalf("PutObject 64 MiB: %v", err)
		}
		get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("big")})
		if err != nil {
			stop()
			t.Fatalf("GetObject 64 MiB: %v", err)
		}
		h.Reset()
		m, err := io.Copy(h, get.Body)
		get.Body.Close()
		peak := stop()
		if err != nil || m != n || fmt.Sprintf("%x", h.Sum(nil)) != want || strings.Trim(aws.ToString(put.ETag), `"`) != want {
			t.Fatalf("read back %d bytes (%v), md5 %x, want %s; put ETag %s", m, err, h.Sum(nil), want, aws.ToString(put.ETag))
		}
		// Gateway, store and client all run in this process: a buffered
		// body would show as 64 MiB or more.
		if grow := int64(peak) - int64(base); grow > 24<<20 {
			t.Fatalf("heap in use grew by %d MiB while streaming 64 MiB", grow>>20)
		}
		t.Logf("heap in use: base %d MiB, peak %d MiB", base>>20, peak>>20)
	})

	t.Run("multipart", func(t *testing.T) {
		k := aws.String("mp/object")
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k, ContentType: aws.String("application/x-test")})
		if err != nil {
			t.Fatalf("CreateMultipartUpload: %v", err)
		}
		p1 := bytes.Repeat([]byte("a"), 5<<20)
		p2 := []byte("tail")
		var parts []types.CompletedPart
		for i, data := range [][]byte{p1, p2} {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data)})
			if err != nil {
				t.Fatalf("UploadPart %d: %v", i+1, err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		}
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: up.UploadId})
		if err != nil || len(lp.Parts) != 2 {
			t.Fatalf("ListParts: %v %+v", err, lp)
		}
		done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		if err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		if !strings.HasSuffix(aws.ToString(done.ETag), `-2"`) {
			t.Fatalf("multipart ETag %s", aws.ToString(done.ETag))
		}
		get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		got, _ := io.ReadAll(get.Body)
		get.Body.Close()
		if !bytes.Equal(got, append(p1, p2...)) || aws.ToString(get.ContentType) != "application/x-test" {
			t.Fatalf("assembled object: %d bytes, type %s", len(got), aws.ToString(get.ContentType))
		}
	})
}

// TestGatewayUpstreamDown: an unreachable upstream fails requests closed
// with 503, which clients retry; nothing is served from anywhere else.
func TestGatewayUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	store, err := s3store.New(context.Background(), s3store.Config{Endpoint: "http://" + addr, AccessKey: "a", SecretKey: "s", PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	allow := s3api.AuthorizerFunc(func(context.Context, *s3api.AuthzRequest) s3api.Decision {
		return s3api.Decision{Allowed: true, Policy: "t@1"}
	})
	cred := s3api.Credential{AccessKeyID: "STEWARDTESTKEY", SecretKey: "steward-test-secret",
		Principal: &steward.Principal{Kind: steward.KindUser, Subject: "sub-alice", Username: "alice"}}
	srv := httptest.NewServer(s3api.New(s3api.Config{}, store, keyResolver{cred}, allow, s3api.NoTags{}, &auditLog{}, nil))
	t.Cleanup(srv.Close)
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(cred.AccessKeyID, cred.SecretKey.Reveal(), "")})
	_, err = c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("k")})
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("GetObject with the upstream down: %v", err)
	}
}
