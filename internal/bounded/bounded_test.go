package bounded_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stewardhq/steward/internal/bounded"
)

// item is a value whose cost it carries, so that the checks can add up
// the costs of what a map holds.
type item struct {
	key  string
	cost int64
}

func itemCost(_ string, v *item) int64 { return v.cost }

// check asserts the bounds and that the cost counted is exactly the sum
// of the entries' costs.
func check(t *testing.T, m *bounded.Map[string, *item], o bounded.Options[string, *item], step string) {
	t.Helper()
	n, sum := 0, int64(0)
	for k, v := range m.All() {
		n++
		if o.Cost != nil {
			sum += o.Cost(k, v)
		}
		if v.key != k {
			t.Fatalf("%s: entry %q holds the value of %q", step, k, v.key)
		}
	}
	if n != m.Len() {
		t.Fatalf("%s: Len %d, %d entries", step, m.Len(), n)
	}
	if n > max(o.MaxEntries, 0) {
		t.Fatalf("%s: %d entries, bound %d", step, n, o.MaxEntries)
	}
	if sum != m.Cost() {
		t.Fatalf("%s: cost counted %d, entries hold %d", step, m.Cost(), sum)
	}
	if sum > o.MaxCost {
		t.Fatalf("%s: cost %d, bound %d", step, sum, o.MaxCost)
	}
}

func TestPutGetRemove(t *testing.T) {
	cases := []struct {
		name           string
		opts           bounded.Options[string, *item]
		puts           []item
		kept, dropped  []string // keys held / not held at the end
		wantLen        int
		wantCost       int64
		wantLastStored bool
	}{
		{
			name:    "fits",
			opts:    bounded.Options[string, *item]{MaxEntries: 4, MaxCost: 100, Cost: itemCost},
			puts:    []item{{"a", 10}, {"b", 20}, {"c", 30}},
			kept:    []string{"a", "b", "c"},
			wantLen: 3, wantCost: 60, wantLastStored: true,
		},
		{
			name:    "overwrite counts the new cost only",
			opts:    bounded.Options[string, *item]{MaxEntries: 4, MaxCost: 100, Cost: itemCost},
			puts:    []item{{"a", 10}, {"b", 20}, {"a", 50}},
			kept:    []string{"a", "b"},
			wantLen: 2, wantCost: 70, wantLastStored: true,
		},
		{
			name:    "overwrite of a full map evicts nothing when the cost is the same",
			opts:    bounded.Options[string, *item]{MaxEntries: 2, MaxCost: 20, Cost: itemCost},
			puts:    []item{{"a", 10}, {"b", 10}, {"a", 10}},
			kept:    []string{"a", "b"},
			wantLen: 2, wantCost: 20, wantLastStored: true,
		},
		{
			name:    "larger than the whole bound: not kept, old value dropped",
			opts:    bounded.Options[string, *item]{MaxEntries: 4, MaxCost: 100, Cost: itemCost},
			puts:    []item{{"a", 10}, {"b", 10}, {"a", 101}},
			kept:    []string{"b"},
			dropped: []string{"a"},
			wantLen: 1, wantCost: 10,
		},
		{
			name:    "larger than the entry bound",
			opts:    bounded.Options[string, *item]{MaxEntries: 4, MaxCost: 100, MaxEntryCost: 25, Cost: itemCost},
			puts:    []item{{"a", 25}, {"b", 26}},
			kept:    []string{"a"},
			dropped: []string{"b"},
			wantLen: 1, wantCost: 25,
		},
		{
			name:    "by entries",
			opts:    bounded.Options[string, *item]{MaxEntries: 2, MaxCost: 100, Cost: itemCost},
			puts:    []item{{"a", 1}, {"b", 1}, {"c", 1}},
			kept:    []string{"c"},
			wantLen: 2, wantCost: 2, wantLastStored: true,
		},
		{
			name:    "by cost",
			opts:    bounded.Options[string, *item]{MaxEntries: 10, MaxCost: 100, Cost: itemCost},
			puts:    []item{{"a", 40}, {"b", 40}, {"c", 90}},
			kept:    []string{"c"},
			dropped: []string{"a", "b"},
			wantLen: 1, wantCost: 90, wantLastStored: true,
		},
		{
			name:    "no cost function: entries only",
			opts:    bounded.Options[string, *item]{MaxEntries: 2},
			puts:    []item{{"a", 1000}, {"b", 1000}},
			kept:    []string{"a", "b"},
			wantLen: 2, wantCost: 0, wantLastStored: true,
		},
		{
			name:    "no room",
			opts:    bounded.Options[string, *item]{MaxEntries: 0, MaxCost: 100, Cost: itemCost},
			puts:    []item{{"a", 1}},
			dropped: []string{"a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := bounded.New(tc.opts)
			var stored bool
			for _, p := range tc.puts {
				stored = m.Put(p.key, &item{key: p.key, cost: p.cost})
			}
			if stored != tc.wantLastStored {
				t.Errorf("last Put reported %v", stored)
			}
			if tc.opts.Cost == nil {
				tc.opts.MaxCost = 1 << 62 // for check: no cost bound
			}
			check(t, m, tc.opts, "end")
			if m.Len() != tc.wantLen || m.Cost() != tc.wantCost {
				t.Errorf("%d entries costing %d, want %d costing %d", m.Len(), m.Cost(), tc.wantLen, tc.wantCost)
			}
			for _, k := range tc.kept {
				if v, ok := m.Get(k); !ok || v.key != k {
					t.Errorf("%q not held", k)
				}
			}
			for _, k := range tc.dropped {
				if _, ok := m.Get(k); ok {
					t.Errorf("%q held", k)
				}
			}
		})
	}
}

func TestCompareAndRemove(t *testing.T) {
	m := bounded.New(bounded.Options[string, *item]{MaxEntries: 4, MaxCost: 100, Cost: itemCost})
	v1 := &item{key: "k", cost: 7}
	m.Put("k", v1)
	if bounded.CompareAndRemove(m, "k", &item{key: "k", cost: 7}) {
		t.Fatal("removed though it maps to another value")
	}
	if v, ok := m.Get("k"); !ok || v != v1 {
		t.Fatal("the entry went")
	}
	if !bounded.CompareAndRemove(m, "k", v1) {
		t.Fatal("not removed though it maps to the value")
	}
	if _, ok := m.Get("k"); ok || m.Cost() != 0 || m.Len() != 0 {
		t.Fatalf("after removal: %d entries costing %d", m.Len(), m.Cost())
	}
	if bounded.CompareAndRemove(m, "k", v1) || m.Remove("k") {
		t.Fatal("removed a missing key")
	}
}

// A key is cloned when it is stored (a new key or an overwrite), so the
// caller's buffer is not kept; it is not cloned to look up.
func TestCloneKey(t *testing.T) {
	clones := 0
	m := bounded.New(bounded.Options[string, int]{MaxEntries: 4, CloneKey: func(k string) string {
		clones++
		return strings.Clone(k)
	}})
	header := "AKIAAAAAAAAAAAAAAAAA/20260101/us-east-1/s3/aws4_request"
	id := header[:20]
	m.Put(id, 1)
	m.Put(id, 2)
	m.Get(id)
	m.Remove("x")
	if clones != 2 {
		t.Fatalf("%d clones, want 2", clones)
	}
	for k := range m.All() {
		if k != id {
			t.Fatalf("stored %q", k)
		}
		if strings.Contains(k, "/") {
			t.Fatal("the key is not the caller's substring")
		}
	}
}

// Table, the bare structure, bounds the same way.
func TestTable(t *testing.T) {
	tb := bounded.NewTable(bounded.Options[int, int]{MaxEntries: 3, MaxCost: 10, Cost: func(_ int, v int) int64 { return int64(v) }})
	for i := range 100 {
		tb.Put(i, i%5)
		if tb.Len() > 3 || tb.Cost() > 10 {
			t.Fatalf("after %d: %d entries costing %d", i, tb.Len(), tb.Cost())
		}
		if v, ok := tb.Get(i); !ok || v != i%5 {
			t.Fatalf("%d not held after its Put", i)
		}
	}
}

// ops applies a program of operations to a map, checking the bounds and
// the cost accounting after each one. Each operation is 3 bytes: the
// operation, the key (one of 16) and the cost.
func ops(t *testing.T, o bounded.Options[string, *item], prog []byte) {
	t.Helper()
	m := bounded.New(o)
	for i := 0; i+3 <= len(prog); i += 3 {
		op, k, c := prog[i]%4, fmt.Sprintf("k%d", prog[i+1]%16), int64(prog[i+2])
		step := fmt.Sprintf("op %d (%d %s %d)", i/3, op, k, c)
		switch op {
		case 0, 1:
			v := &item{key: k, cost: c}
			stored := m.Put(k, v)
			got, ok := m.Get(k)
			if stored != (ok && got == v) {
				t.Fatalf("%s: Put reported %v, Get found %v", step, stored, ok && got == v)
			}
			if fits := o.MaxEntries > 0 && c <= o.MaxCost && (o.MaxEntryCost <= 0 || c <= o.MaxEntryCost); stored != fits {
				t.Fatalf("%s: stored %v, fits %v", step, stored, fits)
			}
			if !stored && ok {
				t.Fatalf("%s: an old value survived a Put", step)
			}
		case 2:
			m.Remove(k)
			if _, ok := m.Get(k); ok {
				t.Fatalf("%s: still there", step)
			}
		case 3:
			if v, ok := m.Get(k); ok {
				bounded.CompareAndRemove(m, k, &item{key: k})
				if _, ok := m.Get(k); !ok {
					t.Fatalf("%s: removed for another value", step)
				}
				bounded.CompareAndRemove(m, k, v)
				if _, ok := m.Get(k); ok {
					t.Fatalf("%s: not removed for its value", step)
				}
			}
		}
		check(t, m, o, step)
	}
}

func FuzzBounded(f *testing.F) {
	f.Add(uint8(4), uint16(300), uint16(0), []byte{0, 1, 100, 0, 2, 100, 0, 3, 100, 0, 4, 100, 0, 1, 200})
	f.Add(uint8(2), uint16(1000), uint16(50), []byte{1, 1, 10, 1, 1, 60, 0, 2, 10, 0, 3, 10, 2, 3, 0, 3, 2, 0})
	f.Add(uint8(0), uint16(100), uint16(0), []byte{0, 1, 1, 0, 2, 2})
	f.Add(uint8(16), uint16(0), uint16(0), []byte{0, 1, 0, 0, 2, 1, 3, 1, 0})
	f.Add(uint8(16), uint16(255), uint16(0), []byte("a long program of arbitrary bytes, each three an operation"))
	f.Fuzz(func(t *testing.T, maxEntries uint8, maxCost, maxEntryCost uint16, prog []byte) {
		ops(t, bounded.Options[string, *item]{MaxEntries: int(maxEntries % 20), MaxCost: int64(maxCost), MaxEntryCost: int64(maxEntryCost), Cost: itemCost}, prog)
	})
}

// Random programs: the bounds hold after every operation.
func TestBoundsUnderRandomPuts(t *testing.T) {
	seed := uint64(0x9e3779b97f4a7c15)
	next := func() uint64 { // xorshift: deterministic and reproducible
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return seed
	}
	for r := range 50 {
		prog := make([]byte, 3*500)
		for i := 0; i < len(prog); i += 8 {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], next())
			copy(prog[i:], b[:])
		}
		o := bounded.Options[string, *item]{MaxEntries: r % 12, MaxCost: int64(next() % 1200), Cost: itemCost}
		t.Run(fmt.Sprint(r), func(t *testing.T) { ops(t, o, prog) })
	}
}

// Concurrent use, for the race detector; the bounds hold at the end.
func TestConcurrent(t *testing.T) {
	o := bounded.Options[string, *item]{MaxEntries: 32, MaxCost: 2000, Cost: itemCost, CloneKey: strings.Clone}
	m := bounded.New(o)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := fmt.Sprintf("k%d", (i*7+g)%64)
				switch i % 5 {
				case 0, 1:
					m.Put(k, &item{key: k, cost: int64(i % 100)})
				case 2:
					if v, ok := m.Get(k); ok {
						bounded.CompareAndRemove(m, k, v)
					}
				case 3:
					m.Remove(k)
				default:
					if v, ok := m.Get(k); ok && v.key != k {
						t.Errorf("%q holds %q", k, v.key)
					}
					_, _ = m.Len(), m.Cost()
				}
			}
		}()
	}
	wg.Wait()
	check(t, m, o, "end")
}

// BenchmarkMap measures a hit, an overwrite and a put that evicts, on a
// full map of string keys:
//
//	go test ./internal/bounded/ -run '^$' -bench . -benchmem -count 6
func BenchmarkMap(b *testing.B) {
	const n = 4096
	keys := make([]string, 2*n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bucket\x00some/key/%d", i)
	}
	v := &item{cost: 100}
	newFull := func() *bounded.Map[string, *item] {
		m := bounded.New(bounded.Options[string, *item]{MaxEntries: n, MaxCost: n * 100, Cost: itemCost})
		for _, k := range keys[:n] {
			m.Put(k, v)
		}
		return m
	}
	b.Run("get", func(b *testing.B) {
		m := newFull()
		i := 0
		for b.Loop() {
			m.Get(keys[i%n])
			i++
		}
	})
	b.Run("get-parallel", func(b *testing.B) {
		m := newFull()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.Get(keys[i%n])
				i++
			}
		})
	})
	b.Run("overwrite", func(b *testing.B) {
		m := newFull()
		i := 0
		for b.Loop() {
			m.Put(keys[i%n], v)
			i++
		}
	})
	b.Run("evict", func(b *testing.B) {
		m := newFull()
		i := 0
		for b.Loop() {
			m.Put(keys[i%len(keys)], v)
			i++
		}
	})
}
