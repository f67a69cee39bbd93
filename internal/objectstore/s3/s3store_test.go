package s3store_test

import (
	"context"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	s3store "github.com/stewardhq/steward/internal/objectstore/s3"
	"github.com/stewardhq/steward/internal/objectstore/storetest"
	"github.com/stewardhq/steward/internal/testutil/s3upstream"
)

func TestMain(m *testing.M) { s3upstream.Main(m) }

func newStore(t testing.TB, prefix string) *s3store.Store {
	t.Helper()
	endpoint, access, secret := s3upstream.Start(t)
	s, err := s3store.New(context.Background(), s3store.Config{
		Endpoint: endpoint, AccessKey: access, SecretKey: steward.Secret(secret), PathStyle: true, BucketPrefix: prefix,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunWith(t, func(t *testing.T) objectstore.Store { return newStore(t, "") }, versitygw)
}

// versitygw's posix backend keeps objects as files; it differs from S3
// where storetest.Capabilities documents.
var versitygw = storetest.Capabilities{PathKeys: true, NoNullVersionID: true, NoMarkerForMissingKey: true, LaxUploadIDs: true}
