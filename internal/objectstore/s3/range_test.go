package s3store

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
)

// model is the bytes a range selects from data, or false for
// InvalidRange.
func model(data string, r objectstore.Range) (string, bool) {
	size := int64(len(data))
	start, end := r.Start, r.End
	if start < 0 {
		start = max(size+start, 0)
		end = size - 1
	}
	if start >= size || end < start {
		return "", false
	}
	return data[start : min(end, size-1)+1], true
}

// FuzzApplyRange checks the fallback for upstreams that ignore Range
// against the model; it also parses Content-Range totals.
func FuzzApplyRange(f *testing.F) {
	f.Add("0123456789", int64(0), int64(3), "bytes 0-3/10")
	f.Add("0123456789", int64(-3), int64(0), "bytes 7-9/10")
	f.Add("", int64(-1), int64(0), "bytes */0")
	f.Add("abc", int64(5), int64(9), "garbage")
	f.Fuzz(func(t *testing.T, data string, start, end int64, contentRange string) {
		if start >= 0 && end < start {
			return // the gateway never asks for this
		}
		r := objectstore.Range{Start: start, End: end}
		want, ok := model(data, r)
		rc, err := applyRange(io.NopCloser(strings.NewReader(data)), &r, int64(len(data)))
		if !ok {
			if err == nil {
				t.Fatalf("range %+v of %d bytes: want InvalidRange", r, len(data))
			}
			return
		}
		if err != nil {
			t.Fatalf("range %+v of %d bytes: %v", r, len(data), err)
		}
		got, _ := io.ReadAll(rc)
		if !bytes.Equal(got, []byte(want)) {
			t.Fatalf("range %+v: got %q want %q", r, got, want)
		}
		if n := totalSize(contentRange, 7); n < 0 && !strings.Contains(contentRange, "-") {
			t.Fatalf("totalSize(%q) = %d", contentRange, n)
		}
	})
}
