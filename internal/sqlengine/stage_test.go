package sqlengine

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/fs"
)

func openFS(t *testing.T) *fs.Store {
	t.Helper()
	st, err := fs.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateBucket(context.Background(), "lake"); err != nil {
		t.Fatal(err)
	}
	return st
}

func put(t *testing.T, st objectstore.Store, key, body string) objectstore.ObjectInfo {
	t.Helper()
	info, err := st.Put(context.Background(), "lake", key, strings.NewReader(body), int64(len(body)), objectstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestStageLinksLocalFiles: on the embedded store the query directory gets
// hard links (same inode as the store's file), not copies, and an
// overwrite of the object while the query runs leaves its input as it was.
func TestStageLinksLocalFiles(t *testing.T) {
	ctx := context.Background()
	st := openFS(t)
	// a and b are over fs.InlineMax (files of their own), c is inline.
	a1, a2, b2 := "x\n"+strings.Repeat("1\n", fs.InlineMax), "x\n"+strings.Repeat("9\n", fs.InlineMax), "x\n"+strings.Repeat("2\n", fs.InlineMax)
	put(t, st, "t/a.csv", a1)
	put(t, st, "t/d=2/b.csv", b2)
	put(t, st, "t/c.csv", "x\n3\n")
	put(t, st, "t/empty.csv", "")
	put(t, st, "t/_tmp.csv", "ignored")
	dir := t.TempDir()
	tbl := &Table{Name: "a.b.c", Bucket: "lake", Prefix: "t", Format: "csv"}
	files, err := stage(ctx, st, nil, tbl, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("files %v", files)
	}
	for _, f := range files {
		if !strings.HasPrefix(f, filepath.Join(dir, "t0")+"/") {
			t.Errorf("%s outside the query directory", f)
		}
	}
	src, _, err := st.LocalFile(ctx, "lake", "t/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	a, b := stat(t, src), stat(t, files[0])
	if a.Ino != b.Ino || b.Nlink < 2 {
		t.Fatalf("not a hard link: inode %d vs %d, links %d", a.Ino, b.Ino, b.Nlink)
	}
	if got, err := os.ReadFile(files[1]); err != nil || string(got) != "x\n3\n" {
		t.Fatalf("inline object: %q %v", got, err)
	}
	if fi, err := os.Stat(files[3]); err != nil || fi.Size() != 0 {
		t.Fatalf("empty object: %v %v", fi, err)
	}
	// Overwrite and delete while "the query runs": the staged input holds.
	put(t, st, "t/a.csv", a2)
	if _, err := st.Delete(ctx, "lake", "t/d=2/b.csv", ""); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{files[0]: a1, files[2]: b2} {
		got, err := os.ReadFile(f)
		if err != nil || string(got) != want {
			t.Errorf("%s: %.20q %v, want %.20q", f, got, err, want)
		}
	}
	// The new version is a different file.
	src2, _, err := st.LocalFile(ctx, "lake", "t/a.csv")
	if err != nil || src2 == src {
		t.Fatalf("overwrite reused the file: %s %v", src2, err)
	}
}

func stat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// readerOnly hides the LocalFiler capability: a remote store.
type readerOnly struct {
	ObjectReader
	gets int
	fail bool
}

func (r *readerOnly) Get(ctx context.Context, bucket, key string, opts objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error) {
	r.gets++
	body, info, err := r.ObjectReader.Get(ctx, bucket, key, opts)
	if err == nil && r.fail {
		return io.NopCloser(io.MultiReader(io.LimitReader(body, 1), errReader{})), info, nil
	}
	return body, info, err
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestStageCopiesWithoutCapability(t *testing.T) {
	st := openFS(t)
	put(t, st, "t/a.csv", "x\n1\n")
	files, err := stage(context.Background(), &readerOnly{ObjectReader: st}, nil, &Table{Name: "a.b.c", Bucket: "lake", Prefix: "t", Format: "csv"}, t.TempDir(), 0)
	if err != nil || len(files) != 1 {
		t.Fatal(files, err)
	}
	if got, _ := os.ReadFile(files[0]); !bytes.Equal(got, []byte("x\n1\n")) {
		t.Fatalf("%q", got)
	}
}

// TestStageAcrossFileSystems: when the query directory is on another file
// system than the store (no hard link possible), staging copies.
func TestStageAcrossFileSystems(t *testing.T) {
	st := openFS(t)
	body := "x\n" + strings.Repeat("1\n", fs.InlineMax) // over InlineMax: a file of its own
	put(t, st, "t/a.csv", body)
	other, err := os.MkdirTemp("/dev/shm", "stage-test-")
	if err != nil {
		t.Skipf("no second file system: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	src, _, err := st.LocalFile(context.Background(), "lake", "t/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	if stat(t, src).Dev == stat(t, other).Dev {
		t.Skip("/dev/shm is on the store's file system here")
	}
	files, err := stage(context.Background(), st, nil, &Table{Name: "a.b.c", Bucket: "lake", Prefix: "t", Format: "csv"}, other, 0)
	if err != nil || len(files) != 1 {
		t.Fatal(files, err)
	}
	if got, _ := os.ReadFile(files[0]); string(got) != body {
		t.Fatalf("%.20q...", got)
	}
}
