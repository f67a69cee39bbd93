// Package bounded provides maps with a bound on their number of entries
// and on the total cost (approximate bytes) of what they hold: the caches
// of hot paths (the fs store's index rows, STS's verified sessions and
// access keys), where a least-recently-used list would cost more than the
// hits it saves. When a new entry does not fit, random entries make room:
// under a flood of new keys the ones already cached are displaced in no
// predictable order, and the bound holds whatever is put.
//
// Table is the bare structure, for a caller that already holds a lock of
// its own over the table and more state (the fs store's row cache keeps
// its write coherence marks beside it); Map is a Table behind an
// RWMutex, safe for concurrent use.
package bounded

import (
	"iter"
	"sync"
)

// Options bound a Table or Map.
type Options[K comparable, V any] struct {
	// MaxEntries is the most entries held; zero or less holds nothing.
	MaxEntries int
	// MaxCost bounds the sum of the entries' costs. It applies only
	// when Cost is set.
	MaxCost int64
	// MaxEntryCost, when positive, is the largest cost of an entry that
	// is kept (an entry is never kept if it costs more than MaxCost).
	MaxEntryCost int64
	// Cost returns what an entry holds, in bytes or any unit of
	// MaxCost; it must not be negative and must return the same for the
	// same key and value. Nil means entries cost nothing.
	Cost func(K, V) int64
	// CloneKey, when set, copies a key before it is stored, so that a
	// key that shares a caller's buffer (a substring of a request
	// header) does not keep that buffer alive: strings.Clone for
	// string keys.
	CloneKey func(K) K
}

type entry[V any] struct {
	v    V
	cost int64
}

// Table is a bounded map. It is not safe for concurrent use; see Map.
// The zero Table holds nothing; use NewTable.
type Table[K comparable, V any] struct {
	opts    Options[K, V]
	maxCost int64 // the largest cost of one entry
	m       map[K]entry[V]
	cost    int64
}

// NewTable returns an empty table bounded by o.
func NewTable[K comparable, V any](o Options[K, V]) *Table[K, V] {
	t := &Table[K, V]{opts: o, m: map[K]entry[V]{}, maxCost: o.MaxCost}
	if o.MaxEntryCost > 0 && o.MaxEntryCost < t.maxCost {
		t.maxCost = o.MaxEntryCost
	}
	return t
}

// Get returns the value of k.
func (t *Table[K, V]) Get(k K) (V, bool) {
	e, ok := t.m[k]
	return e.v, ok
}

// Put maps k to v, evicting random entries until it fits, and reports
// whether v was kept. A value that can never fit (it costs more than the
// largest entry cost, or MaxEntries is zero) is not kept, and k's old
// value, if any, is dropped: after a Put, k never maps to an older value.
func (t *Table[K, V]) Put(k K, v V) bool {
	return t.put(k, v, t.costOf(k, v))
}

func (t *Table[K, V]) costOf(k K, v V) int64 {
	if t.opts.Cost == nil {
		return 0
	}
	return t.opts.Cost(k, v)
}

func (t *Table[K, V]) put(k K, v V, cost int64) bool {
	t.Remove(k)
	if t.opts.MaxEntries <= 0 || (t.opts.Cost != nil && cost > t.maxCost) {
		return false
	}
	// Map iteration starts at a random place: the first entries are
	// random victims.
	for ek, e := range t.m {
		if len(t.m) < t.opts.MaxEntries && (t.opts.Cost == nil || t.cost+cost <= t.opts.MaxCost) {
			break
		}
		delete(t.m, ek)
		t.cost -= e.cost
	}
	if t.opts.CloneKey != nil {
		k = t.opts.CloneKey(k)
	}
	t.m[k] = entry[V]{v: v, cost: cost}
	t.cost += cost
	return true
}

// Remove drops k and reports whether it was there.
func (t *Table[K, V]) Remove(k K) bool {
	e, ok := t.m[k]
	if ok {
		delete(t.m, k)
		t.cost -= e.cost
	}
	return ok
}

// Len returns the number of entries.
func (t *Table[K, V]) Len() int { return len(t.m) }

// Cost returns the sum of the entries' costs.
func (t *Table[K, V]) Cost() int64 { return t.cost }

// Clear drops every entry.
func (t *Table[K, V]) Clear() {
	clear(t.m)
	t.cost = 0
}

// All yields the entries in no particular order. The table must not be
// changed during the iteration.
func (t *Table[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for k, e := range t.m {
			if !yield(k, e.v) {
				return
			}
		}
	}
}

// Map is a Table safe for concurrent use: reads share a read lock.
type Map[K comparable, V any] struct {
	mu sync.RWMutex
	t  *Table[K, V]
}

// New returns an empty map bounded by o.
func New[K comparable, V any](o Options[K, V]) *Map[K, V] {
	return &Map[K, V]{t: NewTable(o)}
}

// Get returns the value of k.
func (m *Map[K, V]) Get(k K) (V, bool) {
	m.mu.RLock()
	e, ok := m.t.m[k] // not t.Get: small enough to inline
	m.mu.RUnlock()
	return e.v, ok
}

// Put maps k to v as Table.Put does. The cost is computed before the
// lock is taken.
func (m *Map[K, V]) Put(k K, v V) bool {
	cost := m.t.costOf(k, v)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t.put(k, v, cost)
}

// Remove drops k and reports whether it was there.
func (m *Map[K, V]) Remove(k K) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t.Remove(k)
}

// Len returns the number of entries.
func (m *Map[K, V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.t.Len()
}

// Cost returns the sum of the entries' costs.
func (m *Map[K, V]) Cost() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.t.Cost()
}

// All yields the entries in no particular order, holding the read lock:
// yield must not change m.
func (m *Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		m.mu.RLock()
		defer m.mu.RUnlock()
		m.t.All()(yield)
	}
}

// CompareAndRemove drops k if it still maps to old (a value compared
// with ==), and reports whether it did: a caller that found old stale
// does not drop a newer value another caller put meanwhile.
func CompareAndRemove[K, V comparable](m *Map[K, V], k K, old V) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.t.m[k]; ok && e.v == old {
		return m.t.Remove(k)
	}
	return false
}
