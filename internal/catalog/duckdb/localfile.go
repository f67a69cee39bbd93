package duckdb

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/stewardhq/steward/internal/objectstore"
)

// LocalFiler is an optional capability of the crawler's object store whose
// objects are files on this machine (the embedded fs store): the crawler
// then hard-links those files into its directory and DuckDB reads the
// stored bytes in place, instead of a copy streamed through Get.
type LocalFiler interface {
	// LocalFile returns the path of a local file holding the latest
	// version of bucket/key and that version's ETag; "" for an object
	// without a file of its own (empty, or small and kept inline), which
	// the caller reads with Get. The file is never modified in place (a
	// new version is a new file), so a hard link to it is an immutable
	// snapshot. It may vanish between the call and the link (the key was
	// overwritten); the caller then asks again.
	LocalFile(ctx context.Context, bucket, key string) (path, etag string, err error)
}

// stage makes the object bucket/key readable at local (a path inside the
// crawl's directory, which DuckDB alone may read): a hard link to the
// store's own file when the store has local files, else a copy streamed
// from the store. It reports whether the bytes were read in place.
func (c *Crawler) stage(ctx context.Context, bucket, key, local string) (inPlace bool, err error) {
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return false, err
	}
	lf, ok := c.store.(LocalFiler)
	if !ok {
		return false, c.fetch(ctx, bucket, key, local)
	}
	for attempt := 0; ; attempt++ {
		src, _, err := lf.LocalFile(ctx, bucket, key)
		if err != nil {
			return false, err
		}
		if src == "" { // no file of its own (empty or inline): copy it
			return false, c.fetch(ctx, bucket, key, local)
		}
		err = os.Link(src, local)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, os.ErrNotExist) && attempt < 10:
			continue // replaced meanwhile: look again
		case errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EMLINK):
			// The crawl directory is on another file system (or one
			// without hard links): copy the local file.
			return false, copyLocal(src, local)
		}
		return false, err
	}
}

func copyLocal(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeNew(dst, in)
}

// fetch copies bucket/key to local through the store's Get.
func (c *Crawler) fetch(ctx context.Context, bucket, key, local string) error {
	body, _, err := c.store.Get(ctx, bucket, key, objectstore.GetOptions{})
	if err != nil {
		return err
	}
	defer body.Close()
	return writeNew(local, body)
}

// writeNew creates dst (which must not exist) with r's bytes.
func writeNew(dst string, r io.Reader) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
