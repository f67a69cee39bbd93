package fs

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/objectstore"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := open(t.TempDir(), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateBucket(context.Background(), "bkt"); err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *Store, key, body string) {
	t.Helper()
	if _, err := s.Put(context.Background(), "bkt", key, strings.NewReader(body), int64(len(body)), objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s *Store, key string) (string, error) {
	t.Helper()
	rc, _, err := s.Get(context.Background(), "bkt", key, objectstore.GetOptions{})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// Every kind of write to a cached key is seen by the next read.
func TestRowCacheFollowsWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	big := strings.Repeat("x", InlineMax+1) // kept in a data file, not inline
	for _, body := range []string{"one", big} {
		t.Run(strconv.Itoa(len(body)), func(t *testing.T) {
			put(t, s, "k", body)
			if r, ok := s.cache.get(cacheKey("bkt", "k")); !ok || r.size != int64(len(body)) {
				t.Fatalf("a committed write is not in the cache (%v, %d bytes)", ok, r.size)
			}
			for range 2 { // served by the cache
				if got, err := get(t, s, "k"); err != nil || got != body {
					t.Fatalf("get = %.20q, %v; want %.20q", got, err, body)
				}
			}
			if _, ok := s.cache.get(cacheKey("bkt", "k")); !ok {
				t.Fatal("a read did not fill the cache")
			}
			put(t, s, "k", body+"2")
			if got, _ := get(t, s, "k"); got != body+"2" {
				t.Fatalf("after overwrite: %.20q", got)
			}
			if err := s.PutTags(ctx, "bkt", "k", "", map[string]string{"class": "C3"}); err != nil {
				t.Fatal(err)
			}
			info, err := s.Head(ctx, "bkt", "k", objectstore.GetOptions{})
			if err != nil || info.Tags["class"] != "C3" {
				t.Fatalf("after tagging: %v, %v", info.Tags, err)
			}
			if _, err := s.Delete(ctx, "bkt", "k", ""); err != nil {
				t.Fatal(err)
			}
			if _, err := get(t, s, "k"); err == nil {
				t.Fatal("a deleted key still reads")
			}
		})
	}
	t.Run("multipart", func(t *testing.T) {
		put(t, s, "dst", "old")
		if got, _ := get(t, s, "dst"); got != "old" {
			t.Fatal(got)
		}
		up, err := s.CreateMultipart(ctx, "bkt", "dst", objectstore.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.UploadPart(ctx, "bkt", "dst", up.UploadID, 1, strings.NewReader("parts"), 5, objectstore.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteMultipart(ctx, "bkt", "dst", up.UploadID, []objectstore.CompletePart{{Number: 1, ETag: p.ETag}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := get(t, s, "dst"); got != "parts" {
			t.Fatalf("after multipart: %q", got)
		}
	})
}

// A write, once acknowledged, is what every later read sees, while
// readers keep filling the cache around it.
func TestRowCacheNeverServesAnAcknowledgedOverwrite(t *testing.T) {
	s := openTest(t)
	put(t, s, "k", "0")
	var acked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := acked.Load()
				rc, _, err := s.Get(context.Background(), "bkt", "k", objectstore.GetOptions{})
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				v, _ := strconv.ParseInt(string(b), 10, 64)
				if v < floor || v < last {
					errs <- fmt.Errorf("read %d after %d was acknowledged and %d was read", v, floor, last)
					return
				}
				last = v
			}
		}()
	}
	for i := int64(1); i <= 300; i++ {
		put(t, s, "k", strconv.FormatInt(i, 10))
		acked.Store(i)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestRowCacheIsBounded(t *testing.T) {
	c := newRowCache(64 << 10)
	for i := range 1000 {
		k := cacheKey("bkt", strconv.Itoa(i))
		c.put(k, row{key: strconv.Itoa(i), data: make([]byte, 1000)}, c.snapshot())
		if c.rows.Cost() > c.max {
			t.Fatalf("cache holds %d bytes, bound %d", c.rows.Cost(), c.max)
		}
	}
	if c.rows.Len() == 0 || c.rows.Len() > 64 {
		t.Fatalf("%d rows cached", c.rows.Len())
	}
	// A fill quoting a generation older than a write is refused.
	g := c.snapshot()
	c.begin([]string{"x"})
	c.end([]string{"x"}, nil)
	c.put("y", row{}, g)
	if _, ok := c.get("y"); ok {
		t.Fatal("a stale fill was cached")
	}
	// A key being written is neither served nor filled.
	c.put("z", row{etag: "1"}, c.snapshot())
	c.begin([]string{"z"})
	if _, ok := c.get("z"); ok {
		t.Fatal("a key being written was served from the cache")
	}
	c.put("z", row{etag: "2"}, c.snapshot())
	c.end([]string{"z"}, nil)
	if _, ok := c.get("z"); ok {
		t.Fatal("a key was filled while being written")
	}
}

// The checkpointer, not a commit, copies the WAL into the database file.
func TestCheckpointerCopiesTheWAL(t *testing.T) {
	s := openTest(t)
	db := s.dir + "/index.db"
	st0, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("y", 4096)
	n := 2 * int(s.ckptEvery.Load())
	for i := range n {
		put(t, s, "k"+strconv.Itoa(i), body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() >= st0.Size()+int64(n/2)*4096 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("index.db is %d bytes after %d objects (was %d): nothing was checkpointed", st.Size(), n, st0.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A write that follows a versioning change sees it, even when the
// committer batches it with other writes (the versioning memo).
func TestVersioningChangeSeenByTheNextWriteInABatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 { // keep batches full
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.Put(ctx, "bkt", fmt.Sprintf("bg/%d/%d", w, i), strings.NewReader("x"), 1, objectstore.PutOptions{})
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for i := range 40 {
		want := objectstore.VersioningEnabled
		if i%2 == 1 {
			want = objectstore.VersioningSuspended
		}
		if err := s.SetVersioning(ctx, "bkt", want); err != nil {
			t.Fatal(err)
		}
		info, err := s.Put(ctx, "bkt", "k", strings.NewReader("v"), 1, objectstore.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := info.VersionID != "null"; got != (want == objectstore.VersioningEnabled) {
			t.Fatalf("round %d: versioning %s, the next PUT got version %q", i, want, info.VersionID)
		}
	}
}

// A write waiting for its BeforeCommit (the gateway's audit record) does
// not hold up the writes queued after it.
func TestWaitingWriteDoesNotBlockOthers(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	release := make(chan struct{})
	slow := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, "bkt", "slow", strings.NewReader("a"), 1, objectstore.PutOptions{BeforeCommit: func() error {
			<-release
			return nil
		}})
		slow <- err
	}()
	for i := range 20 {
		put(t, s, "fast"+strconv.Itoa(i), "b") // would hang behind the slow write
	}
	select {
	case err := <-slow:
		t.Fatalf("the slow write finished before its BeforeCommit returned: %v", err)
	default:
	}
	if _, err := get(t, s, "slow"); err == nil {
		t.Fatal("the slow write is visible before its BeforeCommit returned")
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, s, "slow"); err != nil || got != "a" {
		t.Fatalf("after BeforeCommit: %q, %v", got, err)
	}
}
