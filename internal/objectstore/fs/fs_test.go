package fs_test

import (
	"context"
	"crypto/md5"
	"database/sql"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/fs"
	"github.com/stewardhq/steward/internal/objectstore/storetest"
)

var ctx = context.Background()

// open opens a durable store in dir, closed at the end of the test.
func open(t testing.TB, dir string) *fs.Store {
	t.Helper()
	s, err := fs.Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the shared suite on the store as deployed.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) objectstore.Store { return open(t, t.TempDir()) })
}

func TestCRC64NVMEVector(t *testing.T) {
	// CRC-64/NVME check value (reveng catalogue).
	if got := fs.CRC64NVMEOf([]byte("123456789")); got != 0xae8b14860a799888 {
		t.Fatalf("CRC-64/NVME(123456789) = %#x, want 0xae8b14860a799888", got)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := fs.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.NewBucket(t, s)
	if err := s.SetVersioning(ctx, b, objectstore.VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	opts := objectstore.PutOptions{ContentType: "text/csv", Metadata: map[string]string{"owner": "ann"}, Tags: map[string]string{"class": "C2"},
		Checksums: map[string]string{"SHA256": "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="}} // sha256("hello")
	v1 := storetest.Put(t, s, b, "a/../b", "hello", opts)
	u, err := s.CreateMultipart(ctx, b, "mp", objectstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UploadPart(ctx, b, "mp", u.UploadID, 1, strings.NewReader("part"), 4, objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	body, info := storetest.Get(t, s, b, "a/../b", objectstore.GetOptions{})
	if body != "hello" || info.ETag != v1.ETag || info.VersionID != v1.VersionID || info.ContentType != "text/csv" ||
		info.Metadata["owner"] != "ann" || info.Tags["class"] != "C2" || info.Checksums["SHA256"] != opts.Checksums["SHA256"] {
		t.Fatalf("after reopen: %q %+v", body, info)
	}
	bi, err := s.HeadBucket(ctx, b)
	if err != nil || bi.Versioning != objectstore.VersioningEnabled {
		t.Fatalf("bucket after reopen: %+v %v", bi, err)
	}
	parts, _, err := s.ListParts(ctx, b, "mp", u.UploadID, 0, 0)
	if err != nil || len(parts) != 1 {
		t.Fatalf("parts after reopen: %+v %v", parts, err)
	}
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	if s, err := fs.Open(dir, nil); err == nil {
		s.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestDeleteBucketAbortsUploads(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	b := storetest.NewBucket(t, s)
	u, _ := s.CreateMultipart(ctx, b, "k", objectstore.PutOptions{})
	if _, err := s.UploadPart(ctx, b, "k", u.UploadID, 1, strings.NewReader("part"), 4, objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBucket(ctx, b); err != nil {
		t.Fatalf("DeleteBucket with an upload in progress: %v", err)
	}
	if n := len(dataFiles(t, dir)); n != 0 {
		t.Fatalf("%d data files left after DeleteBucket", n)
	}
	if err := s.CreateBucket(ctx, b); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.ListParts(ctx, b, "k", u.UploadID, 0, 0)
	storetest.WantCode(t, err, objectstore.CodeNoSuchUpload)
}

// dataFiles lists the files under dir/data.
func dataFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d iofs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestRemovedFilesAndOrphans(t *testing.T) {
	dir := t.TempDir()
	s, err := fs.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.NewBucket(t, s)
	// Bodies over InlineMax, so that each has a data file.
	one, two := big("one"), big("two")
	storetest.Put(t, s, b, "k", one, objectstore.PutOptions{})
	storetest.Put(t, s, b, "k", two, objectstore.PutOptions{}) // replaces: old file removed
	storetest.Put(t, s, b, "gone", big("x"), objectstore.PutOptions{})
	if _, err := s.Delete(ctx, b, "gone", ""); err != nil {
		t.Fatal(err)
	}
	if n := len(dataFiles(t, dir)); n != 1 {
		t.Fatalf("%d data files, want 1", n)
	}
	s.Close()
	// Simulate a crash: debris in staging and an unreferenced data file,
	// and no clean-shutdown mark.
	os.Remove(filepath.Join(dir, "CLEAN"))
	os.WriteFile(filepath.Join(dir, "staging", "put-123"), []byte("partial"), 0o600)
	orphan := filepath.Join(dir, "data", "ab", "ab00000000000000000000000000000f")
	os.WriteFile(orphan, []byte("orphan"), 0o600)
	s = open(t, dir)
	if ents, _ := os.ReadDir(filepath.Join(dir, "staging")); len(ents) != 0 {
		t.Fatalf("staging not cleaned: %d entries", len(ents))
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan not removed: %v", err)
	}
	if body, _ := storetest.Get(t, s, b, "k", objectstore.GetOptions{}); body != two {
		t.Fatalf("k = %.20q...", body)
	}
}

// big returns a body of InlineMax+1 bytes or more starting with s.
func big(s string) string { return s + strings.Repeat(".", fs.InlineMax) }

// snapshot records every path under root except skip, with size and
// modification time.
func snapshot(t testing.TB, root, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p == skip {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err == nil {
			out[p] = info.Mode().String() + info.ModTime().String() + string(rune(info.Size()))
		}
		return nil
	})
	return out
}

// TestHostileKeysStayInside checks that no key creates, changes or reads a
// file outside the store directory.
func TestHostileKeysStayInside(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	for _, p := range []string{"etc/passwd", "b", "x", "escape", "tmp/escape"} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o700)
		os.WriteFile(filepath.Join(root, p), []byte("outside"), 0o600)
	}
	s := open(t, dir)
	b := storetest.NewBucket(t, s)
	before := snapshot(t, root, dir)
	keys := storetest.HostileKeys()
	for _, k := range keys {
		// Reads of keys naming outside files find nothing.
		if _, err := s.Head(ctx, b, k, objectstore.GetOptions{}); err == nil {
			t.Fatalf("Head %q found an object before any was written", k)
		}
	}
	for i, k := range keys {
		storetest.Put(t, s, b, k, strings.Repeat("z", i), objectstore.PutOptions{})
		u, err := s.CreateMultipart(ctx, b, k, objectstore.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UploadPart(ctx, b, k, u.UploadID, 1, strings.NewReader("p"), 1, objectstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	after := snapshot(t, root, dir)
	if len(before) != len(after) {
		t.Fatalf("files outside the store changed: before %v after %v", keysOf(before), keysOf(after))
	}
	for p, v := range before {
		if after[p] != v {
			t.Fatalf("%s changed", p)
		}
	}
	for _, p := range []string{"etc/passwd", "escape", "tmp/escape"} {
		if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != "outside" {
			t.Fatalf("%s overwritten", p)
		}
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestGetRetriesAfterReplace(t *testing.T) {
	// A reader that looked a key up just before a writer replaced it and
	// removed the old file still gets a complete body (the old or new one).
	s := open(t, t.TempDir())
	b := storetest.NewBucket(t, s)
	storetest.Put(t, s, b, "k", "old", objectstore.PutOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			storetest.Put(t, s, b, "k", strings.Repeat("n", i%7+1), objectstore.PutOptions{})
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		rc, info, err := s.Get(ctx, b, "k", objectstore.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || int64(len(body)) != info.Size {
			t.Fatalf("body %q (err %v) for size %d", body, err, info.Size)
		}
	}
}

func TestListIsOrderedByBytes(t *testing.T) {
	s := open(t, t.TempDir())
	b := storetest.NewBucket(t, s)
	keys := []string{"\u00e9", "e", "E", "\U0001F600", "\uFFFD", "z", "~", "\u007f", "a\u0001", "a"}
	for _, k := range keys {
		storetest.Put(t, s, b, k, "", objectstore.PutOptions{})
	}
	res, err := s.List(ctx, b, objectstore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range res.Objects {
		got = append(got, o.Key)
	}
	want := slices.Clone(keys)
	sort.Strings(want) // Go compares strings bytewise: UTF-8 binary order
	if !slices.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

// TestBeforeCommit checks the hook a caller uses to finish its own work
// (the gateway's decision audit record) before a write becomes visible:
// it runs once, after the whole body is stored, and its error aborts the
// write with nothing visible and no file left.
func TestBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	b := storetest.NewBucket(t, s)
	old := big("old")
	storetest.Put(t, s, b, "k", old, objectstore.PutOptions{})

	t.Run("error aborts", func(t *testing.T) {
		hookErr := errors.New("audit trail is down")
		calls := 0
		nb := big("new")
		_, err := s.Put(ctx, b, "k", strings.NewReader(nb), int64(len(nb)), objectstore.PutOptions{BeforeCommit: func() error {
			calls++
			return hookErr
		}})
		if !errors.Is(err, hookErr) {
			t.Fatalf("Put = %v, want the hook's error", err)
		}
		if calls != 1 {
			t.Fatalf("hook called %d times", calls)
		}
		if body, _ := storetest.Get(t, s, b, "k", objectstore.GetOptions{}); body != old {
			t.Fatalf("k = %.20q... after an aborted write", body)
		}
		if n := len(dataFiles(t, dir)); n != 1 {
			t.Fatalf("%d data files after an aborted write, want 1", n)
		}
	})
	t.Run("runs after the body", func(t *testing.T) {
		r := &countingReader{r: strings.NewReader("newer")}
		var seen int
		if _, err := s.Put(ctx, b, "k", r, 5, objectstore.PutOptions{BeforeCommit: func() error {
			seen = r.n
			return nil
		}}); err != nil {
			t.Fatal(err)
		}
		if seen != 5 {
			t.Fatalf("hook ran after %d of 5 body bytes", seen)
		}
		if body, _ := storetest.Get(t, s, b, "k", objectstore.GetOptions{}); body != "newer" {
			t.Fatalf("k = %q", body)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestCloseDuringWrite checks that a store closed while a write is
// streaming is not marked clean (the write's file is not referenced yet),
// so the next Open removes what the write left.
func TestCloseDuringWrite(t *testing.T) {
	dir := t.TempDir()
	s, err := fs.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.NewBucket(t, s)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, b, "k", pr, 4*fs.InlineMax, objectstore.PutOptions{})
		done <- err
	}()
	// Past InlineMax the write has its file; the second write returns once
	// the first is consumed.
	half := make([]byte, fs.InlineMax+1)
	for range 2 {
		if _, err := pw.Write(half); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(dataFiles(t, dir)); n != 1 {
		t.Fatalf("%d data files while writing, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "CLEAN")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("store marked clean with a write in flight (%v)", err)
	}
	// Leave the file behind as a crash would: the writer never finishes.
	s2 := open(t, dir)
	if n := len(dataFiles(t, dir)); n != 0 {
		t.Fatalf("%d data files after reopening, want 0 (orphan removed)", n)
	}
	if _, err := s2.Head(ctx, b, "k", objectstore.GetOptions{}); err == nil {
		t.Fatal("the interrupted write is visible")
	}
	pw.CloseWithError(errors.New("client went away"))
	if err := <-done; err == nil {
		t.Fatal("the write interrupted by Close succeeded")
	}
}

// TestInlineObjects checks objects at and around InlineMax, with known and
// unknown sizes and ranges: the small ones are kept in the index (no data
// file), the others in files, and every byte reads back.
func TestInlineObjects(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	b := storetest.NewBucket(t, s)
	for _, n := range []int{1, 4096, fs.InlineMax, fs.InlineMax + 1, 3 * fs.InlineMax} {
		for _, sized := range []bool{true, false} {
			body := strings.Repeat("0123456789abcdef", n/16+1)[:n]
			key := fmt.Sprintf("k%d-%v", n, sized)
			size := int64(n)
			if !sized {
				size = -1
			}
			info, err := s.Put(ctx, b, key, strings.NewReader(body), size, objectstore.PutOptions{})
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if want := fmt.Sprintf(`"%x"`, md5.Sum([]byte(body))); info.ETag != want || info.Size != int64(n) {
				t.Fatalf("%s: %+v, want ETag %s", key, info, want)
			}
			if got, _ := storetest.Get(t, s, b, key, objectstore.GetOptions{}); got != body {
				t.Fatalf("%s: read back %d bytes, want %d", key, len(got), n)
			}
			rng := &objectstore.Range{Start: int64(n / 2), End: int64(n - 1)}
			if got, _ := storetest.Get(t, s, b, key, objectstore.GetOptions{Range: rng}); got != body[n/2:] {
				t.Fatalf("%s: range read %q", key, got)
			}
			path, etag, err := s.LocalFile(ctx, b, key)
			if err != nil || etag != info.ETag || (path == "") != (n <= fs.InlineMax) {
				t.Fatalf("%s: LocalFile = %q, %s, %v", key, path, etag, err)
			}
		}
	}
	// Two of the five sizes have files, each with and without a size.
	if files := dataFiles(t, dir); len(files) != 4 {
		t.Fatalf("%d data files, want 4", len(files))
	}
	// A short body is refused and leaves nothing.
	_, err := s.Put(ctx, b, "short", strings.NewReader("abc"), 10, objectstore.PutOptions{})
	storetest.WantCode(t, err, objectstore.CodeIncompleteBody)
	_, err = s.Head(ctx, b, "short", objectstore.GetOptions{})
	storetest.WantCode(t, err, objectstore.CodeNoSuchKey)
}

// TestIndexWithoutInlineColumn opens a store whose index predates inline
// objects: the column is added and old and new objects read back.
func TestIndexWithoutInlineColumn(t *testing.T) {
	dir := t.TempDir()
	s, err := fs.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.NewBucket(t, s)
	old := big("old")
	storetest.Put(t, s, b, "old", old, objectstore.PutOptions{})
	s.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ALTER TABLE versions DROP COLUMN data`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = open(t, dir)
	storetest.Put(t, s, b, "new", "small", objectstore.PutOptions{})
	if got, _ := storetest.Get(t, s, b, "old", objectstore.GetOptions{}); got != old {
		t.Fatal("old object lost")
	}
	if got, _ := storetest.Get(t, s, b, "new", objectstore.GetOptions{}); got != "small" {
		t.Fatalf("new = %q", got)
	}
}
