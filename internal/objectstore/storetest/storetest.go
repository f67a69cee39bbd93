// Package storetest is the conformance suite that every objectstore.Store
// must pass: the embedded filesystem store and any store that forwards to
// an upstream S3. It checks S3 semantics through the Store interface only:
// buckets, objects, versions and delete markers, tags, preconditions,
// checksums, ranges, listing order and paging, multipart uploads, hostile
// keys and concurrent writers.
package storetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// NewStore returns a fresh, empty store for one test; it registers its own
// cleanup with t.Cleanup.
type NewStore func(t *testing.T) objectstore.Store

// Capabilities names S3 behaviours that a real, independent S3 server may
// legitimately lack (the suite then checks what such a server does
// instead). The zero value is full S3 behaviour, which Run requires: the
// embedded store has every capability.
type Capabilities struct {
	// PathKeys: the upstream keeps keys as file paths (versitygw's posix
	// backend, MinIO): a key cannot also be the parent "directory" of
	// another key, a key ending in "/" is an empty directory marker, and a
	// key's segments are 1 to 255 bytes and never "." or "..". The
	// key-set groups drop keys that break these rules.
	PathKeys bool
	// NoNullVersionID: the null version (an object written before
	// versioning was enabled or while it is suspended) is reported with an
	// empty version ID rather than "null".
	NoNullVersionID bool
	// NoMarkerForMissingKey: deleting a key that never existed in a
	// versioned bucket makes no delete marker.
	NoMarkerForMissingKey bool
	// LaxUploadIDs: an upload ID that was completed or aborted may still
	// be accepted by UploadPart (the part is dropped) and
	// CompleteMultipart with other parts (S3 itself answers a repeated
	// completion with success); the embedded store answers NoSuchUpload,
	// and the same result to a repeated completion with the same parts.
	LaxUploadIDs bool
	// NoUploadIDMarker: listing uploads from an upload-id-marker is
	// refused (versitygw: InvalidArgument "Invalid uploadId marker").
	NoUploadIDMarker bool
	// TornReads: under concurrent overwrites of a key a GET may pair one
	// version's body with another version's ETag (versitygw's posix
	// backend reads the ETag attribute and the file apart; seen about once
	// in a few hundred runs on a loaded machine). Bodies are still whole.
	TornReads bool
}

// capStore carries the capabilities of the store under test to the groups.
type capStore struct {
	objectstore.Store
	caps Capabilities
}

func capsOf(s objectstore.Store) Capabilities {
	if c, ok := s.(capStore); ok {
		return c.caps
	}
	return Capabilities{}
}

// PathKeys keeps the keys a store with Capabilities.PathKeys can hold
// together; without it, keys are returned as they are.
func PathKeys(caps Capabilities, keys []string) []string {
	if !caps.PathKeys {
		return keys
	}
	dirs := map[string]bool{}
	for _, k := range keys {
		for i := range len(k) {
			if k[i] == '/' {
				dirs[k[:i]] = true
			}
		}
	}
	var out []string
	for _, k := range keys {
		ok := !strings.HasSuffix(k, "/") && !dirs[k] // k would be a directory
		for _, seg := range strings.Split(k, "/") {
			if seg == "" || seg == "." || seg == ".." || len(seg) > 255 {
				ok = false
			}
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

// Run runs the whole suite, each group in a fresh store.
func Run(t *testing.T, newStore NewStore) { RunWith(t, newStore, Capabilities{}) }

// RunWith runs the whole suite for a store with the given capabilities.
func RunWith(t *testing.T, newStore NewStore, caps Capabilities) {
	groups := []struct {
		name string
		fn   func(t *testing.T, s objectstore.Store)
	}{
		{"Buckets", testBuckets},
		{"PutGet", testPutGet},
		{"PutErrors", testPutErrors},
		{"BeforeCommit", testBeforeCommit},
		{"Checksums", testChecksums},
		{"Ranges", testRanges},
		{"ConditionalGet", testConditionalGet},
		{"GetErrors", testGetErrors},
		{"Delete", testDelete},
		{"HostileKeys", testHostileKeys},
		{"Versioning", testVersioning},
		{"NullVersion", testNullVersion},
		{"ListVersionsPaging", testListVersionsPaging},
		{"Tags", testTags},
		{"List", testList},
		{"ListPaging10k", testListPaging10k},
		{"Multipart", testMultipart},
		{"ListUploadsMarkers", testListUploadsMarkers},
		{"MultipartErrors", testMultipartErrors},
		{"Concurrent", testConcurrent},
		{"Streaming", testStreaming},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.fn(t, capStore{newStore(t), caps}) })
	}
}

var ctx = context.Background()

// codeKinds is the kind each code must carry.
var codeKinds = map[string]steward.ErrorKind{
	objectstore.CodeNoSuchBucket:       steward.ENotFound,
	objectstore.CodeNoSuchKey:          steward.ENotFound,
	objectstore.CodeNoSuchVersion:      steward.ENotFound,
	objectstore.CodeNoSuchUpload:       steward.ENotFound,
	objectstore.CodeBucketExists:       steward.EConflict,
	objectstore.CodeBucketNotEmpty:     steward.EConflict,
	objectstore.CodePreconditionFailed: steward.EConflict,
	objectstore.CodeInvalidPart:        steward.EInvalid,
	objectstore.CodeInvalidPartOrder:   steward.EInvalid,
	objectstore.CodeEntityTooSmall:     steward.EInvalid,
	objectstore.CodeInvalidRange:       steward.EInvalid,
	objectstore.CodeBadDigest:          steward.EInvalid,
	objectstore.CodeInvalidBucketName:  steward.EInvalid,
	objectstore.CodeKeyTooLong:         steward.EInvalid,
	objectstore.CodeInvalidArgument:    steward.EInvalid,
	objectstore.CodeIncompleteBody:     steward.EInvalid,
}

// WantCode fails t unless err is a *steward.Error carrying the S3 code
// (and, for the codes with a fixed kind, that kind). code "" wants nil.
func WantCode(t testing.TB, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var se *steward.Error
	if !errors.As(err, &se) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if se.Op != code {
		t.Fatalf("want code %s, got %s (%v)", code, se.Op, err)
	}
	if k, ok := codeKinds[code]; ok && se.Kind != k {
		t.Fatalf("code %s: want kind %s, got %s", code, k, se.Kind)
	}
}

var bucketSeq struct {
	sync.Mutex
	n int
}

// NewBucket creates a uniquely named bucket.
func NewBucket(t testing.TB, s objectstore.Store) string {
	t.Helper()
	bucketSeq.Lock()
	bucketSeq.n++
	name := fmt.Sprintf("storetest-%d-%d", time.Now().UnixNano()%1e9, bucketSeq.n)
	bucketSeq.Unlock()
	if err := s.CreateBucket(ctx, name); err != nil {
		t.Fatalf("CreateBucket %s: %v", name, err)
	}
	return name
}

// Put writes body under key and fails t on error.
func Put(t testing.TB, s objectstore.Store, bucket, key, body string, opts objectstore.PutOptions) objectstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(ctx, bucket, key, strings.NewReader(body), int64(len(body)), opts)
	if err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
	return info
}

// Get reads an object version whole and fails t on error.
func Get(t testing.TB, s objectstore.Store, bucket, key string, opts objectstore.GetOptions) (string, objectstore.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(ctx, bucket, key, opts)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get %q: read: %v", key, err)
	}
	return string(b), info
}

func etagOf(body string) string {
	sum := md5.Sum([]byte(body))
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func testBuckets(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	WantCode(t, s.CreateBucket(ctx, b), objectstore.CodeBucketExists)
	info, err := s.HeadBucket(ctx, b)
	WantCode(t, err, "")
	if info.Name != b || info.Created.IsZero() || info.Versioning != objectstore.VersioningOff {
		t.Fatalf("HeadBucket = %+v", info)
	}
	_, err = s.HeadBucket(ctx, "storetest-missing")
	WantCode(t, err, objectstore.CodeNoSuchBucket)

	for _, name := range []string{"ab", strings.Repeat("a", 64), "Upper", "has_underscore", "-start", "end-", ".start", "end.",
		"a..b", "a.-b", "192.168.1.1", "xn--abc", "sthree-x", "amzn-s3-demo-x", "foo-s3alias", "foo--ol-s3", "foo.mrap", "foo--x-s3", "a b", "a/b", ""} {
		t.Run("invalid/"+name, func(t *testing.T) {
			WantCode(t, s.CreateBucket(ctx, name), objectstore.CodeInvalidBucketName)
		})
	}
	for _, name := range []string{"abc", strings.Repeat("a", 63), "a.b-c.1", "1-2-3", "my.bucket.name"} {
		t.Run("valid/"+name, func(t *testing.T) {
			WantCode(t, s.CreateBucket(ctx, name), "")
			WantCode(t, s.DeleteBucket(ctx, name), "")
		})
	}

	b2 := NewBucket(t, s)
	list, err := s.ListBuckets(ctx)
	WantCode(t, err, "")
	var names []string
	for _, bi := range list {
		names = append(names, bi.Name)
	}
	if !sort.StringsAreSorted(names) || !slices.Contains(names, b) || !slices.Contains(names, b2) {
		t.Fatalf("ListBuckets = %v", names)
	}

	WantCode(t, s.DeleteBucket(ctx, "storetest-missing"), objectstore.CodeNoSuchBucket)
	Put(t, s, b2, "k", "v", objectstore.PutOptions{})
	WantCode(t, s.DeleteBucket(ctx, b2), objectstore.CodeBucketNotEmpty)
	_, err = s.Delete(ctx, b2, "k", "")
	WantCode(t, err, "")
	WantCode(t, s.DeleteBucket(ctx, b2), "")
	_, err = s.HeadBucket(ctx, b2)
	WantCode(t, err, objectstore.CodeNoSuchBucket)

	// A delete marker alone keeps a versioned bucket non-empty.
	b3 := NewBucket(t, s)
	WantCode(t, s.SetVersioning(ctx, b3, objectstore.VersioningEnabled), "")
	Put(t, s, b3, "k", "v", objectstore.PutOptions{})
	_, err = s.Delete(ctx, b3, "k", "")
	WantCode(t, err, "")
	WantCode(t, s.DeleteBucket(ctx, b3), objectstore.CodeBucketNotEmpty)
	vs, err := s.ListVersions(ctx, b3, objectstore.ListVersionsOptions{})
	WantCode(t, err, "")
	for _, v := range vs.Versions {
		_, err := s.Delete(ctx, b3, v.Key, v.VersionID)
		WantCode(t, err, "")
	}
	WantCode(t, s.DeleteBucket(ctx, b3), "")

	WantCode(t, s.SetVersioning(ctx, "storetest-missing", objectstore.VersioningEnabled), objectstore.CodeNoSuchBucket)
	WantCode(t, s.SetVersioning(ctx, b, objectstore.Versioning("Bogus")), objectstore.CodeInvalidArgument)
	WantCode(t, s.SetVersioning(ctx, b, objectstore.VersioningSuspended), "")
	info, _ = s.HeadBucket(ctx, b)
	if info.Versioning != objectstore.VersioningSuspended {
		t.Fatalf("versioning = %q", info.Versioning)
	}
}

func testPutGet(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	before := time.Now().Add(-2 * time.Second)
	opts := objectstore.PutOptions{
		ContentType: "text/plain",
		Metadata:    map[string]string{"color": "blue", "Cache-Control": "no-cache"},
		Tags:        map[string]string{"class": "c2"},
	}
	info := Put(t, s, b, "dir/file.txt", "hello world", opts)
	if info.ETag != etagOf("hello world") || info.Size != 11 || info.Key != "dir/file.txt" || info.Bucket != b {
		t.Fatalf("Put info = %+v", info)
	}
	if info.VersionID != "" {
		t.Fatalf("unversioned bucket gave version %q", info.VersionID)
	}
	body, got := Get(t, s, b, "dir/file.txt", objectstore.GetOptions{})
	if body != "hello world" {
		t.Fatalf("body = %q", body)
	}
	for name, gi := range map[string]objectstore.ObjectInfo{"get": got, "head": mustHead(t, s, b, "dir/file.txt", objectstore.GetOptions{})} {
		if gi.ETag != info.ETag || gi.Size != 11 || gi.ContentType != "text/plain" || !gi.IsLatest ||
			gi.Metadata["color"] != "blue" || gi.Metadata["Cache-Control"] != "no-cache" || gi.Tags["class"] != "c2" {
			t.Fatalf("%s info = %+v", name, gi)
		}
		if gi.LastModified.Before(before) || gi.LastModified.After(time.Now().Add(2*time.Second)) {
			t.Fatalf("%s LastModified = %v", name, gi.LastModified)
		}
	}
	// Overwrite: the last writer wins, metadata is replaced.
	Put(t, s, b, "dir/file.txt", "second", objectstore.PutOptions{})
	body, got = Get(t, s, b, "dir/file.txt", objectstore.GetOptions{})
	if body != "second" || got.ETag != etagOf("second") || got.Metadata["color"] != "" || len(got.Tags) != 0 {
		t.Fatalf("after overwrite: %q %+v", body, got)
	}
	// Empty object; unknown size streams to EOF.
	Put(t, s, b, "empty", "", objectstore.PutOptions{})
	body, got = Get(t, s, b, "empty", objectstore.GetOptions{})
	if body != "" || got.Size != 0 || got.ETag != etagOf("") {
		t.Fatalf("empty: %q %+v", body, got)
	}
	info, err := s.Put(ctx, b, "unsized", strings.NewReader("stream"), -1, objectstore.PutOptions{})
	WantCode(t, err, "")
	if info.Size != 6 {
		t.Fatalf("unsized size = %d", info.Size)
	}
}

func mustHead(t testing.TB, s objectstore.Store, b, k string, o objectstore.GetOptions) objectstore.ObjectInfo {
	t.Helper()
	info, err := s.Head(ctx, b, k, o)
	if err != nil {
		t.Fatalf("Head %q: %v", k, err)
	}
	return info
}

// shortReader ends early: a client that sent fewer bytes than it declared.
type shortReader struct{ n int }

func (r *shortReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

// testBeforeCommit checks PutOptions.BeforeCommit: called exactly once
// for a write that succeeds, and its error aborts the write with nothing
// changed (the S3 gateway waits there for its decision audit record).
func testBeforeCommit(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	Put(t, s, b, "k", "old", objectstore.PutOptions{})
	calls := 0
	hook := func(err error) func() error {
		return func() error { calls++; return err }
	}
	hookErr := errors.New("audit trail unavailable")
	for _, size := range []int64{3, 0, -1} {
		calls = 0
		body := "new"
		if size == 0 {
			body = ""
		}
		_, err := s.Put(ctx, b, "k", strings.NewReader(body), size, objectstore.PutOptions{BeforeCommit: hook(hookErr)})
		if !errors.Is(err, hookErr) || calls != 1 {
			t.Fatalf("size %d: Put with a failing hook = %v after %d calls; want the hook's error after 1", size, err, calls)
		}
		if got, _ := Get(t, s, b, "k", objectstore.GetOptions{}); got != "old" {
			t.Fatalf("size %d: k = %q after an aborted write", size, got)
		}
	}
	calls = 0
	Put(t, s, b, "k", "new", objectstore.PutOptions{BeforeCommit: hook(nil)})
	if calls != 1 {
		t.Fatalf("hook called %d times for one write", calls)
	}
	if got, _ := Get(t, s, b, "k", objectstore.GetOptions{}); got != "new" {
		t.Fatalf("k = %q", got)
	}
}

func testPutErrors(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	Put(t, s, b, "exists", "old", objectstore.PutOptions{})
	goodMD5 := md5.Sum([]byte("body"))
	badMD5 := md5.Sum([]byte("other"))
	tooMany := map[string]string{}
	for i := range 11 {
		tooMany[fmt.Sprint(i)] = "v"
	}
	cases := []struct {
		name, bucket, key string
		body              io.Reader
		size              int64
		opts              objectstore.PutOptions
		code              string
	}{
		{"no such bucket", "storetest-missing", "k", nil, 4, objectstore.PutOptions{}, objectstore.CodeNoSuchBucket},
		{"empty key", b, "", nil, 4, objectstore.PutOptions{}, objectstore.CodeInvalidArgument},
		{"key too long", b, strings.Repeat("k", 1025), nil, 4, objectstore.PutOptions{}, objectstore.CodeKeyTooLong},
		{"key 1024 bytes", b, longKey(capsOf(s)), nil, 4, objectstore.PutOptions{}, ""},
		{"content-md5 ok", b, "md5", nil, 4, objectstore.PutOptions{ContentMD5: goodMD5[:]}, ""},
		{"content-md5 bad", b, "md5bad", nil, 4, objectstore.PutOptions{ContentMD5: badMD5[:]}, objectstore.CodeBadDigest},
		{"incomplete body", b, "short", &shortReader{2}, 4, objectstore.PutOptions{}, objectstore.CodeIncompleteBody},
		{"short at EOF", b, "short2", strings.NewReader("bo"), 4, objectstore.PutOptions{}, objectstore.CodeIncompleteBody},
		{"if-none-match * on existing", b, "exists", nil, 4, objectstore.PutOptions{IfNoneMatch: "*"}, objectstore.CodePreconditionFailed},
		{"if-none-match * on new", b, "fresh", nil, 4, objectstore.PutOptions{IfNoneMatch: "*"}, ""},
		{"if-match ok", b, "exists", nil, 4, objectstore.PutOptions{IfMatch: etagOf("old")}, ""},
		{"if-match stale", b, "exists", nil, 4, objectstore.PutOptions{IfMatch: etagOf("old")}, objectstore.CodePreconditionFailed},
		{"if-match missing key", b, "nothing", nil, 4, objectstore.PutOptions{IfMatch: etagOf("old")}, objectstore.CodeNoSuchKey},
		{"too many tags", b, "tags", nil, 4, objectstore.PutOptions{Tags: tooMany}, objectstore.CodeInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if body == nil {
				body = strings.NewReader("body")
			}
			_, err := s.Put(ctx, c.bucket, c.key, body, c.size, c.opts)
			WantCode(t, err, c.code)
			if c.code != "" && c.bucket == b && c.key != "exists" && c.key != "" && len(c.key) <= 1024 {
				_, err := s.Head(ctx, b, c.key, objectstore.GetOptions{})
				WantCode(t, err, objectstore.CodeNoSuchKey) // a failed write leaves nothing
			}
		})
	}
	if body, _ := Get(t, s, b, "exists", objectstore.GetOptions{}); body != "body" {
		t.Fatalf("exists = %q", body)
	}
}

// longKey is a key of exactly 1,024 bytes.
func longKey(caps Capabilities) string {
	if caps.PathKeys {
		return strings.Repeat("k/", 511) + "kk"
	}
	return strings.Repeat("k", 1024)
}

// CRC64NVME is the CRC-64/NVME table (reversed polynomial of 0xAD93D23594C93659).
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

func checksumOf(alg string, data []byte) string {
	var h hash.Hash
	switch alg {
	case "CRC32":
		h = crc32.NewIEEE()
	case "CRC32C":
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "CRC64NVME":
		h = crc64.New(crc64NVME)
	case "SHA1":
		h = sha1.New()
	case "SHA256":
		h = sha256.New()
	}
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func testChecksums(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	data := "The quick brown fox jumps over the lazy dog"
	for _, alg := range []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"} {
		t.Run(alg, func(t *testing.T) {
			sum := checksumOf(alg, []byte(data))
			info := Put(t, s, b, "ok-"+alg, data, objectstore.PutOptions{Checksums: map[string]string{alg: sum}})
			if info.Checksums[alg] != sum {
				t.Fatalf("Put checksums = %v", info.Checksums)
			}
			if h := mustHead(t, s, b, "ok-"+alg, objectstore.GetOptions{}); h.Checksums[alg] != sum {
				t.Fatalf("Head checksums = %v", h.Checksums)
			}
			wrong := checksumOf(alg, []byte(data+"!"))
			_, err := s.Put(ctx, b, "bad-"+alg, strings.NewReader(data), int64(len(data)), objectstore.PutOptions{Checksums: map[string]string{alg: wrong}})
			WantCode(t, err, objectstore.CodeBadDigest)
			_, err = s.Head(ctx, b, "bad-"+alg, objectstore.GetOptions{})
			WantCode(t, err, objectstore.CodeNoSuchKey)
		})
	}
	t.Run("unknown algorithm", func(t *testing.T) {
		_, err := s.Put(ctx, b, "x", strings.NewReader(data), int64(len(data)), objectstore.PutOptions{Checksums: map[string]string{"MD4": "AAAA"}})
		WantCode(t, err, objectstore.CodeInvalidArgument)
	})
	t.Run("malformed value", func(t *testing.T) {
		_, err := s.Put(ctx, b, "x", strings.NewReader(data), int64(len(data)), objectstore.PutOptions{Checksums: map[string]string{"SHA256": "not base64!"}})
		WantCode(t, err, objectstore.CodeInvalidArgument)
	})
}

func testRanges(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	data := "0123456789"
	Put(t, s, b, "k", data, objectstore.PutOptions{})
	Put(t, s, b, "empty", "", objectstore.PutOptions{})
	cases := []struct {
		name string
		key  string
		r    objectstore.Range
		want string
		code string
	}{
		{"first bytes", "k", objectstore.Range{Start: 0, End: 3}, "0123", ""},
		{"middle", "k", objectstore.Range{Start: 4, End: 6}, "456", ""},
		{"one byte", "k", objectstore.Range{Start: 9, End: 9}, "9", ""},
		{"end past size", "k", objectstore.Range{Start: 7, End: 100}, "789", ""},
		{"suffix", "k", objectstore.Range{Start: -3}, "789", ""},
		{"suffix longer than object", "k", objectstore.Range{Start: -50}, data, ""},
		{"start at size", "k", objectstore.Range{Start: 10, End: 12}, "", objectstore.CodeInvalidRange},
		{"start past size", "k", objectstore.Range{Start: 20, End: 30}, "", objectstore.CodeInvalidRange},
		{"range of empty object", "empty", objectstore.Range{Start: 0, End: 0}, "", objectstore.CodeInvalidRange},
		{"suffix of empty object", "empty", objectstore.Range{Start: -1}, "", objectstore.CodeInvalidRange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.r
			rc, info, err := s.Get(ctx, b, c.key, objectstore.GetOptions{Range: &r})
			WantCode(t, err, c.code)
			if err != nil {
				return
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if string(got) != c.want {
				t.Fatalf("got %q want %q", got, c.want)
			}
			if info.Size != int64(len(data)) {
				t.Fatalf("info.Size = %d, want the whole object's", info.Size)
			}
		})
	}
}

func testConditionalGet(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	info := Put(t, s, b, "k", "v", objectstore.PutOptions{})
	lm := info.LastModified
	past, future := lm.Add(-time.Hour), lm.Add(time.Hour)
	cases := []struct {
		name string
		opts objectstore.GetOptions
		code string
	}{
		{"if-match ok", objectstore.GetOptions{IfMatch: info.ETag}, ""},
		{"if-match unquoted", objectstore.GetOptions{IfMatch: strings.Trim(info.ETag, `"`)}, ""},
		{"if-match list", objectstore.GetOptions{IfMatch: `"nope", ` + info.ETag}, ""},
		{"if-match star", objectstore.GetOptions{IfMatch: "*"}, ""},
		{"if-match wrong", objectstore.GetOptions{IfMatch: `"nope"`}, objectstore.CodePreconditionFailed},
		{"if-none-match match", objectstore.GetOptions{IfNoneMatch: info.ETag}, objectstore.CodeNotModified},
		{"if-none-match star", objectstore.GetOptions{IfNoneMatch: "*"}, objectstore.CodeNotModified},
		{"if-none-match other", objectstore.GetOptions{IfNoneMatch: `"nope"`}, ""},
		{"if-modified-since past", objectstore.GetOptions{IfModifiedSince: past}, ""},
		{"if-modified-since future", objectstore.GetOptions{IfModifiedSince: future}, objectstore.CodeNotModified},
		{"if-unmodified-since future", objectstore.GetOptions{IfUnmodifiedSince: future}, ""},
		{"if-unmodified-since past", objectstore.GetOptions{IfUnmodifiedSince: past}, objectstore.CodePreconditionFailed},
		// RFC 9110: If-Match true wins over If-Unmodified-Since false;
		// If-None-Match false wins over If-Modified-Since.
		{"if-match beats if-unmodified-since", objectstore.GetOptions{IfMatch: info.ETag, IfUnmodifiedSince: past}, ""},
		{"if-none-match beats if-modified-since", objectstore.GetOptions{IfNoneMatch: `"nope"`, IfModifiedSince: future}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc, _, err := s.Get(ctx, b, "k", c.opts)
			WantCode(t, err, c.code)
			if rc != nil {
				rc.Close()
			}
			_, err = s.Head(ctx, b, "k", c.opts)
			WantCode(t, err, c.code)
		})
	}
}

func testGetErrors(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	Put(t, s, b, "k", "v", objectstore.PutOptions{})
	cases := []struct {
		name, bucket, key, version, code string
	}{
		{"no such bucket", "storetest-missing", "k", "", objectstore.CodeNoSuchBucket},
		{"no such key", b, "nothing", "", objectstore.CodeNoSuchKey},
		{"prefix is not a key", b, "k/", "", objectstore.CodeNoSuchKey},
		{"no such version", b, "k", "v-does-not-exist", objectstore.CodeNoSuchVersion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := s.Get(ctx, c.bucket, c.key, objectstore.GetOptions{VersionID: c.version})
			WantCode(t, err, c.code)
			_, err = s.Head(ctx, c.bucket, c.key, objectstore.GetOptions{VersionID: c.version})
			WantCode(t, err, c.code)
		})
	}
}

func testDelete(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	Put(t, s, b, "k", "v", objectstore.PutOptions{})
	res, err := s.Delete(ctx, b, "k", "")
	WantCode(t, err, "")
	if res.DeleteMarker {
		t.Fatalf("unversioned delete made a marker: %+v", res)
	}
	_, err = s.Head(ctx, b, "k", objectstore.GetOptions{})
	WantCode(t, err, objectstore.CodeNoSuchKey)
	_, err = s.Delete(ctx, b, "k", "") // deleting nothing succeeds
	WantCode(t, err, "")
	_, err = s.Delete(ctx, "storetest-missing", "k", "")
	WantCode(t, err, objectstore.CodeNoSuchBucket)
	l, err := s.List(ctx, b, objectstore.ListOptions{})
	WantCode(t, err, "")
	if len(l.Objects) != 0 {
		t.Fatalf("listing after delete: %+v", l.Objects)
	}
}

// HostileKeys are valid S3 keys that would escape or collide under a naive
// key-to-path mapping.
func HostileKeys() []string {
	return []string{
		"a", "a/b", "a/", "a//b", "/", "/leading", "//", "trailing/",
		".", "..", "./x", "../x", "a/../b", "a/./b", "../../../../etc/passwd", "..\\..\\windows",
		"a/b/../../../../../tmp/escape", "%2e%2e/x", "...", ".hidden", "a/.",
		"index.db", "staging", "data", "data/00/x", "LOCK", "CLEAN",
		"con", "nul", "aux.txt", "with space", "tab\there", "new\nline", "carriage\rreturn",
		"quote\"s", "star*?<>|:", "unicode/ünïcödé/日本語/🙂", "\u202eRTL", "\x7f",
		strings.Repeat("x", 1024),
		strings.Repeat("/", 1024),
		strings.Repeat("../", 341) + "x",
		strings.Repeat("日", 341) + "a", // 1,024 bytes
		strings.Repeat("a/", 512),
	}
}

func testHostileKeys(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	keys := PathKeys(capsOf(s), HostileKeys())
	for i, k := range keys {
		Put(t, s, b, k, fmt.Sprintf("body-%d", i), objectstore.PutOptions{})
	}
	for i, k := range keys {
		if body, info := Get(t, s, b, k, objectstore.GetOptions{}); body != fmt.Sprintf("body-%d", i) || info.Key != k {
			t.Fatalf("key %q: body %q info.Key %q", k, body, info.Key)
		}
	}
	want := slices.Clone(keys)
	sort.Strings(want)
	got := ListAll(t, s, b, objectstore.ListOptions{MaxKeys: 7})
	if !slices.Equal(got, want) {
		t.Fatalf("listing:\n got %q\nwant %q", got, want)
	}
	for _, k := range keys {
		if _, err := s.Delete(ctx, b, k, ""); err != nil {
			t.Fatalf("Delete %q: %v", k, err)
		}
	}
	if got := ListAll(t, s, b, objectstore.ListOptions{}); len(got) != 0 {
		t.Fatalf("left after delete: %q", got)
	}
}

// ListAll pages through a listing and returns keys and common prefixes in
// order (prefixes marked with a trailing "|CP").
func ListAll(t testing.TB, s objectstore.Store, b string, opts objectstore.ListOptions) []string {
	t.Helper()
	var out []string
	for page := 0; ; page++ {
		res, err := s.List(ctx, b, opts)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		n := len(res.Objects) + len(res.CommonPrefixes)
		if max := opts.MaxKeys; max > 0 && n > max {
			t.Fatalf("page of %d over max-keys %d", n, max)
		}
		out = append(out, mergePage(res)...)
		if !res.IsTruncated {
			return out
		}
		if n == 0 || page > 100000 {
			t.Fatalf("truncated page with nothing in it")
		}
		opts.After = res.NextAfter
	}
}

func mergePage(res objectstore.ListResult) []string {
	var out []string
	for _, o := range res.Objects {
		out = append(out, o.Key)
	}
	for _, p := range res.CommonPrefixes {
		out = append(out, p+"|CP")
	}
	sort.Slice(out, func(i, j int) bool { return strings.TrimSuffix(out[i], "|CP") < strings.TrimSuffix(out[j], "|CP") })
	return out
}

// ModelList is what listing keys must return (as ListAll shows it).
func ModelList(keys []string, prefix, delim, after string) []string {
	sorted := slices.Clone(keys)
	sort.Strings(sorted)
	var out []string
	seen := map[string]bool{}
	for _, k := range sorted {
		if !strings.HasPrefix(k, prefix) || k <= after {
			continue
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if cp > after && !seen[cp] {
					seen[cp] = true
					out = append(out, cp+"|CP")
				}
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

func testList(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	keys := []string{"a", "a/", "a/b", "a/b/c", "a/c", "ab", "b", "b/x", "photos/2024/jan.jpg", "photos/2024/feb.jpg",
		"photos/2025/mar.jpg", "photos/index.html", "z", "Z", "ü", "~", "a-b", "a.b", "a0"}
	keys = PathKeys(capsOf(s), keys)
	for _, k := range keys {
		Put(t, s, b, k, k, objectstore.PutOptions{})
	}
	cases := []struct {
		prefix, delim, after string
	}{
		{"", "", ""}, {"", "/", ""}, {"a", "", ""}, {"a/", "/", ""}, {"a/", "", ""},
		{"photos/", "/", ""}, {"photos/2024/", "/", ""}, {"", "/", "a/"}, {"", "/", "a"}, {"", "", "photos/2024/jan.jpg"},
		{"nothing", "", ""}, {"", "2", ""}, {"photos/", "/20", ""}, {"", "", "zzz"}, {"", "/", "photos/"},
	}
	for _, c := range cases {
		want := ModelList(keys, c.prefix, c.delim, c.after)
		for _, max := range []int{0, 1, 2, 3, 1000} {
			t.Run(fmt.Sprintf("p=%q/d=%q/a=%q/max=%d", c.prefix, c.delim, c.after, max), func(t *testing.T) {
				got := ListAll(t, s, b, objectstore.ListOptions{Prefix: c.prefix, Delimiter: c.delim, After: c.after, MaxKeys: max})
				if !slices.Equal(got, want) {
					t.Fatalf("\n got %q\nwant %q", got, want)
				}
			})
		}
	}
	res, err := s.List(ctx, b, objectstore.ListOptions{MaxKeys: 2})
	WantCode(t, err, "")
	if !res.IsTruncated || len(res.Objects) != 2 || res.NextAfter != res.Objects[1].Key {
		t.Fatalf("page = %+v", res)
	}
	if res.Objects[0].ETag != etagOf(res.Objects[0].Key) || res.Objects[0].Size != int64(len(res.Objects[0].Key)) {
		t.Fatalf("listed info = %+v", res.Objects[0])
	}
	_, err = s.List(ctx, "storetest-missing", objectstore.ListOptions{})
	WantCode(t, err, objectstore.CodeNoSuchBucket)
	_, err = s.List(ctx, b, objectstore.ListOptions{MaxKeys: -1})
	WantCode(t, err, objectstore.CodeInvalidArgument)
	// An exactly full last page is not truncated.
	res, err = s.List(ctx, b, objectstore.ListOptions{MaxKeys: len(keys)})
	WantCode(t, err, "")
	if res.IsTruncated || len(res.Objects) != len(keys) {
		t.Fatalf("full page: truncated=%v n=%d", res.IsTruncated, len(res.Objects))
	}
}

func testListPaging10k(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	rng := rand.New(rand.NewSource(1))
	seg := []string{"a", "b", "x", "ü", "é", "0", "~", "A", "日"}
	set := map[string]bool{}
	for len(set) < 10000 {
		var k strings.Builder
		for n := 1 + rng.Intn(4); n > 0; n-- {
			for m := 1 + rng.Intn(3); m > 0; m-- {
				k.WriteString(seg[rng.Intn(len(seg))])
			}
			if n > 1 || rng.Intn(8) == 0 {
				k.WriteByte('/')
			}
		}
		set[k.String()] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	keys = PathKeys(capsOf(s), keys)
	work := make(chan string)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if _, err := s.Put(ctx, b, k, strings.NewReader(""), 0, objectstore.PutOptions{}); err != nil {
					errs <- fmt.Errorf("Put %q: %w", k, err)
					for range work {
					}
					return
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cases := []struct {
		prefix, delim string
		max           int
	}{
		{"", "", 0}, {"", "", 999}, {"", "/", 0}, {"", "/", 7}, {"a", "/", 13}, {"a/", "/", 100},
		{"ü", "", 333}, {"x/a", "/", 50}, {"", "b", 250},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("p=%q/d=%q/max=%d", c.prefix, c.delim, c.max), func(t *testing.T) {
			want := ModelList(keys, c.prefix, c.delim, "")
			got := ListAll(t, s, b, objectstore.ListOptions{Prefix: c.prefix, Delimiter: c.delim, MaxKeys: c.max})
			if !slices.Equal(got, want) {
				t.Fatalf("%d entries, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Body makes n deterministic bytes from seed without holding them.
func Body(seed int64, n int64) io.Reader {
	return io.LimitReader(rand.New(rand.NewSource(seed)), n)
}

// BodyMD5 is the ETag of Body(seed, n).
func BodyMD5(seed, n int64) string {
	h := md5.New()
	io.Copy(h, Body(seed, n))
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}

func testStreaming(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	const n = 24 << 20
	info, err := s.Put(ctx, b, "big", Body(7, n), n, objectstore.PutOptions{})
	WantCode(t, err, "")
	if info.ETag != BodyMD5(7, n) || info.Size != n {
		t.Fatalf("info = %+v", info)
	}
	rc, _, err := s.Get(ctx, b, "big", objectstore.GetOptions{})
	WantCode(t, err, "")
	h := md5.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if got := `"` + hex.EncodeToString(h.Sum(nil)) + `"`; got != info.ETag {
		t.Fatalf("read back %s, want %s", got, info.ETag)
	}
	r := objectstore.Range{Start: n - 10, End: n + 10}
	rc, _, err = s.Get(ctx, b, "big", objectstore.GetOptions{Range: &r})
	WantCode(t, err, "")
	tail, _ := io.ReadAll(rc)
	rc.Close()
	var want bytes.Buffer
	io.Copy(&want, Body(7, n))
	if !bytes.Equal(tail, want.Bytes()[n-10:]) {
		t.Fatalf("tail mismatch")
	}
}

func testConcurrent(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	const size = 256 << 10
	const writers, rounds = 4, 6
	bodyFor := func(c byte) string { return strings.Repeat(string(c), size) }
	Put(t, s, b, "k", bodyFor('@'), objectstore.PutOptions{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c := byte('A' + w*rounds + r)
				if _, err := s.Put(ctx, b, "k", strings.NewReader(bodyFor(c)), size, objectstore.PutOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var rwg sync.WaitGroup
	for range 3 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rc, info, err := s.Get(ctx, b, "k", objectstore.GetOptions{})
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					errs <- err
					return
				}
				if len(got) != size || strings.Count(string(got), string(got[0])) != size {
					errs <- fmt.Errorf("mixed or short body (%d bytes)", len(got))
					return
				}
				if etagOf(string(got)) != info.ETag && !capsOf(s).TornReads {
					errs <- fmt.Errorf("body of %c does not match ETag %s", got[0], info.ETag)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	body, info := Get(t, s, b, "k", objectstore.GetOptions{})
	if etagOf(body) != info.ETag || len(body) != size {
		t.Fatalf("final object inconsistent")
	}
}
