package s3store_test

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	s3store "github.com/stewardhq/steward/internal/objectstore/s3"
	"github.com/stewardhq/steward/internal/objectstore/storetest"
	"github.com/stewardhq/steward/internal/testutil/s3upstream"
)

func TestMain(m *testing.M) { s3upstream.Main(m) }

func newStore(t testing.TB, prefix string) *s3store.Store {
	t.Helper()
	endpoint, access, secret := s3upstream.Start(t)
	s, err := s3store.New(context.Background(), s3store.Config{
		Endpoint: endpoint, AccessKey: access, SecretKey: steward.Secret(secret), PathStyle: true, BucketPrefix: prefix,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunWith(t, func(t *testing.T) objectstore.Store { return newStore(t, "") }, versitygw)
}

// versitygw's posix backend keeps objects as files; it differs from S3
// where storetest.Capabilities documents.
var versitygw = storetest.Capabilities{PathKeys: true, NoNullVersionID: true, NoMarkerForMissingKey: true, LaxUploadIDs: true, NoUploadIDMarker: true, TornReads: true}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  s3store.Config
	}{
		{"no access key", s3store.Config{Endpoint: "http://127.0.0.1:1", SecretKey: "s"}},
		{"no secret key", s3store.Config{Endpoint: "http://127.0.0.1:1", AccessKey: "a"}},
		{"not a URL", s3store.Config{Endpoint: "127.0.0.1:9000", AccessKey: "a", SecretKey: "s"}},
		{"ftp", s3store.Config{Endpoint: "ftp://127.0.0.1", AccessKey: "a", SecretKey: "s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s3store.New(context.Background(), c.cfg, nil); steward.KindOf(err) != steward.EInvalid {
				t.Fatalf("New = %v, want an invalid-config error", err)
			}
		})
	}
}

func TestBucketPrefixIsolates(t *testing.T) {
	ctx := context.Background()
	a, plain := newStore(t, "inst-a-"), newStore(t, "")
	storetest.WantCode(t, a.CreateBucket(ctx, "shared"), "")
	t.Cleanup(func() { a.DeleteBucket(ctx, "shared") })
	storetest.WantCode(t, plain.CreateBucket(ctx, "unprefixed"), "")
	t.Cleanup(func() { plain.DeleteBucket(ctx, "unprefixed") })

	if _, err := plain.HeadBucket(ctx, "inst-a-shared"); err != nil {
		t.Fatalf("prefixed bucket upstream: %v", err)
	}
	list, err := a.ListBuckets(ctx)
	storetest.WantCode(t, err, "")
	if len(list) != 1 || list[0].Name != "shared" || list[0].Created.IsZero() {
		t.Fatalf("ListBuckets with prefix = %+v", list)
	}
	_, err = a.HeadBucket(ctx, "unprefixed")
	storetest.WantCode(t, err, objectstore.CodeNoSuchBucket)
	storetest.Put(t, a, "shared", "k", "v", objectstore.PutOptions{})
	if body, _ := storetest.Get(t, plain, "inst-a-shared", "k", objectstore.GetOptions{}); body != "v" {
		t.Fatalf("object upstream = %q", body)
	}
	_, err = a.Delete(ctx, "shared", "k", "")
	storetest.WantCode(t, err, "")
	// A name that fits S3's 63 bytes alone but not with the prefix.
	storetest.WantCode(t, a.CreateBucket(ctx, strings.Repeat("b", 60)), objectstore.CodeInvalidBucketName)
}

func TestPutUnsized(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "")
	b := storetest.NewBucket(t, s)
	const n = 20 << 20 // over one held part: sent as a multipart upload
	info, err := s.Put(ctx, b, "big", storetest.Body(3, n), -1, objectstore.PutOptions{ContentType: "application/x-big", Tags: map[string]string{"t": "1"}})
	storetest.WantCode(t, err, "")
	if info.Size != n || !strings.HasSuffix(info.ETag, `-3"`) {
		t.Fatalf("unsized put = %+v", info)
	}
	rc, got, err := s.Get(ctx, b, "big", objectstore.GetOptions{})
	storetest.WantCode(t, err, "")
	h := md5.New()
	io.Copy(h, rc)
	rc.Close()
	if want := storetest.BodyMD5(3, n); fmt.Sprintf(`"%x"`, h.Sum(nil)) != want || got.ContentType != "application/x-big" || got.Tags["t"] != "1" {
		t.Fatalf("read back md5 %x want %s, info %+v", h.Sum(nil), want, got)
	}
	if ups, _ := s.ListUploads(ctx, b, objectstore.ListUploadsOptions{}); len(ups) != 0 {
		t.Fatalf("uploads left: %+v", ups)
	}
	// A whole-object checksum cannot be checked by a multipart upload.
	_, err = s.Put(ctx, b, "sum", storetest.Body(3, n), -1, objectstore.PutOptions{Checksums: map[string]string{"CRC32": "AAAAAA=="}})
	storetest.WantCode(t, err, objectstore.CodeInvalidArgument)
	// A body that fails midway leaves nothing behind.
	_, err = s.Put(ctx, b, "broken", io.MultiReader(storetest.Body(4, 9<<20), iotest.ErrReader(io.ErrUnexpectedEOF)), -1, objectstore.PutOptions{})
	storetest.WantCode(t, err, objectstore.CodeIncompleteBody)
	_, err = s.Head(ctx, b, "broken", objectstore.GetOptions{})
	storetest.WantCode(t, err, objectstore.CodeNoSuchKey)
	if ups, _ := s.ListUploads(ctx, b, objectstore.ListUploadsOptions{}); len(ups) != 0 {
		t.Fatalf("uploads left after a broken body: %+v", ups)
	}
}

func TestUpstreamFailures(t *testing.T) {
	ctx := context.Background()
	endpoint, access, _ := s3upstream.Start(t)
	wrong, err := s3store.New(ctx, s3store.Config{Endpoint: endpoint, AccessKey: access, SecretKey: "not-the-secret", PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	gone, err := s3store.New(ctx, s3store.Config{Endpoint: down, AccessKey: "a", SecretKey: "s", PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		store *s3store.Store
		kind  steward.ErrorKind
	}{
		{"wrong secret", wrong, steward.EInternal},
		{"upstream down", gone, steward.EUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := c.store.Get(ctx, "some-bucket", "k", objectstore.GetOptions{})
			var se *steward.Error
			if !errors.As(err, &se) || se.Kind != c.kind || strings.HasPrefix(se.Op, "No") {
				t.Fatalf("Get = %#v, want kind %s and no S3 code", err, c.kind)
			}
			if strings.Contains(se.Message, "not-the-secret") || strings.Contains(err.Error(), "not-the-secret") {
				t.Fatal("error shows the secret")
			}
			if c.store.Ping(ctx) == nil {
				t.Fatal("Ping succeeded")
			}
		})
	}
	if err := newStore(t, "").Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// TestPathKeyConflicts: an upstream that keeps keys as paths refuses a key
// under an object's name (and an object where a prefix is) as a conflict,
// not as a failure of Steward.
func TestPathKeyConflicts(t *testing.T) {
	s := newStore(t, "")
	b := storetest.NewBucket(t, s)
	storetest.Put(t, s, b, "p", "file", objectstore.PutOptions{})
	storetest.Put(t, s, b, "d/x", "under d", objectstore.PutOptions{})
	for _, k := range []string{"p/q", "d"} {
		_, err := s.Put(context.Background(), b, k, strings.NewReader("v"), 1, objectstore.PutOptions{})
		if steward.KindOf(err) != steward.EConflict {
			t.Fatalf("Put %q: %v, want a conflict", k, err)
		}
	}
}
