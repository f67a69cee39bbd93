package fs

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
)

// A part whose data file no longer holds what its record says (a disk
// or an operator damaged it) fails the completion: the kernel copy must
// not assemble a short object and call it done.
func TestCompleteMultipartRefusesADamagedPart(t *testing.T) {
	ctx := context.Background()
	s, err := open(t.TempDir(), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	up, err := s.CreateMultipart(ctx, "bkt", "k", objectstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var done []objectstore.CompletePart
	for n, body := range [][]byte{bytes.Repeat([]byte("a"), MinPartSize), []byte("tail")} {
		p, err := s.UploadPart(ctx, "bkt", "k", up.UploadID, n+1, bytes.NewReader(body), int64(len(body)), objectstore.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, objectstore.CompletePart{Number: n + 1, ETag: p.ETag})
	}
	stored, err := s.parts(ctx, s.db, up.UploadID, 0, 10)
	if err != nil || len(stored) != 2 || stored[0].file == "" {
		t.Fatalf("parts %+v, %v", stored, err)
	}
	if err := os.Truncate(s.dataPath(stored[0].file), 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteMultipart(ctx, "bkt", "k", up.UploadID, done); err == nil {
		t.Fatal("completed with a part file shorter than its record")
	}
	if _, err := s.Head(ctx, "bkt", "k", objectstore.GetOptions{}); err == nil {
		t.Fatal("an object is visible after a failed completion")
	}
}
