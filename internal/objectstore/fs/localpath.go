package fs

import (
	"context"
	"errors"
	"os"

	"github.com/stewardhq/steward/internal/objectstore"
)

// LocalFile returns the local path of the data file that holds the latest
// version of bucket/key, and that version's ETag, so that a reader on the
// same machine (the SQL engine) can hard-link the bytes instead of copying
// them. The path is "" for an object without a data file of its own: an
// empty object, or one of at most InlineMax bytes kept in the index; read
// those with Get.
//
// The file is never written in place: every version is written to a new
// file, complete and durable before any index row names it, and a replaced or deleted
// version's file is unlinked, never truncated. A hard link made to the
// returned path therefore keeps exactly this version's bytes for as long as
// the link exists, whatever happens to the key. The caller must not write to
// the file or its links. The file may be unlinked between this call and the
// caller's link (the key was overwritten meanwhile); the caller then gets
// ENOENT and asks again.
//
// Errors are those of Head: NoSuchBucket, NoSuchKey (also for a delete
// marker).
func (s *Store) LocalFile(ctx context.Context, bucket, key string) (path, etag string, err error) {
	for attempt := 0; ; attempt++ {
		r, info, err := s.head(ctx, bucket, key, objectstore.GetOptions{}, false)
		if err != nil {
			return "", "", err
		}
		if r.file == "" {
			return "", info.ETag, nil
		}
		p := s.dataPath(r.file)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) && attempt < 10 {
			continue // replaced between the lookup and now: look again
		}
		return p, info.ETag, nil
	}
}
