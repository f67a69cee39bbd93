package sqlengine

import (
	"cmp"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// DefaultCacheMaxBytes bounds a Cache when no size is configured.
const DefaultCacheMaxBytes int64 = 10 << 30

// Cache keeps local copies of remote objects (forward mode: objects in an
// upstream S3) for queries to read, keyed by bucket, key and ETag, bounded
// in size, evicting the least recently used entry first.
//
// An entry is filled by streaming a GET (If-Match the listed ETag) into a
// temporary file that is renamed into place when complete, so a failed or
// canceled fetch leaves nothing behind. Concurrent requests for the same
// entry fetch it once. A query gets a hard link to the entry in its own
// directory, so eviction never pulls a file from under a running query.
// An object whose ETag changed is a different entry: a stale one is never
// served, and is dropped when its successor arrives.
//
// Entry files are named by the SHA-256 of bucket, key and ETag, so a
// restarted process adopts the entries it finds (oldest modification
// first in the LRU order).
type Cache struct {
	dir string
	max int64
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*list.Element // entry name -> element (*cacheEntry)
	current map[string]string        // bucket\x00key -> entry name of the newest ETag seen
	lru     list.List                // front: most recently used
	size    int64
	flights map[string]*flight
}

type cacheEntry struct {
	name string
	obj  string // bucket\x00key; "" for an adopted entry
	size int64
}

type flight struct {
	done chan struct{}
	err  error
}

// OpenCache opens (creating it if needed) the cache in dir, holding at
// most maxBytes (DefaultCacheMaxBytes if <= 0). dir must be on the same
// file system as the query staging directory, or every use copies.
func OpenCache(dir string, maxBytes int64, log *slog.Logger) (*Cache, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheMaxBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, steward.WrapError(steward.EInternal, "sqlengine.OpenCache", err, "cannot create the SQL cache")
	}
	c := &Cache{dir: dir, max: maxBytes, log: log, entries: map[string]*list.Element{}, current: map[string]string{}, flights: map[string]*flight{}}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "sqlengine.OpenCache", err, "cannot read the SQL cache")
	}
	type found struct {
		name  string
		size  int64
		mtime int64
	}
	var fs []found
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		fi, err := de.Info()
		if err != nil || !de.Type().IsRegular() || !isEntryName(de.Name()) {
			os.RemoveAll(p) // a fill interrupted by a crash, or a stranger
			continue
		}
		fs = append(fs, found{de.Name(), fi.Size(), fi.ModTime().UnixNano()})
	}
	slices.SortFunc(fs, func(a, b found) int { return cmp.Compare(b.mtime, a.mtime) })
	for _, f := range fs {
		c.entries[f.name] = c.lru.PushBack(&cacheEntry{name: f.name, size: f.size})
		c.size += f.size
	}
	c.mu.Lock()
	c.evict()
	c.mu.Unlock()
	return c, nil
}

func isEntryName(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func entryName(bucket, key, etag string) string {
	h := sha256.Sum256([]byte(bucket + "\x00" + key + "\x00" + etag))
	return hex.EncodeToString(h[:])
}

// Size returns the bytes the cache holds.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Link makes dst a hard link to the cached copy of the object o (as List
// described it: Bucket, Key, ETag), fetching it through objs first if the
// cache does not hold it. Errors: EUnavailable if the object cannot be
// read (or changed since it was listed), EInternal for local failures.
func (c *Cache) Link(ctx context.Context, objs ObjectReader, o objectstore.ObjectInfo, dst string) error {
	name := entryName(o.Bucket, o.Key, o.ETag)
	obj := o.Bucket + "\x00" + o.Key
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		if el, ok := c.entries[name]; ok {
			c.lru.MoveToFront(el)
			err := os.Link(filepath.Join(c.dir, name), dst)
			c.mu.Unlock()
			if err != nil {
				if errors.Is(err, os.ErrNotExist) && attempt < 3 {
					c.drop(name) // removed behind our back: fetch again
					continue
				}
				return c.copyOut(name, dst, err)
			}
			return nil
		}
		f, ok := c.flights[name]
		if !ok {
			f = &flight{done: make(chan struct{})}
			c.flights[name] = f
			c.mu.Unlock()
			f.err = c.fill(ctx, objs, o, name, obj)
			c.mu.Lock()
			delete(c.flights, name)
			c.mu.Unlock()
			close(f.done)
		} else {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if f.err != nil {
			// The filler's own cancellation is not ours: try again.
			if ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) && attempt < 3 {
				continue
			}
			return f.err
		}
		if attempt >= 3 {
			return steward.Errorf(steward.EInternal, "SQL cache entry vanished")
		}
	}
}

// copyOut copies an entry when it cannot be linked (another file system).
func (c *Cache) copyOut(name, dst string, linkErr error) error {
	if !errors.Is(linkErr, os.ErrExist) {
		in, err := os.Open(filepath.Join(c.dir, name))
		if err == nil {
			defer in.Close()
			out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err == nil {
				_, err = io.Copy(out, in)
				if cerr := out.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					return nil
				}
				os.Remove(dst)
			}
			linkErr = err
		}
	}
	return steward.WrapError(steward.EInternal, "sqlengine.cache", linkErr, "cannot stage data")
}

// fill fetches o into the entry name.
func (c *Cache) fill(ctx context.Context, objs ObjectReader, o objectstore.ObjectInfo, name, obj string) error {
	body, info, err := objs.Get(ctx, o.Bucket, o.Key, objectstore.GetOptions{IfMatch: o.ETag})
	if err != nil {
		return steward.WrapError(steward.EUnavailable, "sqlengine.cache", err, "cannot read table data")
	}
	defer body.Close()
	if info.ETag != "" && o.ETag != "" && info.ETag != o.ETag {
		return steward.Errorf(steward.EUnavailable, "table data changed while it was read; run the query again")
	}
	tmp, err := os.CreateTemp(c.dir, ".fill-*")
	if err != nil {
		return steward.WrapError(steward.EInternal, "sqlengine.cache", err, "cannot stage data")
	}
	n, err := io.Copy(tmp, body)
	if err == nil && o.Size > 0 && n != o.Size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(c.dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return steward.WrapError(steward.EUnavailable, "sqlengine.cache", err, "cannot read table data")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.current[obj]; ok && old != name {
		c.dropLocked(old) // the object changed: its old ETag will not be asked for again
	}
	c.current[obj] = name
	if el, ok := c.entries[name]; ok { // the rename replaced an entry we knew
		c.size -= el.Value.(*cacheEntry).size
		c.lru.Remove(el)
	}
	c.entries[name] = c.lru.PushFront(&cacheEntry{name: name, obj: obj, size: n})
	c.size += n
	c.evict()
	return nil
}

// evict removes least recently used entries until the cache fits, keeping
// the most recent one even if it alone is too big (it is linked by the
// query that asked for it right after the fill). c.mu is held.
func (c *Cache) evict() {
	for c.size > c.max && c.lru.Len() > 1 {
		c.dropLocked(c.lru.Back().Value.(*cacheEntry).name)
	}
}

func (c *Cache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(name)
}

func (c *Cache) dropLocked(name string) {
	el, ok := c.entries[name]
	if !ok {
		return
	}
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, name)
	c.size -= e.size
	if e.obj != "" && c.current[e.obj] == name {
		delete(c.current, e.obj)
	}
	if err := os.Remove(filepath.Join(c.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("cannot remove SQL cache entry", "err", err)
	}
}
