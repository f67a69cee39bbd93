package fs_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/fs"
	"github.com/stewardhq/steward/internal/objectstore/storetest"
)

func fuzzStore(f *testing.F) (root string, s *fs.Store, bucket string) {
	root = f.TempDir()
	s, err := fs.OpenNoSync(filepath.Join(root, "store"), slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	return root, s, storetest.NewBucket(f, s)
}

// FuzzKey puts, reads, lists and deletes arbitrary keys: a valid key
// round-trips exactly, an invalid one is refused, and nothing appears
// outside the store directory.
func FuzzKey(f *testing.F) {
	for _, k := range storetest.HostileKeys() {
		f.Add(k)
	}
	for _, k := range []string{"", "\x00", "a\x00b", "\xff\xfe", "\xc0\xaf", "ok\xed\xa0\x80", strings.Repeat("é", 512), strings.Repeat("é", 513)} {
		f.Add(k)
	}
	root, s, b := fuzzStore(f)
	f.Fuzz(func(t *testing.T, key string) {
		if len(key) > 1100 {
			return
		}
		_, err := s.Put(ctx, b, key, strings.NewReader(key), int64(len(key)), objectstore.PutOptions{})
		valid := key != "" && len(key) <= 1024 && utf8.ValidString(key) && !strings.ContainsRune(key, 0)
		if ents, _ := os.ReadDir(root); len(ents) != 1 || ents[0].Name() != "store" {
			t.Fatalf("something was created beside the store: %v", ents)
		}
		if !valid {
			if err == nil {
				t.Fatalf("invalid key %q accepted", key)
			}
			if _, err := s.Head(ctx, b, key, objectstore.GetOptions{}); err == nil {
				t.Fatalf("invalid key %q readable", key)
			}
			return
		}
		if err != nil {
			t.Fatalf("Put %q: %v", key, err)
		}
		rc, info, err := s.Get(ctx, b, key, objectstore.GetOptions{})
		if err != nil {
			t.Fatalf("Get %q: %v", key, err)
		}
		body, _ := io.ReadAll(rc)
		rc.Close()
		if string(body) != key || info.Key != key {
			t.Fatalf("round trip of %q gave %q (info key %q)", key, body, info.Key)
		}
		res, err := s.List(ctx, b, objectstore.ListOptions{Prefix: key, MaxKeys: 1})
		if err != nil || len(res.Objects) != 1 || res.Objects[0].Key != key {
			t.Fatalf("List prefix %q: %+v %v", key, res, err)
		}
		if res, err := s.List(ctx, b, objectstore.ListOptions{After: key, Prefix: key}); err != nil || len(res.Objects) != 0 {
			t.Fatalf("List after %q: %+v %v", key, res, err)
		}
		if _, err := s.Delete(ctx, b, key, ""); err != nil {
			t.Fatalf("Delete %q: %v", key, err)
		}
		if _, err := s.Head(ctx, b, key, objectstore.GetOptions{}); err == nil {
			t.Fatalf("%q still there after Delete", key)
		}
	})
}

// FuzzList checks listing with arbitrary prefix, delimiter, start and page
// size against a sorted model.
func FuzzList(f *testing.F) {
	keys := append(storetest.HostileKeys(), "a/b/c", "a/bc", "a/b/", "ab/c", "é/x", "é", "e/x", "日/本", "日本/x", "~", "a-b/c", "a.b")
	f.Add("", "/", "", 2)
	f.Add("a", "/", "a/", 1)
	f.Add("a/", "b", "", 3)
	f.Add("", "", "..", 5)
	f.Add("é", "x", "", 0)
	f.Add("", "日", "", 1)
	f.Add("", "//", "/", 4)
	_, s, b := fuzzStore(f)
	for _, k := range keys {
		storetest.Put(f, s, b, k, "", objectstore.PutOptions{})
	}
	f.Fuzz(func(t *testing.T, prefix, delim, after string, max int) {
		if max < 0 || max > 50 || len(prefix) > 1100 || len(delim) > 1100 || len(after) > 1100 {
			return
		}
		if max == 0 {
			max = 1
		}
		want := storetest.ModelList(keys, prefix, delim, after)
		got := storetest.ListAll(t, s, b, objectstore.ListOptions{Prefix: prefix, Delimiter: delim, After: after, MaxKeys: max})
		if !slices.Equal(got, want) {
			t.Fatalf("List(prefix %q, delim %q, after %q, max %d):\n got %q\nwant %q", prefix, delim, after, max, got, want)
		}
	})
}
