package fs

import (
	"math"
	"sync"

	"github.com/stewardhq/steward/internal/bounded"
)

// rowCache keeps the latest version's index row (with an inline object's
// bytes) of recently read keys, so that a GET or HEAD of a hot key does
// not run a SQLite query: modernc's SQLite is pure Go, and the lookup was
// the largest single item of a small GET's CPU profile.
//
// The store is the only writer of its index (one process holds the
// directory's lock), so the cache is coherent if every write of a key's
// versions goes through writeTxFor: before its transaction commits, the
// key is marked pending (readers bypass the cache for it and may not fill
// it) and its entry dropped; after the commit, the mark is removed. A
// reader fills the cache only if no write committed since its lookup
// began (gen), so a row read before a commit is never cached after it.
// Readers therefore see exactly what SQLite shows them: nothing older
// than the last acknowledged write, and no new value before its commit.
//
// The rows are a bounded.Table under the cache's own lock, so that the
// pending marks and the generation change atomically with them; it
// evicts random rows when full and refuses a row larger than a
// sixteenth of the bound.
type rowCache struct {
	mu      sync.RWMutex
	gen     uint64
	rows    *bounded.Table[string, *row]
	pending map[string]int
	max     int64
}

// defaultCacheBytes bounds the cache: rows and inline bytes together.
const defaultCacheBytes = 16 << 20

func newRowCache(max int64) *rowCache {
	rows := bounded.NewTable(bounded.Options[string, *row]{
		MaxEntries: math.MaxInt, MaxCost: max, MaxEntryCost: max / 16, Cost: rowCost,
	})
	return &rowCache{rows: rows, pending: map[string]int{}, max: max}
}

func cacheKey(bucket, key string) string { return bucket + "\x00" + key }

// rowCost approximates the memory an entry holds.
func rowCost(k string, r *row) int64 {
	return int64(len(k) + len(r.key) + len(r.versionID) + len(r.etag) + len(r.contentType) + len(r.meta) +
		len(r.checksums) + len(r.tags) + len(r.file) + len(r.data) + 160)
}

// snapshot returns the generation a reader must quote to fill the cache.
func (c *rowCache) snapshot() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// get returns the cached latest row of k. The row's data is shared: the
// caller must not modify it.
func (c *rowCache) get(k string) (row, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.pending[k] > 0 {
		return row{}, false
	}
	r, ok := c.rows.Get(k)
	if !ok {
		return row{}, false
	}
	return *r, true
}

// put caches r as k's latest row if no write committed since gen.
func (c *rowCache) put(k string, r row, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.pending[k] > 0 {
		return
	}
	c.insertLocked(k, r)
}

func (c *rowCache) insertLocked(k string, r row) {
	c.rows.Put(k, &r)
}

// begin marks keys as being written: their entries go, and until end
// nobody reads or fills them from the cache.
func (c *rowCache) begin(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range keys {
		c.pending[k]++
		c.dropLocked(k)
	}
}

// end is begin's counterpart, after the commit (or rollback): rows are
// the committed latest rows of keys written in the batch, cached now.
func (c *rowCache) end(keys []string, rows map[string]row) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range keys {
		c.dropLocked(k)
		if c.pending[k]--; c.pending[k] <= 0 {
			delete(c.pending, k)
		}
	}
	for k, r := range rows {
		if c.pending[k] == 0 {
			c.insertLocked(k, r)
		}
	}
}

func (c *rowCache) dropLocked(k string) {
	c.rows.Remove(k)
}

// purge empties the cache (a write whose keys are not known one by one).
func (c *rowCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.rows.Clear()
}
