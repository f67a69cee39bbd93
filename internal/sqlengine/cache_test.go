package sqlengine

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
)

// countingReader counts GETs and can hold them until released.
type countingReader struct {
	ObjectReader
	gets atomic.Int64
	gate chan struct{} // if set, each Get waits for it to be closed
	fail atomic.Bool   // bodies break after one byte
}

func (r *countingReader) Get(ctx context.Context, bucket, key string, opts objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error) {
	r.gets.Add(1)
	if r.gate != nil {
		<-r.gate
	}
	body, info, err := r.ObjectReader.Get(ctx, bucket, key, opts)
	if err == nil && r.fail.Load() {
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(io.LimitReader(body, 1), errReader{}), body}, info, nil
	}
	return body, info, err
}

func listed(t *testing.T, st objectstore.Store, key string) objectstore.ObjectInfo {
	t.Helper()
	res, err := st.List(context.Background(), "lake", objectstore.ListOptions{Prefix: key})
	if err != nil || len(res.Objects) != 1 {
		t.Fatalf("list %s: %v %v", key, res.Objects, err)
	}
	return res.Objects[0]
}

func openCache(t *testing.T, max int64) (*Cache, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := OpenCache(dir, max, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func link(t *testing.T, c *Cache, objs ObjectReader, o objectstore.ObjectInfo) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "f")
	if err := c.Link(context.Background(), objs, o, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, de := range des {
		n = append(n, de.Name())
	}
	return n
}

func readAll(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCache(t *testing.T) {
	t.Run("hit", func(t *testing.T) {
		st := openFS(t)
		put(t, st, "a", "aaaa")
		r := &countingReader{ObjectReader: st}
		c, _ := openCache(t, 100)
		o := listed(t, st, "a")
		for range 3 {
			if got := readAll(t, link(t, c, r, o)); got != "aaaa" {
				t.Fatalf("%q", got)
			}
		}
		if r.gets.Load() != 1 || c.Size() != 4 {
			t.Fatalf("gets %d size %d", r.gets.Load(), c.Size())
		}
	})
	t.Run("eviction is least recently used first", func(t *testing.T) {
		st := openFS(t)
		for _, k := range []string{"a", "b", "c", "d"} {
			put(t, st, k, strings.Repeat(k, 10))
		}
		r := &countingReader{ObjectReader: st}
		c, dir := openCache(t, 30)
		a, b, cc, d := listed(t, st, "a"), listed(t, st, "b"), listed(t, st, "c"), listed(t, st, "d")
		held := link(t, c, r, a)
		link(t, c, r, b)
		link(t, c, r, cc)
		link(t, c, r, a) // a is now the most recent; b the least
		link(t, c, r, d) // 40 bytes > 30: b goes
		if c.Size() != 30 || len(entries(t, dir)) != 3 {
			t.Fatalf("size %d entries %v", c.Size(), entries(t, dir))
		}
		before := r.gets.Load()
		link(t, c, r, a)
		link(t, c, r, cc)
		link(t, c, r, d)
		if r.gets.Load() != before {
			t.Fatalf("a, c, d should be cached")
		}
		link(t, c, r, b)
		if r.gets.Load() != before+1 {
			t.Fatalf("b should have been evicted")
		}
		// A link held by a running query survives eviction of its entry.
		link(t, c, r, b)
		link(t, c, r, cc)
		link(t, c, r, d)
		if got := readAll(t, held); got != strings.Repeat("a", 10) {
			t.Fatalf("held link: %q", got)
		}
	})
	t.Run("a changed ETag is never served stale", func(t *testing.T) {
		st := openFS(t)
		put(t, st, "a", "old")
		r := &countingReader{ObjectReader: st}
		c, dir := openCache(t, 100)
		o1 := listed(t, st, "a")
		if got := readAll(t, link(t, c, r, o1)); got != "old" {
			t.Fatal(got)
		}
		put(t, st, "a", "new!")
		o2 := listed(t, st, "a")
		if got := readAll(t, link(t, c, r, o2)); got != "new!" {
			t.Fatal(got)
		}
		if n := entries(t, dir); len(n) != 1 || c.Size() != 4 {
			t.Fatalf("old entry kept: %v, size %d", n, c.Size())
		}
		// A listing older than the object (ETag o1) does not get new bytes
		// under the old ETag: the GET is conditional.
		if err := c.Link(context.Background(), r, o1, filepath.Join(t.TempDir(), "f")); err == nil {
			t.Fatal("stale ETag served")
		}
	})
	t.Run("concurrent requests fetch once", func(t *testing.T) {
		st := openFS(t)
		put(t, st, "a", strings.Repeat("x", 1000))
		r := &countingReader{ObjectReader: st, gate: make(chan struct{})}
		c, _ := openCache(t, 1<<20)
		o := listed(t, st, "a")
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		var started sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			started.Add(1)
			dst := filepath.Join(t.TempDir(), "f"+string(rune('0'+i)))
			go func() {
				defer wg.Done()
				started.Done()
				errs <- c.Link(context.Background(), r, o, dst)
			}()
		}
		started.Wait()
		close(r.gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// Goroutines that arrived after the fill finished hit the entry;
		// those that arrived during it waited for it: one GET either way.
		if r.gets.Load() != 1 {
			t.Fatalf("%d GETs", r.gets.Load())
		}
	})
	t.Run("a failed fetch leaves nothing", func(t *testing.T) {
		st := openFS(t)
		put(t, st, "a", "abcdef")
		r := &countingReader{ObjectReader: st}
		r.fail.Store(true)
		c, dir := openCache(t, 100)
		o := listed(t, st, "a")
		dst := filepath.Join(t.TempDir(), "f")
		if err := c.Link(context.Background(), r, o, dst); err == nil {
			t.Fatal("no error")
		}
		if n := entries(t, dir); len(n) != 0 || c.Size() != 0 {
			t.Fatalf("left %v, size %d", n, c.Size())
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Fatalf("dst: %v", err)
		}
		r.fail.Store(false)
		if got := readAll(t, link(t, c, r, o)); got != "abcdef" {
			t.Fatal(got)
		}
	})
	t.Run("reopen adopts entries and drops partial fills", func(t *testing.T) {
		st := openFS(t)
		put(t, st, "a", "abc")
		r := &countingReader{ObjectReader: st}
		c, dir := openCache(t, 100)
		o := listed(t, st, "a")
		link(t, c, r, o)
		os.WriteFile(filepath.Join(dir, ".fill-123"), []byte("partial"), 0o600)
		c2, err := OpenCache(dir, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c2.Size() != 3 || len(entries(t, dir)) != 1 {
			t.Fatalf("size %d entries %v", c2.Size(), entries(t, dir))
		}
		link(t, c2, r, o)
		if r.gets.Load() != 1 {
			t.Fatalf("%d GETs", r.gets.Load())
		}
	})
}

// TestStageThroughCache: a store without local files stages through the
// cache, and a second query does not fetch again.
func TestStageThroughCache(t *testing.T) {
	st := openFS(t)
	put(t, st, "t/a.csv", "x\n1\n")
	r := &countingReader{ObjectReader: st}
	c, _ := openCache(t, 1<<20)
	tbl := &Table{Name: "a.b.c", Bucket: "lake", Prefix: "t", Format: "csv"}
	for range 2 {
		files, err := stage(context.Background(), r, c, tbl, t.TempDir(), 0)
		if err != nil || len(files) != 1 || readAll(t, files[0]) != "x\n1\n" {
			t.Fatal(files, err)
		}
	}
	if r.gets.Load() != 1 {
		t.Fatalf("%d GETs", r.gets.Load())
	}
}
