package s3store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/storetest"
)

// TestDotSegmentKeysStayInTheirBucket: a key whose segments are "." or
// ".." could be resolved by an upstream that treats keys as paths, and
// land outside the bucket (and the resource) the gateway authorized.
// Forward mode refuses such keys before anything is sent.
func TestDotSegmentKeysStayInTheirBucket(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "")
	home := storetest.NewBucket(t, s)
	victim := storetest.NewBucket(t, s)
	for _, k := range []string{"x/../../" + victim + "/planted", "../" + victim + "/planted", "./a", "a/./b", "a/..", "..", "."} {
		_, err := s.Put(ctx, home, k, strings.NewReader("evil"), 4, objectstore.PutOptions{})
		storetest.WantCode(t, err, objectstore.CodeInvalidArgument)
		// Reads answer as for any key that cannot exist here.
		_, _, err = s.Get(ctx, home, k, objectstore.GetOptions{})
		storetest.WantCode(t, err, objectstore.CodeNoSuchKey)
	}
	if got := storetest.ListAll(t, s, victim, objectstore.ListOptions{}); len(got) != 0 {
		t.Fatalf("the victim bucket holds %q", got)
	}
	// Dots inside a segment are ordinary characters.
	storetest.Put(t, s, home, "a..b/.hidden/x.", "ok", objectstore.PutOptions{})
}
