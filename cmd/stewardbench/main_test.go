package main

import (
	"bytes"
	"io"
	"maps"
	"slices"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4096", 4096, true}, {"4KiB", 4096, true}, {"32MiB", 32 << 20, true}, {"10GiB", 10 << 30, true},
		{"0", 0, true}, {"-1", 0, false}, {"MiB", 0, false}, {"4kb", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSize(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

// The generated body of a part starting at off, made from the rotated
// block, is the whole object's body at off; the checker accepts exactly
// that body and seeking back replays it.
func TestPatternPartsMatchWhole(t *testing.T) {
	block := []byte("0123456789abcdef")
	const size, partSize = 100, 24
	whole, _ := io.ReadAll(&pattern{block: block, size: size})
	if len(whole) != size {
		t.Fatalf("whole: %d bytes", len(whole))
	}
	var joined []byte
	for off := int64(0); off < size; off += partSize {
		p := &pattern{block: rotate(block, off), size: min(partSize, size-off)}
		first, _ := io.ReadAll(p)
		p.Seek(0, io.SeekStart)
		again, _ := io.ReadAll(p)
		if !bytes.Equal(first, again) {
			t.Fatalf("part at %d differs after seeking back", off)
		}
		joined = append(joined, first...)
	}
	if !bytes.Equal(joined, whole) {
		t.Fatalf("parts do not join to the whole body")
	}
	for _, tc := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"same", whole, true},
		{"one byte changed", append(append([]byte(nil), whole[:50]...), append([]byte{'X'}, whole[51:]...)...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &checker{p: pattern{block: block, size: size}}
			// Odd write sizes, as io.Copy might produce.
			for b := tc.body; len(b) > 0; b = b[min(7, len(b)):] {
				c.Write(b[:min(7, len(b))])
			}
			if c.bad == tc.ok {
				t.Errorf("checker bad = %v, want ok %v", c.bad, tc.ok)
			}
		})
	}
}

func TestStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
	}{
		{"plain", "1234 (steward) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 40 0 0 20 0 8 0 100 0 0", 290 * clockTick},
		{"spaces and parens in the name", "99 (a (b) c) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0", 10 * clockTick},
		{"truncated", "99 (x) R 1 2", 0},
		{"no name", "garbage", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statCPU(tc.stat); got != tc.want {
				t.Errorf("statCPU = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseServers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"steward,versitygw,minio,forward", []string{"forward", "minio", "steward", "versitygw"}, true},
		{" forward ", []string{"forward"}, true},
		{"forward,,steward", []string{"forward", "steward"}, true},
		{"", nil, false},
		{"ceph", nil, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseServers(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("parseServers(%q) error %v, want ok %v", tc.in, err, tc.ok)
			}
			keys := slices.Sorted(maps.Keys(got))
			if !slices.Equal(keys, tc.want) {
				t.Errorf("parseServers(%q) = %v, want %v", tc.in, keys, tc.want)
			}
		})
	}
}
