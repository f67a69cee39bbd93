package catalog

import (
	"context"
	"io"

	"github.com/stewardhq/steward/internal/objectstore"
)

// NotifyingStore is an objectstore.Store that tells a ChangeNotifier about
// every successful write and delete. Wrap the store handed to the S3
// gateway with it so that writes mark their datasets changed.
type NotifyingStore struct {
	objectstore.Store
	N ChangeNotifier
}

var _ objectstore.Store = NotifyingStore{}

func (s NotifyingStore) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts objectstore.PutOptions) (objectstore.ObjectInfo, error) {
	oi, err := s.Store.Put(ctx, bucket, key, body, size, opts)
	if err == nil {
		s.N.ObjectChanged(bucket, key)
	}
	return oi, err
}

func (s NotifyingStore) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []objectstore.CompletePart) (objectstore.ObjectInfo, error) {
	oi, err := s.Store.CompleteMultipart(ctx, bucket, key, uploadID, parts)
	if err == nil {
		s.N.ObjectChanged(bucket, key)
	}
	return oi, err
}

func (s NotifyingStore) Delete(ctx context.Context, bucket, key, versionID string) (objectstore.DeleteResult, error) {
	r, err := s.Store.Delete(ctx, bucket, key, versionID)
	if err == nil {
		s.N.ObjectChanged(bucket, key)
	}
	return r, err
}
